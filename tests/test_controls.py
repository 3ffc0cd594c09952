"""The instruments' controls: each reports no effect at its nominal rate where there is none, and
finds a planted effect of known size."""
import numpy as np
import pandas as pd

from compass.continual.controls import drift_null
from compass.evaluation.controls import gap_controls, seeded_controls


def test_drift_null_fires_at_the_target_rate_on_a_population_without_drift():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.full(14, 2.0))
    population = rng.choice(14, size=306, p=p)  # the size of the tiny stream's T0 population
    control = drift_null(population, 14, 60, 0.05, draws=300, n_permutations=400, seed=2)
    assert control["ci_low"] <= 0.05 <= control["ci_high"], control
    assert control["population"] == 306 and control["draws"] == 300


def _scores(rng, n=60, seeds=3, gap_effect=0.0):
    ids = [f"i{i:03d}" for i in range(n)]
    gap = np.arange(n) % 2 == 0
    item = rng.normal(2.0, 0.4, size=n)
    rows = []
    for method, shift in (("zero_shot", 0.0), ("random", -0.05), ("compass", -0.05)):
        for s in range(1 if method == "zero_shot" else seeds):
            luck = rng.normal(0, 0.02)
            for i, g in zip(range(n), gap):
                planted = gap_effect if method == "compass" and g else 0.0
                rows.append({"id": ids[i], "method": method, "seed": s,
                             "nll": item[i] + shift + luck - planted + rng.normal(0, 0.1)})
    return pd.DataFrame(rows), pd.DataFrame({"id": ids, "cluster": 0, "gap": gap})


def test_gap_controls_reject_at_their_level_and_find_the_planted_drop():
    predictions, assignment = _scores(np.random.default_rng(1))
    out = gap_controls(predictions, assignment, "compass", "random", draws=300, n_permutations=300)
    assert out["fp_ci_low"] <= 0.05 <= out["fp_ci_high"], out
    assert out["power"] > 0.9 and out["planted"] == 0.1  # 0.1 nats with item noise 0.1


def test_seeded_controls_use_this_runs_shape():
    predictions, _ = _scores(np.random.default_rng(2))
    out = seeded_controls(predictions, "compass", "random", simulations=500)
    assert (out["seeds"], out["items"]) == (3, 60) and out["baseline"] == "random"
    # the differences' item SD is the noise's (item difficulty cancels in the pairing), not 0.4
    assert out["difference_item_sd"] < 0.2
    assert out["fp_ci_low"] <= 0.05 and out["false_positive_rate"] <= 0.08
    assert 0 <= out["power_0.02"] <= out["power_0.05"] <= 1
    assert seeded_controls(predictions[predictions["seed"] == 0], "compass") == {}  # one seed
