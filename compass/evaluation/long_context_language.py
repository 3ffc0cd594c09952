"""The long_context stage's work: OneRuler-style needle-in-a-haystack and common-word tasks for
one (language, base model), scored for zero-shot and every adapter on the same seeded samples.

The haystack is a book no adapter saw: OneRuler's book for the language (a novel, distributed in
OneRuler's MIT-licensed repository), read in order from its start, as OneRuler does. The
adapters train on prompt/response pairs and selected multilingual data, never on these books (the
base model may have read them in pretraining, the same for zero-shot and every adapter).
``long_context.books``
is "bundled" (the first ~16 KB of each book, carried in the package: contexts up to a few
thousand tokens) or a folder of OneRuler's full books (``<folder>/<lang>/*.txt`` or
``<folder>/<lang>.txt``; relative to the repository). When a context needs more text than the
book holds, the book restarts; the repetition factor (haystack text / book length) is in
samples.jsonl, predictions.csv, summary.csv (largest per method, task and length) and the
metrics (max and mean), and a note says when the book was repeated.

Scored by OneRuler's rules (``long_context.scoring: oneruler``) or the variant that reads the
<Answer> span first and matches "none" case-insensitively as a word (``answer_tag``): see
``compass.evaluation.longcontext``. A
language OneRuler has no templates for, or no bundled book for when the NIAH tasks need one, gets
an empty table and a note, not a failed pipeline; a books folder without the language's book
fails with its name."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from compass import paths

SUMMARY_COLUMNS = ["method", "task", "length", "score", "n", "repetition"]


def books_source(cfg) -> str | Path:
    """``long_context.books``: "bundled", or a folder (a relative one is under the repository)."""
    from compass.evaluation import longcontext

    books = cfg.long_context.books
    if books == longcontext.BUNDLED:
        return longcontext.BUNDLED
    folder = Path(books).expanduser()
    return folder if folder.is_absolute() else paths.ROOT / folder


def _shown(path: Path) -> str:
    """A book file as the metrics name it: relative to the repository when inside it."""
    return str(path.relative_to(paths.ROOT)) if path.is_relative_to(paths.ROOT) else str(path)


def repetition_stats(samples: list[dict]) -> dict | None:
    """Max and mean book repetition over the NIAH samples (None when there are none)."""
    reps = [s["repetition"] for s in samples if s.get("repetition") is not None]
    if not reps:
        return None
    return {"max": round(max(reps), 4), "mean": round(sum(reps) / len(reps), 4)}


def _repetition_note(lang: str, samples: list[dict], books) -> str:
    """Says at which lengths the haystack needed the book more than once ("" when none did)."""
    repeated = [s for s in samples if (s.get("repetition") or 0) > 1]
    if not repeated:
        return ""
    lengths = sorted({s["length"] for s in repeated})
    top = max(s["repetition"] for s in repeated)
    return (f"the haystack repeats {lang}'s book up to {top:.2f} times at lengths {lengths} "
            f"(long_context.books: {books})")


def score_language(cfg, lang: str, model_name: str, show_progress_bar: bool = True) -> dict:
    """{"note": why} when nothing of this (language, model) can be scored; else the samples,
    every method's predictions, the summary table and the metrics."""
    from functools import partial

    from compass.evaluation import longcontext
    from compass.evaluation.sweep import AdapterSweep
    from compass.training import chat, context_window, models
    from compass.training.adapters import AdapterRegistry

    lc = cfg.long_context
    if lang not in longcontext.LANGUAGES:
        note = (f"OneRuler has no prompt templates for {lang!r} (it covers "
                f"{', '.join(longcontext.LANGUAGES)}): no long-context scores")
        return {"note": note}
    books, scoring = books_source(cfg), lc.scoring
    files = []
    if any(task in longcontext.NIAH_TASKS for task in lc.tasks):
        if books == longcontext.BUNDLED and lang not in longcontext.bundled_books():
            note = (f"the package carries no OneRuler book excerpt for {lang!r} (it has "
                    f"{', '.join(longcontext.bundled_books())}); set long_context.books to a "
                    "folder of OneRuler's books: no long-context scores")
            return {"note": note}
        files = longcontext.book_files(lang, books)  # a folder without the book fails here
    answer = max(lc.max_new_tokens, lc.cwe_max_new_tokens)
    window = context_window.plan(model_name, lc.lengths, answer)
    yarn = (partial(context_window.apply_yarn, factor=window.yarn_factor, original=window.native)
            if window.yarn_factor else None)
    model, tokenizer = models.load(model_name, trust_remote_code=cfg.train.trust_remote_code,
                                   dtype=cfg.train.dtype, model_sources=cfg.train.model_sources,
                                   adjust_config=yarn)
    if window.native is None:  # a model the catalog does not list: its config decides
        window = context_window.plan(model_name, lc.lengths, answer,
                                     getattr(model.config, "max_position_embeddings", None))
    lengths, note = list(window.scored), window.note()
    if not lengths:
        return {"note": note}
    samples = longcontext.make_samples(tokenizer, lang, lc.tasks, lengths, lc.samples_per_task,
                                       cfg.seed, books=books)
    turn = chat.turn_for(cfg.train.chat_template, model_name, tokenizer)  # instruct: a user turn
    asked = samples if turn is None else [{**s, "input": turn.prompt(s["input"])} for s in samples]

    budget = {task: lc.cwe_max_new_tokens if task == "cwe" else lc.max_new_tokens
              for task in lc.tasks}

    registry = AdapterRegistry(model_name)
    frames = [longcontext.evaluate(current, tokenizer, asked, scoring=scoring,
                                   max_new_tokens=budget, batch_size=lc.batch_size,
                                   show_progress_bar=show_progress_bar).assign(method=method)
              for method, current in AdapterSweep(model, registry, lang, list(cfg.train.methods))]
    predictions = pd.concat(frames, ignore_index=True)
    summary = longcontext.summary(predictions, by=("method", "task", "length"))[SUMMARY_COLUMNS]
    repetition = repetition_stats(samples)
    metrics = {"language": lang, "model": model_name, "samples": len(samples),
               "mean_score": predictions.groupby("method")["score"].mean().round(4).to_dict(),
               "scoring": scoring, "book": [_shown(f) for f in files], "repetition": repetition}
    note = "; ".join(filter(None, [note, _repetition_note(lang, samples, books)]))
    if note:
        metrics["note"] = note
    return {"samples": samples, "predictions": predictions, "summary": summary,
            "metrics": metrics}
