"""Paired statistics for comparing methods on the same evaluation items.

Every method is scored on the *same* multiple-choice items, so comparisons are paired: the item is
the unit of resampling, and per-item differences carry the signal (item difficulty cancels out).

- ``paired_permutation_test``: random (or, for few informative items, all) sign flips of the
  per-item differences; the null is "method labels are exchangeable within each item".
- ``cohens_d_paired`` (d_z) and ``cohens_d`` (pooled SD): effect sizes; the paper's d = 0.52-0.64
  does not say which variant, so both are offered and named.
- ``bootstrap_ci`` / ``paired_bootstrap_ci``: percentile or BCa intervals via
  ``scipy.stats.bootstrap``, with constant samples answered exactly instead of NaN.
- ``holm_bonferroni``, ``accuracy_summary``, ``compare_to_baselines``: the tables a results section
  needs (accuracy with CI; gain over a reference in percentage points with CI, p and d_z; Holm-
  adjusted p-values when one method is compared with several baselines). A ``Metric`` names the
  score and its differences: ``ACCURACY`` (the default: a fraction, gains in percentage points)
  or ``MEAN_LOSS`` (a per-item loss such as NLL, lower is better, changes in its own unit).

Everything is deterministic given ``seed`` (an int, a ``SeedSequence`` or a
``numpy.random.Generator``; ``None`` draws fresh OS entropy).
"""
from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats as _st

SeedLike = int | np.random.Generator | np.random.SeedSequence | None

ALTERNATIVES = ("two-sided", "greater", "less")
CI_METHODS = ("percentile", "bca", "basic")
#: Largest number of non-zero paired differences whose 2^m sign patterns are enumerated exactly.
MAX_EXACT_ITEMS = 20
# Elements (resamples x items) processed per vectorised batch; bounds memory to tens of MB.
_BATCH_ELEMENTS = 1 << 21


@dataclass(frozen=True)
class Metric:
    """How the tables name a per-item score and the difference of two methods' means.

    The tests and intervals are the same for any score; only the names, the unit of differences
    and which direction is better change. ``alternative="better"`` in the tables tests that
    direction ("greater" when higher is better, else "less").
    """

    name: str = "accuracy"  # column of a method's mean score (and ``baseline_<name>``)
    difference: str = "gain"  # column of mean(method) - mean(reference), and its CI's prefix
    unit: str = "_pp"  # suffix of the difference columns
    scale: float = 100.0  # score units -> difference units (100: fractions -> percentage points)
    higher_is_better: bool = True

    @property
    def difference_columns(self) -> tuple[str, str, str]:
        """The difference column and its interval's two columns, e.g. ``gain_pp``,
        ``gain_ci_low_pp``."""
        d, u = self.difference, self.unit
        return f"{d}{u}", f"{d}_ci_low{u}", f"{d}_ci_high{u}"

    @property
    def summary_columns(self) -> tuple[str, ...]:
        """Columns of one method's summary: item count, mean score and its interval."""
        return ("n", self.name, "ci_low", "ci_high")

    @property
    def gain_columns(self) -> tuple[str, ...]:
        """Columns of a gain over zero-shot: the difference with its interval, p-value and effect
        size."""
        return (*self.difference_columns, "p_value", "cohens_dz")

    @property
    def baseline_columns(self) -> tuple[str, ...]:
        """Columns of a comparison with a baseline method, with the Holm-adjusted p-value and
        verdict."""
        return ("n", self.name, f"baseline_{self.name}", *self.difference_columns, "p_value",
                "p_holm", "significant", "cohens_dz")

    def alternative(self, alternative: str) -> str:
        """``alternative`` for the test of mean(a - b), "better" resolved by the direction."""
        if alternative == "better":
            return "greater" if self.higher_is_better else "less"
        return _check_alternative(alternative)


#: 0/1 correctness: mean = accuracy, differences in percentage points, higher is better.
ACCURACY = Metric()
#: A per-item loss (NLL in nats per token, bits per character): mean and change in its own unit,
#: lower is better (a negative change is an improvement).
MEAN_LOSS = Metric(name="mean", difference="change", unit="", scale=1.0, higher_is_better=False)

