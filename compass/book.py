"""Assemble and build the Jupyter Book from the executed notebooks and the stages' metrics.

The static chapters live in book/; this copies them into book/_src with generated tables (made
here from the metrics files the stages wrote) and the executed notebooks, writes the table of
contents for the configured target languages, and runs Jupyter Book 1.x (offline-capable).
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

from compass import io, paths
from compass.languages import display_name

SRC = paths.BOOK / "_src"
STATIC = ("_config.yml", "intro.md", "data.md", "sampling.md")


def _markdown_table(frame: pd.DataFrame, floatfmt: str = ".3f") -> str:
    return frame.to_markdown(index=False, floatfmt=floatfmt) + "\n"


def profile_page(cfg) -> str:
    summary = io.read_json(paths.pool_summary())
    targets = ", ".join(f"{display_name(t)} (`{t}`)" for t in cfg.targets)
    return (
        f"- profile: **{cfg.profile}**; seed {cfg.seed}\n"
        f"- target languages: {targets}\n"
        f"- pool: {summary['pairs']} pairs in {len(summary['languages'])} languages; encoder "
        f"`{summary['encoder']}` ({summary['dim']}-d)\n"
        f"- clustering: {cfg.clustering.algorithm}, K in [{cfg.clustering.k_min}, "
        f"{cfg.clustering.k_max}]; budget {cfg.sampling.budget} items per method\n"
    )


def data_tables(cfg) -> str:
    summary = io.read_json(paths.pool_summary())
    pool = pd.DataFrame([{"language": k, "name": display_name(k), "pairs": v}
                         for k, v in summary["languages"].items()]).sort_values("pairs", ascending=False)
    per_target = pd.DataFrame([io.read_json(paths.data_metrics(t)) for t in cfg.targets])
    return (_markdown_table(pool) + "\n**Target languages: splits**\n\n"
            + _markdown_table(per_target))


def sampling_tables(cfg) -> str:
    rows, overview = [], []
    for lang in cfg.targets:
        m = io.read_json(paths.sampling_metrics(lang))
        overview.append({k: m[k] for k in ("language", "k", "dev_items", "train_items",
                                           "aux_candidates", "aux_eligible", "decontaminated",
                                           "coverage_gap_of_train")})
        for method, v in m["methods"].items():
            rows.append({"language": lang, "method": method, "selected": v["selected"],
                         "languages": v["n_languages"], "tv_to_target": v["tv_to_target"],
                         "tv_train_plus_selection_to_target": v["tv_train_plus_selection_to_target"]})
    return (_markdown_table(pd.DataFrame(overview)) + "\n**Per method**\n\n"
            + _markdown_table(pd.DataFrame(rows)))


def toc(cfg) -> str:
    def chapter(page, notebook):
        lines = [f"  - file: {page}", "    sections:"]
        lines += [f"      - file: notebooks/{notebook}_{t}" for t in cfg.targets]
        return lines

    return "\n".join(["format: jb-book", "root: intro", "chapters:",
                      *chapter("data", "00_data"), *chapter("sampling", "01_sampling")]) + "\n"


def assemble(cfg) -> Path:
    if SRC.exists():
        shutil.rmtree(SRC)
    (SRC / "generated").mkdir(parents=True)
    (SRC / "notebooks").mkdir()
    for name in STATIC:
        shutil.copy2(paths.BOOK / name, SRC / name)
    (SRC / "generated" / "profile.md").write_text(profile_page(cfg), encoding="utf-8")
    (SRC / "generated" / "data_tables.md").write_text(data_tables(cfg), encoding="utf-8")
    (SRC / "generated" / "sampling_tables.md").write_text(sampling_tables(cfg), encoding="utf-8")
    for notebook in ("00_data", "01_sampling"):
        for lang in cfg.targets:
            source = paths.executed_notebook(notebook, lang)
            if not source.exists():
                raise FileNotFoundError(f"{source} is missing: run `dvc repro` to execute it")
            shutil.copy2(source, SRC / "notebooks" / source.name)
    (SRC / "_toc.yml").write_text(toc(cfg), encoding="utf-8")
    return SRC


def build(cfg) -> Path:
    """Assemble book/_src and build HTML into book/_build/html (replaced only on success)."""
    src = assemble(cfg)
    staging = paths.BOOK / "_staging"
    if staging.exists():
        shutil.rmtree(staging)
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build",
           str(src), "--path-output", str(staging)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"jupyter-book build failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    html = paths.BOOK_BUILD / "html"
    if html.exists():
        shutil.rmtree(html)
    html.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(staging / "_build" / "html"), str(html))
    shutil.rmtree(staging)
    return html / "index.html"
