"""Run a parameterised notebook with papermill, writing the executed copy atomically.

    python -m compass.notebook_run 01_sampling --lang fa [--set sampling.budget=50]
    python -m compass.notebook_run 02_train --lang fa --method compass

Language codes are passed as raw strings (papermill's -p would read YAML 1.1, where `no` is False).
"""
from __future__ import annotations

import argparse
import json
import time

from compass import paths, timings
from compass.io import atomic_path


def run(name: str, lang: str | None = None, overrides: dict | None = None,
        show_progress_bar: bool = False, kernel_name: str = "python3", method: str | None = None):
    import papermill

    name = name if name.endswith(".ipynb") else f"{name}.ipynb"
    source = paths.notebook(name)
    if not source.exists():
        raise FileNotFoundError(f"notebook {source} does not exist")
    parameters = {"overrides": overrides or {}, "show_progress_bar": show_progress_bar}
    if lang is not None:
        parameters["lang"] = lang
    if method is not None:
        parameters["method"] = method
    target = paths.executed_notebook(name, lang, method)
    start = time.perf_counter()
    with atomic_path(target) as tmp:
        papermill.execute_notebook(str(source), str(tmp), parameters=parameters,
                                   kernel_name=kernel_name, cwd=str(paths.ROOT),
                                   progress_bar=False, log_output=False)
    timings.record(target.stem, time.perf_counter() - start, kind="stage")
    return target


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook")
    parser.add_argument("--lang")
    parser.add_argument("--method", help="selection method (notebooks run per language and method)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                        help="override a params.yaml key, value parsed as JSON if possible")
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    print(run(args.notebook, args.lang, overrides, method=args.method))


if __name__ == "__main__":
    main()