SUMMARY_COLUMNS = ACCURACY.summary_columns
GAIN_COLUMNS = ACCURACY.gain_columns
BASELINE_COLUMNS = ACCURACY.baseline_columns


# --------------------------------------------------------------------------------------------
# validation


def _scores(x: ArrayLike, name: str) -> np.ndarray:
    """1-D finite float array; bools (correct/incorrect) become 0/1."""
    arr = np.asarray(x, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D per-item scores, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: need at least one scored item")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(f"{name} has {int(bad.sum())} non-finite value(s) (NaN/inf), "
                         f"first at index {int(np.flatnonzero(bad)[0])}")
    return arr


def _paired(a: ArrayLike, b: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate two per-item score vectors of the same items (same length, same order)."""
    x, y = _scores(a, "a"), _scores(b, "b")
    if x.size != y.size:
        raise ValueError(f"paired scores must cover the same items: len(a)={x.size} "
                         f"but len(b)={y.size}")
    return x, y


def _constant_difference(x: np.ndarray, y: np.ndarray) -> bool:
    """Whether x - y is constant up to the rounding of the subtraction itself.

    0.3 - 0.8 and 0.2 - 0.7 differ in the last bit; a shift like that is still "zero spread".
    """
    diff = x - y
    scale = max(float(np.max(np.abs(x))), float(np.max(np.abs(y))))
    return float(np.ptp(diff)) <= 8 * np.finfo(float).eps * scale


def _check_alternative(alternative: str) -> str:
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")
    return alternative


def _check_confidence(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    return float(confidence)


def _check_positive_int(value: int, name: str) -> int:
    if int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value}")
    return int(value)


# --------------------------------------------------------------------------------------------
# permutation test


@dataclass(frozen=True)
class PermutationResult:
    """Outcome of ``paired_permutation_test``.

    ``statistic`` is mean(a - b) over all items; ``n_permutations`` the number of sign patterns
    the p-value is based on (drawn at random, or 2^m enumerated when ``exact``, m = items whose
    difference is non-zero); ``n_items`` the number of paired items.
    """

    statistic: float
    p_value: float
    n_permutations: int
    n_items: int
    alternative: str = "two-sided"
    exact: bool = False


def _count_extreme(null_sums: np.ndarray, observed: float, tol: float, alternative: str) -> int:
    """How many null sums are at least as extreme as the observed one (with a float tolerance)."""
    if alternative == "greater":
        return int(np.count_nonzero(null_sums >= observed - tol))
    if alternative == "less":
        return int(np.count_nonzero(null_sums <= observed + tol))
    return int(np.count_nonzero(np.abs(null_sums) >= abs(observed) - tol))


def _all_sign_sums(d: np.ndarray) -> np.ndarray:
    """sum(s_i * d_i) for all 2^m sign vectors s, by doubling (O(2^m) memory, m numpy steps)."""
    sums = np.zeros(1)
    for value in d:
        sums = np.concatenate((sums + value, sums - value))
    return sums


def paired_permutation_test(a: ArrayLike, b: ArrayLike, n_permutations: int = 10_000,
                            seed: SeedLike = 0, alternative: str = "two-sided",
                            exact: bool | None = None) -> PermutationResult:
    """Sign-flip permutation test of mean(a - b) for two methods scored on the same items.

    Why sign flips: under H0 the two methods' scores on an item are exchangeable, so each
    per-item difference is equally likely to have either sign. The test statistic is the mean
    difference (equivalently its sum, which is what is compared, so 0/1 data stay exact).
    ``alternative="greater"`` tests mean(a - b) > 0, ``"less"`` < 0, ``"two-sided"`` uses
    |mean| (for this symmetric null that equals scipy's 2*min(one-sided p), capped at 1).

    p-value conventions:

    - Monte Carlo (``exact=False``): p = (count + 1) / (n_permutations + 1), counting the random
      sign patterns at least as extreme as the observed one. The +1 counts the observed pattern
      itself (Phipson & Smyth 2010): the p-value is a valid (slightly conservative) p-value and
      is never exactly 0; its floor is 1 / (n_permutations + 1).
    - Exact (``exact=True``): p = count / 2^m over *all* sign patterns of the m non-zero
      differences, with no +1 correction (the observed pattern is already among those
      enumerated, so p >= 2^-m > 0). Items whose difference is 0 are left out of the enumeration
      because flipping them changes nothing; the p-value is identical to enumerating all
      2^n_items patterns. Requires m <= ``MAX_EXACT_ITEMS`` (20), which always holds when
      n_items <= 20.
    - ``exact=None`` (default): exact whenever m <= 20 (cheaper and better than sampling),
      otherwise Monte Carlo.

    When every difference is 0 the observed statistic is the only value the null can take and
    p = 1. Deterministic given ``seed`` (int, SeedSequence or Generator).
    """
    x, y = _paired(a, b)
    _check_alternative(alternative)
    n_permutations = _check_positive_int(n_permutations, "n_permutations")
    diff = x - y
    n_items = diff.size
    statistic = float(np.mean(diff))
    d = diff[diff != 0]
    m = d.size
    if exact is None:
        exact = m <= MAX_EXACT_ITEMS
    elif exact and m > MAX_EXACT_ITEMS:
        raise ValueError(f"exact=True enumerates 2^m sign patterns of the m non-zero differences; "
                         f"m={m} exceeds MAX_EXACT_ITEMS={MAX_EXACT_ITEMS} (n_items={n_items}). "
                         "Use exact=False (Monte Carlo) instead.")
    observed = float(d.sum())
    # Sums over m terms can round differently per sign pattern; treat values this close as ties.
    tol = 1e-10 * float(np.abs(d).sum())

    if exact:
        null_sums = _all_sign_sums(d)
        count = _count_extreme(null_sums, observed, tol, alternative)
        p = count / null_sums.size
        return PermutationResult(statistic, float(min(p, 1.0)), int(null_sums.size), n_items,
                                 alternative, True)

    if m == 0:  # every sign pattern gives 0 == observed
        return PermutationResult(statistic, 1.0, n_permutations, n_items, alternative, False)
    rng = np.random.default_rng(seed)
    batch = max(1, min(n_permutations, _BATCH_ELEMENTS // m))
    count = 0
    for start in range(0, n_permutations, batch):
        size = min(batch, n_permutations - start)
        flips = rng.integers(0, 2, size=(size, m), dtype=bool)
        null_sums = observed - 2.0 * (flips @ d)
        count += _count_extreme(null_sums, observed, tol, alternative)
    p = (count + 1) / (n_permutations + 1)
    return PermutationResult(statistic, float(min(p, 1.0)), n_permutations, n_items,
                             alternative, False)


# --------------------------------------------------------------------------------------------
# effect sizes


def _standardised(mean_diff: float, sd: float, degenerate: bool) -> float:
    """mean/sd, with zero spread answered as 0 (no difference) or +-inf (a constant shift)."""
    if degenerate:
        return 0.0 if mean_diff == 0 else math.copysign(math.inf, mean_diff)
    return float(mean_diff / sd)


def cohens_d_paired(a: ArrayLike, b: ArrayLike) -> float:
    """Paired Cohen's d_z = mean(a - b) / sd(a - b, ddof=1), for two methods on the same items.

    Why d_z: it standardises by the spread of the per-item *differences*, i.e. the quantity the
    paired test is about; it equals the paired t statistic divided by sqrt(n). The paper reports
    Cohen's d = 0.52-0.64 without naming the variant; d_z is not comparable to a pooled-SD d
    (``cohens_d``), which ignores the pairing: with equal variances d_z = d / sqrt(2 (1 - r)),
    so d_z > d whenever the two methods' per-item scores correlate above r = 0.5 (common when
    both adapt the same base model).

    Zero variance of the differences (all equal, up to the rounding of a - b): returns 0.0 if
    the mean difference is 0, otherwise +inf / -inf (a perfectly consistent shift). Needs at
    least two items.
    """
    x, y = _paired(a, b)
    if x.size < 2:
        raise ValueError(f"cohens_d_paired needs at least 2 items for a ddof=1 SD, got {x.size}")
    diff = x - y
    return _standardised(float(np.mean(diff)), float(np.std(diff, ddof=1)),
                         _constant_difference(x, y))


def cohens_d(a: ArrayLike, b: ArrayLike) -> float:
    """Cohen's d for independent samples: (mean(a) - mean(b)) / pooled SD (ddof=1 per group).

    pooled SD = sqrt(((n_a - 1) var_a + (n_b - 1) var_b) / (n_a + n_b - 2)); the textbook d,
    offered because the paper does not say which d it reports. For scores of two methods on the
    same items prefer ``cohens_d_paired``. Lengths may differ. Zero pooled variance: 0.0 if the
    means are equal, otherwise +inf / -inf.
    """
    x, y = _scores(a, "a"), _scores(b, "b")
    if x.size + y.size < 3:
        raise ValueError(f"cohens_d needs n_a + n_b >= 3 for a pooled SD, got len(a)={x.size}, "
                         f"len(b)={y.size}")
    ss = float(np.sum((x - x.mean()) ** 2) + np.sum((y - y.mean()) ** 2))
    degenerate = bool(np.all(x == x[0]) and np.all(y == y[0]))
    pooled = math.sqrt(ss / (x.size + y.size - 2))
    return _standardised(float(x.mean() - y.mean()), pooled, degenerate)


# --------------------------------------------------------------------------------------------
# bootstrap


def _takes_axis(statistic: Callable) -> bool:
    try:
        return "axis" in inspect.signature(statistic).parameters
    except (TypeError, ValueError):  # builtins without an introspectable signature
        return False


def _bootstrap(sample: np.ndarray, statistic: Callable, confidence: float, n_resamples: int,
               seed: SeedLike, method: str, constant: bool | None = None) -> tuple[float, float]:
    """scipy.stats.bootstrap on one sample, with constant samples and BCa failures handled."""
    confidence = _check_confidence(confidence)
    n_resamples = _check_positive_int(n_resamples, "n_resamples")
    method = method.lower()
    if method not in CI_METHODS:
        raise ValueError(f"method must be one of {CI_METHODS}, got {method!r}")
    if constant is None:
        constant = bool(np.all(sample == sample[0]))
    if constant:
        # Every resample equals the sample: the interval collapses to the point (scipy would give
        # NaN plus a DegenerateDataWarning for BCa, and refuses n=1 altogether).
        v = float(statistic(sample))
        return v, v
    kwargs = dict(n_resamples=n_resamples, confidence_level=confidence,
                  vectorized=_takes_axis(statistic),
                  batch=max(1, _BATCH_ELEMENTS // sample.size), rng=np.random.default_rng(seed))
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", _st.DegenerateDataWarning)  # handled just below
        res = _st.bootstrap((sample,), statistic, method=method, **kwargs)
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if method == "bca" and not (np.isfinite(low) and np.isfinite(high)):
        # BCa's bias correction is undefined when the bootstrap distribution is (nearly)
        # degenerate; reuse the same resamples for a percentile interval rather than return NaN.
        warnings.warn("BCa interval undefined for this sample (degenerate bootstrap "
                      "distribution); returning the percentile interval", RuntimeWarning,
                      stacklevel=3)
        kwargs.update(n_resamples=0)
        res = _st.bootstrap((sample,), statistic, method="percentile", bootstrap_result=res,
                            **kwargs)
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return low, high


def bootstrap_ci(values: ArrayLike, statistic: Callable = np.mean, confidence: float = 0.95,
                 n_resamples: int = 10_000, seed: SeedLike = 0,
                 method: str = "percentile") -> tuple[float, float]:
    """Two-sided bootstrap CI of ``statistic`` (default: mean accuracy) of one sample.

    Why: accuracy on a finite item set is an estimate; resampling items shows how much it would
    move on another draw of items. A thin wrapper over ``scipy.stats.bootstrap`` (note scipy's
    default method is BCa; here it is ``"percentile"``, with ``"bca"`` and ``"basic"`` also
    accepted). A statistic taking ``axis=`` is called vectorised. A constant sample returns
    (v, v), v = statistic(values), instead of NaN/warnings. If BCa is undefined for a
    non-constant sample, the percentile interval of the same resamples is returned with a
    RuntimeWarning. Deterministic given ``seed``.
    """
    return _bootstrap(_scores(values, "values"), statistic, confidence, n_resamples, seed, method)


def paired_bootstrap_ci(a: ArrayLike, b: ArrayLike, confidence: float = 0.95,
                        n_resamples: int = 10_000, seed: SeedLike = 0,
                        method: str = "percentile") -> tuple[float, float]:
    """Two-sided bootstrap CI of mean(a - b) for two methods scored on the same items.

    Why paired: items are resampled together for both methods, so item difficulty, shared by
    both, does not widen the interval. Resampling the differences a - b is exactly what
    ``scipy.stats.bootstrap((a, b), ..., paired=True)`` does (same indices, same result) at half
    the memory. All differences equal (up to the rounding of a - b) -> (v, v), v = mean(a - b).
    """
    x, y = _paired(a, b)
    return _bootstrap(x - y, np.mean, confidence, n_resamples, seed, method,
                      constant=_constant_difference(x, y))


# --------------------------------------------------------------------------------------------
# multiple comparisons and tables


def holm_bonferroni(p_values: ArrayLike) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control), in the input order.

    Why Holm: comparing one method with several baselines is a family of tests; Holm controls
    the family-wise error rate like Bonferroni but is uniformly more powerful. (scipy's
    ``false_discovery_control`` is Benjamini-Hochberg, a different, FDR guarantee.)
    With p sorted ascending, adj_(i) = max_{j<=i} min(1, (m - j) p_(j)) for j = 0..m-1.
    """
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"p_values must be 1-D, got shape {p.shape}")
    if p.size and (not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1):
        raise ValueError("p_values must be finite and within [0, 1]")
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted_sorted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    return adjusted


