"""TODO"""
from __future__ import annotations

import shutil
from pathlib import Path

from compass.book.paper_claims import claim_rows, claims_table
from compass.book.paper_rule import PAGES
from compass.book.paper_runs import items_per_language, measured_table, on_fixtures
from compass.book.paper_tables import (
    cultural_section,
    ecda_section,
    global_mmlu_section,
    long_context_section,
    prox_section,
)
from compass.book.prose import seeds_sentence


def caveats(cfg) -> str:
    """What the paper profile's numbers can and cannot show (the diagnostics chapter's end)."""
    lines = []
    if on_fixtures(cfg):
        models = ", ".join(f"`{m}`" for m in cfg.train.models)
        lines.append(f"- This build ran on the test fixtures with {models} standing in for the "
                     f"paper's models, {cfg.train.steps} training steps and a few items per "
                     "language: its numbers test the pipeline, not the paper's claims, and the "
                     "claims table says *not measured here* for each.")
    lines.append("- " + seeds_sentence(cfg))
    lines.append("- Cohen's d: the paper's d = 0.52-0.64 does not name its variant; this package "
                 "reports the paired d_z, which is not comparable to a pooled-SD d, so the "
                 "LangSim claim is judged by the direction of the gain.")
    return "\n".join(lines) + "\n"


def headline(cfg) -> str:
    """The intro's lines above the claims table: the verdicts counted, and on a fixtures run
    what stood in for the paper's models (the reason every claim is not measured here)."""
    decided = [r["reproduces?"].split("**")[1] for r in claim_rows(cfg)]
    counts = {v: decided.count(v) for v in ("yes", "no", "inconclusive", "not measured here")}
    text = (f"Of the paper's {len(decided)} claims below, this run reproduces {counts['yes']}, "
            f"does not reproduce {counts['no']}; {counts['inconclusive']} are inconclusive and "
            f"{counts['not measured here']} not measured here.")
    if on_fixtures(cfg):
        models = ", ".join(f"`{m}`" for m in cfg.train.models)
        items = "; ".join((f"`{m}` " if len(cfg.train.models) > 1 else "")
                          + items_per_language(cfg, m) for m in cfg.train.models)
        text += (f" This build ran on the test fixtures: {models} stood in for the paper's "
                 f"models, with {cfg.train.steps} training steps and Global-MMLU test items: "
                 f"{items}. Its numbers test the pipeline, not the paper's claims, so each claim "
                 "is *not measured here*; the cell still says what the rule gives on them.")
    return text + "\n"


GENERATED = {"paper_headline.md": headline, "paper_claims.md": claims_table,
             "paper_measured.md": measured_table, "paper_global_mmlu.md": global_mmlu_section,
             "paper_cultural.md": cultural_section, "paper_prox.md": prox_section,
             "paper_long_context.md": long_context_section, "paper_ecda.md": ecda_section,
             "paper_caveats.md": caveats}


def write(cfg, src: Path) -> list[str]:
    """Copy the paper profile's pages over the tiny ones in ``src`` and write their tables;
    returns the pages copied (the table of contents adds the paper's chapter)."""
    pages = sorted(p.name for p in PAGES.glob("*.md"))
    for name in pages:
        shutil.copy2(PAGES / name, src / name)
    for name, make in GENERATED.items():
        text = (make(cfg, src / "generated") if make is global_mmlu_section else make(cfg))
        (src / "generated" / name).write_text(text, encoding="utf-8")
    return pages
