"""Stage `long_context`: OneRuler-style needle-in-a-haystack and common-word tasks for one
(language, base model), scored for zero-shot and every adapter on the same seeded samples
(compass.evaluation.long_context_language); a language or model that cannot be scored gets an
empty table and a note."""
from __future__ import annotations

import pandas as pd

from compass import io, paths
from compass.evaluation.long_context_language import (SUMMARY_COLUMNS, books_source,
                                                       repetition_stats, score_language)

__all__ = ["SUMMARY_COLUMNS", "books_source", "repetition_stats", "run_long_context"]


def _no_scores(lang: str, model_name: str, note: str) -> dict:
    """An empty table and a metrics note: nothing of this (language, model) could be scored."""
    empty = pd.DataFrame(columns=SUMMARY_COLUMNS)
    io.write_csv(paths.long_context_dir(lang, model_name) / "summary.csv", empty)
    metrics = {"language": lang, "model": model_name, "samples": 0, "note": note}
    io.write_json(paths.long_context_metrics(lang, model_name), metrics)
    return {"summary": empty, "metrics": metrics, "predictions": pd.DataFrame()}


def run_long_context(cfg, lang: str, model_name: str, show_progress_bar: bool = True) -> dict:
    """The long-context stage for one (language, model): samples, predictions, summary and metrics
    written, or a note of why nothing was scored."""
    scored = score_language(cfg, lang, model_name, show_progress_bar)
    if "samples" not in scored:
        return _no_scores(lang, model_name, scored["note"])
    out = paths.long_context_dir(lang, model_name)
    io.write_jsonl(out / "samples.jsonl", scored["samples"])
    io.write_csv(out / "predictions.csv", scored["predictions"])
    io.write_csv(out / "summary.csv", scored["summary"])
    io.write_json(paths.long_context_metrics(lang, model_name), scored["metrics"])
    return {k: scored[k] for k in ("summary", "metrics", "predictions")}
