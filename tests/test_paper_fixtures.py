"""The paper DAG on real rows: `dvc repro` of profiles/paper_fixtures.yaml in a copy of the
repository, offline. Aya rows, Global-MMLU dev (E_t) and Lite test, MMLU-ProX-Lite, OneRuler-style
long context, the lm-eval task path and the book; Gemma-3-270M stands in for the paper's models.
Only the hub and the model differ from a real paper run."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from compass import io, paths, profiles

from tests.conftest import SHARED_FIXTURES as FIXTURES
TARGETS = ("en", "es")
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("fixtures_dir")]


def _copy_repository(target: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=paths.ROOT, capture_output=True, check=True).stdout.split(b"\0")
    for name in filter(None, (f.decode() for f in files)):
        source = paths.ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("paper") / "repo"
    _copy_repository(root)
    # two targets, long context on one, 24 test items: the stages are the same per language and
    # item, and CI's 30 minutes are short (fr's rows stay in the pool as an auxiliary language)
    preset = profiles.params_text("paper_fixtures", {"languages.targets": ["en", "es"],
                                                     "long_context.languages": ["en"],
                                                     "data.split.max_test_items": 24})
    (root / "params.yaml").write_text(preset.replace("../shared/fixtures", str(FIXTURES)),
                                      encoding="utf-8")
    (root / "dvc.lock").unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items()  # the copy's own compass, not the caller's
           if not k.startswith("COMPASS_") and k != "PYTHONPATH"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["HF_HUB_OFFLINE"] = env["HF_DATASETS_OFFLINE"] = "1"
    run = lambda *cmd: subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)  # noqa: E731
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"]):
        assert run(*cmd).returncode == 0
    repro = run(str(Path(sys.executable).parent / "dvc"), "repro")
    assert repro.returncode == 0, repro.stdout[-4000:] + repro.stderr[-4000:]
    return root


def test_every_stage_of_the_paper_dag_ran_on_the_fixtures(paper_run):
    data = paper_run / "data"
    for lang in TARGETS:
        metrics = io.read_json(data / "languages" / lang / "data" / "metrics.json")
        assert metrics["dev"] == 285 and metrics["test_items"] == 24  # E_t = Global-MMLU dev
        evaluation = io.read_json(data / "languages" / lang / "gemma-3-270m" / "evaluation_metrics.json")
        assert evaluation["benchmark"].startswith("Global-MMLU-Lite")
        check = evaluation["lm_eval_check"]  # lm-eval's requests re-scored by the fast scorer
        dtype = io.read_json(data / "languages" / lang / "gemma-3-270m" / "adapters" / "compass"
                             / "summary.json")["precision"]["dtype"]
        fp32 = dtype == "float32"  # bf16 (a CPU with native bf16): batched and single differ more
        assert check["items"] == 4 and check["same_choice_acc"] >= (4 if fp32 else 3)  # lm_eval_check_items
        assert check["max_abs_loglikelihood_diff"] < (1e-3 if fp32 else 0.25)
        assert set(evaluation["accuracy"]) == {"zero_shot", "random", "compass"}
        for name in ("by_category.csv", "by_cultural_label.csv", "samples.jsonl", "summary.csv"):
            assert (data / "languages" / lang / "gemma-3-270m" / "evaluation" / name).exists()
    long_context = io.read_csv(data / "languages" / "en" / "gemma-3-270m" / "long_context"
                               / "summary.csv")
    assert set(long_context["task"]) == {"niah_single", "niah_multikey", "niah_none", "cwe"}


def test_benchmark_items_are_never_auxiliary_data(paper_run):
    data = paper_run / "data"
    pool = {p["id"]: p for p in io.read_jsonl(data / "pool" / "pairs.jsonl")}
    for lang in TARGETS:
        for method in ("random", "all", "compass"):
            manifest = io.read_csv(data / "languages" / lang / "sampling" / "selections" / method
                                   / "manifest.csv")
            sources = {pool[i]["source"] for i in manifest["id"]}
            assert sources == {"aya_dataset"}, (lang, method, sources)


def test_the_book_says_it_ran_on_fixtures(paper_run):
    html = paper_run / "book" / "_build" / "html"
    intro = (html / "intro.html").read_text(encoding="utf-8")
    assert "fixtures" in intro
    paper = (html / "paper.html").read_text(encoding="utf-8")  # the paper's tables come first
    assert "Long context by length" in paper and "niah_none" in paper
    assert "The paper&#8217;s claims" in intro or "The paper’s claims" in intro
