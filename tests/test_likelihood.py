"""NLL / bpc tables: the loss metric's columns and direction, the gap / covered split (fast)."""
import numpy as np
import pandas as pd
import pytest

from compass.evaluation import likelihood, stats

N = 60
FAST = dict(n_resamples=500, n_permutations=2000, seed=0)


def _predictions(seed=0):
    """zero_shot; compass 0.3 nats/token lower on every item (plus noise); `same` = compass."""
    rng = np.random.default_rng(seed)
    base = rng.normal(3.0, 0.5, N)
    compass = base - 0.3 + rng.normal(0, 0.05, N)
    ids = [f"i{j:03d}" for j in range(N)]
    frames = []
    for method, nll in (("zero_shot", base), ("compass", compass), ("same", compass.copy())):
        order = rng.permutation(N)  # rows in any order: tables pair items by id
        frames.append(pd.DataFrame({"id": np.array(ids)[order], "method": method,
                                    "nll": nll[order], "bpc": nll[order] / 2.5}))
    assignment = pd.DataFrame({"id": ids, "cluster": np.arange(N) % 3, "gap": np.arange(N) % 3 == 0})
    return pd.concat(frames, ignore_index=True), assignment


def test_mean_loss_metric_names_and_direction():
    m = stats.MEAN_LOSS
    assert m.summary_columns == ("n", "mean", "ci_low", "ci_high")
    assert m.gain_columns == ("change", "change_ci_low", "change_ci_high", "p_value", "cohens_dz")
    assert "baseline_mean" in m.baseline_columns
    assert m.alternative("better") == "less" and stats.ACCURACY.alternative("better") == "greater"
    assert stats.ACCURACY.baseline_columns == stats.BASELINE_COLUMNS  # accuracy tables unchanged
    with pytest.raises(ValueError):
        m.alternative("lower")


def test_clearly_better_method_small_p_identical_methods_p_one():
    predictions, assignment = _predictions()
    summary, versus = likelihood.likelihood_tables(predictions, assignment, **FAST)
    assert set(summary["subset"]) == {"all", "gap", "covered"} == set(versus["subset"])
    assert set(summary["metric"]) == {"nll", "bpc"}
    rows = versus[(versus["metric"] == "nll") & (versus["subset"] == "all")].set_index("baseline")
    better = rows.loc["zero_shot"]
    assert better["change"] == pytest.approx(-0.3, abs=0.03)  # lower loss: negative change
    assert better["change_ci_high"] < 0 and better["cohens_dz"] < -2
    assert better["p_value"] <= 2 / 2001 and better["significant"]
    same = rows.loc["same"]
    assert same["p_value"] == 1.0 and same["change"] == 0 and same["cohens_dz"] == 0
    assert not same["significant"]
    # against zero-shot, per method
    s = summary[(summary["metric"] == "nll") & (summary["subset"] == "all")].set_index("method")
    assert s.loc["zero_shot", ["change", "p_value"]].isna().all()
    assert s.loc["compass", "p_value"] < 0.01 and s.loc["compass", "ci_low"] < s.loc["compass", "mean"]
    assert likelihood.means(summary)["compass"] == pytest.approx(s.loc["compass", "mean"])


def test_one_sided_better_follows_the_loss_direction():
    predictions, _ = _predictions()
    scores = likelihood.per_method(predictions, "nll", sorted(predictions["id"].unique()))
    kw = dict(metric=stats.MEAN_LOSS, **FAST)
    better = stats.compare_to_baselines(scores, baselines=["zero_shot"], alternative="better", **kw)
    worse = stats.compare_to_baselines(scores, baselines=["zero_shot"], alternative="greater", **kw)
    assert better.loc["zero_shot", "p_value"] < 0.01 < 0.99 < worse.loc["zero_shot", "p_value"]


def test_gap_and_covered_split_the_items():
    predictions, assignment = _predictions()
    summary, _ = likelihood.likelihood_tables(predictions, assignment, **FAST)
    n = summary[summary["method"] == "compass"].set_index(["metric", "subset"])["n"]
    assert n[("nll", "gap")] == 20 and n[("nll", "covered")] == 40 and n[("nll", "all")] == N
    gap_ids = assignment.loc[assignment["gap"], "id"]
    want = predictions[(predictions["method"] == "compass") & predictions["id"].isin(gap_ids)]["nll"].mean()
    got = summary[(summary["metric"] == "nll") & (summary["subset"] == "gap")
                  & (summary["method"] == "compass")]["mean"].iloc[0]
    assert got == pytest.approx(want)


def test_no_gap_items_and_missing_assignment():
    predictions, assignment = _predictions()
    summary, versus = likelihood.likelihood_tables(predictions, assignment.assign(gap=False), **FAST)
    assert "gap" not in set(summary["subset"]) and "gap" not in set(versus["subset"])
    with pytest.raises(KeyError, match="rerun the sampling stage"):
        likelihood.likelihood_tables(predictions, assignment.iloc[1:], **FAST)