def _gain_row(x: np.ndarray, ref: np.ndarray, confidence: float, n_resamples: int,
              n_permutations: int, seed: SeedLike, method: str, alternative: str,
              metric: Metric = ACCURACY) -> dict:
    """mean(x) - mean(ref) in the metric's unit (accuracy: percentage points), its paired CI,
    permutation p and d_z."""
    low, high = paired_bootstrap_ci(x, ref, confidence, n_resamples, seed, method)
    test = paired_permutation_test(x, ref, n_permutations, seed, metric.alternative(alternative))
    dz = cohens_d_paired(x, ref) if x.size >= 2 else math.nan
    diff, diff_low, diff_high = metric.difference_columns
    return {diff: metric.scale * test.statistic, diff_low: metric.scale * low,
            diff_high: metric.scale * high, "p_value": test.p_value, "cohens_dz": dz}


def _scored_methods(correct: Mapping[str, ArrayLike]) -> dict[str, np.ndarray]:
    if not correct:
        raise ValueError("correct is empty: need per-item correctness for at least one method")
    return {str(name): _scores(v, f"correct[{name!r}]") for name, v in correct.items()}


def _same_items(scored: Mapping[str, np.ndarray], names: Sequence[str], ref: str) -> None:
    for name in names:
        if scored[name].size != scored[ref].size:
            raise ValueError(f"methods must be scored on the same items: len({name!r})="
                             f"{scored[name].size} but len({ref!r})={scored[ref].size}")


