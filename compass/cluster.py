"""The stale stages of the DVC pipeline as parallel jobs (local workers, or SLURM through
submitit), with the coordinator's dvc.lock as the one record.

DVC runs one stage at a time per workspace and holds a repository lock while it does, so this
runs each stage elsewhere and lets the coordinator record it:

1. the stale stages and their dependencies come from DVC (``dvc status`` and the stage graph);
2. a stage whose upstream stages are done gets a workspace of its own: a ``git worktree`` of
   the committed code beside the coordinator's (so relative paths in params hold) that shares
   the coordinator's DVC cache, with the coordinator's current ``dvc.lock`` and
   ``params.yaml``; its upstream outputs are checked out from the cache and ``dvc repro
   --single-item`` runs it there (one GPU per job: ``CUDA_VISIBLE_DEVICES``);
3. when it succeeds, the coordinator copies that stage's entry of the job's ``dvc.lock`` into
   its own (only the coordinator writes it, atomically) and checks the outputs out of the shared
   cache; a failed job is reported with its log, its dependents are skipped, the others finish.
   A SLURM job that is preempted or runs out of time is requeued in the same worktree
   (``StageJob``), where the train stage resumes from its checkpoint.

DVC's run-cache cannot do step 3: it skips stages with ``persist`` outputs, which the train
stage has (an interrupted run resumes). Running the same command again runs only what is still
stale. Jobs get their stage name and paths as arguments, never pickled settings; the code they
run is the committed code, so the working tree must be clean (but for params.yaml).

    python -m compass.cluster [--workers N] [--gpus N] [--executor local|slurm] [STAGE ...]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

# DVC's own YAML 1.2 reading and writing: PyYAML's YAML 1.1 reads a param such as
# fused_loss: off as false, and DVC would then see the stage's params changed
from dvc.utils.serialize import dumps_yaml, loads_yaml, parse_yaml_for_update
from submitit.helpers import Checkpointable, DelayedSubmission

from compass import io, paths

JOBS = ".dvc/tmp/cluster"  # worktrees and logs, under the coordinator's workspace
# the workspace's own, not code: a job gets the coordinator's copy, so they may differ from HEAD
# (`make repro PROFILE=paper` rewrites params.yaml before the fan-out starts)
WORKSPACE_FILES = ("dvc.lock", "params.yaml")


class ClusterError(RuntimeError):
    """The fan-out cannot start (a dirty tree, no DVC repository) or jobs failed."""


@dataclass
class Outcome:
    """What the fan-out did: stages recorded in order, failed ones with their logs, skipped."""

    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # stage -> log path
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _dvc(*args: str, cwd: Path, log: Path | None = None, env=None) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).parent / "dvc"), *args]
    if log is None:
        return subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env)
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(f"$ dvc {' '.join(args)}\n")
        handle.flush()
        with subprocess.Popen(command, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT,
                              text=True, env=env) as process:
            try:
                process.wait()
            except BaseException:  # the job is interrupted: nothing of the stage runs on
                _kill_tree(process.pid)
                raise
        return subprocess.CompletedProcess(command, process.returncode)


def _kill_tree(pid: int) -> None:
    """A process and everything it started (a stage's command, its notebook kernel), so that
    none goes on writing into a worktree that a requeued job resumes in."""
    import psutil

    try:
        parent = psutil.Process(pid)
        family = [*parent.children(recursive=True), parent]
    except psutil.NoSuchProcess:
        return
    for process in family:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(family, timeout=10)


def stage_graph(root: Path) -> dict[str, set[str]]:
    """Each stage (its address, e.g. ``train@gemma-3-270m-fa``) and the stages it depends on."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        graph = repo.index.graph
        # dvc.yaml at the root
        return {s.name: {d.name for d in graph.successors(s)} for s in graph.nodes}


def stale(root: Path, graph: dict[str, set[str]], targets=()) -> list[str]:
    """The stages ``dvc repro`` would run (changed, and everything downstream of a changed one),
    limited to ``targets`` and their upstream stages when given, in dependency order."""
    run = _dvc("status", "--json", cwd=root)
    if run.returncode != 0:
        raise ClusterError(f"dvc status failed in {root}: {run.stderr.strip()[-2000:]}")
    changed = set(json.loads(run.stdout or "{}"))
    order = _topological(graph)
    todo: set[str] = set()
    for name in order:  # upstream first: a stage is stale when changed or fed by a stale one
        if name in changed or graph[name] & todo:
            todo.add(name)
    if targets:
        wanted = set()
        stack = list(targets)
        while stack:
            name = stack.pop()
            if name not in graph:
                raise ClusterError(f"unknown stage {name!r}; stages: {', '.join(order)}")
            if name not in wanted:
                wanted.add(name)
                stack += graph[name]
        todo &= wanted
    return [name for name in order if name in todo]


def _topological(graph: dict[str, set[str]]) -> list[str]:
    """Stages upstream first (ties by name: the same order every run)."""
    import networkx as nx

    dag = nx.DiGraph([(dep, name) for name, deps in graph.items() for dep in deps])
    dag.add_nodes_from(graph)
    return list(nx.lexicographical_topological_sort(dag))


def _ancestors(graph: dict[str, set[str]], name: str) -> set[str]:
    """Every stage ``name`` depends on, directly or through others."""
    import networkx as nx

    return nx.descendants(nx.DiGraph([(n, d) for n, deps in graph.items() for d in deps]), name) \
        if graph[name] else set()


def _require_clean(root: Path) -> str:
    """The commit the jobs run: the working tree must hold nothing uncommitted that is code."""
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                            capture_output=True, text=True, check=True).stdout
    dirty = [line[3:] for line in status.splitlines() if line[3:] not in WORKSPACE_FILES]
    if dirty:
        raise ClusterError(f"the jobs run the committed code, but {len(dirty)} tracked file(s) "
                           f"have changes (e.g. {dirty[0]}): commit or stash them first")
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                          text=True, check=True).stdout.strip()


