"""A one-node SLURM cluster on this machine, for the tests of the SLURM executor: munged,
slurmctld and slurmd started from a throwaway folder with their own key, socket, ports, state and
logs, and stopped again. Needs Debian's slurm-wlm and munge (`make slurm-test` installs them)
and root (slurmd starts jobs as their user); ``unavailable`` says why not when they are missing."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

CONF = """\
ClusterName=compass
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={folder}/munge.socket
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
NodeName={host} CPUs={cpus} RealMemory=1000 State=UNKNOWN
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""
DAEMONS = ("munged", "slurmctld", "slurmd")


def unavailable() -> str | None:
    """Why no local cluster can start here, or None."""
    missing = [d for d in DAEMONS if not Path(_daemon(d)).exists()]
    if missing:
        return f"{', '.join(missing)} not installed (make slurm-test installs slurm-wlm and munge)"
    if os.geteuid() != 0:
        return "slurmd must run as root to start jobs"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _daemon(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


@contextmanager
def local_cluster(folder: Path, timeout_s: float = 60):
    """Start the cluster in ``folder``; yields the environment (SLURM_CONF) that sbatch, squeue
    and submitit need to reach it."""
    for sub in ("state", "spool"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    folder.chmod(0o755)  # munged wants its socket's folder searchable by all
    key = folder / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    conf = folder / "slurm.conf"
    conf.write_text(CONF.format(host=socket.gethostname().split(".")[0], folder=folder,
                                ctld_port=_free_port(), d_port=_free_port(),
                                cpus=os.cpu_count()))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    try:
        subprocess.run([_daemon("munged"), "--force", f"--key-file={key}",
                        f"--socket={folder}/munge.socket", f"--pid-file={folder}/munged.pid",
                        f"--log-file={folder}/munged.log", f"--seed-file={folder}/munge.seed"],
                       check=True, capture_output=True, text=True)
        for daemon in ("slurmctld", "slurmd"):
            subprocess.run([_daemon(daemon), "-f", str(conf)], check=True, capture_output=True,
                           text=True, env=env)
        deadline = time.monotonic() + timeout_s
        while "idle" not in _sinfo(env):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the node did not come up: {_sinfo(env)!r}; logs in {folder}")
            time.sleep(0.5)
        yield env
    finally:
        for pid_file in ("slurmd.pid", "slurmctld.pid", "munged.pid"):
            _stop(folder / pid_file)


def _sinfo(env: dict) -> str:
    run = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, env=env)
    return run.stdout.strip()


def _stop(pid_file: Path) -> None:
    """The daemon whose pid the file holds, and only it."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
