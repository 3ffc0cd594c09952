"""Which target clusters are gaps, and which test items fall in them, by COMPASS's own reading.

COMPASS's default gap (``coverage_gap`` in allocation.py) weights a cluster by
w(c) = max(0, p_target(c) - p_train(c)), p_target the shares of the target usage sample E_t (dev)
and p_train those of the existing training data. A *gap* cluster is one it puts weight on,
p_target(c) > p_train(c) (before the weights' fallback to p_target when nothing is missing: then
no cluster is a gap); every other cluster is *covered*. Splitting the test items this way asks
whether the selected data helps where the existing training data falls short.

Shares are counts / total, and IEEE division rounds equal fractions to the same float, so a
cluster whose shares are equal is covered, never a gap by a rounding error.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

CLUSTER_COLUMNS = ("cluster", "p_target", "p_train", "gap")
ASSIGNMENT_COLUMNS = ("id", "cluster", "gap")


def gap_mask(p_target: np.ndarray, p_train: np.ndarray) -> np.ndarray:
    """True where ``coverage_gap`` gives a cluster weight: p_target > p_train."""
    return np.asarray(p_target, float) > np.asarray(p_train, float)


def cluster_gaps(pool) -> pd.DataFrame:
    """One row per target cluster of a ``TargetPool``: cluster, p_target, p_train, gap."""
    p_target, p_train = pool.p_target(), pool.p_train()
    return pd.DataFrame({"cluster": np.arange(pool.k), "p_target": p_target, "p_train": p_train,
                         "gap": gap_mask(p_target, p_train)})


def assign_items(pool, ids: Sequence[str],
                 vectors_of: Callable[[list[str]], np.ndarray]) -> pd.DataFrame:
    """Cluster and gap flag of target-language items (e.g. the test items) by their pair ids.

    ``vectors_of(ids)`` returns the raw embeddings (a ``PoolVectors``); they are centred as E_t
    was and assigned to the nearest target centroid (``TargetPool.assign_target``)."""
    ids = [str(i) for i in ids]
    if not ids:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in
                             zip(ASSIGNMENT_COLUMNS, (object, np.int64, bool))})
    labels, _ = pool.assign_target(vectors_of(ids))
    gaps = cluster_gaps(pool)["gap"].to_numpy()
    return pd.DataFrame({"id": ids, "cluster": labels.astype(np.int64), "gap": gaps[labels]})
