"""The COMPASS selector: spend the budget on the target clusters the training data under-covers."""
from __future__ import annotations

import numpy as np

from compass.selection.allocation import GAPS
from compass.selection.allocation import (allocate, coverage_gap_weights, fill_to_target_weights,
                                inverse_count_weights)
from compass.selection.base import (DedupTaker, Selection, cluster_report, manifest_from,
                                    require_budget)


def cluster_weights(pool, gap: str, tau: int, eps: float, budget: int = 0) -> np.ndarray:
    if gap == "fill_to_target":
        train_counts = np.bincount(pool.train_labels, minlength=pool.k)
        return fill_to_target_weights(pool.p_target(), train_counts, budget)
    if gap == "coverage_gap":
        return coverage_gap_weights(pool.p_target(), pool.p_train())
    if gap == "inverse_count":
        counts = np.bincount(pool.aux.loc[pool.aux["eligible"], "cluster"], minlength=pool.k)
        return inverse_count_weights(counts, tau, eps)
    raise ValueError(f"gap reading {gap!r} is unknown; use one of {list(GAPS)}")


def _cluster_order(pool, members: np.ndarray, mode: str, distance: np.ndarray,
                   ids: np.ndarray) -> list[int]:
    """Candidate order inside one cluster: nearest to the centroid first, or farthest-point
    traversal (starting at the nearest) for diversity."""
    dist = distance[members]
    ids = ids[members]
    nearest = members[np.lexsort((ids, dist))]
    if mode == "nearest" or len(nearest) <= 2:
        return nearest.tolist()
    vecs = pool.aux_vectors[nearest]
    order = [0]
    closest = 1.0 - vecs @ vecs[0]
    closest[0] = -np.inf
    for _ in range(len(nearest) - 1):
        nxt = int(np.argmax(closest))
        order.append(nxt)
        closest = np.minimum(closest, 1.0 - vecs @ vecs[nxt])
        closest[order] = -np.inf
    return nearest[order].tolist()


def select_compass(pool, cfg, seed: int, gap: str = "coverage_gap", method: str = "compass") -> Selection:
    sm = cfg.sampling
    budget = sm.budget
    eligible = pool.aux["eligible"].to_numpy()
    clusters = pool.aux["cluster"].to_numpy()
    require_budget(budget, int(eligible.sum()), "auxiliary items within a target cluster's radius")
    weights = cluster_weights(pool, gap, sm.inverse_count.tau, sm.inverse_count.eps, budget)
    distance, ids = pool.aux["distance"].to_numpy(), pool.aux["id"].to_numpy()
    orders = [
        _cluster_order(pool, np.flatnonzero(eligible & (clusters == c)), sm.within_cluster,
                       distance, ids)
        for c in range(pool.k)
    ]
    capacity = np.array([len(o) for o in orders], dtype=np.int64)
    available = capacity.copy()
    taker = DedupTaker(pool.aux_vectors, sm.dedup_threshold)
    cursor = [0] * pool.k
    picked: list[int] = []
    allocated = np.zeros(pool.k, dtype=np.int64)
    target = pool.p_target()
    while len(picked) < budget:
        room = capacity - allocated
        if room.sum() <= 0:
            break
        extra = allocate(weights, min(budget - len(picked), int(room.sum())), room, fallback=target)
        allocated += extra
        for c in np.flatnonzero(extra):
            want = int(allocated[c]) - sum(1 for i in picked if clusters[i] == c)
            while want > 0 and cursor[c] < len(orders[c]):
                if taker.offer(orders[c][cursor[c]]):
                    picked.append(orders[c][cursor[c]])
                    want -= 1
                cursor[c] += 1
            if want > 0:  # duplicates exhausted the cluster: it supplies no more
                capacity[c] = allocated[c] - want
                allocated[c] = capacity[c]
    if len(picked) < budget:
        require_budget(budget, len(picked), "non-duplicate eligible auxiliary items")
    sims = 1.0 - pool.aux["distance"].to_numpy()[picked]
    manifest = manifest_from(pool, picked, sims)
    info = {"gap": gap, "weights": weights.tolist(), "duplicates_skipped": taker.skipped,
            "within_cluster": sm.within_cluster}
    return Selection(method, manifest, cluster_report(pool, manifest, allocated, available), info)
