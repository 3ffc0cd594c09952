"""Exploratory runs write into a scratch copy of the data folder, never into DVC's outputs.

A notebook run from JupyterLab with an edited `parameters` cell, or `notebook_run --set ...`, used
to overwrite the pipeline's own outputs behind DVC's back. Now such a run gets
data/scratch/<name>/: a mirror of data/ whose files are symbolic links to the pipeline's. Reads see
the pipeline's results; every write replaces a link by a new file in the scratch folder (all
writes are atomic renames), so the pipeline's files stay as DVC left them. Only the pipeline's own
runs (`notebook_run --pipeline`, what dvc.yaml calls) write into data/.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from compass import paths

PIPELINE_ENV = "COMPASS_PIPELINE_RUN"  # set to 1 by `notebook_run --pipeline` (dvc.yaml's commands)
DATA_DIR_ENV = "COMPASS_DATA_DIR"
SHARED = ("cache", "timings.jsonl")  # linked as a whole: the embedding cache and the timing log


def overlay(name: str, source: Path | None = None) -> Path:
    """(Re)build data/scratch/<name> as a mirror of ``source`` (default: data/) made of links."""
    source = Path(source or paths.ROOT / "data").resolve()
    root = paths.scratch_root() / name
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    if not source.exists():
        return root
    for entry in source.iterdir():
        if entry.name == "scratch" or entry.resolve() == paths.scratch_root().resolve():
            continue
        if entry.name in SHARED or not entry.is_dir():
            os.symlink(entry, root / entry.name, target_is_directory=entry.is_dir())
            continue
        for folder, dirs, files in os.walk(entry):
            rel = Path(folder).relative_to(source)
            (root / rel).mkdir(parents=True, exist_ok=True)
            for file in files:
                os.symlink(Path(folder) / file, root / rel / file)
    return root


def redirect_exploration(name: str) -> Path:
    """Where this run writes: data/ for the pipeline's own runs or when COMPASS_DATA_DIR is set
    (tests, users who chose a folder); otherwise a fresh scratch overlay, announced."""
    if os.environ.get(PIPELINE_ENV) == "1" or os.environ.get(DATA_DIR_ENV):
        return paths.data_root()
    root = overlay(name)
    os.environ[DATA_DIR_ENV] = str(root)
    print(f"exploratory run: results go to {root.relative_to(paths.ROOT)} "
          "(the pipeline's data/ is read, never written; `dvc repro` writes data/)")
    return root
