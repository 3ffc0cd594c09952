"""compass.cluster on a small DVC project (a diamond with a matrix stage and a persist output):
two workers give the serial run's outputs byte for byte, record every stage once in the
coordinator's dvc.lock, leave nothing for `dvc repro` to do, and after a failed job run only what
is missing."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from compass import cluster

pytestmark = pytest.mark.slow
DVC = str(Path(sys.executable).parent / "dvc")

DVC_YAML = """
stages:
  a:
    cmd: python step.py a src.txt a.txt
    deps: [src.txt, step.py]
    outs: [a.txt]
  b:
    foreach: [x, y]
    do:
      cmd: python step.py b_${item} a.txt b_${item}.txt
      deps: [a.txt, step.py]
      outs:
        - b_${item}.txt:
            persist: true
  c:
    cmd: python step.py c b_x.txt,b_y.txt c.txt
    deps: [b_x.txt, b_y.txt, step.py]
    outs: [c.txt]
"""
STEP = """
import os, sys, time
name, inputs, out = sys.argv[1], sys.argv[2].split(","), sys.argv[3]
if name == os.environ.get("FAIL_STAGE") and not os.path.exists(os.environ["FAIL_UNLESS"]):
    sys.exit(f"{name}: planted failure")
if name.startswith("b_"):
    time.sleep(2)
text = "".join(open(i).read() for i in inputs)
open(out, "w").write(f"{name}({len(text)}):" + text[::-1] + "\\n")
"""


def _committed_dvc_project(root: Path, files: dict[str, str]) -> Path:
    """A git + DVC repository at ``root`` holding ``files`` (name -> text), committed."""
    root.mkdir(parents=True)
    for name, text in files.items():
        (root / name).write_text(text)
    for cmd in (["git", "init", "-q"], [DVC, "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "project"]):
        subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=True)
    return root


def _project(root: Path) -> Path:
    return _committed_dvc_project(root, {
        "dvc.yaml": DVC_YAML, "step.py": STEP, "src.txt": "the source\n",
        ".gitignore": "/a.txt\n/b_x.txt\n/b_y.txt\n/c.txt\n"})


def _outputs(root: Path) -> dict[str, bytes]:
    return {n: (root / n).read_bytes() for n in ("a.txt", "b_x.txt", "b_y.txt", "c.txt")}


def _env(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAIL_STAGE", "b_y")
    monkeypatch.setenv("FAIL_UNLESS", str(tmp_path / "fixed"))


def test_two_workers_record_each_stage_once_and_rerun_only_what_failed(tmp_path, monkeypatch):
    """A planted failure in b@y: it is reported with its log, c (its dependent) is skipped, the
    others are recorded, nothing of c is half-written; once fixed, the same command runs b@y and
    c only, and the outputs equal a serial `dvc repro`'s byte for byte, with nothing left for
    `dvc repro` to do."""
    _env(monkeypatch, tmp_path)
    serial, root = _project(tmp_path / "serial"), _project(tmp_path / "parallel")
    first = cluster.fan_out(root, workers=2, progress=lambda line: None)
    assert sorted(first.done) == ["a", "b@x"] and list(first.failed) == ["b@y"]
    assert first.done[0] == "a" and first.skipped == ["c"]  # dependencies first
    assert "planted failure" in Path(first.failed["b@y"]).read_text()
    assert not (root / "c.txt").exists()
    (tmp_path / "fixed").touch()
    second = cluster.fan_out(root, workers=2, progress=lambda line: None)
    assert second.done == ["b@y", "c"] and not second.failed
    subprocess.run([DVC, "repro"], cwd=serial, capture_output=True, check=True)
    assert _outputs(root) == _outputs(serial)
    status = subprocess.run([DVC, "status"], cwd=root, capture_output=True, text=True)
    assert "up to date" in status.stdout, status.stdout
    again = subprocess.run([DVC, "repro"], cwd=root, capture_output=True, text=True)
    assert "Running stage" not in again.stdout, again.stdout


def test_uncommitted_code_is_refused(tmp_path, monkeypatch):
    _env(monkeypatch, tmp_path)
    root = _project(tmp_path / "project")
    (root / "step.py").write_text(STEP + "\n# edited\n")
    with pytest.raises(cluster.ClusterError, match="step.py"):
        cluster.fan_out(root, workers=2, progress=lambda line: None)


def test_the_slurm_executor_runs_a_job_through_submitit(tmp_path, monkeypatch):
    """submitit's debug executor (the SLURM code path without a cluster: the job runs in this
    process) records stage a; a real cluster differs only in where the job runs."""
    pytest.importorskip("submitit")
    _env(monkeypatch, tmp_path)
    root = _project(tmp_path / "project")
    outcome = cluster.fan_out(root, workers=1, targets=["a"], executor="slurm",
                              slurm={"cluster": "debug", "timeout_min": 5},
                              progress=lambda line: None)
    assert outcome.done == ["a"] and (root / "a.txt").read_text().startswith("a(")


TRAIN_YAML = """
stages:
  train:
    cmd: python train.py
    deps: [train.py]
    outs:
      - ckpt:
          persist: true
      - result.txt
