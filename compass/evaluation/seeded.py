"""Statistics over items *and* training seeds: the tables of :mod:`compass.evaluation.stats` for
scores that are (seeds x items) per method.

Why: an adapter is one draw of its training run (LoRA initialisation, batch order, dropout). A
difference between two methods measured with one seed each mixes the methods' effect with the
luck of two draws, which no resampling of items can see.

What the interval covers: the sampling of the test items and the randomness of training seeds,
for this run's data split and selected training data. Both are fixed per run, so their
variation is not in it.

The model. The per-(seed, item) differences D[r, i] = x[r, i] - ref[r, i] are paired by item and
by seed index (seed r of every method is trained with ``seed + r``: the same LoRA
initialisation and batch-order generator) and read as a crossed two-way random-effects model
without replication, D = mu + a_r + b_i + e_ri (seed luck, an item's own difference, noise).
With the two-way mean squares MS_seed (S - 1 df), MS_item (I - 1 df), MS_err ((S - 1)(I - 1)
df) and n = S I, Var(mean D) = sa^2 / S + sb^2 / I + se^2 / n is estimated without bias by
(MS_seed + MS_item - MS_err) / n, with a t interval on Satterthwaite's df. With 3 seeds MS_seed
has 2 df, and two changes to that recipe keep the test's size:

1. Only the item term (MS_item - MS_err) is dropped where negative, never the seed term, so the
   variance is never below MS_seed / n, that of the t test on the seed means. MS_seed < MS_err
   happens in a quarter of runs even where seed luck holds 70% of the variance; falling back to
   the item-only estimate (I - 1 df) there rejected a true null in 7% of runs.
2. p is the larger of this p and that of the t test on the seed means (MS_seed / n, S - 1 df;
   exact where the items' own differences are absent), and the interval is the wider of the two.
   Where MS_seed is small by chance, Satterthwaite's df come out large exactly when the
   statistic is large: alone, the mixed-model test rejected a true null in up to 7.7% of runs
   (seed luck 90% of the variance).

One method's mean (``summary``) uses the same on its scores. One seed is exactly the paired t
test over items; one item, the t test over seeds. A method with one seed (zero-shot: no training,
no seed luck) is compared at every seed index of the other. Two methods with different numbers of
seeds (both > 1) cannot be paired by seed: each adds its own seed term MS_seed / (S I) (the
variance of its seed means over S), the item term is the variance of the per-item differences of
the seed means over I less each method's MS_err / (S I), and Welch's test on the two methods'
seed means takes the place of the seed-mean t test.

Measured size and power (tests/test_seeded.py, :func:`size_and_power`): rejections of a true
null at p < 0.05 with 3 seeds. Seed luck shifting every item alike, 40 items: 5.1% (the earlier
two-level bootstrap, resampling 3 seeds as if they were many: 12.3%; an item-only t test on the
seed means: 91%). The items' own differences dominating: 5.9% at 20 items (the exact paired t test
on the same draws: 6.0%), 5.1% at 80 (bootstrap: 8.1%, 5.2%). One method's 6 seeds labelled 3
and 3: 4.8% (bootstrap: 12.4%). Over a grid of the
shares of the variance held by seed luck, items and noise (20,000 runs each): at most 5.1% with 3
seeds (5.2% with 2, 5.4% with 5), and conservative, down to 2.7% at 80 items (1.7% at 10), where
noise (seed x item) holds half the variance or more. Power at 3 seeds x 40 items, seed SD 0.3 per
method, noise 0.1: a difference of 5 seed SDs is found in 86% of runs, 3 SDs in 52%, 0.5 SD in
6%. With 3 seeds only differences several times the seed luck can be told apart from it. With
the items' own differences dominating (SD 0.5 per method), a difference of 0.6 of their SD is
found in 72%. ``seeds_better`` shows the raw evidence too: in how many seed indices the method
beats the baseline on mean.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import special as _sp
from scipy import stats as _st

from compass.evaluation import stats


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


def _mean_squares(d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(grand mean, MS_seed, MS_item, MS_err) of (..., seeds, items) scores: the two-way ANOVA
    without replication over the last two axes; a mean square with no df is NaN."""
    n_seeds, n_items = d.shape[-2:]
    grand = d.mean(axis=(-2, -1), keepdims=True)
    seed_dev = d.mean(axis=-1, keepdims=True) - grand
    item_dev = d.mean(axis=-2, keepdims=True) - grand
    resid = d - grand - seed_dev - item_dev
    with np.errstate(invalid="ignore", divide="ignore"):
        ms_seed = n_items * np.sum(seed_dev ** 2, axis=(-2, -1)) / (n_seeds - 1)
        ms_item = n_seeds * np.sum(item_dev ** 2, axis=(-2, -1)) / (n_items - 1)
        ms_err = np.sum(resid ** 2, axis=(-2, -1)) / ((n_seeds - 1) * (n_items - 1))
    return grand[..., 0, 0], ms_seed, ms_item, ms_err


