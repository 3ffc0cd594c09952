"""compass.evaluation.stats against scipy, hand computations and planted effects (fast: a few seconds)."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from compass.evaluation.stats import (BASELINE_COLUMNS, GAIN_COLUMNS, MAX_EXACT_ITEMS, SUMMARY_COLUMNS,
                           PermutationResult, accuracy_summary, bootstrap_ci, cohens_d,
                           cohens_d_paired, compare_to_baselines, holm_bonferroni,
                           paired_bootstrap_ci, paired_permutation_test)


def _mean_diff(x, y, axis=-1):
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def _scipy_paired(a, b, alternative, n_resamples, seed=123):
    return st.permutation_test((a, b), _mean_diff, permutation_type="samples", vectorized=True,
                               n_resamples=n_resamples, alternative=alternative,
                               rng=np.random.default_rng(seed))


def _planted(n=200, p=0.6, flip=0.3, seed=0):
    """a: Bernoulli(p) correctness; b: a with `flip` of a's wrong answers turned right."""
    rng = np.random.default_rng(seed)
    a = (rng.random(n) < p).astype(int)
    wrong = np.flatnonzero(a == 0)
    b = a.copy()
    b[rng.choice(wrong, size=round(flip * wrong.size), replace=False)] = 1
    return a, b


# ---------------------------------------------------------------- permutation test


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_monte_carlo_matches_scipy(alternative):
    rng = np.random.default_rng(7)
    a = rng.normal(0.12, 1.0, 150)          # a true but modest effect: p around 0.1-0.3
    b = rng.normal(0.0, 1.0, 150)
    ours = paired_permutation_test(a, b, n_permutations=10_000, seed=1, alternative=alternative)
    ref = _scipy_paired(a, b, alternative, 9_999)
    assert ours.exact is False and ours.n_permutations == 10_000 and ours.n_items == 150
    assert ours.statistic == pytest.approx(np.mean(a - b), abs=1e-15)
    assert ours.statistic == pytest.approx(ref.statistic, abs=1e-12)
    assert 0.02 < ref.pvalue < 0.98  # a p-value where Monte Carlo error is visible at all
    assert abs(ours.p_value - ref.pvalue) < 0.02


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
@pytest.mark.parametrize("kind", ["float", "binary"])
def test_exact_equals_scipy_exact(alternative, kind):
    rng = np.random.default_rng(3)
    n = 11
    if kind == "float":
        a, b = rng.normal(0.4, 1.0, n), rng.normal(0.0, 1.0, n)
    else:  # 0/1 correctness: many ties in the null distribution
        a, b = (rng.random(n) < 0.7).astype(int), (rng.random(n) < 0.4).astype(int)
    ours = paired_permutation_test(a, b, alternative=alternative, exact=True)
    ref = _scipy_paired(a, b, alternative, np.inf)  # n_resamples >= 2**n -> scipy goes exact
    assert ref.null_distribution.size == 2 ** n
    assert ours.exact is True
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-12, abs=0)
    # p is the same whether or not zero differences are enumerated
    assert ours.n_permutations == 2 ** int(np.count_nonzero(np.asarray(a) - np.asarray(b)))


def test_exact_is_automatic_for_few_informative_items():
    a = np.array([1, 0, 0, 1, 0, 1, 0, 0, 1, 0] * 10)
    b = a.copy()
    b[[1, 12, 44]] = 1                      # three discordant items out of 100
    res = paired_permutation_test(b, a)
    assert res.exact and res.n_permutations == 8 and res.n_items == 100
    assert res.p_value == pytest.approx(2 / 8)  # +++ and --- are the extreme patterns
    assert paired_permutation_test(b, a, alternative="greater").p_value == pytest.approx(1 / 8)
    assert paired_permutation_test(b, a, exact=False).exact is False
    many = np.r_[np.ones(MAX_EXACT_ITEMS + 1), np.zeros(5)]
    with pytest.raises(ValueError, match="MAX_EXACT_ITEMS"):
        paired_permutation_test(many, np.zeros_like(many), exact=True)