def _cache_dir(root: Path) -> Path:
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        return Path(repo.cache.local_cache_dir)


def run_job(root: Path, stage: str, upstream: list[str], folder: Path, log: Path,
            gpu: int | None = None, resume: bool = False) -> dict:
    """One stage in its own worktree of ``root``'s HEAD sharing ``root``'s DVC cache; returns
    the stage's new ``dvc.lock`` entry. Runs wherever it is called (a thread, a SLURM job).

    ``resume``: the job was requeued, so its worktree, holding what the interrupted run
    persisted (the train stage's checkpoint), is used again rather than made afresh. An
    interrupted run (SystemExit, KeyboardInterrupt: not an Exception) keeps its worktree."""
    if not (resume and (folder / ".git").exists()):
        if folder.exists():
            _remove_worktree(root, folder)
        subprocess.run(["git", "worktree", "add", "--detach", "-f", str(folder), "HEAD"],
                       cwd=root, capture_output=True, text=True, check=True)
    interrupted = True
    try:
        with open(folder / ".dvc" / "config.local", "w", encoding="utf-8") as handle:
            handle.write(f"[cache]\n    dir = {_cache_dir(root)}\n")
        for name in WORKSPACE_FILES:
            if (root / name).exists():
                shutil.copy2(root / name, folder / name)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the worktree's code
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = str(gpu)
        if upstream:
            done = _dvc("checkout", *upstream, cwd=folder, log=log, env=env)
            if done.returncode != 0:
                raise ClusterError(f"{stage}: could not check out its inputs (see {log})")
        done = _dvc("repro", "--single-item", stage, cwd=folder, log=log, env=env)
        if done.returncode != 0:
            raise ClusterError(f"{stage} failed (see {log})")
        lock = loads_yaml((folder / "dvc.lock").read_text(encoding="utf-8"))
        interrupted = False
        return lock["stages"][stage]
    except Exception:
        interrupted = False  # a failure, not a preemption: the rerun starts afresh
        raise
    finally:
        if not interrupted:
            _remove_worktree(root, folder)


class StageJob(Checkpointable):
    """A stage as a SLURM job that SLURM may preempt or time out. submitit then calls
    ``checkpoint``, which requeues the same stage with ``resume``: it runs again in the kept
    worktree, and the train stage resumes from its persisted checkpoint."""

    def __call__(self, root: Path, stage: str, upstream: list[str], folder: Path, log: Path,
                 gpu: int | None = None, resume: bool = False) -> dict:
        """Run the stage in its worktree (kept when SLURM interrupts it) and return its lock
        entry."""
        return run_job(root, stage, upstream, folder, log, gpu, resume=resume)

    def checkpoint(self, root: Path, stage: str, upstream: list[str], folder: Path, log: Path,
                   gpu: int | None = None, resume: bool = False) -> DelayedSubmission:
        """What submitit requeues on preemption or timeout: the same stage, resuming."""
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(f"requeued: {stage} resumes in {folder}\n")
        return DelayedSubmission(StageJob(), root, stage, upstream, folder, log, gpu,
                                 resume=True)


def _remove_worktree(root: Path, folder: Path) -> None:
    subprocess.run(["git", "worktree", "remove", "--force", str(folder)], cwd=root,
                   capture_output=True, text=True)
    shutil.rmtree(folder, ignore_errors=True)
    subprocess.run(["git", "worktree", "prune"], cwd=root, capture_output=True, text=True)


def record(root: Path, stage: str, entry: dict) -> None:
    """Put one stage's lock entry into the coordinator's dvc.lock (written whole, atomically) and
    check its outputs out of the shared cache."""
    lock_file = root / "dvc.lock"
    lock = (parse_yaml_for_update(lock_file.read_text(encoding="utf-8"), str(lock_file))
            if lock_file.exists() else None) or {"schema": "2.0", "stages": {}}
    lock.setdefault("stages", {})[stage] = entry
    io.write_text(lock_file, dumps_yaml(lock))
    done = _dvc("checkout", stage, cwd=root)
    if done.returncode != 0:
        raise ClusterError(f"{stage}: recorded, but its outputs did not check out: "
                           f"{done.stderr.strip()[-2000:]}")


