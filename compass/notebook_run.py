"""Run a parameterised notebook with papermill, writing the executed copy atomically.

    python -m compass.notebook_run 01_sampling --lang fa [--set sampling.budget=50]
    python -m compass.notebook_run 02_train --lang fa --model gemma-3-270m

Without ``--pipeline`` (which only dvc.yaml's commands pass) a run is exploratory: its results go
to data/scratch/<notebook>/ (compass.scratch) and DVC's outputs in data/ stay untouched.
``--dry-run`` checks the notebook name and overrides and prints where the results would go.
Language codes are passed as raw strings (papermill's -p would read YAML 1.1, where `no` is False).
"""
from __future__ import annotations

import argparse
import json
import os
import time

from compass import config, paths, scratch, timings
from compass.io import atomic_path


def notebook_path(name: str):
    """The notebook file for ``name`` (with or without ``.ipynb``); FileNotFoundError lists the
    notebooks there are."""
    name = name if name.endswith(".ipynb") else f"{name}.ipynb"
    source = paths.notebook(name)
    if not source.exists():
        known = sorted(p.stem for p in paths.NOTEBOOKS.glob("*.ipynb"))
        raise FileNotFoundError(f"notebook {name!r} does not exist; choose one of {known}")
    return source


def run(name: str, lang: str | None = None, overrides: dict | None = None,
        show_progress_bar: bool = False, kernel_name: str = "python3",
        pipeline: bool = False, dry_run: bool = False, model: str | None = None):
    """Execute notebook ``name``; returns the executed copy's path. ``pipeline`` marks the DVC
    stage's own run (writes data/); otherwise the run is redirected to a scratch folder unless
    COMPASS_DATA_DIR already names a data folder."""
    source = notebook_path(name)
    # a bad override fails here, in one line, not in the kernel
    cfg = config.load(overrides=overrides)
    if model is not None:
        config.require_model(cfg, model)
    stem = "_".join(part for part in (source.stem, model, lang) if part)
    if pipeline:
        os.environ[scratch.PIPELINE_ENV] = "1"
    elif not dry_run:
        scratch.redirect_exploration(stem)
    target = paths.executed_notebook(source.name, lang, model)
    if dry_run:
        where = "data/" if pipeline or os.environ.get(scratch.DATA_DIR_ENV) \
            else f"data/scratch/{stem}/"
        print(f"would run {source.relative_to(paths.ROOT)} (lang={lang}, model={model}, "
              f"overrides={overrides or {}}); results in {where}")
        return None
    import papermill

    parameters = {"overrides": overrides or {}, "show_progress_bar": show_progress_bar}
    if lang is not None:
        parameters["lang"] = lang
    if model is not None:
        parameters["model"] = model
    if os.environ.get("COMPASS_TRACE_PARAMS"):  # the kernel names its params trace by stage
        os.environ["COMPASS_TRACE_STAGE"] = target.stem
    start = time.perf_counter()
    with atomic_path(target) as tmp:
        papermill.execute_notebook(str(source), str(tmp), parameters=parameters,
                                   kernel_name=kernel_name, cwd=str(paths.ROOT),
                                   progress_bar=False, log_output=False)
    timings.record(target.stem, time.perf_counter() - start, kind="stage")
    return target


def parse_overrides(items: list[str]) -> dict:
    """``KEY=VALUE`` pairs; VALUE is parsed as JSON when it is JSON, else kept as a string."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set {item!r}: write KEY=VALUE, e.g. --set sampling.budget=100")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return overrides


def main(argv=None):
    """Command line of :func:`run`; a bad param or notebook name exits with one line, not a
    traceback."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook")
    parser.add_argument("--lang")
    parser.add_argument("--model", help="one of train.models (default: the first)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                        help="override a params.yaml key, value parsed as JSON if possible")
    parser.add_argument("--pipeline", action="store_true",
                        help="the DVC stage's own run: write into data/ (dvc.yaml passes it)")
    parser.add_argument("--dry-run", action="store_true", help="check and say where results go")
    args = parser.parse_args(argv)
    try:
        executed = run(args.notebook, args.lang, parse_overrides(args.set),
                       pipeline=args.pipeline, dry_run=args.dry_run, model=args.model)
        if executed is not None:
            print(executed)
    except (config.ConfigError, FileNotFoundError) as err:
        raise SystemExit(f"error: {err}") from None


if __name__ == "__main__":
    main()
