"""What each DVC stage's code is: the import closure of what its notebook (or command) runs.

dvc.yaml must list every file a stage's work runs through, or an edit there leaves the book showing
stale results; hand-kept lists drifted. So the lists are derived: parse the stage's notebook (or
its command's module), follow every ``compass`` import (module-level and inside functions, and
module names written as strings, as the selector registry does), add each package's
``__init__.py``, and compare with dvc.yaml (tests/test_pipeline_deps.py).

    python -m compass.dependencies            # show what differs from dvc.yaml
    python -m compass.dependencies --write    # rewrite the code entries of dvc.yaml's deps
"""
from __future__ import annotations

import argparse
import ast
import json
import sys
from functools import cache
from pathlib import Path

from compass import paths

PACKAGE = "compass"
# what each stage runs: its notebook, or the module behind `python -m compass.cli <command>`
# (cli.py itself dispatches lazily to every command, so only its module-level imports count)
STAGE_ENTRIES: dict[str, dict] = {
    "precision": {"modules": ["compass.training.precision"], "cli": True},
    "pool": {"modules": ["compass.stages.pool"], "cli": True},
    "check": {"modules": ["compass.stages.check"], "cli": True},
    "data": {"notebook": "00_data.ipynb"},
    "sampling": {"notebook": "01_sampling.ipynb"},
    "model": {"modules": ["compass.stages.model"], "cli": True},
    "train": {"notebook": "02_train.ipynb"},
    "evaluate": {"notebook": "03_evaluate.ipynb"},
    "ecda": {"notebook": "04_ecda.ipynb"},
    "long_context": {"notebook": "05_long_context.ipynb"},
    "book": {"modules": ["compass.book"], "cli": True},
}
# every notebook stage runs through papermill via this module
NOTEBOOK_RUNNER = "compass.notebook_run"


def module_file(name: str) -> Path | None:
    """The source file of a compass module or package, or None if there is none."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = paths.ROOT.joinpath(*parts)
    if (base / "__init__.py").exists():
        return base / "__init__.py"
    if base.with_suffix(".py").exists():
        return base.with_suffix(".py")
    return None


def _package_inits(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts)) if module_file(".".join(parts[:i]))]


def imported_modules(source: str, top_level_only: bool = False) -> set[str]:
    """Names of the compass modules ``source`` imports (or names as a string constant)."""
    tree = ast.parse(source)
    nodes = tree.body if top_level_only else ast.walk(tree)
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.split(".")[0] == PACKAGE:
            found.add(node.module)
            # `from compass.x import y`: y may be a submodule
            found.update(f"{node.module}.{a.name}" for a in node.names
                         if module_file(f"{node.module}.{a.name}"))
        elif (not top_level_only and isinstance(node, ast.Constant) and isinstance(node.value, str)
              and node.value.startswith(PACKAGE + ".") and module_file(node.value)):
            found.add(node.value)
    return {m for m in found if module_file(m)}


@cache
def _module_imports(name: str) -> frozenset[str]:
    return frozenset(imported_modules(module_file(name).read_text(encoding="utf-8")))


def closure(roots: set[str]) -> set[str]:
    """Every compass module reachable from ``roots`` by imports, with their packages' __init__."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(_package_inits(name))
        todo.extend(_module_imports(name) - seen)
    return seen


def notebook_source(path: Path) -> str:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


def relative(path: Path) -> str:
    return path.resolve().relative_to(paths.ROOT).as_posix()


def stage_code(stage: str) -> list[str]:
    """The repository files (notebook + library modules) that stage ``stage`` runs, sorted."""
    entry = STAGE_ENTRIES[stage]
    files: set[str] = set()
    roots = set(entry.get("modules", []))
    if "notebook" in entry:
        notebook = paths.notebook(entry["notebook"])
        files.add(relative(notebook))
        roots |= imported_modules(notebook_source(notebook))
        roots.add(NOTEBOOK_RUNNER)
    if entry.get("cli"):
        cli = module_file("compass.cli")
        roots |= imported_modules(cli.read_text(encoding="utf-8"), top_level_only=True)
        files.add(relative(cli))
    files |= {relative(module_file(m)) for m in closure(roots)}
    return sorted(files)


def is_code(dep: str) -> bool:
    """A deps entry that is the project's code (a module, a package folder or a notebook)."""
    return dep.rstrip("/") == PACKAGE or dep.startswith((f"{PACKAGE}/", "notebooks/"))


def declared(dvc_yaml: dict) -> dict[str, list[str]]:
    """The code entries each stage of dvc.yaml lists in its deps."""
    out = {}
    for name, stage in dvc_yaml["stages"].items():
        body = stage.get("do", stage)
        out[name] = sorted(d if isinstance(d, str) else next(iter(d))
                           for d in body.get("deps", []) if is_code(d if isinstance(d, str) else next(iter(d))))
    return out


def load_dvc_yaml() -> dict:
    import yaml

    return yaml.safe_load((paths.ROOT / "dvc.yaml").read_text(encoding="utf-8"))


def differences(dvc_yaml: dict | None = None) -> dict[str, dict[str, list[str]]]:
    """Per stage: code files missing from dvc.yaml and listed ones the stage does not run."""
    listed = declared(dvc_yaml or load_dvc_yaml())
    out = {}
    for stage in sorted(set(listed) | set(STAGE_ENTRIES)):
        want = set(stage_code(stage)) if stage in STAGE_ENTRIES else set()
        have = set(listed.get(stage, []))
        if want != have:
            out[stage] = {"missing": sorted(want - have), "not_run": sorted(have - want)}
    return out


def write(path: Path | None = None) -> None:
    """Rewrite the code entries of every stage's deps in dvc.yaml (data deps and order kept;
    code entries are appended after them, sorted). Edits only the deps blocks' lines."""
    import yaml

    path = path or paths.ROOT / "dvc.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    data = yaml.safe_load("\n".join(lines))
    out, stage, i = [], None, 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if line.startswith("  ") and not line.startswith("   ") and stripped.endswith(":"):
            stage = stripped[:-1]
        if stripped == "deps:" and stage in STAGE_ENTRIES:
            indent = line[: len(line) - len(line.lstrip())] + "  "
            out.append(line)
            i += 1
            kept = []
            while i < len(lines) and lines[i].startswith(indent + "- "):
                dep = lines[i].strip()[2:]
                if not is_code(dep):
                    kept.append(lines[i])
                i += 1
            out.extend(kept)
            out.extend(f"{indent}- {dep}" for dep in stage_code(stage))
            continue
        out.append(line)
        i += 1
    text = "\n".join(out) + "\n"
    yaml.safe_load(text)  # still valid
    assert set(data["stages"]) == set(yaml.safe_load(text)["stages"])
    from compass import io

    io.write_text(path, text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite dvc.yaml's code deps")
    args = parser.parse_args(argv)
    if args.write:
        write()
    diff = differences()
    for stage, d in diff.items():
        for f in d["missing"]:
            print(f"{stage}: missing {f}")
        for f in d["not_run"]:
            print(f"{stage}: lists {f}, which it does not run")
    if not diff:
        print("dvc.yaml lists exactly the code each stage runs")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
