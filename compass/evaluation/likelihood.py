"""Held-out likelihood: per-item NLL and bits per character, per method and per gap / covered split.

Each test item's correct choice is the held-out response to its prompt, so ``score_items``'s
``nll`` (nats per token) and ``bpc`` (bits per character) of that choice are the model's loss on
held-out target-language text: a continuous metric that moves where accuracy near chance does not.
The tables mirror the accuracy ones (``stats.accuracy_summary``, ``stats.compare_to_baselines``
with ``stats.MEAN_LOSS``: lower is better, a negative ``change`` is an improvement), overall and
on the test items in COMPASS's gap clusters and in the covered ones (``compass.selection.gaps``).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from compass.evaluation import stats

METRICS = ("nll", "bpc")
SUBSETS = ("all", "gap", "covered")


def answer_only(item: dict) -> dict:
    """A test item reduced to its correct choice: scoring it measures the held-out response's
    likelihood at a quarter of a multiple-choice item's cost (no distractors)."""
    return {**item, "choices": [item["choices"][item["answer"]]], "answer": 0}


def subset_ids(assignment: pd.DataFrame, ids: Sequence[str]) -> dict[str, list[str]]:
    """The ids of each subset (all, gap, covered), sorted, from the test items' assignment
    (columns id, gap). Every id must be assigned: a missing one means the sampling stage's
    assignment is from other test items."""
    ids = sorted(str(i) for i in set(ids))
    gap_of = dict(zip(assignment["id"].astype(str), assignment["gap"].astype(bool)))
    missing = [i for i in ids if i not in gap_of]
    if missing:
        raise KeyError(f"{len(missing)} test item(s) have no cluster assignment "
                       f"(e.g. {missing[:3]}); rerun the sampling stage for this language")
    return {"all": ids, "gap": [i for i in ids if gap_of[i]],
            "covered": [i for i in ids if not gap_of[i]]}


