"""The paper protocol's book: its pages (book/paper/) copied over the others and its
generated tables, headline and caveats written."""
from __future__ import annotations

import shutil
from pathlib import Path

from compass import paths
from compass.book.paper_claims import claim_rows, claims_table
from compass.book.paper_runs import items_per_language, measured_table, on_fixtures
from compass.book.paper_tables import (
    cultural_section,
    ecda_section,
    global_mmlu_section,
    long_context_section,
    prox_section,
)
from compass.book.prose import render, seeds_sentence

PAGES = paths.BOOK / "paper"  # the paper protocol's versions of the static pages, and its chapter


def caveats(cfg) -> str:
    """What the paper protocol's numbers can and cannot show (the diagnostics chapter's end)."""
    return render("paper_caveats.md", on_fixtures=on_fixtures(cfg), models=models_listed(cfg),
                  steps=cfg.train.steps, seeds=seeds_sentence(cfg))


def headline(cfg) -> str:
    """The intro's lines above the claims table: the verdicts counted, and on a fixtures run
    what stood in for the paper's models (the reason every claim is not measured here)."""
    decided = [r["reproduces?"].split("**")[1] for r in claim_rows(cfg)]
    counts = {v: decided.count(v) for v in ("yes", "no", "inconclusive", "not measured here")}
    items = "; ".join((f"`{m}` " if len(cfg.train.models) > 1 else "")
                      + items_per_language(cfg, m) for m in cfg.train.models)
    return render("paper_headline.md", claims=len(decided), counts=counts,
                  on_fixtures=on_fixtures(cfg), models=models_listed(cfg),
                  steps=cfg.train.steps, items=items)


def models_listed(cfg) -> str:
    """The base models this run trained, as inline code, comma-separated."""
    return ", ".join(f"`{m}`" for m in cfg.train.models)


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
