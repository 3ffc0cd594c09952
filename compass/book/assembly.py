"""The book's source tree (book/_src): the static chapters, the generated tables and figures, the
executed notebooks and the table of contents, for the configured languages and protocol."""
from __future__ import annotations

import shutil
from pathlib import Path

from compass import paths
from compass.book.accuracy import results_tables
from compass.book.claims import claims_table
from compass.book.continual import calibration_table, continual_table
from compass.book.data_tables import data_tables, sampling_tables
from compass.book.headline import headline
from compass.book.likelihood import likelihood_tables, steps_section
from compass.book.long_context import long_context_table
from compass.book.notebook_pages import copy_titled
from compass.book.run_facts import profile_page
from compass.book.runs import long_context_runs, runs
from compass.book.trust import trust_table
from compass.protocols import protocol_of

STATIC = ("_config.yml", "intro.md", "data.md", "sampling.md", "results.md", "continual.md")


def toc(cfg) -> str:
    """The table of contents: one chapter per static page, its notebooks as sections."""
    def chapter(page, notebook):
        lines = [f"  - file: {page}", "    sections:"]
        stems = [f"{notebook}_{t}" for t in cfg.targets] if notebook < "02" else \
            [f"{notebook}_{m}_{t}" for _, t, m in runs(cfg)]
        lines += [f"      - file: notebooks/{stem}" for stem in stems]
        return lines

    paper_first = ["  - file: paper"] if protocol_of(cfg).describes_paper else []
    lines = ["format: jb-book", "root: intro", "chapters:", *paper_first,
             *chapter("data", "00_data"), *chapter("sampling", "01_sampling"),
             *chapter("results", "03_evaluate")]
    lines += [f"      - file: notebooks/02_train_{m}_{t}" for _, t, m in runs(cfg)]
    lines += [f"      - file: notebooks/05_long_context_{m}_{t}"
              for _, t, m in long_context_runs(cfg)]
    lines += ["  - file: continual", "    sections:", "      - file: notebooks/04_ecda"]
    return "\n".join(lines) + "\n"


def executed_notebooks(cfg) -> list[Path]:
    """The executed notebooks the book shows, in the order the stages ran them."""
    executed = [paths.executed_notebook(nb, lang) for nb in ("00_data", "01_sampling")
                for lang in cfg.targets]
    executed += [paths.executed_notebook(nb, lang, model) for nb in ("02_train", "03_evaluate")
                 for _, lang, model in runs(cfg)]
    executed += [paths.executed_notebook("05_long_context", lang, model)
                 for _, lang, model in long_context_runs(cfg)]
    executed.append(paths.executed_notebook("04_ecda"))
    return executed


def generated_pages(cfg, generated: Path) -> dict[str, str]:
    """Every generated page by file name (the figures are written into ``generated`` as a side
    effect of the tables they belong to)."""
    table, versus, caveats = results_tables(cfg, generated)
    nll_table, nll_versus, nll_findings = likelihood_tables(cfg, generated)
    return {"profile.md": profile_page(cfg), "headline.md": headline(cfg),
            "data_tables.md": data_tables(cfg), "sampling_tables.md": sampling_tables(cfg),
            "nll_table.md": nll_table, "nll_versus.md": nll_versus,
            "claims.md": claims_table(cfg), "trust.md": trust_table(cfg),
            "nll_by_step.md": steps_section(cfg, generated),
            "long_context.md": long_context_table(cfg),
            "results_tables.md": table, "results_versus.md": versus,
            "results_caveats.md": nll_findings + caveats,
            "continual_table.md": continual_table(cfg),
            "calibration_table.md": calibration_table(cfg)}


def assemble(cfg) -> Path:
    """Write the book's source tree into ``compass.book.SRC`` (replacing it) and return it."""
    from compass import book  # SRC is read at call time: tests point it elsewhere

    src = book.SRC
    if src.exists():
        shutil.rmtree(src)
    (src / "generated").mkdir(parents=True)
    (src / "notebooks").mkdir()
    for name in STATIC:
        shutil.copy2(paths.BOOK / name, src / name)
    for name, text in generated_pages(cfg, src / "generated").items():
        (src / "generated" / name).write_text(text, encoding="utf-8")
    for source in executed_notebooks(cfg):
        if not source.exists():
            raise FileNotFoundError(f"{source} is missing: run `dvc repro` to execute it")
        copy_titled(source, src / "notebooks" / source.name, cfg)
    if protocol_of(cfg).describes_paper:  # its own pages and the paper's tables
        from compass.book import paper_pages

        paper_pages.write(cfg, src)
    (src / "_toc.yml").write_text(toc(cfg), encoding="utf-8")
    return src
