"""Statistics over items and training seeds (compass.evaluation.seeded) and the NLL tables that
use them."""
import numpy as np
import pandas as pd
import pytest

from compass.evaluation import likelihood, seeded, stats


def test_a_constant_difference_has_a_point_interval_and_a_small_p():
    x = np.full((3, 40), 2.0)
    ref = np.full((3, 40), 2.5)
    low, high, p = seeded.interval(x, ref, n_resamples=2000, seed=0)
    assert low == pytest.approx(-0.5) and high == pytest.approx(-0.5)
    assert p == pytest.approx(2 / 2001)


def test_deterministic_given_the_seed_and_one_seed_is_a_paired_item_bootstrap():
    rng = np.random.default_rng(1)
    x, ref = rng.normal(size=(3, 30)), rng.normal(size=(3, 30))
    assert seeded.interval(x, ref, seed=4) == seeded.interval(x, ref, seed=4)
    a, b = rng.normal(size=60), rng.normal(size=60) + 0.3
    low, high, _ = seeded.interval(a, b, n_resamples=20_000, seed=0)
    ref_low, ref_high = stats.paired_bootstrap_ci(a, b, n_resamples=20_000, seed=0)
    assert low == pytest.approx(ref_low, abs=0.03) and high == pytest.approx(ref_high, abs=0.03)


def _null_runs(n_runs=150, seeds=3, items=40, seed_sd=0.3, item_sd=0.5):
    """Two methods with no true difference whose training seeds shift every item alike."""
    rng = np.random.default_rng(7)
    for _ in range(n_runs):
        item = rng.normal(scale=item_sd, size=items)
        yield (item + rng.normal(scale=seed_sd, size=(seeds, 1)) + rng.normal(scale=0.1, size=(seeds, items)),
               item + rng.normal(scale=seed_sd, size=(seeds, 1)) + rng.normal(scale=0.1, size=(seeds, items)))


def test_seed_variation_widens_the_test_where_an_item_only_test_is_fooled():
    items_only = seeded_false = 0
    for x, ref in _null_runs():
        test = stats.paired_permutation_test(x.mean(0), ref.mean(0), n_permutations=500, seed=0)
        items_only += test.p_value < 0.05
        seeded_false += seeded.interval(x, ref, n_resamples=1000, seed=0)[2] < 0.05
    assert items_only / 150 > 0.8  # seed luck read as a method effect (0.92)
    assert seeded_false / 150 < 0.15  # 3 seeds estimate the seed variance poorly (0.13, not 0.05)


def test_seed_deviations_are_scaled_to_an_unbiased_variance():
    x = np.array([[1.0, 4.0], [3.0, 2.0]])
    adjusted = seeded.unbiased_seeds(x)
    assert np.allclose(adjusted.mean(0), x.mean(0))
    assert np.allclose(adjusted.var(0), x.var(0, ddof=1))  # resampling sees var with ddof=1
    assert np.array_equal(seeded.unbiased_seeds(x[:1]), x[:1])


def test_seeds_better_counts_seed_indices():
    x = np.array([[1.0, 1.0], [3.0, 3.0], [1.0, 1.0]])
    ref = np.full((3, 2), 2.0)
    assert seeded.seeds_better(x, ref, higher_is_better=False) == "2/3"
    assert seeded.seeds_better(x, ref, higher_is_better=True) == "1/3"
    assert seeded.seeds_better(x, ref[:2], higher_is_better=True) == ""


def _per_pair(seeds_of: dict, n=12, shift=None):
    rng = np.random.default_rng(0)
    rows = []
    for method, seeds in seeds_of.items():
        for s in range(seeds):
            for i in range(n):
                nll = 3.0 + 0.1 * i + (shift or {}).get(method, 0.0) + rng.normal(scale=0.01)
                rows.append({"id": f"x{i:02d}", "method": method, "seed": s, "nll": nll, "bpc": nll * 2})
    return pd.DataFrame(rows)


def _assignment(n=12):
    return pd.DataFrame({"id": [f"x{i:02d}" for i in range(n)], "cluster": 0,
                         "gap": [i % 2 == 0 for i in range(n)]})


def test_likelihood_tables_use_items_and_seeds_when_methods_have_several_seeds():
    frame = _per_pair({"zero_shot": 1, "random": 3, "compass": 3}, shift={"compass": -0.2, "random": -0.1})
    summary, versus = likelihood.likelihood_tables(frame, _assignment(), n_resamples=500, n_permutations=200)
    row = summary[(summary["metric"] == "nll") & (summary["subset"] == "all")].set_index("method")
    assert row.loc["compass", "seeds"] == 3 and row.loc["zero_shot", "seeds"] == 1
    assert row.loc["compass", "change"] == pytest.approx(-0.2, abs=0.02)
    vs = versus[(versus["metric"] == "nll") & (versus["subset"] == "all")].set_index("baseline")
    assert vs.loc["random", "seeds_better"] == "3/3" and vs.loc["random", "p_holm"] < 0.05


def test_one_seed_keeps_the_item_level_tables():
    frame = _per_pair({"zero_shot": 1, "random": 1, "compass": 1})
    summary, versus = likelihood.likelihood_tables(frame, _assignment(), n_resamples=300, n_permutations=200)
    assert "seeds" not in summary.columns and "seeds_better" not in versus.columns
    plain, _ = likelihood.likelihood_tables(frame.drop(columns="seed"), _assignment(), n_resamples=300,
                                            n_permutations=200)
    pd.testing.assert_frame_equal(summary, plain)


def test_by_step_table_compares_compass_with_each_method_at_each_step():
    rows = []
    for step, methods in ((0, {"zero_shot": 0.0}), (4, {"random": -0.1, "compass": -0.15}),
                          (8, {"random": -0.2, "compass": -0.3})):
        for method, shift in methods.items():
            rows += [{"id": f"x{i:02d}", "method": method, "step": step, "nll": 3.0 + 0.1 * i + shift}
                     for i in range(12)]
    table = likelihood.by_step_table(pd.DataFrame(rows), _assignment(), n_resamples=300)
    at = table[table["subset"] == "all"].set_index(["method", "step"])
    assert set(table.loc[table["step"] == 0, "method"]) == {"zero_shot"}
    assert at.loc[("random", 4), "compass_minus"] == pytest.approx(-0.05)
    assert at.loc[("random", 8), "compass_minus"] == pytest.approx(-0.1)
    assert np.isnan(at.loc[("compass", 8), "compass_minus"])
    assert set(table["subset"]) == {"all", "gap", "covered"}
