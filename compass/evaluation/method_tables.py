"""The tables every protocol's evaluation writes per method: accuracy with intervals and tests
against zero-shot, COMPASS against each baseline, and the per-pair likelihood columns."""
from __future__ import annotations

import pandas as pd

# per held-out pair and model: what the likelihood tables read
LIKELIHOOD_COLUMNS = [
    "id", "topic", "method", "seed", "answer_tokens", "answer_chars", "nll", "bpc"]


def per_method(predictions: pd.DataFrame, column: str) -> dict:
    """method -> per-item scores in id order (paired across methods)."""
    return {m: g.sort_values("id")[column].to_numpy() for m, g in predictions.groupby("method")}


def accuracy_tables(cfg, correct: dict, metric: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Accuracy of every method with CIs and tests against zero-shot, and COMPASS against each
    baseline (an empty frame without COMPASS): the statistics of both protocols."""
    from compass.evaluation import stats

    e = cfg.evaluation
    summary = stats.accuracy_summary(correct, reference="zero_shot", confidence=e.confidence,
                                     n_resamples=e.n_bootstrap, n_permutations=e.n_permutations,
                                     seed=cfg.seed).reset_index().assign(metric=metric)
    versus = pd.DataFrame()
    if "compass" in correct and len(correct) > 1:
        versus = stats.compare_to_baselines(
            correct, method="compass", baselines=[m for m in correct if m != "compass"],
            confidence=e.confidence, n_resamples=e.n_bootstrap, n_permutations=e.n_permutations,
            seed=cfg.seed).reset_index().assign(metric=metric)
    return summary, versus
