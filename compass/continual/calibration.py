"""A calibrated threshold for the JS drift trigger, and what it costs in false alarms and misses.

The paper fires when the JS divergence between a window's smoothed cluster occupancy and the
reference's exceeds a fixed delta = 0.05. How often that fires without any drift depends on the
window size, the reference size, K and how the reference spreads over the clusters: with a window
of 60 and a dozen clusters the no-drift JS already sits around half of 0.05. So here delta is set
from the reference itself:

1. **Null draws.** The reference labels (the sample the adapter was trained for: E_t's dev
   labels at T0, the accepted window after an update) give an empirical cluster distribution
   p_hat. A no-drift draw is a *reference* of the monitor's reference size and a *window* of the
   window size, both bootstrapped from p_hat (multinomial counts, which is exactly a bootstrap of
   the labels). Both are resampled because the monitor's reference is itself a sample: the JS
   between two samples of one distribution carries the noise of both. Occupancies are smoothed
   as :func:`compass.continual.drift.occupancy` smooths them (same ``smoothing``), so a draw's
   JS is what :class:`~compass.continual.drift.DriftMonitor` would compute.
2. **delta** is the ceil((n + 1)(1 - a))-th smallest of n calibration draws (the split-conformal
   order statistic): for a new exchangeable no-drift draw, P(JS > delta) <= a.
3. **Held-out check.** A second, independently seeded set of null draws (a separate child of
   the seed, never used to pick delta) measures the false-alarm rate delta achieves, with a
   Clopper-Pearson interval. Why not split the reference labels into a calibration half and a
   held-out half: the JS noise floor depends on the reference size and on how many clusters the
   sample occupies, so a delta calibrated on half the reference would be a threshold for a
   different (noisier) monitor. The held-out draws check the Monte-Carlo error of the quantile;
   the error from p_hat != p is checked in tests/test_calibration.py against draws from a known p.
4. **Detection.** A planted shift of strength s mirrors :mod:`compass.continual.stream`'s topic
   shift with clusters in place of topics: the window is drawn from
   q = (1 - s) p_hat + s / f on each of f focus clusters (f = ``ecda.shift_topics``), the focus
   clusters chosen at random per draw (as the stream chooses its shift topics at random), so the
   rate averages shifts toward rare clusters (easy to see) and toward common ones (hard). The
   reference is a null-style bootstrap sample as in 1.

The fixed delta (the paper's 0.05, or the configured number) is evaluated on the same held-out
and shifted draws for comparison. Everything is deterministic given the seed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

PAPER_DELTA = 0.05  # the paper's fixed JS threshold
STRENGTHS = (0.1, 0.2, 0.4, 0.8)  # planted shift strengths the table reports
SMOOTHING = 0.5  # DriftMonitor's default occupancy smoothing


def _occupancies(counts: np.ndarray, smoothing: float) -> np.ndarray:
    """Rows of counts -> smoothed occupancy histograms (as drift.occupancy, row-wise)."""
    counts = np.asarray(counts, float) + smoothing
    return counts / counts.sum(axis=1, keepdims=True)


def js_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Row-wise Jensen-Shannon divergence in bits (as drift.js_divergence, for many pairs)."""
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log(p / m), 0.0).sum(axis=1)
        kl_q = np.where(q > 0, q * np.log(q / m), 0.0).sum(axis=1)
    return (0.5 * kl_p + 0.5 * kl_q) / np.log(2.0)


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


def draw_js(p: np.ndarray, reference_size: int, window: int, draws: int, rng: np.random.Generator,
            strength: float = 0.0, n_focus: int = 2, smoothing: float = SMOOTHING) -> np.ndarray:
    """JS of ``draws`` (bootstrap reference, window) pairs; the window from a shift of
    ``strength`` toward ``n_focus`` random clusters (0: no drift)."""
    k = len(p)
    ref = rng.multinomial(reference_size, p, size=draws)
    if strength == 0.0:
        win = rng.multinomial(window, p, size=draws)
    else:
        f = min(n_focus, k)
        win = np.stack([rng.multinomial(window, shifted(p, strength, rng.choice(k, f, replace=False)))
                        for _ in range(draws)])
    return js_rows(_occupancies(ref, smoothing), _occupancies(win, smoothing))


