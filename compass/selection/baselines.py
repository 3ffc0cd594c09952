"""Baselines behind the same interface and budget as COMPASS.

- ``random``: uniform over the (decontaminated) auxiliary pool.
- ``all``: all-data mixing, every decontaminated auxiliary item (the budget does not apply).
- ``langsim``: items of the auxiliary languages most similar to the target by URIEL typology
  (lang2vec); the next most similar language is added while the chosen ones hold too few items.
- ``dsir``: hashed n-gram importance resampling toward E_t (Xie et al. 2023); importance weights
  from the authors' `data-selection` package, seeded Gumbel top-k sampling here.
- ``oracle``: a positive control of the evaluation, not a selection method (:func:`select_oracle`).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from compass.data.splits import rng_for
from compass.schemas import pair_text
from compass.selection.base import (DedupTaker, Selection, SelectionError, cluster_report,
                                    manifest_from, require_budget)


def _take(pool, cfg, order, budget, what):
    taker = DedupTaker(pool.aux_vectors, cfg.sampling.dedup_threshold)
    picked = taker.take(order, budget)
    require_budget(budget, len(picked), what)
    return picked, taker.skipped


def select_random(pool, cfg, seed: int) -> Selection:
    """A uniform random sample of the decontaminated pool, near-duplicates skipped."""
    budget = cfg.sampling.budget
    require_budget(budget, len(pool.aux), "decontaminated auxiliary items")
    rng = rng_for(seed, pool.target, "random")
    keys = rng.random(len(pool.aux))
    picked, skipped = _take(pool, cfg, np.argsort(keys, kind="stable"), budget,
                            "non-duplicate auxiliary items")
    manifest = manifest_from(pool, picked, keys[picked])
    return Selection("random", manifest, cluster_report(pool, manifest),
                     {"duplicates_skipped": skipped})


def select_all(pool, cfg, seed: int) -> Selection:
    """Every decontaminated auxiliary item, with no budget (all-data mixing)."""
    picked = np.arange(len(pool.aux))
    manifest = manifest_from(pool, picked, 1.0 - pool.aux["distance"].to_numpy())
    return Selection("all", manifest, cluster_report(pool, manifest),
                     {"note": "all-data mixing: every decontaminated auxiliary item, no budget"})


def select_langsim(pool, cfg, seed: int) -> Selection:
    """The auxiliary languages most similar to the target by URIEL features, until at least
    ``langsim.n_languages`` are chosen and they hold the budget, sampled at random within them."""
    from compass.selection.typology import rank_languages

    budget = cfg.sampling.budget
    require_budget(budget, len(pool.aux), "decontaminated auxiliary items")
    present = sorted(pool.aux["language"].unique())
    ranking = rank_languages(pool.target, present, features=cfg.sampling.langsim.features)
    counts = pool.aux["language"].value_counts()
    chosen, held = [], 0
    for lang in ranking["language"]:
        if len(chosen) >= cfg.sampling.langsim.n_languages and held >= budget:
            break
        chosen.append(lang)
        held += int(counts.get(lang, 0))
    if held < budget:
        raise SelectionError(
            f"langsim: the {len(chosen)} auxiliary languages with URIEL data hold {held} items, "
            f"fewer than the budget {budget}; lower sampling.budget to at most {held}", held)
    rng = rng_for(seed, pool.target, "langsim")
    in_chosen = pool.aux["language"].isin(chosen).to_numpy()
    keys = np.where(in_chosen, rng.random(len(pool.aux)), np.inf)
    order = np.argsort(keys, kind="stable")[: int(in_chosen.sum())]
    picked, skipped = _take(pool, cfg, order, budget, "non-duplicate items in the chosen languages")
    sim = dict(zip(ranking["language"], ranking["similarity"]))
    scores = [sim[lang] for lang in pool.aux["language"].to_numpy()[picked]]
    manifest = manifest_from(pool, picked, scores)
    info = {"languages": chosen, "ranking": ranking.to_dict("records"),
            "duplicates_skipped": skipped}
    return Selection("langsim", manifest, cluster_report(pool, manifest), info)


def select_dsir(pool, cfg, seed: int) -> Selection:
    """DSIR: pool items drawn by importance weight of their hashed n-grams towards E_t (Gumbel
    top-k), near-duplicates skipped."""
    from compass.selection.dsir import gumbel_top_k, log_importance_weights

    budget = cfg.sampling.budget
    require_budget(budget, len(pool.aux), "decontaminated auxiliary items")
    weights = log_importance_weights(
        [pair_text(r) for r in pool.dev.to_dict("records")],
        [pair_text(r) for r in pool.aux.to_dict("records")],
        ngrams=cfg.sampling.dsir.ngrams, num_buckets=cfg.sampling.dsir.num_buckets,
    )
    rng = rng_for(seed, pool.target, "dsir")
    order = gumbel_top_k(weights, len(pool.aux), rng)
    picked, skipped = _take(pool, cfg, order, budget, "non-duplicate auxiliary items")
    manifest = manifest_from(pool, picked, weights[picked])
    return Selection("dsir", manifest, cluster_report(pool, manifest),
                     {"duplicates_skipped": skipped})


def select_oracle(pool, cfg, seed: int) -> Selection:
    """A positive control, not a method: the target's own E_t pairs in the gap clusters (p_target
    > p_train), nearest to their centroid first, up to the budget (fewer where E_t holds fewer).
    In-language data exactly where the existing data falls short is the advantage a gap filler
    aims at; no real user has it (E_t is the usage sample, not training data), so an adapter
    trained on it only shows whether the gap-vs-covered test sees such an advantage."""
    from compass.selection.gaps import gap_mask

    gaps = np.flatnonzero(gap_mask(pool.p_target(), pool.p_train()))
    labels = np.asarray(pool.dev_labels)
    cosine = np.einsum("ij,ij->i", pool.dev_vectors, pool.clusters.centroids[labels])
    rows = pool.dev.assign(cluster=labels, distance=1.0 - cosine)
    rows = rows[np.isin(labels, gaps)].sort_values(["distance", "id"]).head(cfg.sampling.budget)
    manifest = pd.DataFrame({"id": rows["id"].to_numpy(), "language": rows["language"].to_numpy(),
                             "cluster": rows["cluster"].to_numpy(),
                             "score": 1.0 - rows["distance"].to_numpy()})
    return Selection("oracle", manifest, cluster_report(pool, manifest),
                     {"note": "positive control: the target's own E_t pairs in the gap clusters"})