def _satterthwaite(terms) -> tuple[np.ndarray, np.ndarray]:
    """(variance, df) of a sum of signed mean-square terms (value, df), each a scaled
    chi-square / df: df = V^2 / sum(value^2 / df) (a zero term adds nothing)."""
    var = sum(value for value, _ in terms)
    with np.errstate(invalid="ignore", divide="ignore"):
        return var, var ** 2 / sum(value ** 2 / df for value, df in terms)


def _stack(mixed, seeds_only) -> tuple[np.ndarray, np.ndarray]:
    """(var, df) of the two views, stacked on a last axis of 2."""
    return (np.stack(np.broadcast_arrays(mixed[0], seeds_only[0]), axis=-1),
            np.stack(np.broadcast_arrays(mixed[1], seeds_only[1]), axis=-1))


def _paired_views(d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, var, df) of (..., seeds, items) scores in the two views (last axis): the mixed
    model, MS_seed / n + (MS_item - MS_err) / n with the item term dropped where negative, with
    Satterthwaite's df; and the seed means alone, MS_seed / n with S - 1 df. One seed: the
    paired t over items in both; one item: the t over seeds."""
    n_seeds, n_items = d.shape[-2:]
    mean, ms_seed, ms_item, ms_err = _mean_squares(d)
    n = n_seeds * n_items
    if n_seeds == 1:  # the paired t over items (NaN with one item too)
        return (mean, *_stack((ms_item / n, n_items - 1.0), (ms_item / n, n_items - 1.0)))
    if n_items == 1:  # the t over seeds
        return (mean, *_stack((ms_seed / n, n_seeds - 1.0), (ms_seed / n, n_seeds - 1.0)))
    items = ms_item > ms_err
    seeds = (ms_seed / n, n_seeds - 1.0)
    mixed = _satterthwaite([seeds, (np.where(items, ms_item / n, 0.0), n_items - 1.0),
                            (np.where(items, -ms_err / n, 0.0), (n_seeds - 1.0) * (n_items - 1))])
    return (mean, *_stack(mixed, seeds))


def _unpaired_views(x: np.ndarray, ref: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(mean, var, df) of mean(x) - mean(ref) whose seeds cannot be paired by index (different
    counts, both > 1), the views of :func:`_paired_views`: each method's MS_seed / (S I) (the
    variance of its seed means over S) plus the item term, the variance of the per-item
    differences of the seed means over I less each method's MS_err / (S I), dropped where
    negative; the seeds alone are Welch's test on the seed means."""
    n_items = x.shape[1]
    per_item = x.mean(axis=0) - ref.mean(axis=0)
    seeds, noise = [], []
    for scores in (x, ref):
        _, ms_seed, _, ms_err = _mean_squares(scores)
        seeds.append((ms_seed / scores.size, scores.shape[0] - 1.0))
        noise.append((-ms_err / scores.size, (scores.shape[0] - 1.0) * (n_items - 1)))
    mixed = seeds
    if n_items > 1:
        item = (np.var(per_item, ddof=1) / n_items, n_items - 1.0)
        if item[0] + sum(v for v, _ in noise) > 0:
            mixed = [*seeds, item, *noise]
    return (float(per_item.mean()), *_stack(_satterthwaite(mixed), _satterthwaite(seeds)))


def _views(x: np.ndarray, ref: np.ndarray | None):
    """(mean, var, df) of mean(x) - mean(ref), or of mean(x) without ``ref``."""
    if ref is None:
        return _paired_views(x)
    if ref.shape[1] != x.shape[1]:
        raise ValueError(f"paired scores must cover the same items: {x.shape[1]} vs {ref.shape[1]}")
    if x.shape[0] == ref.shape[0] or 1 in (x.shape[0], ref.shape[0]):
        return _paired_views(x - ref)  # a one-seed method broadcasts over the seed indices
    return _unpaired_views(x, ref)


def _t_views(mean, var, df, level):
    """(half-width, p) over the views: the widest t interval at two-sided ``level`` and the
    largest two-sided p for mean == 0. A view with zero variance: half-width 0, p 0 (1 for a
    zero mean)."""
    mean = np.asarray(mean)[..., None]
    spread = var > 0
    se = np.sqrt(np.where(spread, var, 1.0))
    half = np.where(spread, -_sp.stdtrit(df, level / 2) * se, 0.0)
    p = np.where(spread, 2 * _sp.stdtr(df, -np.abs(mean) / se), np.where(mean == 0, 1.0, 0.0))
    return half.max(axis=-1), p.max(axis=-1)


