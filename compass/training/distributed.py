"""Data-parallel adapter training over several processes (``train.processes``; GPUs, or CPU
processes with gloo), launched by ``accelerate launch`` (torchrun underneath; several machines:
README, "Several GPUs and machines").

Each process takes every ``size``-th row of the same global micro-batch, weights its summed loss
by the global number of completion tokens, and the LoRA gradients are summed across processes
before the optimizer step: every process then holds the one-process gradient of the whole batch
and takes the same step, so N processes train the adapter one process trains (tested with 2 gloo
processes). DDP's own wrapper cannot do this here: its gradient hooks are armed in the wrapped
module's ``forward``, and the completion loss calls the decoder and the output layer directly
(positions-only logits). Summing a LoRA adapter's gradients (a few MB) is one all-reduce.
Dropout draws the same masks in every process (same seed), so with dropout the adapters agree in
distribution, not bit for bit.
"""
from __future__ import annotations

import os

import torch


def world() -> tuple[int, int]:
    """(rank, number of processes): (0, 1) outside a launched group. Inside one (``WORLD_SIZE``
    set by torchrun/accelerate), the process group is created on first use: NCCL on CUDA, gloo
    on CPU."""
    import torch.distributed as dist

    if not dist.is_available():
        return 0, 1
    if not dist.is_initialized():
        if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
            return 0, 1
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def is_main() -> bool:
    """Whether this is rank 0, the process that writes files and logs (True outside a launched
    group)."""
    return world()[0] == 0


def local_device() -> str | None:
    """This process's GPU in a launched group (``LOCAL_RANK``); None lets the caller choose."""
    if world()[1] > 1 and torch.cuda.is_available():
        index = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(index)
        return f"cuda:{index}"
    return None


def total(value: float | int, device) -> float:
    """The sum of ``value`` over the processes (the value itself in one process)."""
    rank, size = world()
    if size == 1:
        return value
    import torch.distributed as dist

    tensor = torch.tensor([float(value)], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return float(tensor.item())


def sum_gradients(params: list[torch.Tensor]) -> None:
    """Sum the gradients of ``params`` over the processes, in one flat all-reduce."""
    if world()[1] == 1:
        return
    import torch.distributed as dist

    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1).to(torch.float32) for g in grads])
    dist.all_reduce(flat)
    at = 0
    for p, g in zip(params, grads):
        n = g.numel()
        p.grad = flat[at:at + n].view_as(g).to(g.dtype)
        at += n


def barrier() -> None:
    """Wait for every process of a launched group; nothing to wait for in a single process."""
    if world()[1] > 1:
        import torch.distributed as dist

        dist.barrier()


def finish() -> None:
    """Leave the process group (a launched process's last call)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def launch_command(module: str, args: list[str], processes: int,
                   port: int | None = None) -> list[str]:
    """``accelerate launch`` running ``python -m module args`` in ``processes`` processes on this
    machine (torchrun underneath: GPUs, or CPU processes with gloo)."""
    import sys

    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
               "--num_processes", str(processes), "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no"]
    if port is not None:
        command += ["--main_process_port", str(port)]
    return command + ["--module", module, *args]


def free_port() -> int:
    """A TCP port free on this machine now, for the launched group's rendezvous (another program may
    still take it before the group binds it)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
