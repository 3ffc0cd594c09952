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
    assert diff == {}, ("dvc.yaml's code deps drifted; run `python -m compass.dependencies "
                        "--write`:\n" + "\n".join(f"{s}: {d}" for s, d in diff.items()))


def test_closure_follows_function_level_imports_and_package_inits():
    modules = dependencies.stage_modules("evaluate")
    # the scorer is imported inside stages.evaluate's function; it pulls the adapters module
    assert {"compass.evaluation.scoring", "compass.training.adapters"} <= modules
    assert "compass.evaluation" in modules  # the package's __init__ runs first
    assert "compass.selection.baselines" not in modules  # ...and nothing the stage does not run


def test_library_code_is_listed_by_folder_and_stage_modules_by_file():
    code = dependencies.stage_code("evaluate")
    assert {"compass/evaluation", "compass/training", "notebooks/03_evaluate.ipynb",
            "compass/stages/evaluate.py", "compass/config.py"} <= set(code)
    assert not any(f.startswith(("compass/evaluation/", "compass/training/")) for f in code)
    assert "compass/stages/sampling.py" not in code  # another stage's module is not a dep


def test_a_new_package_needs_no_change_to_the_generator(tmp_path, monkeypatch):
    for rel in ("compass/__init__.py", "compass/newpkg/__init__.py", "compass/newpkg/deep/x.py",
                "compass/stages/__init__.py", "compass/stages/s.py", "compass/top.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    (tmp_path / "compass/newpkg/deep/__init__.py").write_text("")
    monkeypatch.setattr(paths, "ROOT", tmp_path)
    assert dependencies.code_path("compass.newpkg.deep.x") == "compass/newpkg"
    assert dependencies.code_path("compass.stages.s") == "compass/stages/s.py"
    assert dependencies.code_path("compass.top") == "compass/top.py"
    assert dependencies.code_path("compass") == "compass/__init__.py"


def test_an_unlisted_folder_and_a_listed_unused_one_are_both_reported():
    dvc_yaml = dependencies.load_dvc_yaml()
    deps = dvc_yaml["stages"]["pool"]["deps"]
    deps.remove("compass/data")
    deps.append("compass/evaluation")
    assert dependencies.differences(dvc_yaml)["pool"] == {"missing": ["compass/data"],
                                                          "not_run": ["compass/evaluation"]}


def test_write_restores_the_code_deps_and_keeps_the_rest(tmp_path):
    original = (paths.ROOT / "dvc.yaml").read_text(encoding="utf-8")
    edited = tmp_path / "dvc.yaml"
    edited.write_text(original.replace(" compass/data,", "").replace("compass/evaluation,", ""))
    assert edited.read_text() != original
    dependencies.write(edited)
    assert edited.read_text() == original


def test_params_lists_cover_what_a_stage_reads_and_no_more():
    """The check behind tests/test_notebooks.py's traced reads: a section covers its keys; a key
    read outside every listed one, and a listed one never read, are both named."""
    dvc_yaml = {"stages": {"s": {"params": ["seed", "train", {"params.yaml": ["evaluation.x"]}]}}}
    assert dependencies.declared_params(dvc_yaml) == {"s": ["seed", "train", "evaluation.x"]}
    fine = {"s": {"seed", "train.lr", "train.steps", "evaluation.x"}}
    assert dependencies.param_problems(fine, dvc_yaml) == []
    assert dependencies.param_problems({"s": {"seed", "train.lr", "evaluation.x", "ecda.k"}},
                                       dvc_yaml) == ["s reads ecda.k but dvc.yaml does not list it"]
    assert dependencies.param_problems({"s": {"train.lr", "evaluation.x"}}, dvc_yaml) \
        == ["s lists seed but never reads it"]
    assert dependencies.param_problems({"s": {"train.lr", "evaluation.x"}}, dvc_yaml,
                                       exempt={"s": {"seed"}}) == []


def test_byte_compiled_files_never_change_a_code_folders_hash():
    ignored = (paths.ROOT / ".dvcignore").read_text(encoding="utf-8").split()
    assert "__pycache__/" in ignored and "*.py[cod]" in ignored


def test_every_stage_of_dvc_yaml_is_known():
    stages = set(yaml.safe_load((paths.ROOT / "dvc.yaml").read_text())["stages"])
    assert stages == set(dependencies.STAGE_ENTRIES)


def _md5(path):
    """The md5 dvc.lock records for a file, or for a folder (DVC's own hash, .dvcignore kept)."""
    if path.is_file():
        return hashlib.md5(path.read_bytes()).hexdigest()
    from dvc.repo import Repo
    from dvc_data.hashfile.build import build

    repo = Repo(str(paths.ROOT))
    _, _, tree = build(repo.cache.local, str(path), repo.fs, "md5", ignore=repo.dvcignore,
                       dry_run=True)
    return tree.hash_info.value


def test_dvc_lock_describes_the_committed_code():
    """Every code dep recorded in dvc.lock has the md5 of the file or folder in this checkout, and
    every stage's code deps of dvc.yaml are in the lock: the lock came from a full run of this
    code."""
    lock = yaml.safe_load((paths.ROOT / "dvc.lock").read_text())["stages"]
    stale, absent = [], []
    for name, stage in lock.items():
        for dep in stage.get("deps", []):
            if dependencies.is_code(dep["path"]):
                path = paths.ROOT / dep["path"]
                if not path.exists() or _md5(path) != dep["md5"]:
                    stale.append(f"{name}: {dep['path']}")
        base = name.split("@")[0]
        if base in dependencies.STAGE_ENTRIES:
            recorded = {d["path"] for d in stage.get("deps", [])}
            absent += [f"{name}: {f}" for f in dependencies.stage_code(base) if f not in recorded]
    more = max(0, len(stale) - 10)
    assert not stale, f"dvc.lock records other versions of: {stale[:10]} (+{more})"
    assert not absent, f"dvc.lock lacks code deps: {absent[:10]}"


@pytest.mark.slow
def test_a_one_line_edit_makes_dvc_status_list_exactly_the_stages_that_run_it(tmp_path):
    """In a clone of this checkout: append a comment to a module and ask `dvc status`."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(paths.ROOT), str(clone)], check=True)
    for rel in ("dvc.yaml", "dvc.lock", "params.yaml"):  # the working tree's, committed or not
        shutil.copy2(paths.ROOT / rel, clone / rel)
    modules = ("compass/evaluation/scoring.py", "compass/stages/sampling.py")
    for module in modules:
        shutil.copy2(paths.ROOT / module, clone / module)

    def changed(module):
        entry = dependencies.code_path(module.removesuffix(".py").replace("/", "."))
        done = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=clone,
                              capture_output=True, text=True, check=True)
        return {name.split("@")[0] for name, changes in json.loads(done.stdout).items()
                for change in changes if isinstance(change, dict)
                for dep in change.get("changed deps", {}) if dep == entry}

    assert [changed(m) for m in modules] == [set(), set()]  # the lock matches the code
    for module in modules:
        with open(clone / module, "a", encoding="utf-8") as handle:
            handle.write("# a one-line edit\n")
    # a library module's edit reruns every stage that lists its folder
    assert changed("compass/evaluation/scoring.py") == {"evaluate", "long_context", "ecda"}
    # a stage module is listed by file: check runs the sampling stage's own functions per target
    # (compass.feasibility), ecda draws its stream the same way
    assert changed("compass/stages/sampling.py") == {"check", "sampling", "ecda"}
