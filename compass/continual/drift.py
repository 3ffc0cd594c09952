"""Drift monitoring: is a window of production inputs still the distribution an adapter was
trained for?

Two detectors per window:
- Jensen-Shannon divergence between the smoothed cluster-occupancy histograms of the reference
  and the window (the paper's trigger: update when JS > delta);
- an MMD two-sample permutation test on the embeddings (Gaussian kernel, median-heuristic
  bandwidth on the pooled sample, which keeps the permutation test exact).

Why our own MMD: hyppo 0.5.2's `MMD().test` with its default fast approximation returned
p = 1e-11 for two samples of the *same* distribution (60 x 384-d); its permutation mode took 18 s
per test. Here the kernel matrix is computed once and all permutations are one matrix product.
alibi-detect 0.13 would downgrade transformers below 5 and numpy below 2 (tried with pip against
requirements.txt).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TRIGGERS = ("js", "mmd", "either")


def occupancy(labels: np.ndarray, k: int, smoothing: float = 0.5) -> np.ndarray:
    """Additively smoothed cluster histogram (no zero bins: JS stays finite and stable)."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=k).astype(float)
    counts += smoothing
    return counts / counts.sum()


def js_divergence(p: np.ndarray, q: np.ndarray, base: float = 2.0) -> float:
    """Jensen-Shannon divergence (not the distance: scipy's jensenshannon is its square root)."""
    p = np.asarray(p, float) / np.sum(p)
    q = np.asarray(q, float) / np.sum(q)
    m = 0.5 * (p + q)

    def kl(a, b):
        mask = a > 0
        return float(np.sum(a[mask] * np.log(a[mask] / b[mask])))

    return (0.5 * kl(p, m) + 0.5 * kl(q, m)) / np.log(base)


@dataclass(frozen=True)
class MMDResult:
    statistic: float  # biased MMD^2 estimate
    p_value: float
    bandwidth: float
    n_permutations: int


def mmd_permutation_test(x: np.ndarray, y: np.ndarray, n_permutations: int = 1000,
                         seed: int | np.random.Generator = 0) -> MMDResult:
    """Two-sample test H0: x and y come from one distribution. p = (count + 1) / (n + 1)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(x) < 2 or len(y) < 2:
        raise ValueError(f"MMD needs at least 2 items per sample, got {len(x)} and {len(y)}")
    z = np.concatenate([x, y])
    sq = np.sum(z * z, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * z @ z.T, 0.0)
    off = d2[np.triu_indices(len(z), k=1)]
    bandwidth = float(np.sqrt(0.5 * np.median(off[off > 0]))) if np.any(off > 0) else 1.0
    kernel = np.exp(-d2 / (2 * bandwidth ** 2))
    n, m = len(x), len(y)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    base = np.r_[np.full(n, 1.0 / n), np.full(m, -1.0 / m)]
    observed = float(base @ kernel @ base)
    perms = np.stack([rng.permutation(base) for _ in range(n_permutations)])
    null = np.einsum("ij,ij->i", perms @ kernel, perms)
    p_value = (int(np.sum(null >= observed - 1e-12)) + 1) / (n_permutations + 1)
    return MMDResult(observed, p_value, bandwidth, n_permutations)


@dataclass
class DriftMonitor:
    """Compares windows with a reference (the distribution the served adapter was trained for)."""

    reference_labels: np.ndarray
    reference_vectors: np.ndarray
    k: int
    delta: float = 0.05  # JS threshold
    alpha: float = 0.05  # MMD test level
    smoothing: float = 0.5
    trigger_on: str = "js"  # 'js' (the paper's rule), 'mmd', or 'either'
    n_permutations: int = 1000
    seed: int = 0

    def __post_init__(self):
        if self.trigger_on not in TRIGGERS:
            raise ValueError(f"trigger_on = {self.trigger_on!r}; choose one of {list(TRIGGERS)}")

    def check(self, labels: np.ndarray, vectors: np.ndarray) -> dict:
        js = js_divergence(occupancy(self.reference_labels, self.k, self.smoothing),
                           occupancy(labels, self.k, self.smoothing))
        mmd = mmd_permutation_test(self.reference_vectors, vectors, self.n_permutations, self.seed)
        fired = {"js": js > self.delta, "mmd": mmd.p_value < self.alpha}
        trigger = fired["js"] or fired["mmd"] if self.trigger_on == "either" else fired[self.trigger_on]
        return {"js": js, "mmd": mmd.statistic, "p_value": mmd.p_value, "js_fired": fired["js"],
                "mmd_fired": fired["mmd"], "trigger": bool(trigger)}
