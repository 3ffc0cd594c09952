"""What each DVC stage's code is, folder by folder, derived from what its notebook (or command)
imports.

A stage must list all code its work runs through, or an edit there leaves the book showing stale
results; hand-kept lists drift, and per-file lists bury dvc.yaml. So the lists are derived and
coarse: parse the stage's notebook (or its command's module), follow every ``compass`` import
(module-level and inside functions, and module names written as strings, as the selector registry
does), then name each library package by its folder (``compass/data``) and each top-level module
and stage module by its file. DVC hashes a folder by content, so a file moving inside a package or
a new module there changes no list. tests/test_pipeline_deps.py compares the lists with dvc.yaml.
The params a stage lists are checked here too (``param_problems``), against the reads a traced run
records (tests/test_notebooks.py).

    python -m compass.dependencies                  # show what differs from dvc.yaml
    python -m compass.dependencies --write          # rewrite the code entries of dvc.yaml's deps
    python -m compass.dependencies --why pool       # which import pulls each entry into a stage
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
# packages whose modules are listed one by one: each stage module is one stage's entry point, and
# a folder entry would make every stage rerun when any one stage changes
LISTED_BY_FILE = {f"{PACKAGE}.stages"}


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


def _reached_from(roots: set[str]) -> dict[str, str | None]:
    """Every compass module reachable from ``roots``, each with the module that first pulled it in
    (None for a root); a package's __init__ counts as pulled in by its modules."""
    parent: dict[str, str | None] = {}
    todo = [(root, None) for root in sorted(roots)]
    while todo:
        name, by = todo.pop(0)
        if name in parent:
            continue
        parent[name] = by
        todo.extend((m, name) for m in _package_inits(name) if m not in parent)
        todo.extend((m, name) for m in sorted(_module_imports(name)) if m not in parent)
    return parent


def closure(roots: set[str]) -> set[str]:
    """Every compass module reachable from ``roots`` by imports, with their packages' __init__."""
    return set(_reached_from(roots))


def code_path(module: str) -> str:
    """The dvc.yaml entry that covers ``module``: the folder of its library package under compass/
    (whatever its depth), or its own file for a top-level module and for a stage module."""
    parts = module.split(".")
    package = ".".join(parts[:2])
    if len(parts) >= 2 and package not in LISTED_BY_FILE and (paths.ROOT / PACKAGE / parts[1]
                                                             / "__init__.py").exists():
        return f"{PACKAGE}/{parts[1]}"
    return relative(module_file(module))


def notebook_source(path: Path) -> str:
    """The code cells of a notebook file joined into one source text (what its imports are read
    from)."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


def relative(path: Path) -> str:
    """``path`` relative to the repository, with forward slashes: how dvc.yaml names a
    dependency."""
    return path.resolve().relative_to(paths.ROOT).as_posix()


def _entry(stage: str) -> tuple[set[str], set[str]]:
    """The files a stage names itself (notebook, cli.py) and the modules its work starts from."""
    entry = STAGE_ENTRIES[stage]
    files: set[str] = set()
    roots = set(entry.get("modules", []))
    if "notebook" in entry:
        notebook = paths.notebook(entry["notebook"])
        files.add(relative(notebook))
        roots |= imported_modules(notebook_source(notebook))
        roots.add(NOTEBOOK_RUNNER)
    if entry.get("cli"):
        cli = module_file(f"{PACKAGE}.cli")
        roots |= imported_modules(cli.read_text(encoding="utf-8"), top_level_only=True)
        files.add(relative(cli))
    return files, roots


def stage_modules(stage: str) -> set[str]:
    """The compass modules stage ``stage`` runs through."""
    return closure(_entry(stage)[1])


def stage_code(stage: str) -> list[str]:
    """The dvc.yaml code entries of stage ``stage``: notebook, folders and module files, sorted."""
    files, roots = _entry(stage)
    return sorted(files | {code_path(m) for m in closure(roots)})


def why(stage: str) -> dict[str, list[str]]:
    """Per code entry of a stage: the import chain from the stage's entry that pulls it in."""
    files, roots = _entry(stage)
    parent = _reached_from(roots)
    chains: dict[str, list[str]] = {f: [f] for f in files}
    for module in sorted(parent, key=lambda m: (len(_chain(parent, m)), m)):
        chains.setdefault(code_path(module), _chain(parent, module))
    return dict(sorted(chains.items()))


def _chain(parent: dict[str, str | None], module: str) -> list[str]:
    out = [module]
    while parent[out[-1]] is not None:
        out.append(parent[out[-1]])
    return out[::-1]


def is_code(dep: str) -> bool:
    """A deps entry that is the project's code (a module, a package folder or a notebook)."""
    return dep.rstrip("/") == PACKAGE or dep.startswith((f"{PACKAGE}/", "notebooks/"))


def _dep_path(dep) -> str:
    return dep if isinstance(dep, str) else next(iter(dep))


def declared(dvc_yaml: dict) -> dict[str, list[str]]:
    """The code entries each stage of dvc.yaml lists in its deps."""
    out = {}
    for name, stage in dvc_yaml["stages"].items():
        body = stage.get("do", stage)
        out[name] = sorted(_dep_path(d).rstrip("/") for d in body.get("deps", [])
                           if is_code(_dep_path(d)))
    return out


