"""The data and sampling chapters' tables: the pool per language, each target's splits, and
what each selection method picked."""
from __future__ import annotations

import pandas as pd

from compass import io, paths
from compass.book.cells import markdown_table
from compass.languages import display_name


def data_tables(cfg) -> str:
    """Markdown: the auxiliary pool's pairs per language, then each target's splits (the data and
    pool stages' metrics)."""
    summary = io.read_json(paths.pool_summary())
    pool = pd.DataFrame([{"language": k, "name": display_name(k), "pairs": v}
                         for k, v in summary["languages"].items()])
    pool = pool.sort_values("pairs", ascending=False)
    per_target = pd.DataFrame([io.read_json(paths.data_metrics(t)) for t in cfg.targets])
    return (markdown_table(pool) + "\n**Target languages: splits**\n\n"
            + markdown_table(per_target))


def sampling_tables(cfg) -> str:
    """Markdown: each target's clustering and selection overview, then every method's selection
    per target, from the sampling stage's metrics."""
    rows, overview, notes = [], [], []
    for lang in cfg.targets:
        m = io.read_json(paths.sampling_metrics(lang))
        overview.append({k: m[k] for k in ("language", "k", "dev_items", "train_items",
                                           "aux_candidates", "aux_eligible", "decontaminated",
                                           "coverage_gap_of_train")})
        if m.get("k_note"):
            notes.append(f"- {display_name(lang)}: {m['k_note']}\n")
        for method, v in m["methods"].items():
            placed = v.get("placed")
            rows.append({"language": lang, "method": method, "selected": v["selected"],
                         "languages": v["n_languages"], "tv_to_target": v["tv_to_target"],
                         "tv_train_plus_selection_to_target":
                             v["tv_train_plus_selection_to_target"],
                         "own / spill / widened": (
                             "" if not placed else
                             f"{placed['own']} / {placed['spill']} / {placed['widened']}")})
    return (markdown_table(pd.DataFrame(overview)) + ("\n" + "".join(notes) if notes else "")
            + "\n**Per method**\n\n" + markdown_table(pd.DataFrame(rows)))