def accuracy_summary(correct: Mapping[str, ArrayLike], reference: str | None = None, *,
                     confidence: float = 0.95, n_resamples: int = 10_000,
                     n_permutations: int = 10_000, seed: SeedLike = 0,
                     method: str = "percentile", alternative: str = "two-sided",
                     metric: Metric = ACCURACY) -> pd.DataFrame:
    """One row per method (index ``method``, input order): n, accuracy, ci_low, ci_high.

    ``correct`` maps method name -> per-item correctness (0/1 or bool; per-item scores work too)
    on the same items in the same order. Accuracy and its bootstrap CI are fractions in [0, 1].
    With ``reference`` (e.g. ``"zero_shot"``) the columns gain_pp, gain_ci_low_pp,
    gain_ci_high_pp (accuracy - reference accuracy in percentage points, paired bootstrap CI),
    p_value (paired permutation test vs the reference) and cohens_dz are added; they are NaN in
    the reference's own row. p-values here are unadjusted (see ``compare_to_baselines``).
    An int ``seed`` seeds every resampling call afresh, so each row is reproducible on its own
    (and rows share resampling indices); a Generator is consumed row by row, in input order.
    ``metric`` renames the columns for other scores (``MEAN_LOSS``: mean, change, change_ci_low,
    change_ci_high in the score's unit); ``alternative="better"`` tests the metric's direction.
    """
    metric.alternative(alternative)
    scored = _scored_methods(correct)
    if reference is not None:
        if reference not in scored:
            raise KeyError(f"reference {reference!r} not among methods {list(scored)}")
        _same_items(scored, list(scored), reference)
    rows = []
    for name, x in scored.items():
        low, high = bootstrap_ci(x, np.mean, confidence, n_resamples, seed, method)
        row = {"method": name, "n": int(x.size), metric.name: float(x.mean()),
               "ci_low": low, "ci_high": high}
        if reference is not None:
            if name == reference:
                row.update(dict.fromkeys(metric.gain_columns, math.nan))
            else:
                row.update(_gain_row(x, scored[reference], confidence, n_resamples,
                                     n_permutations, seed, method, alternative, metric))
        rows.append(row)
    columns = list(metric.summary_columns) + (list(metric.gain_columns) if reference is not None
                                              else [])
    return pd.DataFrame(rows).set_index("method")[columns]