"""
TRAIN = """
import os, pathlib, time
ckpt = pathlib.Path("ckpt")
ckpt.mkdir(exist_ok=True)
state = ckpt / "step"
start = int(state.read_text()) if state.exists() else 0
for step in range(start, 4):
    state.write_text(str(step + 1))
    if step == 1 and start == 0:
        pathlib.Path(os.environ["CHECKPOINTED"]).touch()
        time.sleep(300)  # until preempted
pathlib.Path("result.txt").write_text(f"steps 1-{start} from the checkpoint\\n")
"""


def _train_project(root: Path) -> Path:
    return _committed_dvc_project(root, {"dvc.yaml": TRAIN_YAML, "train.py": TRAIN,
                                         ".gitignore": "/ckpt\n/result.txt\n"})


def test_a_preempted_slurm_job_is_requeued_and_resumes_from_its_checkpoint(tmp_path,
                                                                            monkeypatch):
    """submitit's local executor sends the job SLURM's preemption signal after the stage wrote a
    checkpoint: submitit calls StageJob.checkpoint and requeues; the job runs again in the kept
    worktree, the stage resumes there, and its lock entry is recorded as usual."""
    submitit = pytest.importorskip("submitit")
    psutil = pytest.importorskip("psutil")
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    marker = tmp_path / "checkpointed"
    monkeypatch.setenv("CHECKPOINTED", str(marker))
    root = _train_project(tmp_path / "project")
    folder, log = tmp_path / "project.job-train", tmp_path / "train.log"
    executor = submitit.LocalExecutor(folder=str(tmp_path / "submitit"))
    executor.update_parameters(timeout_min=5)
    job = executor.submit(cluster.StageJob(), root, "train", [], folder, log, None)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert time.monotonic() < deadline and not job.done(), log.read_text()
        time.sleep(0.2)
    # SLURM's warning before a preemption or the time limit, sent to the job's task (submitit's
    # local controller does not forward it itself)
    for task in psutil.Process(job._process.pid).children():
        task.send_signal(signal.SIGUSR2)
    entry = job.result()
    assert "requeued: train resumes" in log.read_text()
    assert not folder.exists()  # finished: the worktree is gone
    cluster.record(root, "train", entry)
    assert (root / "result.txt").read_text() == "steps 1-2 from the checkpoint\n"
    assert (root / "ckpt" / "step").read_text() == "4"
    status = subprocess.run([DVC, "status"], cwd=root, capture_output=True, text=True)
    assert "up to date" in status.stdout, status.stdout


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A one-node SLURM cluster on this machine (tests/slurm_cluster.py), or a skip saying why."""
    pytest.importorskip("submitit")
    from tests import slurm_cluster

    reason = slurm_cluster.unavailable()
    if reason:
        pytest.skip(f"no local SLURM cluster: {reason}")
    with slurm_cluster.local_cluster(tmp_path_factory.mktemp("slurm")) as env:
        yield env


