"""Statistics over items and training seeds (compass.evaluation.seeded) and the NLL tables that
use them."""
import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from compass.evaluation import likelihood, seeded

ALPHA = 0.05


def _band(n: int) -> tuple[float, float]:
    """The 99% binomial interval of the rejection rate of a test of size ALPHA over n runs."""
    low, high = st.binom.interval(0.99, n, ALPHA)
    return low / n, high / n


def _rejection_rate(pairs) -> float:
    return float(np.mean([seeded.interval(x, ref)[2] < ALPHA for x, ref in pairs]))


def _shares(seed: float, item: float, noise: float, n_seeds: int = 3, n_items: int = 40) -> dict:
    """size_and_power's SDs that give seed luck, the items' own differences and noise these
    shares of Var(mean difference) (0.01 in all)."""
    return {"seed_sd": np.sqrt(seed * 0.01 * n_seeds / 2), "item_sd": np.sqrt(item * 0.01 * n_items / 2),
            "noise_sd": np.sqrt(noise * 0.01 * n_seeds * n_items / 2)}


def test_a_constant_difference_has_a_point_interval_and_p_zero():
    x = np.full((3, 40), 2.0)
    assert seeded.interval(x, x + 0.5) == (-0.5, -0.5, 0.0)
    assert seeded.interval(x, x) == (0.0, 0.0, 1.0)
    low, high, p = seeded.interval(x)
    assert (low, high) == (2.0, 2.0) and np.isnan(p)


def test_one_seed_is_the_paired_t_test_over_items_and_one_item_the_t_test_over_seeds():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=60), rng.normal(size=60) + 0.3
    low, high, p = seeded.interval(a, b)
    test = st.ttest_rel(a, b)
    assert p == pytest.approx(test.pvalue, rel=1e-9)
    assert (low, high) == pytest.approx(tuple(test.confidence_interval()), rel=1e-9)
    x, ref = rng.normal(size=(4, 1)), rng.normal(size=(4, 1))
    assert seeded.interval(x, ref)[2] == pytest.approx(st.ttest_rel(x[:, 0], ref[:, 0]).pvalue)
    assert np.isnan(seeded.interval([[1.0]], [[2.0]])).all()


def test_without_item_effects_the_test_is_at_least_as_wide_as_the_t_test_on_seed_means():
    rng = np.random.default_rng(2)
    for _ in range(20):
        x, ref = rng.normal(size=(3, 30)), rng.normal(size=(3, 30))
        p_seeds = st.ttest_rel(x.mean(axis=1), ref.mean(axis=1)).pvalue
        assert seeded.interval(x, ref)[2] >= p_seeds - 1e-12


def test_a_one_seed_method_is_compared_at_every_seed_index_and_nothing_is_drawn():
    rng = np.random.default_rng(3)
    x, zero_shot = rng.normal(size=(3, 30)), rng.normal(size=30)
    assert seeded.interval(x, zero_shot) == seeded.interval(x, np.tile(zero_shot, (3, 1)))
    assert seeded.interval(x, zero_shot, n_resamples=50, seed=9) == seeded.interval(x, zero_shot)


def test_the_interval_excludes_zero_exactly_when_p_is_below_one_minus_confidence():
    rng = np.random.default_rng(4)
    for _ in range(200):
        x, ref = rng.normal(size=(3, 20)) + rng.normal(scale=0.5), rng.normal(size=(3, 20))
        low, high, p = seeded.interval(x, ref, confidence=0.9)
        assert (low > 0 or high < 0) == (p < 0.1)


def _seed_dominated(rng, seeds=3, items=40, seed_sd=0.3, item_sd=0.5, noise=0.1):
    """Two methods with no true difference whose training seeds shift every item alike (item
    difficulty shared: the pairing removes it)."""
    item = rng.normal(scale=item_sd, size=items)
    return (item + rng.normal(scale=seed_sd, size=(seeds, 1)) + rng.normal(scale=noise, size=(seeds, items)),
            item + rng.normal(scale=seed_sd, size=(seeds, 1)) + rng.normal(scale=noise, size=(seeds, items)))


def _item_dominated(rng, seeds=3, items=40, seed_sd=0.02, item_sd=0.5, noise=0.1):
    """Two methods with no true mean difference that differ item by item (each its own item
    effects, on a shared difficulty), with little seed luck."""
    difficulty = rng.normal(size=items)
    return tuple(difficulty + rng.normal(scale=seed_sd, size=(seeds, 1)) + rng.normal(scale=item_sd, size=items)
                 + rng.normal(scale=noise, size=(seeds, items)) for _ in range(2))