def test_planted_effect_is_detected():
    a, b = _planted()
    res = paired_permutation_test(b, a)
    assert res.statistic > 0.05
    assert res.p_value < 0.01
    assert paired_permutation_test(b, a, alternative="greater").p_value < 0.01
    assert paired_permutation_test(b, a, alternative="less").p_value > 0.99


def test_identical_inputs_give_p_one():
    a, _ = _planted()
    for exact in (None, False, True):
        res = paired_permutation_test(a, a.copy(), exact=exact)
        assert res.p_value == 1.0 and res.statistic == 0.0
    # balanced disagreements (mean difference exactly 0) are not evidence either
    assert paired_permutation_test([1, 0, 1, 0], [0, 1, 0, 1]).p_value == 1.0


def test_p_value_is_never_zero():
    n_perm = 500
    a = np.ones(300)
    b = np.zeros(300)                       # the most extreme data possible
    res = paired_permutation_test(a, b, n_permutations=n_perm)
    assert res.p_value == pytest.approx(1 / (n_perm + 1))
    assert res.p_value > 0
    exact = paired_permutation_test(np.ones(20), np.zeros(20))
    assert exact.exact and exact.p_value == pytest.approx(2 / 2 ** 20) and exact.p_value > 0


def test_permutation_is_deterministic_by_seed():
    rng = np.random.default_rng(11)
    a, b = rng.normal(0.1, 1, 120), rng.normal(0, 1, 120)
    p1 = paired_permutation_test(a, b, n_permutations=2000, seed=5).p_value
    p2 = paired_permutation_test(a, b, n_permutations=2000, seed=5).p_value
    p3 = paired_permutation_test(a, b, n_permutations=2000,
                                 seed=np.random.default_rng(5)).p_value
    ps = {paired_permutation_test(a, b, n_permutations=2000, seed=s).p_value for s in range(6)}
    assert p1 == p2 == p3
    assert len(ps) > 1                      # the seed really drives the draws


def test_null_calibration():
    """Under H0 about 5% of tests reject at 0.05 (binary data, Monte Carlo)."""
    rng = np.random.default_rng(2024)
    reps = 300
    a = (rng.random((reps, 80)) < 0.6).astype(int)
    b = (rng.random((reps, 80)) < 0.6).astype(int)
    p = np.array([paired_permutation_test(a[i], b[i], n_permutations=999, seed=i,
                                          exact=False).p_value for i in range(reps)])
    assert 0.01 <= np.mean(p < 0.05) <= 0.10
    assert 0.4 < np.median(p) < 0.7


def test_result_type_and_input_errors():
    res = paired_permutation_test([1, 0, 1], [0, 0, 1])
    assert isinstance(res, PermutationResult) and res.n_items == 3
    with pytest.raises(ValueError, match=r"len\(a\)=3 but len\(b\)=4"):
        paired_permutation_test([1, 0, 1], [1, 0, 1, 1])
    with pytest.raises(ValueError, match="empty"):
        paired_permutation_test([], [])
    with pytest.raises(ValueError, match="non-finite"):
        paired_permutation_test([1.0, np.nan], [0.0, 1.0])
    with pytest.raises(ValueError, match="alternative"):
        paired_permutation_test([1, 0], [0, 0], alternative="bigger")
    with pytest.raises(ValueError, match=r"len\(a\)=2 but len\(b\)=1"):
        cohens_d_paired([1, 0], [1])
    with pytest.raises(ValueError, match=r"len\(a\)=5 but len\(b\)=3"):
        paired_bootstrap_ci(np.ones(5), np.ones(3))


# ---------------------------------------------------------------- effect sizes


def test_cohens_d_paired_by_hand_and_scipy():
    a = [1, 1, 1, 0, 1]
    b = [0, 1, 0, 0, 0]                     # d = [1, 0, 1, 0, 1]: mean 0.6, var (ddof=1) 0.3
    assert cohens_d_paired(a, b) == pytest.approx(0.6 / math.sqrt(0.3))
    assert cohens_d_paired(b, a) == pytest.approx(-0.6 / math.sqrt(0.3))
    rng = np.random.default_rng(0)
    x, y = rng.normal(0.5, 1, 40), rng.normal(0, 1, 40)
    t = st.ttest_rel(x, y).statistic        # d_z = t / sqrt(n)
    assert cohens_d_paired(x, y) == pytest.approx(t / math.sqrt(40), rel=1e-12)
    diff = x - y
    assert cohens_d_paired(x, y) == pytest.approx(diff.mean() / diff.std(ddof=1), rel=1e-12)