def per_method(predictions: pd.DataFrame, metric: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
    """``metric`` per method on ``ids`` (in that order), methods in order of first appearance:
    a vector per method, or where a ``seed`` column gives a method several seeds a (seeds,
    items) array (seeds in order)."""
    out = {}
    for method in pd.unique(predictions["method"]):
        rows = predictions[predictions["method"] == method]
        if "seed" in rows:
            table = rows.pivot(index="seed", columns="id", values=metric).sort_index()
            table.columns = table.columns.astype(str)
            values = table.loc[:, list(ids)].to_numpy(dtype=float)
            out[str(method)] = values[0] if len(values) == 1 else values  # one seed: a vector
            continue
        rows = rows.set_index("id")
        rows.index = rows.index.astype(str)
        out[str(method)] = rows.loc[list(ids), metric].to_numpy(dtype=float)
    return out


def several_seeds(predictions: pd.DataFrame) -> bool:
    """Whether some method was trained with more than one seed (a ``seed`` column)."""
    return "seed" in predictions and bool((predictions.groupby("method")["seed"].nunique()
                                           > 1).any())


def likelihood_tables(predictions: pd.DataFrame, assignment: pd.DataFrame,
                      reference: str = "zero_shot", method: str = "compass", *,
                      confidence: float = 0.95, n_resamples: int = 10_000,
                      n_permutations: int = 10_000, seed=0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary, versus) for NLL and bpc, on all test items and on the gap and covered ones.

    summary: one row per (metric, subset, method): n, mean with its bootstrap CI, and its change
    against ``reference`` (paired bootstrap CI, permutation p, d_z; NaN in the reference's row).
    versus: ``method`` against every other method per (metric, subset): mean, baseline_mean,
    change (negative: ``method`` has the lower loss), p_value, p_holm (Holm over the baselines
    of one metric and subset) and cohens_dz. Empty when ``method`` was not evaluated. A subset
    without items has no rows. With a ``seed`` column and several seeds per method, the intervals
    and p-values come from the seeds x items model of :mod:`compass.evaluation.seeded` and the
    tables gain ``seeds`` (and ``seeds_better`` in versus)."""
    groups = subset_ids(assignment, predictions["id"])
    if several_seeds(predictions):  # intervals and tests over items and training seeds
        from compass.evaluation import seeded

        kw = dict(confidence=confidence, n_resamples=n_resamples, seed=seed, metric=stats.MEAN_LOSS)
        summarise, compare = seeded.summary, seeded.compare
    else:
        kw = dict(confidence=confidence, n_resamples=n_resamples, n_permutations=n_permutations,
                  seed=seed, metric=stats.MEAN_LOSS)
        summarise, compare = stats.accuracy_summary, stats.compare_to_baselines
    summaries, versus = [], []
    for metric in METRICS:
        for subset in SUBSETS:
            ids = groups[subset]
            if not ids:
                continue
            scores = per_method(predictions, metric, ids)
            ref = reference if reference in scores else None
            labels = {"metric": metric, "subset": subset}
            summaries.append(summarise(scores, reference=ref, **kw).reset_index().assign(**labels))
            if method in scores and len(scores) > 1:
                versus.append(compare(scores, method=method, **kw).reset_index().assign(**labels))
    summary = pd.concat(summaries, ignore_index=True) if summaries else pd.DataFrame()
    versus = pd.concat(versus, ignore_index=True) if versus else pd.DataFrame()
    return _labels_first(summary), _labels_first(versus)


def _labels_first(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return frame
    first = ["metric", "subset"]
    return frame[first + [c for c in frame.columns if c not in first]]


def means(summary: pd.DataFrame, metric: str = "nll", subset: str = "all") -> dict[str, float]:
    """method -> mean of one metric and subset, from ``likelihood_tables``'s summary."""
    rows = summary[(summary["metric"] == metric) & (summary["subset"] == subset)]
    return {str(m): float(v) for m, v in zip(rows["method"], rows["mean"])}


def by_step_table(per_step: pd.DataFrame, assignment: pd.DataFrame, method: str = "compass", *,
                  confidence: float = 0.95, n_resamples: int = 10_000, seed=0) -> pd.DataFrame:
    """NLL against training steps (one seed: the first): per subset, method and step the mean NLL
    with its item-bootstrap interval, its ``change`` against zero-shot (paired interval), and
    ``compass_minus`` = mean(``method``) - mean(this method)
    at the same step with its paired interval (negative: ``method`` is ahead), which shows
    whether the gaps between methods grow or close as training goes on. ``per_step``: id,
    method, step, nll (zero-shot at step 0)."""
    groups = subset_ids(assignment, per_step["id"])
    rows = []
    for subset in SUBSETS:
        ids = groups[subset]
        if not ids:
            continue
        zero = per_method(per_step[per_step["method"] == "zero_shot"], "nll", ids).get("zero_shot")
        for step, at_step in per_step.groupby("step", sort=True):
            scores = per_method(at_step, "nll", ids)
            for name, x in scores.items():
                low, high = stats.bootstrap_ci(x, np.mean, confidence, n_resamples, seed)
                row = {"subset": subset, "method": name, "step": int(step), "n": len(x),
                       "mean": float(x.mean()), "ci_low": low, "ci_high": high,
                       "change": np.nan, "change_ci_low": np.nan, "change_ci_high": np.nan,
                       "compass_minus": np.nan, "compass_minus_ci_low": np.nan,
                       "compass_minus_ci_high": np.nan}
                if zero is not None:  # against the base model: paired over items
                    c_low, c_high = ((0.0, 0.0) if name == "zero_shot" else
                                     stats.paired_bootstrap_ci(x, zero, confidence, n_resamples,
                                                               seed))
                    row.update(change=float(x.mean() - zero.mean()), change_ci_low=c_low,
                               change_ci_high=c_high)
                if method in scores and name != method:
                    d_low, d_high = stats.paired_bootstrap_ci(scores[method], x, confidence,
                                                              n_resamples, seed)
                    row.update(compass_minus=float(scores[method].mean() - x.mean()),
                               compass_minus_ci_low=d_low, compass_minus_ci_high=d_high)
                rows.append(row)
    return pd.DataFrame(rows)


def gap_interaction(predictions: pd.DataFrame, assignment: pd.DataFrame, method: str = "compass",
                    metric: str = "nll", *, n_permutations: int = 10_000, seed=0) -> pd.DataFrame:
    """Does ``method`` gain more on the gap clusters' items than on the covered ones? Per other
    method m: the per-item change d = mean over seeds of (``method`` - m), its mean on the gap
    items and on the covered items, their difference, and a permutation p-value (the gap labels
    shuffled over the items: exact under "the gap label does not matter"). Negative = a larger
    loss drop in the gaps, what COMPASS is meant to give. Empty when a subset has no items."""
    groups = subset_ids(assignment, predictions["id"])
    if not groups["gap"] or not groups["covered"] or method not in set(predictions["method"]):
        return pd.DataFrame()
    ids = groups["gap"] + groups["covered"]
    is_gap = np.r_[np.ones(len(groups["gap"]), bool), np.zeros(len(groups["covered"]), bool)]
    scores = {m: np.atleast_2d(v).mean(axis=0)
              for m, v in per_method(predictions, metric, ids).items()}
    rows = []
    for other, ref in scores.items():
        if other == method:
            continue
        d = scores[method] - ref
        rows.append({"metric": metric, "method": method, "baseline": other,
                     "gap_change": float(d[is_gap].mean()),
                     "covered_change": float(d[~is_gap].mean()),
                     "difference": float(d[is_gap].mean() - d[~is_gap].mean()),
                     "p_value": interaction_p_value(d, is_gap, n_permutations,
                                                    np.random.default_rng(seed)),
                     "gap_items": int(is_gap.sum()), "covered_items": int((~is_gap).sum())})
    return pd.DataFrame(rows)


def interaction_p_value(d: np.ndarray, is_gap: np.ndarray, n_permutations: int, rng) -> float:
    """Two-sided permutation p of mean(d | gap) - mean(d | covered): the labels shuffled."""
    observed = d[is_gap].mean() - d[~is_gap].mean()
    shuffled = np.stack([rng.permutation(is_gap) for _ in range(n_permutations)])
    null = (shuffled @ d) / is_gap.sum() - ((~shuffled) @ d) / (~is_gap).sum()
    return (1 + int(np.sum(np.abs(null) >= abs(observed) - 1e-12))) / (n_permutations + 1)
