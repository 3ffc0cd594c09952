"""The calibrated JS drift trigger: its false-alarm rate, its detection rate, its determinism."""
import numpy as np
import pytest
from scipy import stats as sps

from compass import config
from compass.continual import calibration as cal
from compass.continual.drift import js_divergence, occupancy


def reference(k=12, n=300, seed=0):
    """A known cluster distribution p and a reference sample of it."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(k, 2.0))
    return p, rng.choice(k, size=n, p=p)


def test_vectorised_js_is_the_monitors_js():
    rng = np.random.default_rng(1)
    a, b = rng.multinomial(60, np.full(8, 1 / 8), size=20), rng.multinomial(200, np.full(8, 1 / 8), size=20)
    a[:, 0] = 0  # empty bins: smoothing keeps them finite, as in the monitor
    got = cal.js_rows(cal._occupancies(a, 0.5), cal._occupancies(b, 0.5))
    labels = lambda counts: np.repeat(np.arange(8), counts)  # noqa: E731
    want = [js_divergence(occupancy(labels(x), 8), occupancy(labels(y), 8)) for x, y in zip(a, b)]
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_calibrated_delta_achieves_its_false_alarm_rate():
    """Held-out no-drift draws (bootstrap of the reference) fire at the target rate: 0.05 lies in
    their 99% Clopper-Pearson interval."""
    _, labels = reference()
    c = cal.calibrate(labels, 12, 60, false_alarm_rate=0.05, draws=4000, seed=3)
    _, lo, hi = cal.rate_ci(c.held_out_js > c.delta, confidence=0.99)
    assert lo <= 0.05 <= hi
    # the paper's fixed 0.05 sits inside this no-drift noise: it fires far more often
    assert np.mean(c.held_out_js > cal.PAPER_DELTA) > 0.08


def test_bootstrap_of_the_reference_stands_in_for_the_true_distribution():
    """Against draws from the *true* p each reference was sampled from, the calibrated delta
    fires near the target: the plug-in bootstrap (p_hat for p) is approximate, one reference at
    a time the true rate ranged 3.8-6.1% over 20 seeds (mean 5.3%), so this pools ten references
    and allows 3.5-7%."""
    fired = total = 0
    for seed in range(10):
        p, labels = reference(seed=seed)
        c = cal.calibrate(labels, 12, 60, draws=2000, seed=seed)
        truth = cal.draw_js(p, len(labels), 60, 2000, np.random.default_rng(100 + seed))
        fired, total = fired + int(np.sum(truth > c.delta)), total + len(truth)
    ci = sps.binomtest(fired, total).proportion_ci(0.99, method="exact")
    assert 0.035 <= ci.low and ci.high <= 0.07, (fired / total, ci)


def test_detection_grows_with_shift_strength():
    _, labels = reference()
    table = cal.calibrate(labels, 12, 60, seed=0).table()
    for _, row in table.iterrows():
        rates = [row[f"detection_{s:g}"] for s in cal.STRENGTHS]
        assert rates == sorted(rates), rates
        assert rates[-1] > 0.95 and rates[0] < 0.5
    assert set(table["rule"]) == {"calibrated", "fixed"}
    assert (table["false_alarm_ci_low"] <= table["false_alarm"]).all()
    assert (table["false_alarm"] <= table["false_alarm_ci_high"]).all()


def test_calibration_is_deterministic_and_depends_on_the_reference():
    _, labels = reference()
    a, b = cal.calibrate(labels, 12, 60, seed=5), cal.calibrate(labels, 12, 60, seed=5)
    assert a.delta == b.delta and np.array_equal(a.held_out_js, b.held_out_js)
    # a bigger window is less noisy, a concentrated reference occupies fewer clusters: both lower delta
    assert cal.calibrate(labels, 12, 240, seed=5).delta < a.delta
    concentrated = np.where(labels < 3, labels, 0)
    assert cal.calibrate(concentrated, 12, 60, seed=5).delta < a.delta


def test_too_few_draws_for_the_rate_is_named():
    _, labels = reference()
    with pytest.raises(ValueError, match="10 calibration draws cannot calibrate a false-alarm rate of 0.01"):
        cal.calibrate(labels, 12, 60, false_alarm_rate=0.01, draws=10)


def test_calibrate_for_compares_with_the_configured_or_the_paper_delta():
    _, labels = reference()
    fixed = cal.calibrate_for(config.from_dict({"ecda": {"delta": 0.08}}).ecda, labels, 12, 60, 0)
    assert fixed.fixed_delta == 0.08
    auto = cal.calibrate_for(config.from_dict({}).ecda, labels, 12, 60, 0)
    assert auto.fixed_delta == cal.PAPER_DELTA and auto.draws == 2000


def test_stage_calibration_frame_marks_the_rule_used_with_t0_first():
    from compass.stages.ecda import calibration_frame

    _, labels = reference()
    cals = {("ecda@T2", 60): cal.calibrate(labels[:60], 12, 60), ("T0", 60): cal.calibrate(labels, 12, 60)}
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
    cals = {("T0", 60): cal.calibrate(labels, 12, 60), ("ecda@T2", 60): cal.calibrate(labels[:60], 12, 60)}
    frame = calibration_frame(cals, "calibrated")
    io.write_csv(paths.ecda_calibration("uk"), frame)
    io.write_json(paths.ecda_metrics("uk"), {"delta_used": float(frame.loc[0, "delta"]),
                                             "delta_mode": "calibrated"})
    text = book.calibration_table(config.from_dict({"languages": {"targets": ["uk"]}, "ecda": {"language": "uk"}}))
    print(text)
    assert f"used `delta` = {frame.loc[0, 'delta']:.4f} (calibrated)" in text
    assert "`ecda@T2`" in text and "K = 12 clusters" in text
    header = [line for line in text.splitlines() if line.startswith("|")][0]
    assert header.count("|") - 1 <= 7 and "false alarms [95% CI]" in header
    assert "calibrated (used)" in text and "| fixed " in text
