"""The JS drift trigger's false alarms and detection rates, calibrated and fixed, by simulation.

The paper fires when the JS divergence between a window's smoothed cluster occupancy and the
reference's exceeds a fixed delta = 0.05. How often that fires without any drift depends on the
window size, the reference size, K and how the reference spreads over the clusters: with a window
of 60 and a dozen clusters the no-drift JS already sits around half of 0.05. The calibrated rule
instead fires when the window's JS exceeds its permutation threshold
(:func:`compass.continual.drift.permutation_threshold`): an exact level-a test of "the reference
and the window come from one distribution", whatever that distribution is.

This module measures both rules on simulated windows, for the table the continual chapter shows:

1. **No-drift draws.** A reference of the monitor's reference size and a window of the window size,
   both drawn from p_hat, the reference labels' cluster shares; each rule's share of draws that
   fire is its false-alarm rate (with a Clopper-Pearson interval).
2. **Planted shifts.** The window from q = (1 - s) p_hat + s / f on f random focus clusters (f =
   ``ecda.shift_topics``, as the stream shifts toward f topics); the share that fires is the
   detection rate at strength s.

The permutation threshold is computed per draw with :data:`SIM_PERMUTATIONS` permutations (the
monitor uses ``ecda.n_permutations``); the table's ``delta`` of the calibrated rule is the median
threshold over the no-drift draws. Everything is deterministic given the seed. The negative control
on the real stream (windows from the T0 population) is
:func:`compass.continual.controls.drift_null`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from compass.continual.drift import (
    conformal_threshold,
    js_rows,
    occupancies,
    permutation_threshold,
)
from compass.evaluation.stats import rate_ci

PAPER_DELTA = 0.05  # the paper's fixed JS threshold
STRENGTHS = (0.1, 0.2, 0.4, 0.8)  # planted shift strengths the table reports
SIM_PERMUTATIONS = 199  # permutations per simulated window (the 95% quantile is the 190th of 199)


def reference_distribution(labels: np.ndarray, k: int) -> np.ndarray:
    """p_hat: the reference labels' empirical cluster shares (unsmoothed)."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=k).astype(float)
    if counts.sum() == 0:
        raise ValueError("calibration needs at least one reference label")
    return counts / counts.sum()


def shifted(p: np.ndarray, strength: float, focus: np.ndarray) -> np.ndarray:
    """The stream's topic shift in cluster space: (1 - s) p + s spread evenly over ``focus``."""
    q = (1.0 - strength) * p
    q[focus] += strength / len(focus)
    return q