def test_cohens_d_pooled_by_hand_and_scipy():
    # means 4 and 2, variances 4 and 1 -> pooled var (2*4 + 2*1) / 4 = 2.5
    assert cohens_d([2, 4, 6], [1, 2, 3]) == pytest.approx(2 / math.sqrt(2.5))
    rng = np.random.default_rng(1)
    x, y = rng.normal(0.3, 1, 30), rng.normal(0, 2, 45)
    t = st.ttest_ind(x, y, equal_var=True).statistic  # t = d / sqrt(1/na + 1/nb)
    assert cohens_d(x, y) == pytest.approx(t * math.sqrt(1 / 30 + 1 / 45), rel=1e-12)
    # the pairing matters: d_z and pooled d differ on the same paired 0/1 data
    a, b = _planted(seed=3)
    assert cohens_d_paired(b, a) != pytest.approx(cohens_d(b, a), rel=0.05)


def test_cohens_d_zero_variance():
    assert cohens_d_paired([1, 1, 0], [1, 1, 0]) == 0.0
    assert cohens_d_paired([1, 1, 1], [0, 0, 0]) == math.inf
    assert cohens_d_paired([0.2, 0.3], [0.7, 0.8]) == -math.inf
    assert cohens_d([1, 1], [1, 1, 1]) == 0.0
    assert cohens_d([1, 1], [0, 0, 0]) == math.inf
    with pytest.raises(ValueError, match="at least 2"):
        cohens_d_paired([1], [0])


# ---------------------------------------------------------------- bootstrap


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_bootstrap_ci_equals_scipy(method):
    rng = np.random.default_rng(4)
    x = (rng.random(120) < 0.6).astype(float)
    ours = bootstrap_ci(x, confidence=0.9, n_resamples=3000, seed=9, method=method)
    ref = st.bootstrap((x,), np.mean, confidence_level=0.9, n_resamples=3000, method=method,
                       rng=np.random.default_rng(9)).confidence_interval
    assert ours == pytest.approx((ref.low, ref.high), rel=1e-12)
    assert ours[0] < x.mean() < ours[1]
    assert bootstrap_ci(x, seed=9, n_resamples=3000) == bootstrap_ci(x, seed=9, n_resamples=3000)


def test_bootstrap_ci_other_statistic():
    rng = np.random.default_rng(6)
    x = rng.normal(size=60)
    ours = bootstrap_ci(x, statistic=np.median, n_resamples=2000, seed=1)
    ref = st.bootstrap((x,), np.median, n_resamples=2000, method="percentile",
                       rng=np.random.default_rng(1)).confidence_interval
    assert ours == pytest.approx((ref.low, ref.high), rel=1e-12)


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_paired_bootstrap_equals_scipy_paired(method):
    a, b = _planted(n=150, seed=8)
    ours = paired_bootstrap_ci(b, a, n_resamples=3000, seed=2, method=method)
    ref = st.bootstrap((b.astype(float), a.astype(float)), _mean_diff, paired=True,
                       n_resamples=3000, method=method,
                       rng=np.random.default_rng(2)).confidence_interval
    assert ours == pytest.approx((ref.low, ref.high), rel=1e-9, abs=1e-12)
    assert 0 < ours[0] < np.mean(b - a) < ours[1]


def test_bootstrap_coverage_simulation():
    """A 95% CI of Bernoulli(0.6) accuracy from n=100 covers 0.6 in >= 90% of 200 samples."""
    rng = np.random.default_rng(12345)
    samples = (rng.random((200, 100)) < 0.6).astype(float)
    cis = np.array([bootstrap_ci(s, n_resamples=1000, seed=i) for i, s in enumerate(samples)])
    covered = (cis[:, 0] <= 0.6) & (0.6 <= cis[:, 1])
    assert covered.mean() >= 0.90
    assert covered.mean() < 1.0                    # not trivially wide
    assert np.all(cis[:, 1] - cis[:, 0] < 0.25)


