"""The COMPASS selector: spend the budget on the target clusters the training data under-covers.

Every auxiliary item belongs to its nearest target centroid (cosine). The budget is placed by three
rules, in order, and each selection's cluster report says how many items each rule placed:

1. **own**: each cluster gets seats in proportion to its gap weight (``allocation.py``; largest
   remainder) and fills them with its own eligible items (within the cluster's radius, nearest to
   the centroid first, or farthest-point for ``within_cluster: diverse``);
2. **spill**: seats a cluster cannot fill (too few eligible items, or near-duplicates) go to the
   nearest cluster by centroid cosine that still has eligible items, the under-covered clusters
   (weight > 0) first, then the others;
3. **widened**: when no cluster has eligible items left, the remaining seats are placed by rules 1
   and 2 again over the items beyond the radii, nearest to their centroid first.

So a target whose E_t is small (clusters of a few members, tight radii) still gets the budget, from
the items nearest its usage, and a report that shows how far the rules had to reach. The selection
fails only when the whole decontaminated pool (less near-duplicates) holds fewer items than the
budget; the error names the largest budget that works.
"""
from __future__ import annotations

import numpy as np

from compass.selection.allocation import GAPS
from compass.selection.allocation import (coverage_gap_weights, fill_to_target_weights,
                                          inverse_count_weights, largest_remainder)
from compass.selection.base import (DedupTaker, Selection, cluster_report, manifest_from,
                                    require_budget)

RULES = ("own", "spill", "widened")


def cluster_weights(pool, gap: str, tau: int, eps: float, budget: int = 0) -> np.ndarray:
    """Each cluster's share of the budget under the ``gap`` reading (``sampling.gap``); an unknown
    reading raises ValueError."""
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


def spill_order(centroids: np.ndarray, weights: np.ndarray) -> list[list[int]]:
    """For each cluster, the other clusters its unfilled seats go to: the under-covered ones
    (weight > 0) by centroid cosine, nearest first, then the rest the same way (ties: lower
    index)."""
    sims = centroids @ centroids.T
    k = len(centroids)
    out = []
    for c in range(k):
        others = sorted((d for d in range(k) if d != c), key=lambda d: (-sims[c, d], d))
        out.append([d for d in others if weights[d] > 0] + [d for d in others if weights[d] <= 0])
    return out


class _Cursor:
    """Walks one cluster's candidate order, taking items the DedupTaker accepts."""

    def __init__(self, order: list[int]):
        self.order, self.position = order, 0

    def take(self, taker: DedupTaker, want: int) -> list[int]:
        got = []
        while len(got) < want and self.position < len(self.order):
            index = self.order[self.position]
            self.position += 1
            if taker.offer(index):
                got.append(index)
        return got


def place(quota: np.ndarray, orders: list[list[int]], neighbours: list[list[int]],
          taker: DedupTaker) -> tuple[list[tuple[int, str]], int]:
    """Rules 1 and 2 over one tier of candidates. Returns the picks as (aux index, rule) and the
    seats left unfilled."""
    cursors = [_Cursor(o) for o in orders]
    picks: list[tuple[int, str]] = []
    short = np.zeros(len(quota), dtype=np.int64)
    for c, want in enumerate(quota):
        got = cursors[c].take(taker, int(want))
        picks += [(i, "own") for i in got]
        short[c] = int(want) - len(got)
    for c in sorted(np.flatnonzero(short), key=lambda c: (-short[c], c)):
        for d in neighbours[c]:
            if short[c] == 0:
                break
            got = cursors[d].take(taker, int(short[c]))
            picks += [(i, "spill") for i in got]
            short[c] -= len(got)
    return picks, int(short.sum())


def select_compass(pool, cfg, seed: int, gap: str = "coverage_gap",
                   method: str = "compass") -> Selection:
    """COMPASS: seats per target cluster from the gap weights (largest remainder), filled in
    ``sampling.within_cluster`` order within the radii, spilled to neighbouring clusters, then
    widened beyond the radii if the budget is still not met; near-duplicates are skipped."""
    sm = cfg.sampling
    budget = sm.budget
    require_budget(budget, len(pool.aux), "decontaminated auxiliary items")
    eligible = pool.aux["eligible"].to_numpy()
    clusters = pool.aux["cluster"].to_numpy()
    weights = cluster_weights(pool, gap, sm.inverse_count.tau, sm.inverse_count.eps, budget)
    spread = weights if weights.sum() > 0 else pool.p_target()  # all-zero weights: E_t's own mix
    neighbours = spill_order(pool.clusters.centroids, weights)
    distance, ids = pool.aux["distance"].to_numpy(), pool.aux["id"].to_numpy()
    taker = DedupTaker(pool.aux_vectors, sm.dedup_threshold)
    picks: list[tuple[int, str]] = []
    quota = largest_remainder(spread, budget)
    for widened, tier in ((False, eligible), (True, ~eligible)):  # within the radii, then beyond
        left = budget - len(picks)
        if left == 0:
            break
        orders = [_cluster_order(pool, np.flatnonzero(tier & (clusters == c)), sm.within_cluster,
                                 distance, ids) for c in range(pool.k)]
        got, _ = place(largest_remainder(spread, left) if widened else quota, orders, neighbours,
                       taker)
        picks += [(i, "widened") for i, _ in got] if widened else got
    if len(picks) < budget:
        require_budget(budget, len(picks), "non-duplicate decontaminated auxiliary items")
    picked = [i for i, _ in picks]
    manifest = manifest_from(pool, picked, 1.0 - distance[picked])
    placed = {rule: np.bincount([clusters[i] for i, r in picks if r == rule], minlength=pool.k)
              for rule in RULES}
    report = cluster_report(pool, manifest, quota)
    for rule in RULES:
        report[f"placed_{rule}"] = placed[rule]
    info = {"gap": gap, "weights": weights.tolist(), "duplicates_skipped": taker.skipped,
            "within_cluster": sm.within_cluster,
            "placed": {rule: int(placed[rule].sum()) for rule in RULES}}
    return Selection(method, manifest, report, info)
