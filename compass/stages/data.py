"""Stage `data`: one target language's dev (E_t) / train / test splits and test items."""
from __future__ import annotations

import pandas as pd

from compass import config as config_mod
from compass import data as data_mod
from compass import io, paths
from compass.protocols.data import data_of
from compass.schemas import MC_FIELDS, SPLIT_FIELDS


def split_target(cfg, lang: str, own: list[dict]) -> tuple[pd.DataFrame, list[dict], int | None]:
    """One target's splits, test items and dropped benchmark rows (compass.protocols.data)."""
    return data_of(cfg).split_target(cfg, lang, own)


def prepare_language(cfg, lang: str) -> dict:
    """The data stage for one target: its splits and multiple-choice test items from the pool, and
    their counts as metrics (refused when the pool lacks the target)."""
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


def read_language(lang: str) -> tuple[pd.DataFrame, list[dict]]:
    """The data stage's splits and test items of one language, schema-checked."""
    splits = io.read_csv(paths.splits_file(lang), required=SPLIT_FIELDS)
    items = io.read_jsonl(paths.test_items_file(lang), required=MC_FIELDS)
    return splits, items
