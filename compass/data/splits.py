"""Deterministic per-language splits and multiple-choice test items.

Pairs sharing a prompt form one group and never straddle two splits (no train/test leakage through
repeated prompts). The existing training data covers only part of the topics
(``train_topic_fraction``): that is the semantic gap COMPASS is meant to fill.
"""
from __future__ import annotations

import math
import zlib
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from compass.config import SplitConfig


class SplitError(ValueError):
    """A language whose data cannot give the requested splits."""


def rng_for(seed: int, *keys: str) -> np.random.Generator:
    """A generator that depends only on the seed and the given names (stable across runs)."""
    return np.random.default_rng([seed, *(zlib.crc32(k.encode("utf-8")) for k in keys)])


def _group_key(prompt: str) -> str:
    return " ".join(prompt.lower().split())


def split_language(pairs: list[dict], cfg: "SplitConfig", seed: int) -> pd.DataFrame:
    """Assign each pair of one language to dev / train / test. Returns the SPLIT table."""
    if not pairs:
        raise SplitError("no pairs given to split")
    langs = {p["language"] for p in pairs}
    if len(langs) != 1:
        raise SplitError(f"split_language expects one language, got {sorted(langs)}")
    lang = langs.pop()
    frame = pd.DataFrame(pairs)[["id", "topic", "prompt"]]
    frame["group"] = frame["prompt"].map(_group_key)
    groups = frame.drop_duplicates("group")[["group", "topic"]].reset_index(drop=True)
    topics = sorted(groups["topic"].unique())
    if len(topics) < 2:
        raise SplitError(f"language {lang!r} has one topic ({topics}); test items need >= 2")
    rng = rng_for(seed, lang, "split")
    n_train_topics = max(1, math.ceil(cfg.train_topic_fraction * len(topics)))
    train_topics = set(rng.choice(topics, size=n_train_topics, replace=False).tolist())

    order = rng.permutation(len(groups))
    groups = groups.iloc[order].reset_index(drop=True)
    n = len(groups)
    n_train = int(round(cfg.train * n))
    eligible = groups.index[groups["topic"].isin(train_topics)].tolist()
    train_idx = set(eligible[:n_train])
    rest = [i for i in range(n) if i not in train_idx]
    dev_share = cfg.dev / (cfg.dev + cfg.test) if cfg.dev + cfg.test > 0 else 0.0
    n_dev = int(round(dev_share * len(rest)))
    assign = {}
    for i in train_idx:
        assign[groups.at[i, "group"]] = "train"
    for j, i in enumerate(rest):
        assign[groups.at[i, "group"]] = "dev" if j < n_dev else "test"
    frame["split"] = frame["group"].map(assign)
    counts = frame["split"].value_counts()
    for name in ("dev", "test"):
        if counts.get(name, 0) == 0:
            raise SplitError(f"language {lang!r} ({len(pairs)} pairs) gives an empty {name} split")
    return frame[["id", "split", "topic", "group"]].sort_values("id").reset_index(drop=True)


def _distractor_pool(pairs: list[dict], splits: pd.DataFrame) -> dict[str, list[str]]:
    """Responses per topic that may serve as distractors: those of the splits no adapter trains
    on (dev and test). A distractor from the train split would be a response the adapters have
    seen and zero-shot has not, which biases the comparison."""
    untrained = set(splits.loc[splits["split"] != "train", "id"])
    by_topic: dict[str, list[str]] = {}
    for p in pairs:
        if p["id"] in untrained:
            by_topic.setdefault(p["topic"], []).append(p["response"])
    return by_topic


def distractor_capacity(pairs: list[dict], splits: pd.DataFrame) -> int:
    """The most distractors every test item can get: the fewest distinct untrained responses from
    other topics that any test pair has (what ``data.split.n_distractors`` may be at most)."""
    by_id = {p["id"]: p for p in pairs}
    responses_by_topic = {t: set(rs) for t, rs in _distractor_pool(pairs, splits).items()}
    topics = {p["topic"] for p in pairs}
    others = {topic: set().union(*(rs for t, rs in responses_by_topic.items() if t != topic))
              for topic in topics}
    test_ids = splits.loc[splits["split"] == "test", "id"]
    return min((len(others[by_id[i]["topic"]] - {by_id[i]["response"]}) for i in test_ids),
               default=0)


def make_test_items(pairs: list[dict], splits: pd.DataFrame, cfg: "SplitConfig",
                    seed: int) -> list[dict]:
    """Multiple-choice items from the test split: the true response and ``n_distractors``
    responses from other topics of the same language, in a seeded order. Distractors come only
    from the splits no adapter trains on (:func:`_distractor_pool`)."""
    by_id = {p["id"]: p for p in pairs}
    lang = pairs[0]["language"]
    rng = rng_for(seed, lang, "test_items")
    test = splits[splits["split"] == "test"].drop_duplicates("group")
    ids = test["id"].tolist()
    if len(ids) > cfg.max_test_items:
        ids = sorted(rng.choice(ids, size=cfg.max_test_items, replace=False).tolist())
    responses_by_topic = _distractor_pool(pairs, splits)
    items = []
    for item_id in ids:
        pair = by_id[item_id]
        candidates = sorted({
            r for topic, rs in responses_by_topic.items() if topic != pair["topic"] for r in rs
            if r != pair["response"]
        })
        if len(candidates) < cfg.n_distractors:
            raise SplitError(
                f"language {lang!r}: only {len(candidates)} distractors for {item_id}, "
                f"need n_distractors = {cfg.n_distractors}"
            )
        distractors = rng.choice(candidates, size=cfg.n_distractors, replace=False).tolist()
        choices = [pair["response"], *distractors]
        order = rng.permutation(len(choices))
        choices = [choices[k] for k in order]
        items.append({
            "id": item_id, "language": lang, "topic": pair["topic"], "category": "",
            "question": pair["prompt"], "choices": choices,
            "answer": int(np.where(order == 0)[0][0]),
        })
    return items