def test_a_real_slurm_cluster_runs_the_fan_out(tmp_path, monkeypatch, slurm):
    """sbatch, srun and submitit's SLURM executor: every stage of the diamond as a job on the
    one-node cluster, with a serial `dvc repro`'s outputs."""
    _env(monkeypatch, tmp_path)
    monkeypatch.setenv("SLURM_CONF", slurm["SLURM_CONF"])
    (tmp_path / "fixed").touch()
    serial, root = _project(tmp_path / "serial"), _project(tmp_path / "parallel")
    outcome = cluster.fan_out(root, workers=2, executor="slurm",
                              slurm={"cluster": "slurm", "partition": "local",
                                     "timeout_min": 5, "cpus_per_task": 1},
                              progress=lambda line: None)
    assert outcome.done[0] == "a" and sorted(outcome.done) == ["a", "b@x", "b@y", "c"], outcome
    subprocess.run([DVC, "repro"], cwd=serial, capture_output=True, check=True)
    assert _outputs(root) == _outputs(serial)


def test_a_job_slurm_preempts_is_requeued_and_resumes(tmp_path, monkeypatch, slurm):
    """SLURM's own warning signal (scancel --signal=USR2, as before the time limit) reaches the
    job; submitit requeues it through scontrol, and the stage resumes from its checkpoint."""
    import submitit

    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SLURM_CONF", slurm["SLURM_CONF"])
    marker = tmp_path / "checkpointed"
    monkeypatch.setenv("CHECKPOINTED", str(marker))
    root = _train_project(tmp_path / "project")
    folder, log = tmp_path / "project.job-train", tmp_path / "train.log"
    executor = submitit.AutoExecutor(folder=str(tmp_path / "submitit"), cluster="slurm")
    executor.update_parameters(slurm_partition="local", timeout_min=5, cpus_per_task=1)
    job = executor.submit(cluster.StageJob(), root, "train", [], folder, log, None)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert time.monotonic() < deadline and not job.done(), log.read_text()
        time.sleep(0.2)
    subprocess.run(["scancel", "--signal=USR2", job.job_id], check=True)
    while not job.done():  # SLURM holds a requeued job back a while (BeginTime): not here
        reason = subprocess.run(["squeue", "-h", "-j", job.job_id, "-o", "%r"],
                                capture_output=True, text=True, check=False).stdout
        if "BeginTime" in reason:
            subprocess.run(["scontrol", "update", f"JobId={job.job_id}", "StartTime=now"],
                           capture_output=True, check=False)
        time.sleep(0.5)
    entry = job.result()
    assert "requeued: train resumes" in log.read_text()
    cluster.record(root, "train", entry)
    assert (root / "result.txt").read_text() == "steps 1-2 from the checkpoint\n"


def test_the_workspace_params_reach_the_jobs_uncommitted(tmp_path, monkeypatch):
    """params.yaml is the workspace's (`make repro PROFILE=...` rewrites it), not code: a job
    runs with the coordinator's copy, and the recorded stage is up to date against it, also
    for a value that YAML 1.1 and 1.2 read differently (the lock is DVC's YAML 1.2)."""
    _env(monkeypatch, tmp_path)
    root = _project(tmp_path / "project")
    (root / "params.yaml").write_text("word: committed\n")
    text = (root / "dvc.yaml").read_text().replace("deps: [src.txt, step.py]",
                                                    "deps: [src.txt, step.py]\n    params: [word]")
    (root / "dvc.yaml").write_text(text)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "p"],
                   cwd=root, check=True)
    subprocess.run(["git", "add", "params.yaml"], cwd=root, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "p"],
                   cwd=root, check=True)
    # "off": a string to YAML 1.2 (DVC), false to YAML 1.1; the lock must keep DVC's reading
    (root / "params.yaml").write_text('word: "off"\n')
    outcome = cluster.fan_out(root, workers=1, targets=["a"], progress=lambda line: None)
    assert outcome.done == ["a"]
    assert "word: off" in (root / "dvc.lock").read_text()
    status = subprocess.run([DVC, "status", "a"], cwd=root, capture_output=True, text=True)
    assert "up to date" in status.stdout, status.stdout