@pytest.mark.parametrize("method", ["percentile", "bca", "basic"])
def test_bootstrap_degenerate_input(method, recwarn):
    assert bootstrap_ci(np.ones(50), method=method) == (1.0, 1.0)
    assert bootstrap_ci([0, 0, 0], method=method) == (0.0, 0.0)
    assert bootstrap_ci([0.7], method=method) == (0.7, 0.7)      # n = 1, scipy would refuse
    assert paired_bootstrap_ci(np.ones(30), np.zeros(30), method=method) == (1.0, 1.0)
    assert paired_bootstrap_ci([1, 0, 1], [1, 0, 1], method=method) == (0.0, 0.0)
    # a constant shift whose differences differ only by float rounding (-0.5 vs -0.5000000000000001)
    assert paired_bootstrap_ci([0.2, 0.3], [0.7, 0.8], method=method) == pytest.approx((-0.5, -0.5))
    assert len(recwarn) == 0


def test_bca_falls_back_to_percentile_when_undefined():
    x = np.r_[np.zeros(49), 1.0]            # the median of almost every resample is 0
    with pytest.warns(RuntimeWarning, match="BCa interval undefined") as record:
        ci = bootstrap_ci(x, statistic=np.median, method="bca", n_resamples=2000, seed=0)
    assert len(record) == 1                 # scipy's own warnings are not passed on
    assert ci == bootstrap_ci(x, statistic=np.median, method="percentile", n_resamples=2000,
                              seed=0)
    assert not any(map(math.isnan, ci))


def test_bootstrap_input_errors():
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci([1, 0, 1], confidence=95)
    with pytest.raises(ValueError, match="method"):
        bootstrap_ci([1, 0, 1], method="student")
    with pytest.raises(ValueError, match="1-D"):
        bootstrap_ci(np.ones((3, 2)))


# ---------------------------------------------------------------- Holm and tables


