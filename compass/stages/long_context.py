"""Stage `long_context`: OneRuler-style needle-in-a-haystack and common-word tasks for one
(language, base model), scored for zero-shot and every adapter on the same seeded samples.

The haystack is the language's own non-test text (its E_t and existing train pairs), so the
benchmark never shows the model a test item. A language OneRuler has no templates for gets an
empty table and a note, not a failed pipeline."""
from __future__ import annotations

import pandas as pd

from compass import data as data_mod
from compass import io, paths
from compass.stages.data import read_language

SUMMARY_COLUMNS = ["method", "task", "length", "score", "n"]


def haystack_texts(lang: str) -> list[str]:
    splits, _ = read_language(lang)
    keep = set(splits.loc[splits["split"] != "test", "id"])
    return [text for p in data_mod.read_pool() if p["id"] in keep
            for text in (p["prompt"], p["response"])]


def _no_scores(lang: str, model_name: str, note: str) -> dict:
    """An empty table and a metrics note: nothing of this (language, model) could be scored."""
    empty = pd.DataFrame(columns=SUMMARY_COLUMNS)
    io.write_csv(paths.long_context_dir(lang, model_name) / "summary.csv", empty)
    metrics = {"language": lang, "model": model_name, "samples": 0, "note": note}
    io.write_json(paths.long_context_metrics(lang, model_name), metrics)
    return {"summary": empty, "metrics": metrics, "predictions": pd.DataFrame()}


def run_long_context(cfg, lang: str, model_name: str, show_progress_bar: bool = True) -> dict:
    from compass.evaluation import longcontext
    from compass.training import models
    from compass.training.adapters import AdapterRegistry

    lc = cfg.long_context
    out = paths.long_context_dir(lang, model_name)
    if lang not in longcontext.LANGUAGES:
        note = (f"OneRuler has no prompt templates for {lang!r} (it covers "
                f"{', '.join(longcontext.LANGUAGES)}): no long-context scores")
        return _no_scores(lang, model_name, note)
    model, tokenizer = models.load(model_name, trust_remote_code=cfg.train.trust_remote_code,
                                   dtype=cfg.train.dtype, model_sources=cfg.train.model_sources)
    answer = max(lc.max_new_tokens, lc.cwe_max_new_tokens)
    window = getattr(model.config, "max_position_embeddings", None)
    lengths = [n for n in lc.lengths if not window or n + answer <= window]
    skipped = [n for n in lc.lengths if n not in lengths]
    note = (f"lengths {skipped} do not fit {model_name}'s {window}-token context with the answer: "
            "not scored" if skipped else "")
    if not lengths:
        return _no_scores(lang, model_name, note)
    samples = longcontext.make_samples(tokenizer, haystack_texts(lang), lang, lc.tasks, lengths,
                                       lc.samples_per_task, cfg.seed)

    budget = {task: lc.cwe_max_new_tokens if task == "cwe" else lc.max_new_tokens
              for task in lc.tasks}

    def run(method, current):
        return longcontext.evaluate(current, tokenizer, samples, max_new_tokens=budget,
                                    batch_size=lc.batch_size,
                                    show_progress_bar=show_progress_bar).assign(method=method)

    frames = [run("zero_shot", model)]
    methods = list(cfg.train.methods)
    registry = AdapterRegistry(model_name)
    with_adapters = registry.attach(model, [(lang, m) for m in methods])
    for method in methods:
        registry.activate(with_adapters, lang, method)
        frames.append(run(method, with_adapters))
    predictions = pd.concat(frames, ignore_index=True)
    summary = longcontext.summary(predictions, by=("method", "task", "length"))[SUMMARY_COLUMNS]
    io.write_jsonl(out / "samples.jsonl", samples)
    io.write_csv(out / "predictions.csv", predictions)
    io.write_csv(out / "summary.csv", summary)
    metrics = {"language": lang, "model": model_name, "samples": len(samples),
               "mean_score": predictions.groupby("method")["score"].mean().round(4).to_dict()}
    if note:
        metrics["note"] = note
    io.write_json(paths.long_context_metrics(lang, model_name), metrics)
    return {"summary": summary, "metrics": metrics, "predictions": predictions}
