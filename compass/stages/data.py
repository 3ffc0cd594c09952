"""Stage `data`: one target language's dev (E_t) / train / test splits and test items."""
from __future__ import annotations

import pandas as pd

from compass import config as config_mod
from compass import data as data_mod
from compass import io, paths
from compass.data.splits import make_test_items, split_language
from compass.schemas import MC_FIELDS, SPLIT_FIELDS


def split_target(cfg, lang: str, own: list[dict]) -> tuple[pd.DataFrame, list[dict], int | None]:
    """One target's splits and test items from its own pairs (both profiles), and the number of
    benchmark rows the paper profile's loaders dropped (None for the tiny profile). The check
    stage runs this too (compass.feasibility), so what it refuses is what would fail here."""
    if cfg.profile == "paper":
        benchmarks = io.read_json(paths.benchmark_file(lang))
        splits, items = paper_splits(own, benchmarks)
        return splits, items, len(benchmarks["dropped"])  # rows with an empty option: counted
    splits = split_language(own, cfg.data.split, cfg.seed)
    return splits, make_test_items(own, splits, cfg.data.split, cfg.seed), None


def prepare_language(cfg, lang: str) -> dict:
    pairs = data_mod.read_pool()
    config_mod.require_target(cfg, data_mod.language_counts(pairs), lang)
    own = [p for p in pairs if p["language"] == lang]
    splits, items, dropped = split_target(cfg, lang, own)
    io.write_csv(paths.splits_file(lang), splits)
    io.write_jsonl(paths.test_items_file(lang), items)
    by_split = splits.groupby(["topic", "split"]).size().unstack(fill_value=0)
    metrics = {"language": lang, "pairs": len(own), "topics": int(splits["topic"].nunique()),
               "dev": int((splits["split"] == "dev").sum()),
               "train": int((splits["split"] == "train").sum()),
               "test_pairs": int((splits["split"] == "test").sum()), "test_items": len(items),
               "train_topics": int((by_split.get("train", pd.Series(dtype=int)) > 0).sum())}
    if dropped is not None:
        metrics["dropped_benchmark_rows"] = dropped
    io.write_json(paths.data_metrics(lang), metrics)
    return {"metrics": metrics, "splits": splits, "topic_table": by_split.reset_index(),
            "items": items}


def paper_splits(own: list[dict], benchmarks: dict) -> tuple[pd.DataFrame, list[dict]]:
    """The paper's protocol: the target's own Aya rows are the existing train data, its
    Global-MMLU dev items E_t, and its Global-MMLU test items the test split. Test items keep
    subject, category and the cultural label, and take their pool pair's id."""
    from compass.data import paper_profile as pp

    split_of = {pp.AYA_SOURCE: "train", pp.DEV_SOURCE: "dev", pp.TEST_SOURCE: "test"}
    splits = pd.DataFrame([{"id": p["id"], "split": split_of[p["source"]], "topic": p["topic"],
                            "group": p["id"]} for p in own if p["source"] in split_of])
    if not (splits["split"] == "train").any():
        lang = own[0]["language"]
        raise config_mod.ConfigError(
            f"target language {lang!r} has no Aya rows in data.aux_dataset: the paper protocol uses "
            "them as its existing training data; choose a target Aya covers")
    items = [{**item, "sample_id": item["id"], "id": pp.pool_id(item, pp.TEST_SOURCE)}
             for item in benchmarks["test"]]
    return splits.sort_values("id").reset_index(drop=True), items


def read_language(lang: str) -> tuple[pd.DataFrame, list[dict]]:
    """The data stage's splits and test items of one language, schema-checked."""
    splits = io.read_csv(paths.splits_file(lang), required=SPLIT_FIELDS)
    items = io.read_jsonl(paths.test_items_file(lang), required=MC_FIELDS)
    return splits, items
