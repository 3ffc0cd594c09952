"""Which floating-point type a model runs in, decided once per machine, with the reason.

bf16 halves memory and, where the hardware computes it natively, speeds CPU work up (measured 2x
faster scoring on an EPYC with AVX512-BF16). Where it does not (e.g. AMD Zen 3: AVX2 only), torch
emulates it and a bf16 matmul ran 100x slower than fp32, turning a 40 s training stage into
8 minutes. So ``auto`` never trusts a machine name: it reads the CPU's flags AND times one small
matmul in both types. CUDA always gets bf16.

The timing only guards against flags that lie: on one CPU with native bf16 the bf16/fp32 ratio read
0.93 in one run and 0.20 in another, so a threshold at 1 let two processes of one run pick
different types. The rule puts the line where no measurement lands: bf16 where the flags say
native, unless a bf16 matmul takes more than :data:`EMULATED_RATIO` (3x) the fp32 time (emulated
bf16 measured ~100x). And the decision is taken once per machine, by the pipeline's ``precision``
stage (refreshed by ``make repro``'s ``check --dry`` when the machine changed), and recorded in
``data/machine/precision.json``: every stage that loads a model reads that record (and lists it as
a DVC dependency, so a changed decision reruns exactly those stages).

``COMPASS_CPU_BF16=0`` (or ``1``) overrides the CPU decision, e.g. to reproduce on a bf16 machine
what a machine without it computes; the record then holds the override.
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
EMULATED_RATIO = 3.0  # bf16/fp32 matmul time above which native-flagged bf16 counts as emulated


@dataclass(frozen=True)
class Precision:
    """The float type chosen for ``train.dtype: auto`` on one device, with the reason: what the
    precision stage records and the training reads."""
    device: str
    dtype: str  # "float32" | "bfloat16"
    reason: str  # one sentence a reader of the build page understands

    def torch_dtype(self) -> torch.dtype:
        """The chosen float type as a torch dtype."""
        return getattr(torch, self.dtype)

    def as_dict(self) -> dict:
        """The decision as a plain mapping (device, dtype, reason)."""
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
def cpu_bf16() -> tuple[bool, str, str]:
    """(use bf16 on this CPU?, why, what was measured), decided fresh (once per process). The
    reason names only flags and the rule, so the same machine gives the same bytes every time."""
    override = os.environ.get(ENV_OVERRIDE)
    if override in ("0", "1"):
        return override == "1", f"{ENV_OVERRIDE}={override} set in the environment", ""
    native = sorted(native_bf16_flags())
    capability = torch.backends.cpu.get_cpu_capability()
    where = f"{platform.machine()} CPU, torch capability {capability},"
    if not native:
        return False, f"{where} has no native bf16 instructions: fp32", ""
    ratio = matmul_seconds(torch.bfloat16) / max(matmul_seconds(torch.float32), 1e-9)
    measured = f"a bf16 matmul took {ratio:.2f}x the fp32 time"
    if ratio <= EMULATED_RATIO:
        return True, (f"{where} has native bf16 ({', '.join(native)}) and bf16 matmuls are not "
                      f"emulated (under {EMULATED_RATIO:g}x the fp32 time)"), measured
    return False, (f"{where} reports native bf16 ({', '.join(native)}) but a bf16 matmul takes "
                   f"over {EMULATED_RATIO:g}x the fp32 time (emulated), so fp32"), measured


def decide() -> Precision:
    """This machine's CPU decision for ``train.dtype: auto``, measured now (not the record)."""
    use, why, _ = cpu_bf16()
    return Precision("cpu", "bfloat16" if use else "float32", why)


def recorded() -> Precision | None:
    """The decision the ``precision`` stage recorded (None before it ran)."""
    from compass import io, paths

    path = paths.precision_record()
    if not path.exists():
        return None
    record = io.read_json(path)
    return Precision("cpu", record["cpu_dtype"], record["reason"])


def record(chosen: Precision | None = None) -> tuple[Precision, bool]:
    """Write this machine's decision (default: :func:`decide`) to the record when it differs from
    what is there. Returns (the decision, whether the record changed)."""
    from compass import io, paths

    chosen = chosen or decide()
    if recorded() == chosen:
        return chosen, False
    io.write_json(paths.precision_record(), {"cpu_dtype": chosen.dtype, "reason": chosen.reason})
    return chosen, True


def _cpu_choice() -> Precision:
    """The recorded decision where there is one (every stage of a run agrees), else a fresh one.
    An environment override that contradicts the record is an error, not a silent switch."""
    chosen = recorded()
    if chosen is None:
        return decide()
    override = os.environ.get(ENV_OVERRIDE)
    if override in ("0", "1") and (override == "1") != (chosen.dtype == "bfloat16"):
        from compass import paths

        raise ValueError(f"{ENV_OVERRIDE}={override} contradicts the float type recorded in "
                         f"{paths.precision_record()} ({chosen.dtype}); run `python -m compass.cli "
                         "check --dry` (make repro does) to record the new decision")
    return chosen


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
    chosen = _cpu_choice()
    return Precision(device, chosen.dtype, chosen.reason)
