"""Drift monitoring: is a window of production inputs still the distribution an adapter was
trained for?

Two detectors per window:
- Jensen-Shannon divergence between the smoothed cluster-occupancy histograms of the reference
  and the window (the paper's trigger: update when JS > delta). ``delta`` is a fixed number (the
  paper's 0.05) or, calibrated, the permutation threshold of this reference and window: the
  (1 - a) quantile of the JS over random splits of their pooled labels into two samples of their
  sizes (:func:`permutation_threshold`), an exact level-a test of "one distribution". (A threshold
  bootstrapped from the reference's shares alone fired 7-11% of the time at a = 5% on real-sized
  windows: a 60-item reference misses rare clusters that later windows then show.);
- an MMD two-sample permutation test on the embeddings (Gaussian kernel, median-heuristic
  bandwidth on the pooled sample, which keeps the permutation test exact).

Why our own MMD: hyppo 0.5.2's `MMD().test` with its default fast approximation returned
p = 1e-11 for two samples of the *same* distribution (60 x 384-d); its permutation mode took 18 s
per test. Here the kernel matrix is computed once and all permutations are one matrix product.
alibi-detect 0.13 would downgrade transformers below 5 and numpy below 2 (tried with pip against
requirements.txt).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

TRIGGERS = ("js", "mmd", "either")
# Total pseudo-count spread evenly over the K bins of an occupancy histogram: no zero bins (JS
# stays finite), and one pseudo-item whatever K. (0.5 per bin added as many pseudo-counts as a
# 60-item window has real ones at K ~ 100 and pulled every histogram toward uniform.)
PSEUDO_COUNT = 1.0


def occupancy(labels: np.ndarray, k: int, pseudo_count: float = PSEUDO_COUNT) -> np.ndarray:
    """Cluster histogram with ``pseudo_count`` spread evenly over the ``k`` bins."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=k).astype(float)
    counts += pseudo_count / k
    return counts / counts.sum()


def occupancies(counts: np.ndarray, pseudo_count: float = PSEUDO_COUNT) -> np.ndarray:
    """Rows of cluster counts -> smoothed occupancy histograms (:func:`occupancy`, row-wise)."""
    counts = np.asarray(counts, float)
    counts = counts + pseudo_count / counts.shape[1]
    return counts / counts.sum(axis=1, keepdims=True)


def js_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Row-wise Jensen-Shannon divergence in bits (:func:`js_divergence`, for many pairs)."""
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log(p / m), 0.0).sum(axis=1)
        kl_q = np.where(q > 0, q * np.log(q / m), 0.0).sum(axis=1)
    return (0.5 * kl_p + 0.5 * kl_q) / np.log(2.0)


def conformal_threshold(null_js: np.ndarray, false_alarm_rate: float) -> float:
    """The ceil((n + 1)(1 - a))-th smallest of n null JS values: P(a new null JS > it) <= a."""
    n = len(null_js)
    rank = math.ceil((n + 1) * (1.0 - false_alarm_rate))
    if rank > n:
        raise ValueError(f"{n} null draws cannot calibrate a false-alarm rate of "
                         f"{false_alarm_rate}: need at least "
                         f"{math.ceil(1 / false_alarm_rate) - 1}")
    return float(np.sort(null_js)[rank - 1])


def permutation_threshold(reference_counts: np.ndarray, window_counts: np.ndarray,
                          false_alarm_rate: float, n_permutations: int,
                          rng: np.random.Generator) -> float:
    """The JS above which the window differs from the reference at level ``false_alarm_rate``:
    the conformal quantile of the JS over ``n_permutations`` random splits of the pooled labels
    into samples of the two sizes (multivariate hypergeometric draws of the pooled counts)."""
    reference_counts = np.asarray(reference_counts, np.int64)
    pooled = reference_counts + np.asarray(window_counts, np.int64)
    ref = rng.multivariate_hypergeometric(pooled, int(reference_counts.sum()), size=n_permutations)
    null = js_rows(occupancies(ref), occupancies(pooled[None, :] - ref))
    # + a rounding margin: a split equal to the observed one gives the same JS up to summation
    # order, and must count as a tie (not exceeded), or the test fires too often (6.5% at 5%)
    return conformal_threshold(null, false_alarm_rate) + 1e-12


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
    """What :func:`mmd_permutation_test` found: the statistic with its permutation p-value, and the
    kernel bandwidth and permutation count that produced them."""
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
    delta: float | None = 0.05  # JS threshold; None: the permutation threshold at false_alarm_rate
    false_alarm_rate: float = 0.05
    alpha: float = 0.05  # MMD test level
    pseudo_count: float = PSEUDO_COUNT
    trigger_on: str = "js"  # 'js' (the paper's rule), 'mmd', or 'either'
    n_permutations: int = 1000
    seed: int = 0

    def __post_init__(self):
        if self.trigger_on not in TRIGGERS:
            raise ValueError(f"trigger_on = {self.trigger_on!r}; choose one of {list(TRIGGERS)}")

    def check(self, labels: np.ndarray, vectors: np.ndarray) -> dict:
        """The window's JS and MMD against the reference, the JS threshold used, and whether
        each detector (and the configured trigger) fired."""
        js = js_divergence(occupancy(self.reference_labels, self.k, self.pseudo_count),
                           occupancy(labels, self.k, self.pseudo_count))
        delta = self.delta
        if delta is None:
            counts = [np.bincount(np.asarray(x, np.int64), minlength=self.k)
                      for x in (self.reference_labels, labels)]
            delta = permutation_threshold(*counts, self.false_alarm_rate, self.n_permutations,
                                          np.random.default_rng([self.seed, 1]))
        mmd = mmd_permutation_test(self.reference_vectors, vectors, self.n_permutations, self.seed)
        fired = {"js": js > delta, "mmd": mmd.p_value < self.alpha}
        trigger = (fired["js"] or fired["mmd"]) if self.trigger_on == "either" \
            else fired[self.trigger_on]
        return {"js": js, "delta": delta, "mmd": mmd.statistic, "p_value": mmd.p_value,
                "js_fired": fired["js"], "mmd_fired": fired["mmd"], "trigger": bool(trigger)}
