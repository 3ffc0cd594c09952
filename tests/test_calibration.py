"""The calibrated JS drift trigger: its false-alarm rate, its detection rate, its determinism."""
import numpy as np
import pytest
from scipy import stats as sps

from compass import config
from compass.continual import calibration as cal
from compass.continual.drift import js_divergence, js_rows, occupancies, occupancy


def reference(k=12, n=300, seed=0):
    """A known cluster distribution p and a reference sample of it."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(k, 2.0))
    return p, rng.choice(k, size=n, p=p)


def test_vectorised_js_is_the_monitors_js():
    rng = np.random.default_rng(1)
    a, b = rng.multinomial(60, np.full(8, 1 / 8), size=20), rng.multinomial(200, np.full(8, 1 / 8), size=20)
    a[:, 0] = 0  # empty bins: the pseudo-count keeps them finite, as in the monitor
    got = js_rows(occupancies(a), occupancies(b))
    labels = lambda counts: np.repeat(np.arange(8), counts)  # noqa: E731
    want = [js_divergence(occupancy(labels(x), 8), occupancy(labels(y), 8)) for x, y in zip(a, b)]
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_the_permutation_threshold_fires_at_its_level():
    """Negative control: reference and window from one distribution (K = 14, 60 each, as the
    tiny stream): the calibrated trigger fires at 5% (99% Clopper-Pearson interval covers it).
    A threshold bootstrapped from the reference's shares alone fired 7-11% here."""
    _, labels = reference(k=14, n=60)
    c = cal.calibrate(labels, 14, 60, false_alarm_rate=0.05, draws=3000, seed=3)
    row = c.table(confidence=0.99).set_index("rule").loc["calibrated"]
    assert row["false_alarm_ci_low"] <= 0.05 <= row["false_alarm_ci_high"], row
    # the paper's fixed 0.05 sits inside this no-drift noise: it fires far more often
    assert c.table().set_index("rule").loc["fixed", "false_alarm"] > 0.5


def test_the_permutation_threshold_holds_for_other_distributions():
    """The permutation test needs no estimate of the distribution: pooled over ten different
    distributions and reference sizes, the rate stays at the target (3.5-7%)."""
    fired = total = 0
    for seed in range(10):
        p, labels = reference(k=8 + seed, n=40 + 20 * seed, seed=seed)
        sim = cal.calibrate(labels, len(p), 60, draws=300, seed=seed, strengths=()).null
        fired, total = fired + int(np.sum(sim.js > sim.thresholds)), total + len(sim.js)
    ci = sps.binomtest(fired, total).proportion_ci(0.99, method="exact")
    assert 0.035 <= ci.low and ci.high <= 0.07, (fired / total, ci)


def test_detection_grows_with_shift_strength():
    _, labels = reference()
    table = cal.calibrate(labels, 12, 60, draws=500, seed=0).table()
    for _, row in table.iterrows():
        rates = [row[f"detection_{s:g}"] for s in cal.STRENGTHS]
        assert rates == sorted(rates), rates
        assert rates[-1] > 0.95 and rates[0] < 0.5
    assert set(table["rule"]) == {"calibrated", "fixed"}
    assert (table["false_alarm_ci_low"] <= table["false_alarm"]).all()
    assert (table["false_alarm"] <= table["false_alarm_ci_high"]).all()


def test_calibration_is_deterministic_and_depends_on_the_window():
    _, labels = reference()
    a, b = cal.calibrate(labels, 12, 60, draws=300, seed=5), cal.calibrate(labels, 12, 60, draws=300, seed=5)
    assert a.delta == b.delta and np.array_equal(a.null.js, b.null.js)
    # a bigger window is less noisy: its typical threshold is lower
    assert cal.calibrate(labels, 12, 240, draws=300, seed=5).delta < a.delta


def test_too_few_permutations_for_the_rate_is_named():
    _, labels = reference()
    with pytest.raises(ValueError, match="199 null draws cannot calibrate a false-alarm rate of 0.001"):
        cal.calibrate(labels, 12, 60, false_alarm_rate=0.001, draws=10)


def test_calibrate_for_compares_with_the_configured_or_the_paper_delta():
    _, labels = reference()
    few = {"calibration_draws": 200}
    fixed = cal.calibrate_for(config.from_dict({"ecda": {"delta": 0.08, **few}}).ecda, labels, 12, 60, 0)
    assert fixed.fixed_delta == 0.08
    auto = cal.calibrate_for(config.from_dict({"ecda": few}).ecda, labels, 12, 60, 0)
    assert auto.fixed_delta == cal.PAPER_DELTA and auto.draws == 200


def test_stage_calibration_frame_marks_the_rule_used_with_t0_first():
    from compass.stages.ecda import calibration_frame

    _, labels = reference()
    cals = {("ecda@T2", 60): cal.calibrate(labels[:60], 12, 60, draws=200), ("T0", 60): cal.calibrate(labels, 12, 60, draws=200)}
    frame = calibration_frame(cals, "calibrated")
    assert frame["reference"].tolist() == ["T0", "T0", "ecda@T2", "ecda@T2"]
    assert frame["used"].tolist() == [True, False, True, False]
    assert frame.loc[0, "delta"] == cals[("T0", 60)].delta
    assert frame.loc[2, "reference_size"] == 60
    assert calibration_frame(cals, "fixed")["used"].tolist() == [False, True, False, True]


def test_book_calibration_table(tmp_path, monkeypatch):
    from compass import book, io, paths
    from compass.stages.ecda import calibration_frame

    monkeypatch.setenv("COMPASS_DATA_DIR", str(tmp_path))
    _, labels = reference()
    frame = calibration_frame({("T0", 60): cal.calibrate(labels, 12, 60, draws=200)}, "calibrated")
    io.write_csv(paths.ecda_calibration("uk"), frame)
    control = {"false_alarm_rate": 0.05, "ci_low": 0.03, "ci_high": 0.08, "draws": 400,
               "target": 0.05, "window": 60, "population": 172}
    io.write_json(paths.ecda_metrics("uk"), {"delta_used": float(frame.loc[0, "delta"]),
                                             "delta_mode": "calibrated", "no_drift_control": control})
    text = book.calibration_table(config.from_dict({"languages": {"targets": ["uk"]}, "ecda": {"language": "uk"}}))
    assert "used the calibrated rule" in text and "K = 12 clusters" in text
    assert f"{frame.loc[0, 'delta']:.4f} (median)" in text
    assert "fired 0.050 of the time [0.030, 0.080] (target 0.05)" in text
    header = [line for line in text.splitlines() if line.startswith("|")][0]
    assert header.count("|") - 1 <= 7 and "false alarms [95% CI]" in header
    assert "calibrated (used)" in text and "| fixed " in text
