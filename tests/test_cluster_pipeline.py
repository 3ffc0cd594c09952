"""compass.cluster on the real pipeline, cut to two languages' train and evaluate and the stages
they need (tests/cluster_project.py): two local workers write what a serial `dvc repro` writes,
byte for byte, leave nothing for `dvc repro` to do, and a job killed mid-run is reported and
rerun by the same command, alone with its dependent."""
from __future__ import annotations

import shutil
import threading
import time

import psutil
import pytest

from compass import cluster
from tests import cluster_project

pytestmark = pytest.mark.slow
KILLED = f"train@{cluster_project.MODEL}-{cluster_project.LANGUAGES[0]}"


def _kill_when_running(stage: str, after_s: float = 3.0) -> threading.Thread:
    """Kill the job of ``stage`` (its `dvc repro` and all it started) once it has run a while."""

    def hunt():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            for process in psutil.Process().children(recursive=True):
                try:
                    command = process.cmdline()
                except psutil.Error:
                    continue
                if "repro" in command and stage in command:
                    time.sleep(after_s)
                    cluster._kill_tree(process.pid)
                    return
            time.sleep(0.2)

    thread = threading.Thread(target=hunt, daemon=True)
    thread.start()
    return thread


def test_two_workers_match_a_serial_repro_and_a_killed_job_reruns(tmp_path, tiny_workspace,
                                                                  monkeypatch):
    for name in cluster_project.FOREIGN_ENV[1:]:  # the jobs inherit this process's environment
        monkeypatch.delenv(name, raising=False)
    serial = cluster_project.subset_project(
        tmp_path / "serial", embedding_cache=tiny_workspace / "cache" / "embeddings")
    parallel = tmp_path / "parallel"
    shutil.copytree(serial, parallel, symlinks=True)
    targets = cluster_project.TARGETS

    hunter = _kill_when_running(KILLED)
    first = cluster.fan_out(parallel, workers=2, targets=targets, progress=lambda line: None)
    hunter.join(timeout=5)
    assert list(first.failed) == [KILLED], first
    assert first.skipped == [f"evaluate@{KILLED.split('@')[1]}"]
    second = cluster.fan_out(parallel, workers=2, targets=targets, progress=lambda line: None)
    assert second.done == [KILLED, *first.skipped] and not second.failed, second

    cluster_project.dvc(serial, "repro", *targets)
    produced = cluster_project.outputs(parallel)
    assert produced == cluster_project.outputs(serial)
    for lang in cluster_project.LANGUAGES:  # train and evaluate ran, for each language
        model = f"data/languages/{lang}/{cluster_project.MODEL}"
        assert any(name.startswith(f"{model}/adapters/") for name in produced)
        assert f"{model}/evaluation_metrics.json" in produced
    status = cluster_project.dvc(parallel, "status", *targets).stdout
    assert "up to date" in status, status
    again = cluster_project.dvc(parallel, "repro", *targets).stdout
    assert "Running stage" not in again, again
