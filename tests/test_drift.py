import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from compass.continual.drift import DriftMonitor, js_divergence, mmd_permutation_test, occupancy


def test_js_divergence_matches_scipy():
    rng = np.random.default_rng(0)
    for _ in range(50):
        p, q = rng.random(7), rng.random(7)
        p[rng.integers(7)] = 0
        for base in (2.0, np.e):
            assert js_divergence(p, q, base) == pytest.approx(jensenshannon(p, q, base=base) ** 2, abs=1e-12)
    assert js_divergence([1, 0], [0, 1]) == pytest.approx(1.0)
    assert js_divergence([0.3, 0.7], [0.3, 0.7]) == 0.0


def test_occupancy_is_smoothed_and_normalised():
    h = occupancy(np.array([0, 0, 1]), 3, pseudo_count=1.5)
    assert np.allclose(h, np.array([2.5, 1.5, 0.5]) / 4.5)


def test_mmd_false_alarm_rate_at_or_under_nominal_level():
    """Streams without drift: over many seeded trials the test fires at most at its level."""
    rng = np.random.default_rng(1)
    alarms = 0
    trials = 200
    for t in range(trials):
        x = rng.normal(size=(30, 8))
        y = rng.normal(size=(30, 8))
        alarms += mmd_permutation_test(x, y, n_permutations=200, seed=t).p_value < 0.05
    # nominal 5%; allow the binomial sd (~1.5%) twice over
    assert alarms / trials <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / trials)


def test_mmd_fires_on_a_planted_shift():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 8))
    y = rng.normal(size=(40, 8)) + np.r_[1.0, np.zeros(7)]
    result = mmd_permutation_test(x, y, n_permutations=500, seed=0)
    assert result.p_value < 0.01 and result.p_value > 0  # never exactly zero


def test_mmd_is_deterministic_and_validates_input():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(10, 4)), rng.normal(size=(12, 4))
    assert mmd_permutation_test(x, y, seed=5) == mmd_permutation_test(x, y, seed=5)
    with pytest.raises(ValueError, match="at least 2 items per sample, got 1 and 12"):
        mmd_permutation_test(x[:1], y)


def test_monitor_triggers_on_cluster_shift_only():
    rng = np.random.default_rng(4)
    ref_labels = rng.integers(0, 4, size=200)
    centres = rng.normal(size=(4, 6)) * 3
    ref_vecs = centres[ref_labels] + rng.normal(size=(200, 6))
    monitor = DriftMonitor(ref_labels, ref_vecs, k=4, delta=0.05, n_permutations=300)
    same = rng.integers(0, 4, size=80)
    quiet = monitor.check(same, centres[same] + rng.normal(size=(80, 6)))
    shifted = np.where(rng.random(80) < 0.8, 3, rng.integers(0, 4, size=80))
    loud = monitor.check(shifted, centres[shifted] + rng.normal(size=(80, 6)))
    assert not quiet["trigger"] and quiet["js"] < 0.05
    assert loud["trigger"] and loud["js"] > 0.05 and loud["p_value"] < 0.05
    with pytest.raises(ValueError, match="trigger_on = 'both'"):
        DriftMonitor(ref_labels, ref_vecs, k=4, trigger_on="both")
