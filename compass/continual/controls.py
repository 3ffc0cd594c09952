"""Negative controls of the continual instruments: what they report when nothing happens.

- :func:`forgetting_null`: the forgetting table (:func:`compass.continual.tables.continual_tables`,
  the code the chapter runs) on simulated streams where no version is better or worse than another:
  each update redraws a share of the item outcomes from the same probabilities. Its interval should
  exclude 0 at about its nominal rate, whatever the number of updates.
- :func:`drift_null`: the JS trigger on windows drawn from the population of the reference with
  no shift, each against its permutation threshold: it should fire at ``ecda.false_alarm_rate``.

The positive controls are in the pipeline itself: the planted drift strengths of the calibration
table, the planted bad update the rollback guard must catch, and the language-shift stream in which
naive fine-tuning really forgets.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd

from compass.continual.drift import js_divergence, occupancy, permutation_threshold
from compass.continual.tables import continual_tables
from compass.evaluation.stats import rate_ci

PROFILES = {"every step": "every", "once": "once", "never": "never"}


def _stream_outcomes(rng, steps: int, n_items: int, redraw: float, profile: str):
    """Per-item correctness of the version served at each t on every window's items, where an
    update redraws ``redraw`` of the outcomes from the items' own probabilities (no change)."""
    p = rng.uniform(0.2, 0.8, size=(steps, n_items))  # item difficulty, per window
    outcomes = {}
    current = (rng.random((steps, n_items)) < p).astype(int)
    for t in range(steps):
        updates = profile == "every" and t > 0 or profile == "once" and t == 1
        if updates:
            redrawn = (rng.random((steps, n_items)) < p).astype(int)
            current = np.where(rng.random((steps, n_items)) < redraw, redrawn, current)
        for j in range(t + 1):
            outcomes[(f"v{t}", f"test{j}")] = current[j].copy()
    return outcomes


def _old_definition(outcomes: dict, steps: int) -> float:
    """Final minus the best version's mean per earlier window: the biased definition, to
    contrast with backward transfer."""
    diffs = []
    for j in range(steps - 1):
        best = max(range(j, steps), key=lambda t: outcomes[(f"v{t}", f"test{j}")].mean())
        diffs.append(outcomes[(f"v{steps - 1}", f"test{j}")] - outcomes[(f"v{best}", f"test{j}")])
    return float(np.concatenate(diffs).mean() * 100)


def forgetting_null(steps: int = 4, n_items: int = 12, redraw: float = 0.3, simulations: int = 400,
                    seed: int = 0, n_bootstrap: int = 400,
                    confidence: float = 0.95) -> pd.DataFrame:
    """Per update profile (every step, once, never): the mean forgetting (pp) the table reports
    over ``simulations`` null streams, the old definition's mean, and how often the table's
    interval excluded 0 (the false-positive rate, with its Clopper-Pearson interval)."""
    rng = np.random.default_rng(seed)
    cfg = SimpleNamespace(seed=seed, evaluation=SimpleNamespace(n_bootstrap=n_bootstrap))
    rows = []
    for profile, kind in PROFILES.items():
        means, old, excluded = [], [], []
        for _ in range(simulations):
            outcomes = _stream_outcomes(rng, steps, n_items, redraw, kind)
            acc = [{"t": t, "eval_step": j, "method": "m", "version": f"v{t}",
                    "accuracy": float(outcomes[(f"v{t}", f"test{j}")].mean())}
                   for t in range(steps) for j in range(t + 1)]
            out = {"accuracy": pd.DataFrame(acc), "per_item": outcomes,
                   "states": {"m": SimpleNamespace(compute={})}}
            row = continual_tables(cfg, [None] * steps, out)["summary"].iloc[0]
            means.append(row["forgetting_pp"])
            old.append(_old_definition(outcomes, steps))
            excluded.append(not row["forgetting_ci_low"] <= 0.0 <= row["forgetting_ci_high"])
        rate, low, high = rate_ci(np.array(excluded), confidence)
        rows.append({"profile": profile, "forgetting_pp": float(np.mean(means)),
                     "old_definition_pp": float(np.mean(old)), "false_positive_rate": rate,
                     "false_positive_ci_low": low, "false_positive_ci_high": high,
                     "simulations": simulations, "items_per_window": n_items, "steps": steps})
    return pd.DataFrame(rows)


def drift_null(population_labels: np.ndarray, k: int, window: int, false_alarm_rate: float,
               draws: int = 200, n_permutations: int = 1000, seed: int = 0,
               confidence: float = 0.95) -> dict:
    """The JS trigger with no drift: a reference window and a later window both drawn (without
    replacement) from ``population_labels`` (the real stream's population at T0, assigned to
    clusters as the monitor assigns them), each later window judged against its permutation
    threshold as the monitor judges it. Returns the share of draws that fired, with its interval."""
    labels = np.asarray(population_labels, np.int64)
    if len(labels) < 2 * window:
        raise ValueError(f"the population has {len(labels)} items: two windows of {window} need "
                         f"{2 * window}")
    rng = np.random.default_rng(seed)
    fired = np.zeros(draws, bool)
    for i in range(draws):
        order = rng.permutation(len(labels))
        ref, later = (np.bincount(labels[order[a:a + window]], minlength=k) for a in (0, window))
        delta = permutation_threshold(ref, later, false_alarm_rate, n_permutations, rng)
        fired[i] = js_divergence(occupancy(labels[order[:window]], k),
                                 occupancy(labels[order[window:2 * window]], k)) > delta
    rate, low, high = rate_ci(fired, confidence)
    return {"false_alarm_rate": rate, "ci_low": low, "ci_high": high, "draws": draws,
            "target": false_alarm_rate, "window": window, "population": len(labels)}
