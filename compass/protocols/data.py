"""What each protocol reads: the pool's pairs, one target's splits and test items, the targets a
check covers. Kept apart from the protocol classes (config.py imports those) so that only the
stages that read data depend on the data loaders."""
from __future__ import annotations

from compass.protocols import protocol_of


class TinyData:
    """The chatterbot-corpus pairs; seeded splits and items from each target's own pairs."""

    def pool_pairs(self, cfg) -> list[dict]:
        """Every pair the pool stage embeds."""
        from compass.data.tiny import load_pairs

        return load_pairs()

    def split_target(self, cfg, lang: str, own: list[dict]):
        """(splits, test items, benchmark rows the loaders dropped or None) of one target from its
        own pairs; the check stage runs it too, so what it refuses is what would fail there."""
        from compass.data.splits import make_test_items, split_language

        splits = split_language(own, cfg.data.split, cfg.seed)
        return splits, make_test_items(own, splits, cfg.data.split, cfg.seed), None

    def languages_to_check(self, cfg) -> tuple[str, ...]:
        """The targets whose data a built pool holds."""
        return tuple(cfg.targets)

    def dry_check_pairs(self, cfg) -> list[dict] | None:
        """Pairs a dry check reads on a fresh clone, before the pool exists: the corpus ships
        with its package."""
        return self.pool_pairs(cfg)


class PaperData:
    """The Aya pool and each target's Global-MMLU items, loaded from the hub."""

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
        """(splits, test items, number of benchmark rows the loader dropped) of one target: the
        splits from its own pairs, the items from the benchmark file the pool stage wrote."""
        from compass import io, paths

        benchmarks = io.read_json(paths.benchmark_file(lang))
        splits, items = paper_splits(own, benchmarks)
        return splits, items, len(benchmarks["dropped"])  # rows with an empty option: counted

    def languages_to_check(self, cfg) -> tuple[str, ...]:
        """The targets whose benchmark file exists: a dry check before the pool covers only
        those."""
        from compass import paths

        return tuple(lang for lang in cfg.targets  # a dry check: targets new since the pool
                     if paths.benchmark_file(lang).exists())

    def dry_check_pairs(self, cfg) -> list[dict] | None:
        """None: the pairs come from the hub, so a dry check before the pool has none."""
        return None


_DATA = {"tiny": TinyData(), "paper": PaperData()}


def data_of(cfg):
    """What the config's protocol reads (TinyData or PaperData)."""
    return _DATA[protocol_of(cfg).name]


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
