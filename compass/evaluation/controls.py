"""Negative and positive controls of the evaluation's tests, on this run's own scores.

:func:`seeded_controls`: the size and power of the seed-level NLL test (compass.evaluation.seeded)
at the shape this run has (seeds, items, and the seed / item / noise SDs of COMPASS's differences
from random sampling, paired by item and seed).

:func:`compass.evaluation.likelihood.gap_interaction` asks whether COMPASS's loss drop is larger on
the test items of the gap clusters than on the covered ones. Its controls:

- **negative**: the same test with the gap labels shuffled at random (no gap effect by
  construction): it should reject at its level;
- **positive**: the real per-item changes, items resampled with replacement within each subset, and
  a known extra drop ``planted`` (nats/token) added on the gap items: the share of resamples the
  test detects is its power at that effect.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from compass.evaluation.likelihood import interaction_p_value, per_method, subset_ids
from compass.evaluation.stats import rate_ci

PLANTED = 0.1  # nats/token: the planted gap effect of the positive control


def gap_controls(predictions: pd.DataFrame, assignment: pd.DataFrame, method: str = "compass",
                 baseline: str = "random", metric: str = "nll", *, planted: float = PLANTED,
                 draws: int = 200, n_permutations: int = 500, alpha: float = 0.05,
                 seed: int = 0, confidence: float = 0.95) -> dict:
    """False-positive rate under shuffled gap labels and power at a planted gap effect, of the
    gap-vs-covered test of ``method`` against ``baseline``, on this run's per-item changes."""
    groups = subset_ids(assignment, predictions["id"])
    gap, covered = groups["gap"], groups["covered"]
    if not gap or not covered:
        return {}
    scores = per_method(predictions, metric, gap + covered)
    if method not in scores or baseline not in scores:
        return {}
    d = np.atleast_2d(scores[method]).mean(axis=0) - np.atleast_2d(scores[baseline]).mean(axis=0)
    is_gap = np.r_[np.ones(len(gap), bool), np.zeros(len(covered), bool)]
    rng = np.random.default_rng(seed)
    null = [interaction_p_value(d, rng.permutation(is_gap), n_permutations, rng) < alpha
            for _ in range(draws)]
    detected = []
    for _ in range(draws):
        resampled = np.r_[rng.choice(d[is_gap], is_gap.sum()),
                          rng.choice(d[~is_gap], (~is_gap).sum())]
        detected.append(interaction_p_value(resampled - planted * is_gap, is_gap, n_permutations,
                                            rng) < alpha)
    fp, fp_low, fp_high = rate_ci(np.array(null), confidence)
    power, p_low, p_high = rate_ci(np.array(detected), confidence)
    return {"method": method, "baseline": baseline, "metric": metric, "draws": draws,
            "false_positive_rate": fp, "fp_ci_low": fp_low, "fp_ci_high": fp_high,
            "planted": planted, "power": power, "power_ci_low": p_low, "power_ci_high": p_high,
            "gap_items": int(is_gap.sum()), "covered_items": int((~is_gap).sum())}


EFFECTS = (0.02, 0.05)  # nats/token: planted differences between two methods' mean NLL


def seeded_controls(predictions: pd.DataFrame, method: str = "compass", baseline: str = "random",
                    metric: str = "nll", simulations: int = 2000, seed: int = 0) -> dict:
    """The seed-level test's false-positive rate (two methods that do not differ) and its power
    at :data:`EFFECTS`, simulated with this run's shape: the seeds and items of ``method`` against
    ``baseline``, and the seed / item / noise SDs of their paired per-item differences (each
    simulated method gets 1/sqrt(2) of them, so that the simulated differences have them). Empty
    with one seed (the item-level tests apply)."""
    from compass.evaluation import seeded

    tables = {}
    for name in (method, baseline):
        rows = predictions[predictions["method"] == name]
        if rows.empty or "seed" not in rows or rows["seed"].nunique() < 2:
            return {}
        tables[name] = rows.pivot(index="seed", columns="id", values=metric)
    ids = tables[method].columns.intersection(tables[baseline].columns)
    if tables[method].shape[0] != tables[baseline].shape[0] or len(ids) < 2:
        return {}
    diff = tables[method][ids].to_numpy(float) - tables[baseline][ids].to_numpy(float)
    parts = {k: v / np.sqrt(2) for k, v in seeded.variance_components(diff).items()}
    out = {"method": method, "baseline": baseline, "metric": metric, "seeds": int(diff.shape[0]),
           "items": int(diff.shape[1]),
           **{f"difference_{k}": round(float(v * np.sqrt(2)), 6) for k, v in parts.items()}}
    for effect in EFFECTS:
        result = seeded.size_and_power(diff.shape[0], diff.shape[1], effect=effect,
                                       simulations=simulations, seed=seed, **parts)
        out.setdefault("false_positive_rate", result["false_positive_rate"])
        out.setdefault("fp_ci_low", result["fp_ci_low"])
        out.setdefault("fp_ci_high", result["fp_ci_high"])
        out[f"power_{effect:g}"] = result["power"]
    return out
