"""Stage `sampling`: COMPASS and every baseline select auxiliary data for one target language."""
from __future__ import annotations

import time

import pandas as pd

from compass import data as data_mod
from compass import io, paths
from compass.data.embed import PoolVectors
from compass.data.paper_profile import TEST_SOURCES, is_benchmark
from compass.schemas import pair_text
from compass.stages.data import read_language


def target_pool(cfg, lang: str, pairs: list[dict] | None = None, vectors: PoolVectors | None = None,
                splits: pd.DataFrame | None = None, items: list[dict] | None = None):
    """The TargetPool of one target language, from the pool and data stages' outputs.
    ``pairs``, ``vectors`` and the data stage's ``splits`` and ``items`` may be passed by a caller
    that already has them (the check stage computes splits before the data stage has run)."""
    from compass.selection.pool import build_target_pool

    pairs = data_mod.read_pool() if pairs is None else pairs
    if splits is None:
        splits, items = read_language(lang)
    frame = pd.DataFrame(pairs)
    frame["text"] = [pair_text(p) for p in pairs]
    split_of = dict(zip(splits["id"], splits["split"]))
    own = frame[frame["language"] == lang].copy()
    own["split"] = own["id"].map(split_of)
    aux_langs = cfg.aux_languages(sorted(frame["language"].unique()), lang)
    # benchmark items (another target's E_t or test items) are never auxiliary training data
    aux = frame[frame["language"].isin(aux_langs) & ~frame["source"].map(is_benchmark)]
    vectors = PoolVectors.load() if vectors is None else vectors
    means = vectors.language_means(aux["id"].tolist(), aux["language"].to_numpy())
    # decontaminate against every test set: the test items, and (paper) MMLU-ProX-Lite's
    other_tests = own.loc[own["source"].isin(TEST_SOURCES) & ~own["id"].isin(set(split_of)), "id"]
    return build_target_pool(cfg, lang, own[own["split"] == "dev"], own[own["split"] == "train"],
                             aux, vectors, [it["id"] for it in items] + other_tests.tolist(), means)


def run_sampling(cfg, lang: str, methods=None, show_progress_bar: bool = True) -> dict:
    """The sampling stage for one target: gap clusters, each test item's cluster, and every method's
    selection (manifest and cluster report) with the sampling metrics."""
    from tqdm.auto import tqdm

    from compass.selection import gaps
    from compass.selection.selectors import select
    from compass.selection.metrics import sampling_metrics

    vectors = PoolVectors.load()
    pool = target_pool(cfg, lang, vectors=vectors)
    _, items = read_language(lang)  # test item ids are the held-out pairs' ids
    clusters = gaps.cluster_gaps(pool)
    test_clusters = gaps.assign_items(pool, [it["id"] for it in items], vectors)
    io.write_csv(paths.gap_clusters_file(lang), clusters)
    io.write_csv(paths.test_clusters_file(lang), test_clusters)
    selections, seconds = {}, {}
    for method in tqdm(methods or cfg.sampling.methods, desc=f"selecting ({lang})",
                       disable=not show_progress_bar):
        start = time.perf_counter()
        sel = select(method, pool, cfg)
        seconds[method] = round(time.perf_counter() - start, 3)
        io.write_csv(paths.manifest_file(lang, method), sel.manifest)
        io.write_csv(paths.cluster_report_file(lang, method), sel.report)
        selections[method] = sel
    metrics = sampling_metrics(pool, selections)
    metrics["decontamination_recall"] = decontamination_recall(cfg).to_dict("records")
    io.write_json(paths.sampling_metrics(lang), metrics)
    return {"pool": pool, "selections": selections, "metrics": metrics, "seconds": seconds,
            "gap_clusters": clusters, "test_clusters": test_clusters}


def decontamination_recall(cfg) -> pd.DataFrame:
    """How many true translations the decontamination rules catch, on the parallel text the
    package carries, embedded by the pool's encoder (cached like every other text)."""
    from compass.data.embed import embed_texts
    from compass.selection.decontamination import parallel_recall

    def embed(texts):
        return embed_texts(texts, cfg.encoder.name, cfg.encoder.prefix, cfg.encoder.batch_size,
                           show_progress_bar=False)

    sm = cfg.sampling
    return parallel_recall(embed, sm.decontam_threshold, sm.decontam_mutual_floor)