def test_holm_hand_example():
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> cummax
    adjusted = holm_bonferroni([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm_bonferroni([0.5, 0.6]), [1.0, 1.0])    # capped at 1
    np.testing.assert_allclose(holm_bonferroni([0.01, 0.01]), [0.02, 0.02])  # ties
    np.testing.assert_allclose(holm_bonferroni([0.2]), [0.2])
    assert holm_bonferroni([]).size == 0
    # Holm is never stricter than Bonferroni and never looser than the raw p-values
    p = np.random.default_rng(0).random(7) * 0.2
    h = holm_bonferroni(p)
    assert np.all(h >= p) and np.all(h <= np.minimum(1, 7 * p) + 1e-15)
    with pytest.raises(ValueError):
        holm_bonferroni([0.1, 1.5])


def _small_example():
    return {
        "zero_shot": [1, 0, 0, 1, 0, 1, 0, 0, 1, 0],   # 4/10
        "compass":   [1, 1, 0, 1, 1, 1, 0, 1, 1, 0],   # 7/10: three items flipped to right
        "random":    [0, 0, 0, 1, 0, 1, 0, 1, 1, 0],   # 4/10: one lost, one gained
    }


def test_accuracy_summary_known_example():
    df = accuracy_summary(_small_example(), reference="zero_shot", n_resamples=2000)
    assert list(df.index) == ["zero_shot", "compass", "random"] and df.index.name == "method"
    assert list(df.columns) == list(SUMMARY_COLUMNS) + list(GAIN_COLUMNS)
    assert df["n"].tolist() == [10, 10, 10]
    np.testing.assert_allclose(df["accuracy"], [0.4, 0.7, 0.4])
    assert df.loc["zero_shot", list(GAIN_COLUMNS)].isna().all()
    row = df.loc["compass"]
    assert row["gain_pp"] == pytest.approx(30.0)
    assert row["p_value"] == pytest.approx(2 / 8)      # exact: 3 discordant items, all +1
    assert row["cohens_dz"] == pytest.approx(0.3 / np.std([0, 1, 0, 0, 1, 0, 0, 1, 0, 0], ddof=1))
    low, high = paired_bootstrap_ci(_small_example()["compass"], _small_example()["zero_shot"],
                                    n_resamples=2000)
    assert (row["gain_ci_low_pp"], row["gain_ci_high_pp"]) == pytest.approx((100 * low, 100 * high))
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(
        bootstrap_ci(_small_example()["compass"], n_resamples=2000))
    assert df.loc["random", "gain_pp"] == pytest.approx(0.0)
    assert df.loc["random", "p_value"] == 1.0
    assert df.loc["random", "cohens_dz"] == 0.0
    assert all(df["ci_low"] <= df["accuracy"]) and all(df["accuracy"] <= df["ci_high"])


def test_accuracy_summary_without_reference_and_errors():
    df = accuracy_summary({"a": [1, 1, 0], "b": [True, False, False, False]}, n_resamples=500)
    assert list(df.columns) == list(SUMMARY_COLUMNS)
    np.testing.assert_allclose(df["accuracy"], [2 / 3, 1 / 4])
    with pytest.raises(ValueError, match=r"len\('b'\)=4 but len\('a'\)=3"):
        accuracy_summary({"a": [1, 1, 0], "b": [1, 0, 0, 0]}, reference="a")
    with pytest.raises(KeyError):
        accuracy_summary({"a": [1, 0]}, reference="zero_shot")
    with pytest.raises(ValueError):
        accuracy_summary({})


def test_compare_to_baselines_holm_column():
    rng = np.random.default_rng(21)
    base, compass = _planted(n=200, seed=21)
    correct = {"compass": compass, "zero_shot": base,
               "random": (rng.random(200) < 0.62).astype(int),
               "dsir": np.where(rng.random(200) < 0.9, compass, 1 - compass)}
    df = compare_to_baselines(correct, method="compass", n_resamples=1000, n_permutations=2000)
    assert list(df.index) == ["zero_shot", "random", "dsir"] and df.index.name == "baseline"
    assert list(df.columns) == list(BASELINE_COLUMNS)
    np.testing.assert_allclose(df["p_holm"], holm_bonferroni(df["p_value"].to_numpy()))
    assert all(df["p_holm"] >= df["p_value"])
    assert df.loc["zero_shot", "significant"] and df.loc["zero_shot", "p_holm"] < 0.01
    np.testing.assert_allclose(df["accuracy"], compass.mean())
    np.testing.assert_allclose(df.loc["zero_shot", "gain_pp"], 100 * (compass - base).mean())
    assert df["significant"].tolist() == (df["p_holm"] < 0.05).tolist()
    # an alpha between the raw and the Holm p-value: only Holm decides
    p_raw, p_adj = df.loc["zero_shot", ["p_value", "p_holm"]]
    assert p_adj > p_raw
    strict = compare_to_baselines(correct, alpha=(p_raw + p_adj) / 2, n_resamples=200,
                                  n_permutations=2000)
    assert not strict.loc["zero_shot", "significant"]
    sub = compare_to_baselines(correct, baselines=["random", "dsir"], n_resamples=500,
                               n_permutations=1000)
    assert list(sub.index) == ["random", "dsir"]
    with pytest.raises(KeyError):
        compare_to_baselines(correct, baselines=["nope"])
    with pytest.raises(ValueError):
        compare_to_baselines(correct, baselines=["compass"])
    with pytest.raises(ValueError, match=r"len\('short'\)=3 but len\('compass'\)=200"):
        compare_to_baselines({**correct, "short": [1, 0, 1]}, baselines=["short"])


def test_tables_are_deterministic():
    kw = dict(reference="zero_shot", n_resamples=500, n_permutations=500)
    pd.testing.assert_frame_equal(accuracy_summary(_small_example(), seed=3, **kw),
                                  accuracy_summary(_small_example(), seed=3, **kw))
