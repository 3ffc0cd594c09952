"""The paper protocol: the Aya Dataset as the pool, each target's Global-MMLU dev items as E_t and
its Global-MMLU (or -Lite) test items as the test split, MMLU-ProX-Lite where asked; the data
comes from the hub (compass.data.paper_profile)."""
from __future__ import annotations

from dataclasses import dataclass

from compass.protocols.base import Protocol


@dataclass(frozen=True)
class PaperProtocol(Protocol):
    name: str = "paper"
    describes_paper: bool = True
    hub_benchmarks: bool = True
    mc_items_are_nll_pairs: bool = False
    scores_one_seed: bool = True

    def pool_pairs(self, cfg) -> list[dict]:
        """The Aya pool plus each target's E_t and test items as pairs; each target's benchmark
        items are written for the data and evaluate stages."""
        from compass import io, paths
        from compass.data import paper_profile

        pairs = paper_profile.aya_pool(cfg)
        for lang in cfg.targets:
            items = paper_profile.benchmark_items(cfg, lang)
            io.write_json(paths.benchmark_file(lang), items)
            pairs += paper_profile.benchmark_pairs(items)
        return pairs

    def split_target(self, cfg, lang: str, own: list[dict]):
        from compass import io, paths

        benchmarks = io.read_json(paths.benchmark_file(lang))
        splits, items = paper_splits(own, benchmarks)
        return splits, items, len(benchmarks["dropped"])  # rows with an empty option: counted

    def prox_languages(self, cfg) -> tuple[str, ...]:
        return tuple(cfg.prox_languages())

    def languages_to_check(self, cfg) -> tuple[str, ...]:
        from compass import paths

        return tuple(lang for lang in cfg.targets  # a dry check: targets new since the pool
                     if paths.benchmark_file(lang).exists())


def paper_splits(own: list[dict], benchmarks: dict):
    """The target's own Aya rows are the existing train data, its Global-MMLU dev items E_t, and
    its Global-MMLU test items the test split. Test items keep subject, category and the cultural
    label, and take their pool pair's id."""
    import pandas as pd

    from compass import config as config_mod
    from compass.data import paper_profile as pp

    split_of = {pp.AYA_SOURCE: "train", pp.DEV_SOURCE: "dev", pp.TEST_SOURCE: "test"}
    splits = pd.DataFrame([{"id": p["id"], "split": split_of[p["source"]], "topic": p["topic"],
                            "group": p["id"]} for p in own if p["source"] in split_of])
    if not (splits["split"] == "train").any():
        lang = own[0]["language"]
        raise config_mod.ConfigError(
            f"target language {lang!r} has no Aya rows in data.aux_dataset: the paper protocol "
            "uses them as its existing training data; choose a target Aya covers")
    items = [{**item, "sample_id": item["id"], "id": pp.pool_id(item, pp.TEST_SOURCE)}
             for item in benchmarks["test"]]
    return splits.sort_values("id").reset_index(drop=True), items
