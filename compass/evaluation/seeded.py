"""Statistics over items *and* training seeds: the tables of :mod:`compass.evaluation.stats` for
scores that are (seeds x items) per method.

Why: an adapter is one draw of its training run (LoRA initialisation, batch order, dropout). A
difference between two methods measured with one seed each mixes the methods' effect with the
luck of two draws, which no resampling of items can see. With several seeds per method, the
interval of a mean (or of a difference of means) comes from a two-level bootstrap: each resample
draws the items with replacement (the same items for both methods of a comparison: paired) and,
independently for each method, its seeds with replacement. The two-sided p-value is the
bootstrap's: twice the smaller share of resampled differences on either side of zero (the
interval excludes zero exactly when p < 1 - confidence), so Holm's adjustment applies as for the
item-only tests. d_z is that of the seed-averaged per-item differences.

Few seeds: resampling S seeds understates their variance by the factor (S - 1) / S, so each
method's seed deviations (a seed's scores minus the seeds' mean, per item) are scaled by
sqrt(S / (S - 1)) before resampling. Even so, 3 seeds estimate the seed variance poorly: in a
simulation where seed luck shifts every item alike and the methods do not differ
(tests/test_seeded.py), the test rejects at p < 0.05 in about 13% of runs (an item-only test on
seed means: 92%). Read p-values near 0.05 with that in mind; ``seeds_better`` shows the raw
evidence too: in how many seed indices the method beats the baseline on mean.

One seed per method reduces exactly to a paired item bootstrap (no seed level to resample).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from compass.evaluation import stats

_BATCH = 2000  # bootstrap resamples per vectorised batch (memory: batch x items floats)


def as_seeds_by_items(values, name: str) -> np.ndarray:
    """(seeds, items) finite float array; a 1-D vector is one seed."""
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} must be (seeds, items) scores, got shape {np.shape(values)}")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(f"{name} has {int(bad.sum())} non-finite value(s) (NaN/inf)")
    return arr


def unbiased_seeds(x: np.ndarray) -> np.ndarray:
    """Seed deviations from the seeds' mean scaled by sqrt(S / (S - 1)): resampling the seeds
    then has the seeds' unbiased variance, not (S - 1) / S of it. One seed: unchanged."""
    n_seeds = x.shape[0]
    if n_seeds == 1:
        return x
    mean = x.mean(axis=0, keepdims=True)
    return mean + math.sqrt(n_seeds / (n_seeds - 1)) * (x - mean)


def _seed_weights(rng: np.random.Generator, n_seeds: int, size: int) -> np.ndarray:
    """(size, n_seeds) resampling weights of the seeds (counts / n_seeds); one seed: all ones."""
    if n_seeds == 1:
        return np.ones((size, 1))
    return rng.multinomial(n_seeds, [1.0 / n_seeds] * n_seeds, size=size) / n_seeds


def bootstrap_means(x, ref=None, *, n_resamples: int = 10_000, seed=0) -> np.ndarray:
    """Resampled mean(x) - mean(ref) (or mean(x) without ``ref``): items resampled together for
    both (paired), seeds independently per method. Deterministic given ``seed``."""
    x = unbiased_seeds(as_seeds_by_items(x, "x"))
    r = None if ref is None else unbiased_seeds(as_seeds_by_items(ref, "ref"))
    if r is not None and r.shape[1] != x.shape[1]:
        raise ValueError(f"paired scores must cover the same items: {x.shape[1]} vs {r.shape[1]}")
    n_items = x.shape[1]
    rng = np.random.default_rng(seed)
    out = np.empty(n_resamples)
    for start in range(0, n_resamples, _BATCH):
        size = min(_BATCH, n_resamples - start)
        profile = _seed_weights(rng, x.shape[0], size) @ x  # (size, items): seed-resampled means
        if r is not None:
            profile = profile - _seed_weights(rng, r.shape[0], size) @ r
        items = rng.multinomial(n_items, [1.0 / n_items] * n_items, size=size) / n_items
        out[start:start + size] = np.einsum("bi,bi->b", items, profile)
    return out


def interval(x, ref=None, *, confidence: float = 0.95, n_resamples: int = 10_000,
             seed=0) -> tuple[float, float, float]:
    """(low, high, p): the percentile interval of mean(x) - mean(ref) over items and seeds, and the
    bootstrap's two-sided p-value for a difference of zero (NaN without ``ref``)."""
    draws = bootstrap_means(x, ref, n_resamples=n_resamples, seed=seed)
    tail = (1 - confidence) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    p = math.nan
    if ref is not None:
        below, above = int((draws <= 0).sum()), int((draws >= 0).sum())
        p = min(1.0, 2 * (min(below, above) + 1) / (n_resamples + 1))
    return float(low), float(high), p