def conformal_threshold(null_js: np.ndarray, false_alarm_rate: float) -> float:
    """The ceil((n + 1)(1 - a))-th smallest null JS: P(new null JS > it) <= a."""
    n = len(null_js)
    rank = math.ceil((n + 1) * (1.0 - false_alarm_rate))
    if rank > n:
        raise ValueError(f"{n} calibration draws cannot calibrate a false-alarm rate of "
                         f"{false_alarm_rate}: need at least {math.ceil(1 / false_alarm_rate) - 1}")
    return float(np.sort(null_js)[rank - 1])


def rate_ci(fired: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float]:
    """Share of draws that fired, with its Clopper-Pearson (exact binomial) interval."""
    fired = np.asarray(fired, bool)
    ci = sps.binomtest(int(fired.sum()), len(fired)).proportion_ci(confidence, method="exact")
    return float(fired.mean()), float(ci.low), float(ci.high)


@dataclass(frozen=True)
class Calibration:
    """A calibrated JS threshold and the draws that chose and checked it."""
    delta: float
    false_alarm_rate: float  # the target
    fixed_delta: float  # the fixed threshold it is compared with
    k: int
    window: int
    reference_size: int
    draws: int
    held_out_js: np.ndarray  # independent no-drift draws
    shifted_js: dict  # strength -> JS of shifted draws

    def table(self, confidence: float = 0.95) -> pd.DataFrame:
        """One row per rule (calibrated, fixed): the threshold, its false-alarm rate on the
        held-out no-drift draws [Clopper-Pearson CI] and its detection rate per shift strength."""
        rows = []
        for rule, delta in (("calibrated", self.delta), ("fixed", self.fixed_delta)):
            fa, lo, hi = rate_ci(self.held_out_js > delta, confidence)
            row = {"rule": rule, "window": self.window, "k": self.k,
                   "reference_size": self.reference_size, "draws": self.draws,
                   "target_false_alarm": self.false_alarm_rate if rule == "calibrated" else np.nan,
                   "delta": delta, "false_alarm": fa, "false_alarm_ci_low": lo,
                   "false_alarm_ci_high": hi}
            for s, js in self.shifted_js.items():
                row[f"detection_{s:g}"] = float(np.mean(js > delta))
            rows.append(row)
        return pd.DataFrame(rows)


def calibrate(reference_labels: np.ndarray, k: int, window: int, false_alarm_rate: float = 0.05,
              draws: int = 2000, seed: int = 0, reference_size: int | None = None,
              fixed_delta: float = PAPER_DELTA, strengths=STRENGTHS, n_focus: int = 2,
              smoothing: float = SMOOTHING) -> Calibration:
    """Calibrate the JS threshold for a monitor whose reference is ``reference_labels`` (size
    ``reference_size``, by default their number) and whose windows hold ``window`` inputs."""
    if not 0.0 < false_alarm_rate < 1.0:
        raise ValueError(f"false_alarm_rate = {false_alarm_rate!r} must lie strictly between 0 and 1")
    p = reference_distribution(reference_labels, k)
    n_ref = len(reference_labels) if reference_size is None else int(reference_size)
    # one child stream per use: adding strengths never changes delta or the held-out draws
    calib_rng, held_rng, *shift_rngs = (np.random.default_rng(s) for s in
                                        np.random.SeedSequence(seed).spawn(2 + len(strengths)))
    delta = conformal_threshold(draw_js(p, n_ref, window, draws, calib_rng, smoothing=smoothing),
                                false_alarm_rate)
    held = draw_js(p, n_ref, window, draws, held_rng, smoothing=smoothing)
    shifted_js = {float(s): draw_js(p, n_ref, window, draws, r, s, n_focus, smoothing)
                  for s, r in zip(strengths, shift_rngs)}
    return Calibration(delta, false_alarm_rate, float(fixed_delta), k, window, n_ref, draws, held,
                       shifted_js)


def calibrate_for(ecda_cfg, reference_labels: np.ndarray, k: int, window: int, seed: int) -> Calibration:
    """:func:`calibrate` with the ``ecda`` params: target rate, draws, shift topics; the fixed
    delta compared with is the configured number, or the paper's 0.05 when delta is calibrated."""
    fixed = PAPER_DELTA if ecda_cfg.delta == "calibrated" else float(ecda_cfg.delta)
    return calibrate(reference_labels, k, window, ecda_cfg.false_alarm_rate,
                     ecda_cfg.calibration_draws, seed, fixed_delta=fixed,
                     n_focus=ecda_cfg.shift_topics)
