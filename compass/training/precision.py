"""Which floating-point type a model runs in, decided per machine, with the reason.

bf16 halves memory and, where the hardware computes it natively, speeds CPU work up (measured 2x
faster scoring on an EPYC with AVX512-BF16). Where it does not (e.g. AMD Zen 3: AVX2 only), torch
emulates it and a bf16 matmul ran 100x slower than fp32, turning a 40 s training stage into
8 minutes. So ``auto`` never trusts a machine name: it reads the CPU's flags AND times one small
matmul in both types, and takes bf16 only where the flags say native and the timing agrees.
CUDA always gets bf16.

``COMPASS_CPU_BF16=0`` (or ``1``) overrides the CPU decision, e.g. to reproduce on a bf16 machine
what a machine without it computes.
"""
from __future__ import annotations

import functools
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

DTYPES = ("auto", "float32", "bfloat16")
# CPU feature flags (as /proc/cpuinfo spells them) that mean bf16 matmuls run natively
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")  # x86 AVX512/AMX; "bf16" on Arm (FEAT_BF16)
ENV_OVERRIDE = "COMPASS_CPU_BF16"


@dataclass(frozen=True)
class Precision:
    device: str
    dtype: str  # "float32" | "bfloat16"
    reason: str  # one sentence a reader of the build page understands

    def torch_dtype(self) -> torch.dtype:
        return getattr(torch, self.dtype)

    def as_dict(self) -> dict:
        return asdict(self)


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags (Linux); empty where /proc/cpuinfo does not exist."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags.update(value.split())
    return flags


def matmul_seconds(dtype: torch.dtype, repeats: int = 3) -> float:
    """Best-of-``repeats`` time of a 256x512 @ 512x1024 matmul (a few ms in fp32)."""
    a = torch.randn(256, 512).to(dtype)
    b = torch.randn(512, 1024).to(dtype)
    a @ b  # warm-up: kernels chosen, memory touched
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return best


@functools.cache
def cpu_bf16() -> tuple[bool, str]:
    """(use bf16 on this CPU?, why), decided once per process."""
    override = os.environ.get(ENV_OVERRIDE)
    if override in ("0", "1"):
        return override == "1", f"{ENV_OVERRIDE}={override} set in the environment"
    native = sorted(native_bf16_flags())
    capability = torch.backends.cpu.get_cpu_capability()
    ratio = matmul_seconds(torch.bfloat16) / max(matmul_seconds(torch.float32), 1e-9)
    where = f"{platform.machine()} CPU, torch capability {capability}"
    if native and ratio <= 1.0:
        return True, (f"{where} has native bf16 ({', '.join(native)}) and a bf16 matmul took "
                      f"{ratio:.2f}x the fp32 time")
    if native:
        return False, (f"{where} reports native bf16 ({', '.join(native)}) but a bf16 matmul took "
                       f"{ratio:.1f}x the fp32 time, so fp32 is faster here")
    return False, (f"{where} has no native bf16 instructions (bf16 matmul {ratio:.1f}x the fp32 "
                   "time): fp32")


def native_bf16_flags() -> set[str]:
    """The flags of this CPU that mean native bf16."""
    return cpu_flags() & set(NATIVE_BF16_FLAGS)


def choose(dtype: str = "auto", device: str | None = None) -> Precision:
    """The device and dtype to run on. ``dtype`` is the params value: auto | float32 | bfloat16."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r} is not allowed; choose one of {list(DTYPES)}")
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = str(torch.device(device))
    if dtype != "auto":
        return Precision(device, dtype, f"train.dtype = {dtype} in params")
    if device.startswith("cuda"):
        return Precision(device, "bfloat16", "CUDA device: bf16 (auto)")
    use, why = cpu_bf16()
    return Precision(device, "bfloat16" if use else "float32", why)