def declared_params(dvc_yaml: dict) -> dict[str, list[str]]:
    """The params.yaml keys and sections each stage lists (a ``params.yaml: [...]`` group, which
    dvc.yaml uses to share a list by YAML anchor, counts as its keys)."""
    out = {}
    for name, stage in dvc_yaml["stages"].items():
        keys: list[str] = []
        for entry in stage.get("do", stage).get("params", []):
            if isinstance(entry, str):
                keys.append(entry)
            else:
                keys += [k for file, group in entry.items() if file == "params.yaml" for k in group]
        out[name] = keys
    return out


def param_problems(reads: dict[str, set[str]], dvc_yaml: dict | None = None,
                   exempt: dict[str, set[str]] | None = None) -> list[str]:
    """What is wrong with each traced stage's params list: a key it reads that no listed key or
    section covers (editing it would not rerun the stage), or a listed key or section it never
    reads (it would rerun for nothing), unless ``exempt`` says that stage reads it elsewhere."""
    listed = declared_params(dvc_yaml or load_dvc_yaml())
    exempt = exempt or {}

    def covered(key: str, by: list[str]) -> bool:
        return any(key == d or key.startswith(d + ".") for d in by)

    problems = []
    for stage, keys in sorted(reads.items()):
        declared = listed[stage]
        problems += [f"{stage} reads {k} but dvc.yaml does not list it" for k in sorted(keys)
                     if not covered(k, declared)]
        problems += [f"{stage} lists {d} but never reads it" for d in declared
                     if not any(covered(k, [d]) or covered(d, [k]) for k in keys)
                     and d not in exempt.get(stage, set())]
    return problems


def load_dvc_yaml() -> dict:
    """The repository's dvc.yaml, parsed."""
    import yaml

    return yaml.safe_load((paths.ROOT / "dvc.yaml").read_text(encoding="utf-8"))


def differences(dvc_yaml: dict | None = None) -> dict[str, dict[str, list[str]]]:
    """Per stage: code entries missing from dvc.yaml and listed ones the stage does not run."""
    listed = declared(dvc_yaml or load_dvc_yaml())
    out = {}
    for stage in sorted(set(listed) | set(STAGE_ENTRIES)):
        want = set(stage_code(stage)) if stage in STAGE_ENTRIES else set()
        have = set(listed.get(stage, []))
        if want != have:
            out[stage] = {"missing": sorted(want - have), "not_run": sorted(have - want)}
    return out


def deps_block(indent: str, data_deps: list[str], code: list[str], width: int = 100) -> list[str]:
    """A stage's ``deps:`` as YAML lines: a flow list, its data deps one a line, then its code
    packed a line per kind (entry files, library folders, top-level modules)."""
    def item(dep: str) -> str:
        return f'"{dep}"' if "${" in dep or "," in dep else dep

    def kind(dep: str) -> int:
        if not dep.startswith(f"{PACKAGE}/") or dep.startswith(f"{PACKAGE}/stages/") \
                or dep == f"{PACKAGE}/cli.py" or dep == relative(module_file(NOTEBOOK_RUNNER)):
            return 0
        return 2 if dep.endswith(".py") else 1

    lead = indent + "  "
    groups = [[item(d)] for d in data_deps]
    for k in range(3):
        groups += _packed([item(d) for d in code if kind(d) == k], width - len(lead))
    lines = [f"{indent}deps: ["] + [f"{lead}{', '.join(g)}," for g in groups]
    lines[-1] = lines[-1][:-1] + "]"
    return lines


def _packed(items: list[str], width: int) -> list[list[str]]:
    rows: list[list[str]] = []
    for entry in items:
        if rows and len(", ".join(rows[-1] + [entry])) + 1 <= width:
            rows[-1].append(entry)
        else:
            rows.append([entry])
    return rows


def write(path: Path | None = None) -> None:
    """Rewrite the deps of every stage in dvc.yaml: its data deps as they are, in order, then the
    code it runs. Edits only the deps blocks' lines; comments and the rest stay."""
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
        if stripped.startswith("deps:") and stage in STAGE_ENTRIES:
            indent = line[: len(line) - len(line.lstrip())]
            i += 1
            while i < len(lines) and (not lines[i].strip() and i + 1 < len(lines)
                                      and _indent(lines[i + 1]) > len(indent)
                                      or lines[i].strip() and _indent(lines[i]) > len(indent)):
                i += 1
            body = data["stages"][stage].get("do", data["stages"][stage])
            kept = [_dep_path(d) for d in body.get("deps") or [] if not is_code(_dep_path(d))]
            out.extend(deps_block(indent, kept, stage_code(stage)))
            continue
        out.append(line)
        i += 1
    text = "\n".join(out) + "\n"
    assert set(data["stages"]) == set(yaml.safe_load(text)["stages"])  # still valid, same stages
    from compass import io

    io.write_text(path, text)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def main(argv=None) -> int:
    """Compare dvc.yaml's code deps with the imports (or rewrite or explain them); the exit status
    is 1 when they differ."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite dvc.yaml's code deps")
    parser.add_argument("--why", metavar="STAGE", choices=sorted(STAGE_ENTRIES),
                        help="print the import chain behind each code entry of STAGE")
    args = parser.parse_args(argv)
    if args.why:
        for entry, chain in why(args.why).items():
            print(f"{entry}: {' -> '.join(chain)}")
        return 0
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