def fan_out(root: Path | None = None, workers: int = 2, gpus: int = 0, targets=(),
            executor: str = "local", slurm: dict | None = None, progress=print) -> Outcome:
    """Run the stale stages (of ``targets``) as parallel jobs, each once, and record them in the
    coordinator's dvc.lock; see the module's notes. ``gpus``: jobs get GPU (slot % gpus)."""
    root = Path(root or paths.ROOT)
    _require_clean(root)
    graph = stage_graph(root)
    todo = stale(root, graph, targets)
    outcome = Outcome()
    start = time.perf_counter()
    jobs_dir = root / JOBS
    jobs_dir.mkdir(parents=True, exist_ok=True)
    submit = _local_submitter(workers) if executor == "local" else _slurm_submitter(jobs_dir, slurm)
    running: dict[Future, tuple[str, Path]] = {}
    pending = list(todo)
    slot = 0
    while pending or running:
        blocked = set(outcome.failed) | set(outcome.skipped)
        for name in list(pending):
            if graph[name] & blocked:
                pending.remove(name)
                outcome.skipped.append(name)
            elif not (graph[name] & (set(pending) | {s for s, _ in running.values()})) \
                    and len(running) < workers:
                pending.remove(name)
                safe = name.replace("@", "_").replace("/", "_")
                log = jobs_dir / f"{safe}.log"
                log.unlink(missing_ok=True)
                upstream = sorted(_ancestors(graph, name))
                gpu = slot % gpus if gpus else None
                slot += 1
                progress(f"start {name}" + (f" (GPU {gpu})" if gpu is not None else ""))
                # beside the workspace, not inside it: params' relative paths (../shared/...)
                # mean the same from the job's worktree
                folder = root.parent / f"{root.name}.job-{safe}"
                future = submit(run_job, root, name, upstream, folder, log, gpu)
                running[future] = (name, log)
        if not running:
            break
        finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
        for future in finished:
            name, log = running.pop(future)
            try:
                record(root, name, future.result())
                outcome.done.append(name)
                progress(f"done {name}")
            except Exception as err:  # noqa: BLE001 - a job's failure is reported, not raised
                outcome.failed[name] = str(log)
                progress(f"FAILED {name}: {err} (log: {log})")
    outcome.seconds = time.perf_counter() - start
    return outcome


def _local_submitter(workers: int):
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    return pool.submit


def _slurm_submitter(folder: Path, slurm: dict | None):
    """submitit's executor (``slurm`` keys: partition, account, gpus_per_node, cpus_per_task,
    mem_gb, timeout_min, and ``cluster``: slurm, local or debug). The job gets the stage name and
    paths; the workspace and cache must be on a disk the nodes share."""
    import submitit

    options = dict(slurm or {})
    cluster = options.pop("cluster", None)
    executor = submitit.AutoExecutor(folder=str(folder / "submitit"), cluster=cluster)
    names = {"partition": "slurm_partition", "account": "slurm_account"}
    executor.update_parameters(**{names.get(k, k): v for k, v in options.items()})

    def submit(fn, *args):  # fn is run_job: SLURM gets the requeueable StageJob around it
        return _JobFuture(executor.submit(StageJob(), *args))

    return submit


class _JobFuture(Future):
    """A submitit job seen as a concurrent.futures Future (polled by a thread)."""

    def __init__(self, job):
        super().__init__()
        self.job = job

        def watch():
            try:
                self.set_result(job.result())
            except Exception as err:  # noqa: BLE001
                self.set_exception(err)

        ThreadPoolExecutor(max_workers=1).submit(watch)


def main(argv=None) -> int:
    """Command line of :func:`fan_out`: 0 when every stage was recorded, 1 when one failed, 2 when
    the fan-out itself stopped (:class:`ClusterError`)."""
    parser = argparse.ArgumentParser(prog="python -m compass.cluster",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("stages", nargs="*", help="limit to these stages and their inputs")
    parser.add_argument("--workers", type=int, default=2, help="jobs at once")
    parser.add_argument("--gpus", type=int, default=0, help="GPUs of this machine (one per job)")
    parser.add_argument("--executor", choices=("local", "slurm"), default="local")
    parser.add_argument("--slurm", default="{}", help="JSON: partition, account, gpus_per_node, "
                        "cpus_per_task, mem_gb, timeout_min (submitit's names)")
    args = parser.parse_args(argv)
    try:
        outcome = fan_out(workers=args.workers, gpus=args.gpus, targets=args.stages,
                          executor=args.executor, slurm=json.loads(args.slurm))
    except ClusterError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{len(outcome.done)} stage(s) recorded in {outcome.seconds:.0f} s"
          + (f"; failed: {', '.join(f'{s} ({log})' for s, log in outcome.failed.items())}"
             if outcome.failed else "")
          + (f"; skipped (an input failed): {', '.join(outcome.skipped)}" if outcome.skipped
             else ""))
    return 1 if outcome.failed else 0


if __name__ == "__main__":
    sys.exit(main())
