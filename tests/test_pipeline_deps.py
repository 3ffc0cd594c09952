"""dvc.yaml tells the truth: each stage lists exactly the code it runs, and dvc.lock describes the
committed code (so an edit anywhere a stage runs through makes `dvc status` list that stage)."""
import hashlib
import json
import shutil
import subprocess
import sys

import pytest
import yaml

from compass import dependencies, paths


def test_dvc_yaml_lists_exactly_the_code_each_stage_runs():
    diff = dependencies.differences()
    assert diff == {}, ("dvc.yaml's code deps drifted; run `python -m compass.dependencies --write`:\n"
                        + "\n".join(f"{s}: {d}" for s, d in diff.items()))


def test_closure_follows_function_level_imports_and_package_inits():
    code = dependencies.stage_code("evaluate")
    # the scorer is imported inside stages.evaluate's function; it pulls the adapters module
    assert "compass/evaluation/scoring.py" in code and "compass/training/adapters.py" in code
    assert "compass/evaluation/__init__.py" in code and "notebooks/03_evaluate.ipynb" in code
    # ...and nothing the stage does not run
    assert not any(f.startswith("compass/continual/") and "recipes" not in f and "__init__" not in f
                   for f in code)
    assert "compass/selection/baselines.py" not in code


def test_every_stage_of_dvc_yaml_is_known():
    stages = set(yaml.safe_load((paths.ROOT / "dvc.yaml").read_text())["stages"])
    assert stages == set(dependencies.STAGE_ENTRIES)


def _md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_dvc_lock_describes_the_committed_code():
    """Every code dep recorded in dvc.lock has the md5 of the file in this checkout, and every
    stage's code deps of dvc.yaml are in the lock: the lock came from a full run of this code."""
    lock = yaml.safe_load((paths.ROOT / "dvc.lock").read_text())["stages"]
    stale, absent = [], []
    for name, stage in lock.items():
        for dep in stage.get("deps", []):
            if dependencies.is_code(dep["path"]):
                file = paths.ROOT / dep["path"]
                if not file.is_file() or _md5(file) != dep["md5"]:
                    stale.append(f"{name}: {dep['path']}")
        base = name.split("@")[0]
        if base in dependencies.STAGE_ENTRIES:
            recorded = {d["path"] for d in stage.get("deps", [])}
            absent += [f"{name}: {f}" for f in dependencies.stage_code(base) if f not in recorded]
    assert not stale, f"dvc.lock records other versions of: {stale[:10]} (+{max(0, len(stale) - 10)})"
    assert not absent, f"dvc.lock lacks code deps: {absent[:10]}"


@pytest.mark.slow
def test_a_one_line_edit_makes_dvc_status_list_exactly_the_stages_that_run_it(tmp_path):
    """In a clone of this checkout: append a comment to a module and ask `dvc status`."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(paths.ROOT), str(clone)], check=True)
    for rel in ("dvc.yaml", "dvc.lock", "params.yaml"):  # the working tree's, committed or not
        shutil.copy2(paths.ROOT / rel, clone / rel)
    modules = ("compass/training/adapters.py", "compass/selection/pool.py")
    for module in modules:
        shutil.copy2(paths.ROOT / module, clone / module)

    def changed(module):
        done = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=clone,
                              capture_output=True, text=True, check=True)
        return {name.split("@")[0] for name, changes in json.loads(done.stdout).items()
                for change in changes if isinstance(change, dict)
                for dep in change.get("changed deps", {}) if dep == module}

    assert [changed(m) for m in modules] == [set(), set()]  # the lock matches the code
    for module in modules:
        with open(clone / module, "a", encoding="utf-8") as handle:
            handle.write("# a one-line edit\n")
    # check plans each model's training memory (compass.training.memory builds adapters to
    # measure an unlisted model), so an edit there reruns it too; its output stays the same bytes
    assert changed("compass/training/adapters.py") == {"check", "train", "evaluate", "long_context",
                                                       "ecda"}
    # check runs the sampling stage's own functions per target (compass.feasibility)
    assert changed("compass/selection/pool.py") == {"check", "sampling", "ecda"}
