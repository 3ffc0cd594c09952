"""The long-context (OneRuler-style) table and finding line, from the long_context stages."""
from __future__ import annotations

import pandas as pd

from compass import io, paths
from compass.book.cells import markdown_table
from compass.book.runs import long_context_runs


def long_context_summaries(cfg) -> tuple[pd.DataFrame, list[str]]:
    """Every (language, model)'s long-context summary.csv with a language column holding its label
    (empty when none has rows), and the notes of pairs that could not be scored."""
    frames, notes = [], []
    for label, lang, model in long_context_runs(cfg):
        note = io.read_json(paths.long_context_metrics(lang, model)).get("note")
        if note:
            notes.append(f"`{label}`: {note}.")
        frame = io.read_csv(paths.long_context_dir(lang, model) / "summary.csv", numeric=True)
        if len(frame):
            frames.append(frame.assign(language=label))
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), notes


def long_context_table(cfg) -> str:
    """Rows task x context length, columns zero-shot and each adapter: the mean OneRuler score over
    the (language, model) pairs that have one, with the samples behind each cell; from the
    long_context stages' summary.csv files."""
    both, notes = long_context_summaries(cfg)
    if both.empty:
        return "No long-context scores in this build. " + " ".join(notes) + "\n"
    order = list(dict.fromkeys(["zero_shot", *cfg.train.methods]))
    both["cell"] = both["task"] + " @" + both["length"].astype(int).astype(str)
    cells = list(dict.fromkeys(both["cell"]))
    rows = []
    for method in order:  # methods as rows: the table stays narrow however many tasks and lengths
        of = both[both["method"] == method]
        if of.empty:
            continue
        row = {"method": method}
        for cell in cells:
            m = of[of["cell"] == cell]
            if len(m):
                row[cell] = f"{(m['score'] * m['n']).sum() / m['n'].sum():.2f}"
        rows.append(row)
    per_cell = both[both["method"] == "zero_shot"].groupby("cell", sort=False)["n"].sum()
    languages = ", ".join(sorted(set(both["language"])))
    return (markdown_table(pd.DataFrame(rows), floatfmt=".2f")
            + f"\nColumns: task @ context tokens. Languages: {languages}; samples per cell: "
            f"{', '.join(sorted({str(int(n)) for n in per_cell}))} "
            "(each method answers the same prompts). " + " ".join(notes) + "\n")


def long_context_line(cfg) -> list[str]:
    """One finding line for the long-context tasks: the share answered, zero-shot vs adapters."""
    both, _ = long_context_summaries(cfg)
    if both.empty:
        return []
    right = (both["score"] * both["n"]).groupby(both["method"]).sum()
    asked = both.groupby("method")["n"].sum()
    adapters = [m for m in asked.index if m != "zero_shot"]
    return [f"- Long context (OneRuler-style, {int(asked.get('zero_shot', 0))} prompts per model): "
            f"zero-shot answered {int(right.get('zero_shot', 0))}, the adapters "
            + ", ".join(f"`{m}` {int(right[m])}" for m in adapters)
            + f" of them (contexts of {', '.join(str(n) for n in cfg.long_context.lengths)} "
            "tokens)."]