def interval(x, ref=None, *, confidence: float = 0.95, n_resamples: int = 10_000,
             seed=0) -> tuple[float, float, float]:
    """(low, high, p): the interval of mean(x) - mean(ref) over items and seeds (of mean(x)
    without ``ref``) and its two-sided p for a difference of zero (NaN without ``ref``).
    ``n_resamples`` and ``seed`` are accepted for callers of the former bootstrap; nothing is
    drawn."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    x = as_seeds_by_items(x, "x")
    r = None if ref is None else as_seeds_by_items(ref, "ref")
    mean, var, df = _views(x, r)
    if np.isnan(var).any():  # one seed and one item: no variance to estimate
        return math.nan, math.nan, math.nan
    scale = max(float(np.abs(x).max()), 0.0 if r is None else float(np.abs(r).max()))
    var = np.where(np.sqrt(np.maximum(var, 0.0)) <= 64 * np.finfo(float).eps * scale, 0.0, var)
    half, p = _t_views(float(mean), var, df, 1 - confidence)
    mean, half = float(mean), float(half)
    return mean - half, mean + half, (float(p) if r is not None else math.nan)


def _rejections(x: np.ndarray, ref: np.ndarray, alpha: float) -> np.ndarray:
    """Whether each of (sims, seeds, items) pairs of runs rejects a zero difference at ``alpha``
    (as :func:`interval` does, vectorised)."""
    mean, var, df = _paired_views(x - ref)
    return _t_views(mean, var, df, alpha)[1] < alpha


def _runs(rng, sims, n_seeds, n_items, seed_sd, item_sd, noise_sd) -> np.ndarray:
    """One method's (sims, seeds, items) scores: its seed luck shifts every item alike, its own
    item effects (item difficulty shared by all methods cancels in the pairing), noise."""
    return (rng.normal(scale=seed_sd, size=(sims, n_seeds, 1))
            + rng.normal(scale=item_sd, size=(sims, 1, n_items))
            + rng.normal(scale=noise_sd, size=(sims, n_seeds, n_items)))


def size_and_power(n_seeds: int, n_items: int, *, effect: float, seed_sd: float,
                   item_sd: float, noise_sd: float, simulations: int = 1000,
                   alpha: float = 0.05, confidence: float = 0.95, seed=0) -> dict:
    """How often :func:`interval`'s test rejects at ``alpha`` where two methods do not differ
    (false_positive_rate, with its Clopper-Pearson ``confidence`` interval) and where one is
    better by ``effect`` (power), over ``simulations`` pairs of runs: each method with its own
    seed luck (SD ``seed_sd``), item effects (``item_sd``) and noise (``noise_sd``). Why: the
    book prints what a test of this shape can and cannot see. Deterministic given ``seed``."""
    if simulations < 1:
        raise ValueError(f"simulations must be >= 1, got {simulations}")
    rng = np.random.default_rng(seed)
    shape = (simulations, n_seeds, n_items, seed_sd, item_sd, noise_sd)
    null = _rejections(_runs(rng, *shape), _runs(rng, *shape), alpha)
    planted = _rejections(_runs(rng, *shape) + effect, _runs(rng, *shape), alpha)
    hits, tail = int(null.sum()), (1 - confidence) / 2
    low = _st.beta.ppf(tail, hits, simulations - hits + 1) if hits > 0 else 0.0
    high = _st.beta.ppf(1 - tail, hits + 1, simulations - hits) if hits < simulations else 1.0
    return {"false_positive_rate": hits / simulations, "fp_ci_low": float(low),
            "fp_ci_high": float(high), "power": float(planted.mean()), "simulations": simulations}


def variance_components(scores) -> dict:
    """Seed, item and residual SDs of one method's (seeds, items) scores (two-way ANOVA, negative
    estimates at 0): the shape :func:`size_and_power` simulates, as this run measured it."""
    x = as_seeds_by_items(scores, "scores")
    if x.shape[0] < 2 or x.shape[1] < 2:
        raise ValueError(f"variance components need at least 2 seeds and 2 items, got {x.shape}")
    _, ms_seed, ms_item, ms_err = _mean_squares(x)
    n_seeds, n_items = x.shape
    return {"seed_sd": float(np.sqrt(max(0.0, (ms_seed - ms_err) / n_items))),
            "item_sd": float(np.sqrt(max(0.0, (ms_item - ms_err) / n_seeds))),
            "noise_sd": float(np.sqrt(ms_err))}


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
    :func:`stats.compare_to_baselines` (p from the items x seeds t test, Holm over the
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
