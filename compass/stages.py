"""The work of each pipeline stage as one call, so notebooks stay narrative + calls.

Each function reads its inputs from ``compass.paths``, writes its outputs atomically there, and
returns what the notebook shows. Nothing here decides *which* stages run: that is dvc.yaml.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd

from compass import config as config_mod
from compass import data as data_mod
from compass import io, paths
from compass.data.splits import make_test_items, split_language
from compass.embed import embed_texts
from compass.schemas import MC_FIELDS, SPLIT_FIELDS, pair_text


# ---- pool: every pair of the profile, embedded once -------------------------------------------
def build_pool(cfg, show_progress_bar: bool = True, pairs: list[dict] | None = None) -> dict:
    """Write the pool and the embedding of every pair (cached by text, so reruns are free).

    ``pairs`` replaces the profile's pairs (tests use a small subset)."""
    pairs = data_mod.load_profile_pairs(cfg) if pairs is None else pairs
    start = time.perf_counter()
    vectors = embed_texts([pair_text(p) for p in pairs], cfg.encoder.name, cfg.encoder.prefix,
                          cfg.encoder.batch_size, show_progress_bar=show_progress_bar)
    summary = {"pairs": len(pairs), "languages": data_mod.language_counts(pairs),
               "encoder": cfg.encoder.name, "dim": int(vectors.shape[1]),
               "embed_seconds": round(time.perf_counter() - start, 2)}
    io.write_jsonl(paths.pool_file(), pairs)
    io.write_npz(paths.pool_embeddings(), ids=np.array([p["id"] for p in pairs]), vectors=vectors)
    io.write_json(paths.pool_summary(), summary)
    return summary


class PoolVectors:
    """Raw embeddings of pool pairs, looked up by id."""

    def __init__(self):
        stored = io.read_npz(paths.pool_embeddings())
        self.ids = stored["ids"]
        self.vectors = stored["vectors"]
        self.row = {pid: i for i, pid in enumerate(self.ids.tolist())}

    def __call__(self, ids) -> np.ndarray:
        missing = [i for i in ids if i not in self.row]
        if missing:
            raise KeyError(f"{len(missing)} id(s) have no embedding (e.g. {missing[:3]}); rerun the pool stage")
        return self.vectors[[self.row[i] for i in ids]]

    def language_means(self, pairs: list[dict]) -> dict[str, np.ndarray]:
        langs = np.array([p["language"] for p in pairs])
        rows = np.array([self.row[p["id"]] for p in pairs])
        return {lang: self.vectors[rows[langs == lang]].mean(axis=0) for lang in np.unique(langs)}


# ---- data: per target language splits and test items ------------------------------------------
def prepare_language(cfg, lang: str) -> dict:
    pairs = data_mod.read_pool()
    config_mod.validate_against_data(cfg, data_mod.language_counts(pairs), target=lang)
    own = [p for p in pairs if p["language"] == lang]
    splits = split_language(own, cfg.data.split, cfg.seed)
    items = make_test_items(own, splits, cfg.data.split, cfg.seed)
    io.write_csv(paths.splits_file(lang), splits)
    io.write_jsonl(paths.test_items_file(lang), items)
    by_split = splits.groupby(["topic", "split"]).size().unstack(fill_value=0)
    metrics = {"language": lang, "pairs": len(own), "topics": int(splits["topic"].nunique()),
               "dev": int((splits["split"] == "dev").sum()),
               "train": int((splits["split"] == "train").sum()),
               "test_pairs": int((splits["split"] == "test").sum()), "test_items": len(items),
               "train_topics": int((by_split.get("train", pd.Series(dtype=int)) > 0).sum())}
    io.write_json(paths.data_metrics(lang), metrics)
    return {"metrics": metrics, "splits": splits, "topic_table": by_split.reset_index(),
            "items": items}


def read_language(lang: str) -> tuple[pd.DataFrame, list[dict]]:
    splits = io.read_csv(paths.splits_file(lang), required=SPLIT_FIELDS)
    items = io.read_jsonl(paths.test_items_file(lang), required=MC_FIELDS)
    return splits, items


# ---- sampling: every method for one target language -------------------------------------------
def target_pool(cfg, lang: str):
    """The TargetPool of one target language, from the pool and data stages' outputs."""
    from compass.selection.pool import build_target_pool

    pairs = data_mod.read_pool()
    splits, items = read_language(lang)
    frame = pd.DataFrame(pairs)
    frame["text"] = [pair_text(p) for p in pairs]
    split_of = dict(zip(splits["id"], splits["split"]))
    own = frame[frame["language"] == lang].copy()
    own["split"] = own["id"].map(split_of)
    aux_langs = cfg.aux_languages(sorted(frame["language"].unique()), lang)
    aux = frame[frame["language"].isin(aux_langs)]
    vectors = PoolVectors()
    means = vectors.language_means([p for p in pairs if p["language"] in aux_langs])
    return build_target_pool(cfg, lang, own[own["split"] == "dev"], own[own["split"] == "train"],
                             aux, vectors, [it["id"] for it in items], means)


def run_sampling(cfg, lang: str, methods=None, show_progress_bar: bool = True) -> dict:
    from tqdm.auto import tqdm

    from compass.selection import select

    pool = target_pool(cfg, lang)
    selections, timings = {}, {}
    for method in tqdm(methods or cfg.sampling.methods, desc=f"selecting ({lang})",
                       disable=not show_progress_bar):
        start = time.perf_counter()
        sel = select(method, pool, cfg)
        timings[method] = round(time.perf_counter() - start, 3)
        io.write_csv(paths.manifest_file(lang, method), sel.manifest)
        io.write_csv(paths.cluster_report_file(lang, method), sel.report)
        selections[method] = sel
    metrics = sampling_metrics(pool, selections, timings)
    io.write_json(paths.sampling_metrics(lang), metrics)
    return {"pool": pool, "selections": selections, "metrics": metrics}


def sampling_metrics(pool, selections, timings) -> dict:
    from compass.allocation import shares

    p_target = pool.p_target()
    out = {"language": pool.target, "k": pool.k, "dev_items": len(pool.dev),
           "train_items": len(pool.train), "aux_candidates": len(pool.aux),
           "aux_eligible": int(pool.aux["eligible"].sum()),
           "decontaminated": int(pool.decontamination["dropped"].sum()),
           "coverage_gap_of_train": float(0.5 * np.abs(p_target - pool.p_train()).sum()),
           "methods": {}}
    for method, sel in selections.items():
        p_sel = shares(sel.manifest["cluster"].to_numpy(dtype=np.int64), pool.k)
        combined = shares(np.concatenate([pool.train_labels,
                                          sel.manifest["cluster"].to_numpy(dtype=np.int64)]), pool.k)
        out["methods"][method] = {
            "selected": sel.size, "n_languages": int(sel.manifest["language"].nunique()),
            # total variation distance of the selection's cluster mix from the target's
            "tv_to_target": float(0.5 * np.abs(p_sel - p_target).sum()),
            # ... and of existing train + selection together: the mix the adapter will see
            "tv_train_plus_selection_to_target": float(0.5 * np.abs(combined - p_target).sum()),
            "seconds": timings[method],
            **{k: v for k, v in sel.info.items() if k in ("languages", "gap", "duplicates_skipped")},
        }
    return out