def _relabelled(rng, seeds=3, items=40, seed_sd=0.3, noise=0.1):
    """2 x seeds training seeds of ONE method (item difficulty, seed luck, noise), the first half
    called A, the second B."""
    runs = (rng.normal(size=items) + rng.normal(scale=seed_sd, size=(2 * seeds, 1))
            + rng.normal(scale=noise, size=(2 * seeds, items)))
    return runs[:seeds], runs[seeds:]


def test_seed_dominated_null_rejects_at_the_nominal_rate_where_an_item_only_test_is_fooled():
    rng = np.random.default_rng(7)
    pairs = [_seed_dominated(rng) for _ in range(2000)]
    items_only = np.mean([st.ttest_rel(x.mean(0), ref.mean(0)).pvalue < ALPHA for x, ref in pairs])
    assert items_only > 0.8  # seed luck read as a method effect (0.91)
    low, high = _band(len(pairs))
    assert low <= _rejection_rate(pairs) <= high  # 0.051 (the former bootstrap: 0.123)


@pytest.mark.parametrize("items", [20, 80])
def test_item_dominated_null_rejects_at_the_nominal_rate(items):
    rng = np.random.default_rng(7)
    pairs = [_item_dominated(rng, items=items) for _ in range(2000)]
    low, high = _band(len(pairs))
    assert low <= _rejection_rate(pairs) <= high  # 0.059 / 0.051 (the bootstrap: 0.081 / 0.052)


def test_a_method_against_a_relabelled_copy_of_itself_rejects_at_the_nominal_rate():
    rng = np.random.default_rng(7)
    pairs = [_relabelled(rng) for _ in range(2000)]
    low, high = _band(len(pairs))
    assert low <= _rejection_rate(pairs) <= high  # 0.048 (the bootstrap: 0.124)


@pytest.mark.parametrize("seed,item,noise", [(0.97, 0.03, 0.0), (0.9, 0.1, 0.0), (0.7, 0.0, 0.3),
                                             (0.5, 0.3, 0.2)])
def test_where_neither_factor_alone_is_exact_the_test_is_not_liberal(seed, item, noise):
    """Between the extremes the test may be conservative, never above its level beyond chance
    (Satterthwaite's df alone: up to 0.077 here; the bootstrap: up to 0.13)."""
    result = seeded.size_and_power(3, 40, effect=0.0, simulations=4000, seed=1,
                                   **_shares(seed, item, noise))
    assert result["false_positive_rate"] <= _band(4000)[1]


def test_a_planted_difference_is_found():
    """Seed-dominated: 5 seed SDs (per method) found in 0.86 of runs, 3 in 0.52, 0.5 in 0.06
    (3 seeds cannot tell a small difference from seed luck); item-dominated: 0.6 item SDs
    (per method), 0.715."""
    seedy = {"seed_sd": 0.3, "item_sd": 0.0, "noise_sd": 0.1, "simulations": 2000, "seed": 2}
    power = {k: seeded.size_and_power(3, 40, effect=k * 0.3, **seedy)["power"] for k in (0.5, 3, 5)}
    assert power[5] >= 0.75 and power[0.5] < power[3] < power[5]
    itemy = seeded.size_and_power(3, 40, effect=0.3, seed_sd=0.02, item_sd=0.5, noise_sd=0.1,
                                  simulations=2000, seed=2)
    assert itemy["power"] >= 0.6
    assert _band(2000)[0] <= itemy["false_positive_rate"] <= _band(2000)[1]


def test_seeds_that_cannot_be_paired_by_index_are_not_liberal():
    rng = np.random.default_rng(5)
    pairs = [(rng.normal(scale=0.3, size=(3, 1)) + rng.normal(scale=0.1, size=(3, 40)),
              rng.normal(scale=0.3, size=(5, 1)) + rng.normal(scale=0.1, size=(5, 40))) for _ in range(1000)]
    assert _rejection_rate(pairs) <= _band(1000)[1]


def test_size_and_power_is_deterministic_fast_and_is_the_interval_test():
    kw = {"effect": 0.9, "seed_sd": 0.3, "item_sd": 0.1, "noise_sd": 0.1, "simulations": 1000,
          "seed": 0}
    start = time.perf_counter()
    result = seeded.size_and_power(3, 80, **kw)
    assert time.perf_counter() - start < 2.0
    assert result == seeded.size_and_power(3, 80, **kw)
    assert set(result) == {"false_positive_rate", "fp_ci_low", "fp_ci_high", "power", "simulations"}
    assert result["fp_ci_low"] <= result["false_positive_rate"] <= result["fp_ci_high"]
    rng = np.random.default_rng(6)
    x, ref = (seeded._runs(rng, 300, 3, 30, 0.1, 0.1, 0.2) for _ in range(2))
    p = np.array([seeded.interval(a, b)[2] for a, b in zip(x, ref)])
    assert np.array_equal(seeded._rejections(x, ref, ALPHA), p < ALPHA)


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
