"""What every selector returns, and the pieces they share (dedup-aware taking, reports)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


MANIFEST_COLUMNS = ("id", "language", "cluster", "score")
REPORT_COLUMNS = ("cluster", "target_share", "train_share", "aux_available", "quota", "selected")
# quota: the seats a cluster's gap weight gives it (COMPASS only); aux_available: eligible items


class SelectionError(ValueError):
    """A selection the pool cannot satisfy (budget larger than the eligible pool, ...).
    ``available``: the most items this selection could give (None where unknown)."""

    def __init__(self, message: str, available: int | None = None):
        super().__init__(message)
        self.available = available


@dataclass
class Selection:
    """What a selection method returns: the picked pool items, the per-cluster report, and facts
    specific to the method (written into the sampling metrics)."""
    method: str
    manifest: pd.DataFrame  # MANIFEST_COLUMNS, in selection order
    report: pd.DataFrame  # REPORT_COLUMNS, one row per target cluster
    info: dict = field(default_factory=dict)  # method-specific facts (languages chosen, K, ...)

    @property
    def size(self) -> int:
        """Number of items selected."""
        return len(self.manifest)


def require_budget(budget: int, available: int, what: str) -> None:
    """Refuse (SelectionError) a budget the eligible pool cannot fill, saying how far to lower
    it."""
    if budget > available:
        raise SelectionError(
            f"budget {budget} is larger than the eligible pool ({available} {what}); "
            f"lower sampling.budget to at most {available}", available)


class DedupTaker:
    """Takes items in a given priority order, skipping near-duplicates of items already taken."""

    def __init__(self, vectors: np.ndarray, threshold: float):
        self.vectors = vectors
        self.threshold = threshold
        self.taken: list[int] = []
        self._kept = np.zeros((64, vectors.shape[1]), dtype=vectors.dtype)  # grows by doubling
        self.skipped = 0

    def offer(self, index: int) -> bool:
        """Take item ``index`` unless it is a near-duplicate of one already taken (cosine above the
        threshold, so the vectors must be L2-normalised); returns whether it was taken."""
        v = self.vectors[index]
        n = len(self.taken)
        if n and float((self._kept[:n] @ v).max()) > self.threshold:
            self.skipped += 1
            return False
        if n == len(self._kept):
            self._kept = np.concatenate([self._kept, np.zeros_like(self._kept)])
        self._kept[n] = v
        self.taken.append(int(index))
        return True

    def take(self, order, k: int) -> list[int]:
        """Offer items from ``order`` until ``k`` are taken or ``order`` runs out."""
        got = []
        for index in order:
            if len(got) == k:
                break
            if self.offer(index):
                got.append(int(index))
        return got


def manifest_from(pool, indices, scores) -> pd.DataFrame:
    """The manifest of the pool items at ``indices`` (in that order) with each one's ``score``."""
    rows = pool.aux.iloc[list(indices)]
    return pd.DataFrame({
        "id": rows["id"].to_numpy(), "language": rows["language"].to_numpy(),
        "cluster": rows["cluster"].to_numpy(), "score": np.asarray(scores, dtype=float),
    })


def cluster_report(pool, manifest: pd.DataFrame, quota: np.ndarray | None = None) -> pd.DataFrame:
    """One row per target cluster: shares, eligible items, COMPASS's quota, what was selected."""
    k = pool.k
    available = np.bincount(pool.aux.loc[pool.aux["eligible"], "cluster"], minlength=k)
    return pd.DataFrame({
        "cluster": np.arange(k),
        "target_share": pool.p_target(),
        "train_share": pool.p_train(),
        "aux_available": available,
        "quota": quota if quota is not None else np.full(k, np.nan),
        "selected": np.bincount(manifest["cluster"].to_numpy(dtype=np.int64), minlength=k),
    })