def draw_counts(p: np.ndarray, reference_size: int, window: int, draws: int,
                rng: np.random.Generator, strength: float = 0.0,
                n_focus: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(reference counts, window counts) of ``draws`` simulated pairs; the window from a shift of
    ``strength`` toward ``n_focus`` random clusters (0: no drift)."""
    k = len(p)
    ref = rng.multinomial(reference_size, p, size=draws)
    if strength == 0.0:
        return ref, rng.multinomial(window, p, size=draws)
    f = min(n_focus, k)
    win = np.stack([rng.multinomial(window, shifted(p, strength, rng.choice(k, f, replace=False)))
                    for _ in range(draws)])
    return ref, win


def draw_js(p: np.ndarray, reference_size: int, window: int, draws: int, rng: np.random.Generator,
            strength: float = 0.0, n_focus: int = 2) -> np.ndarray:
    """JS of ``draws`` simulated (reference, window) pairs (:func:`draw_counts`)."""
    ref, win = draw_counts(p, reference_size, window, draws, rng, strength, n_focus)
    return js_rows(occupancies(ref), occupancies(win))


@dataclass(frozen=True)
class Simulated:
    """JS and permutation threshold of simulated (reference, window) pairs."""
    js: np.ndarray
    thresholds: np.ndarray


def _simulate(p, n_ref, window, draws, rng, false_alarm_rate, strength=0.0, n_focus=2) -> Simulated:
    ref, win = draw_counts(p, n_ref, window, draws, rng, strength, n_focus)
    js = js_rows(occupancies(ref), occupancies(win))
    thresholds = np.array([permutation_threshold(r, w, false_alarm_rate, SIM_PERMUTATIONS, rng)
                           for r, w in zip(ref, win)])
    return Simulated(js, thresholds)


@dataclass(frozen=True)
class Calibration:
    """Both rules measured on simulated windows against one reference."""
    delta: float  # the calibrated rule's median threshold on no-drift windows
    false_alarm_rate: float  # the target
    fixed_delta: float  # the fixed threshold it is compared with
    k: int
    window: int
    reference_size: int
    draws: int
    null: Simulated  # no-drift draws
    shifted: dict  # strength -> Simulated

    def table(self, confidence: float = 0.95) -> pd.DataFrame:
        """One row per rule (calibrated, fixed): the threshold, its false-alarm rate on the
        no-drift draws [Clopper-Pearson CI] and its detection rate per shift strength."""
        rows = []
        for rule in ("calibrated", "fixed"):
            def fired(sim: Simulated) -> np.ndarray:
                return sim.js > (sim.thresholds if rule == "calibrated" else self.fixed_delta)

            fa, lo, hi = rate_ci(fired(self.null), confidence)
            row = {"rule": rule, "window": self.window, "k": self.k,
                   "reference_size": self.reference_size, "draws": self.draws,
                   "target_false_alarm": self.false_alarm_rate if rule == "calibrated" else np.nan,
                   "delta": self.delta if rule == "calibrated" else self.fixed_delta,
                   "false_alarm": fa, "false_alarm_ci_low": lo, "false_alarm_ci_high": hi}
            for s, sim in self.shifted.items():
                row[f"detection_{s:g}"] = float(np.mean(fired(sim)))
            rows.append(row)
        return pd.DataFrame(rows)


def calibrate(reference_labels: np.ndarray, k: int, window: int, false_alarm_rate: float = 0.05,
              draws: int = 2000, seed: int = 0, reference_size: int | None = None,
              fixed_delta: float = PAPER_DELTA, strengths=STRENGTHS,
              n_focus: int = 2) -> Calibration:
    """Both rules on simulated windows for a monitor whose reference is ``reference_labels``
    (size ``reference_size``, by default their number) and whose windows hold ``window`` inputs."""
    if not 0.0 < false_alarm_rate < 1.0:
        raise ValueError(f"false_alarm_rate = {false_alarm_rate!r} must lie strictly "
                         "between 0 and 1")
    conformal_threshold(np.zeros(SIM_PERMUTATIONS), false_alarm_rate)  # enough permutations?
    p = reference_distribution(reference_labels, k)
    n_ref = len(reference_labels) if reference_size is None else int(reference_size)
    # one child stream per use: adding strengths never changes the no-drift draws
    null_rng, *shift_rngs = (np.random.default_rng(s) for s in
                             np.random.SeedSequence(seed).spawn(1 + len(strengths)))
    null = _simulate(p, n_ref, window, draws, null_rng, false_alarm_rate)
    shifted_sims = {float(s): _simulate(p, n_ref, window, draws, r, false_alarm_rate, s, n_focus)
                    for s, r in zip(strengths, shift_rngs)}
    return Calibration(float(np.median(null.thresholds)), false_alarm_rate, float(fixed_delta), k,
                       window, n_ref, draws, null, shifted_sims)


def calibrate_for(ecda_cfg, reference_labels: np.ndarray, k: int, window: int,
                  seed: int) -> Calibration:
    """:func:`calibrate` with the ``ecda`` params: target rate, draws, shift topics; the fixed
    delta compared with is the configured number, or the paper's 0.05 when delta is calibrated."""
    fixed = PAPER_DELTA if ecda_cfg.delta == "calibrated" else float(ecda_cfg.delta)
    return calibrate(reference_labels, k, window, ecda_cfg.false_alarm_rate,
                     ecda_cfg.calibration_draws, seed, fixed_delta=fixed,
                     n_focus=ecda_cfg.shift_topics)