def seeds_better(x, ref, higher_is_better: bool) -> str:
    """"k/S": in how many seed indices (seed r of both) x's mean beats ref's ('' if the seed
    counts differ)."""
    x, r = as_seeds_by_items(x, "x"), as_seeds_by_items(ref, "ref")
    if x.shape[0] != r.shape[0]:
        return ""
    diff = x.mean(axis=1) - r.mean(axis=1)
    wins = int((diff > 0).sum() if higher_is_better else (diff < 0).sum())
    return f"{wins}/{len(diff)}"


def _change_row(x: np.ndarray, ref: np.ndarray, metric: stats.Metric, confidence, n_resamples,
                seed) -> dict:
    low, high, p = interval(x, ref, confidence=confidence, n_resamples=n_resamples, seed=seed)
    per_item = x.mean(axis=0) - ref.mean(axis=0)
    dz = stats.cohens_d_paired(x.mean(axis=0), ref.mean(axis=0)) if per_item.size >= 2 else math.nan
    diff, diff_low, diff_high = metric.difference_columns
    return {diff: metric.scale * float(per_item.mean()), diff_low: metric.scale * low,
            diff_high: metric.scale * high, "p_value": p, "cohens_dz": dz}


def summary(scores: Mapping[str, object], reference: str | None = None, *,
            confidence: float = 0.95, n_resamples: int = 10_000, seed=0,
            metric: stats.Metric = stats.MEAN_LOSS) -> pd.DataFrame:
    """One row per method (index ``method``): n (items), seeds, the mean over seeds and items with
    its items x seeds interval, and with ``reference`` the change against it (interval, p, d_z;
    NaN in the reference's row). The columns of :func:`stats.accuracy_summary` plus ``seeds``."""
    scored = {str(k): as_seeds_by_items(v, f"scores[{k!r}]") for k, v in scores.items()}
    if reference is not None and reference not in scored:
        raise KeyError(f"reference {reference!r} not among methods {list(scored)}")
    rows = []
    for name, x in scored.items():
        low, high, _ = interval(x, confidence=confidence, n_resamples=n_resamples, seed=seed)
        row = {"method": name, "n": x.shape[1], "seeds": x.shape[0], metric.name: float(x.mean()),
               "ci_low": low, "ci_high": high}
        if reference is not None:
            if name == reference:
                row.update(dict.fromkeys(metric.gain_columns, math.nan))
            else:
                row.update(_change_row(x, scored[reference], metric, confidence, n_resamples, seed))
        rows.append(row)
    columns = ["n", "seeds", *metric.summary_columns[1:]] + (list(metric.gain_columns)
                                                             if reference is not None else [])
    return pd.DataFrame(rows).set_index("method")[columns]


def compare(scores: Mapping[str, object], method: str = "compass",
            baselines: Sequence[str] | None = None, *, alpha: float = 0.05,
            confidence: float = 0.95, n_resamples: int = 10_000, seed=0,
            metric: stats.Metric = stats.MEAN_LOSS) -> pd.DataFrame:
    """``method`` against each baseline (index ``baseline``): the columns of
    :func:`stats.compare_to_baselines` (p from the items x seeds bootstrap, Holm over the
    baselines) plus ``seeds`` and ``seeds_better``."""
    scored = {str(k): as_seeds_by_items(v, f"scores[{k!r}]") for k, v in scores.items()}
    if method not in scored:
        raise KeyError(f"method {method!r} not among methods {list(scored)}")
    names = [n for n in scored if n != method] if baselines is None else [str(b) for b in baselines]
    missing = [n for n in names if n not in scored]
    if missing or not names:
        raise KeyError(f"baselines {missing or names} not among methods {list(scored)}")
    x = scored[method]
    rows = []
    for name in names:
        ref = scored[name]
        row = {"baseline": name, "n": x.shape[1], "seeds": x.shape[0], metric.name: float(x.mean()),
               f"baseline_{metric.name}": float(ref.mean())}
        row.update(_change_row(x, ref, metric, confidence, n_resamples, seed))
        row["seeds_better"] = seeds_better(x, ref, metric.higher_is_better)
        rows.append(row)
    frame = pd.DataFrame(rows).set_index("baseline")
    frame["p_holm"] = stats.holm_bonferroni(frame["p_value"].to_numpy())
    frame["significant"] = frame["p_holm"] < alpha
    return frame[[*metric.baseline_columns, "seeds", "seeds_better"]]