def compare_to_baselines(correct: Mapping[str, ArrayLike], method: str = "compass",
                         baselines: Sequence[str] | None = None, *, alpha: float = 0.05,
                         confidence: float = 0.95, n_resamples: int = 10_000,
                         n_permutations: int = 10_000, seed: SeedLike = 0,
                         ci_method: str = "percentile", alternative: str = "two-sided",
                         metric: Metric = ACCURACY) -> pd.DataFrame:
    """``method`` against each baseline (default: every other key), one row per baseline.

    Columns (index ``baseline``): n, accuracy (of ``method``), baseline_accuracy, gain_pp and its
    paired CI (gain_ci_low_pp, gain_ci_high_pp), p_value (paired permutation test), p_holm
    (Holm-Bonferroni over the listed baselines: one family of comparisons), significant
    (p_holm < alpha) and cohens_dz. Use ``alternative="greater"`` for the one-sided claim
    "``method`` beats each baseline" (or ``"better"``, which follows ``metric``'s direction).
    Seeding and ``metric`` as in ``accuracy_summary`` (``MEAN_LOSS``: mean, baseline_mean,
    change and its CI in the score's unit).
    """
    metric.alternative(alternative)
    scored = _scored_methods(correct)
    if method not in scored:
        raise KeyError(f"method {method!r} not among methods {list(scored)}")
    names = [n for n in scored if n != method] if baselines is None else [str(b) for b in baselines]
    if not names:
        raise ValueError("no baselines to compare against")
    missing = [n for n in names if n not in scored]
    if missing:
        raise KeyError(f"baselines {missing} not among methods {list(scored)}")
    if method in names:
        raise ValueError(f"method {method!r} cannot also be a baseline")
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate baselines in {names}")
    _same_items(scored, names, method)
    x = scored[method]
    rows = []
    for name in names:
        ref = scored[name]
        row = {"baseline": name, "n": int(x.size), metric.name: float(x.mean()),
               f"baseline_{metric.name}": float(ref.mean())}
        row.update(_gain_row(x, ref, confidence, n_resamples, n_permutations, seed, ci_method,
                             alternative, metric))
        rows.append(row)
    frame = pd.DataFrame(rows).set_index("baseline")
    frame["p_holm"] = holm_bonferroni(frame["p_value"].to_numpy())
    frame["significant"] = frame["p_holm"] < alpha
    return frame[list(metric.baseline_columns)]


def rate_ci(fired: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """Share of simulated draws that fired (a control's false-positive rate or power), with its
    Clopper-Pearson (exact binomial) interval."""
    fired = np.asarray(fired, bool)
    ci = _st.binomtest(int(fired.sum()), len(fired)).proportion_ci(confidence, method="exact")
    return float(fired.mean()), float(ci.low), float(ci.high)
