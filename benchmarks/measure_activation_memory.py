"""Activation memory of LoRA training on the paper's three models, measured, and the plans it gives.

    python benchmarks/measure_activation_memory.py [--lengths 4,8,16] [--emit] [--models ...]

For each model (its config.json: tests/model_configs, ../shared/fixtures/models) this builds the
architecture at 2 layers, full width, in bf16 on the CPU, attaches the paper's LoRA (rank 16 on
the seven kinds, dropout 0.05, float32 adapter) as training does, and counts the bytes autograd
saves for backward per token per decoder layer, without and with gradient checkpointing
(compass.training.memory.measure_activations; padded rows, sdpa). Then it prints

1. the measured numbers (bytes per token per layer; per row per length² per layer; outside the
   layers per token; the fit's largest misfit at the middle length);
2. the estimated peak at the paper's 1,024 tokens for micro-batches of 1, 2, 4, 8 and 16
   sequences, without and with checkpointing, and the plan chosen for a 16-sequence batch on
   80 GiB (H100) and 141 GiB (H200);
3. the check against the one measured peak: the Llama-3.1-8B shape at 4 x 1,024 tokens on an H200
   (benchmarks/results/h200_2026-11-28/bench_8b.log: 54.5 GiB, 19.5 GiB with checkpointing; the
   torch allocator's peak, so without the CUDA context), measured here in that run's setting
   (LoRA rank 16 on every linear layer, no dropout, unpadded rows, half of each row predicted);
4. the padding that length-bucketed micro-batches save on Aya-like lengths.

``--emit`` also prints :data:`compass.training.memory.MEASURED` as Python source, for the module.
Takes a few minutes on 2 CPU cores (bf16 matrix products are emulated on CPUs without it).
"""
from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compass.training import memory
from compass.training.memory import GIB
from tests.conftest import SHARED_FIXTURES

CONFIGS = {
    "phi-4-mini": ROOT / "tests" / "model_configs" / "phi-4-mini-instruct.json",
    "llama-3.1-8b": SHARED_FIXTURES / "models" / "llama-3.1-8b" / "config.json",
    "qwen2.5-7b": SHARED_FIXTURES / "models" / "qwen2.5-7b-instruct" / "config.json",
}
PAPER = memory.Setting()  # profiles/paper.yaml train: rank 16, alpha 32, dropout 0.05, 7 kinds
H200_RUN = memory.Setting(dropout=0.0, padded=False)  # bench_gpu.py's LoRA and fixed-length rows
H200_PEAK_GIB = {False: 54.5, True: 19.5}  # bench_8b.log, torch.cuda.max_memory_allocated
DEVICES = {"H100 80 GiB": 80 * GIB, "H200 141 GiB": 141 * GIB}
BATCH, LENGTH = 16, 1024


def load(name: str) -> dict:
    return json.loads(CONFIGS[name].read_text())


def measured_table(found: dict) -> pd.DataFrame:
    rows = []
    for name, acts in found.items():
        for mode in (False, True):
            p = acts.of(mode)
            rows.append({"model": name, "checkpointing": mode,
                         "per_layer_B_per_token": round(p.per_layer),
                         "per_layer_B_per_row_len2": round(p.per_layer_sq, 2),
                         "fixed_B_per_token": round(p.fixed),
                         "fixed_B_per_row_len2": round(p.fixed_sq, 2),
                         "misfit": f"{acts.misfit:.1e}"})
    return pd.DataFrame(rows)


def peaks_table(name: str, config: dict, acts) -> pd.DataFrame:
    shape = memory.model_shape(config, PAPER, name)
    rows = []
    for mode in (False, True):
        row = {"model": name, "checkpointing": mode}
        for micro in (1, 2, 4, 8, 16):
            parts = memory.estimate(shape, acts, PAPER, micro, LENGTH, mode)
            row[f"micro {micro} GiB"] = round(parts.total / GIB, 1)
        rows.append(row)
    return pd.DataFrame(rows)


def plans(name: str, config: dict, acts) -> list[str]:
    shape = memory.model_shape(config, PAPER, name)
    out = []
    for device, size in DEVICES.items():
        try:
            chosen = memory.plan(config, size, BATCH, LENGTH, PAPER, activations=acts,
                                 shape=shape)
            out.append(f"{device}: {chosen.describe()}")
        except memory.MemoryPlanError as err:
            out.append(f"{device}: {err}")
    return out


def h200_check(acts) -> list[str]:
    """The Llama-3.1-8B shape at 4 x 1,024 in the H200 run's setting against its peaks."""
    config = load("llama-3.1-8b")
    shape = memory.model_shape(config, H200_RUN, "llama-3.1-8b")
    lines = []
    for mode, measured in H200_PEAK_GIB.items():
        # allocator peak: no CUDA context; half of each row is the response (fixed_examples)
        parts = memory.estimate(shape, acts, H200_RUN, 4, 1024, mode, loss_positions=512,
                                context_bytes=0)
        lines.append(f"checkpointing {mode}: estimate {parts.total / GIB:.1f} GiB vs measured "
                     f"{measured} GiB (ratio {parts.total / GIB / measured:.3f}; "
                     f"{parts.describe()}); per layer {acts.of(mode).per_layer:,.0f} B/token")
    return lines


def bucketing_lines(seed: int = 0) -> list[str]:
    """Aya-like lengths (benchmarks/bench_gpu.py's variable rows: log-normal, median 256)."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(np.log(LENGTH / 4), 0.8, size=4096).astype(int), 8, LENGTH)
    out = []
    for micro in (4, 16):
        r = memory.bucketing_report(lengths, micro, seed)
        out.append(f"micro-batch {micro}: padding {r['random']:.1%} of token slots in random "
                   f"batches, {r['bucketed']:.1%} bucketed ({r['slots_ratio']:.2f}x the slots)")
    return out


def emit(found: dict) -> str:
    lines = ["MEASURED: dict[str, dict[str, tuple[float, float, float, float]]] = {"]
    for name, acts in found.items():
        lines.append(f"    # {name}")
        pieces = textwrap.wrap(acts.key, 72, drop_whitespace=False, break_on_hyphens=False)
        assert "".join(pieces) == acts.key
        lines.append("    (" + "\n     ".join(repr(p) for p in pieces) + "): {")
        for label, mode in (("plain", False), ("checkpointed", True)):
            p = acts.of(mode)
            lines.append(f"        {label!r}: ({p.per_layer!r}, {p.per_layer_sq!r}, "
                         f"{p.fixed!r}, {p.fixed_sq!r}),")
        lines.append("    },")
    lines.append("}")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--lengths", default="4,8,16",
                        help="row lengths measured (shortest and longest fit; others check)")
    parser.add_argument("--emit", action="store_true", help="print MEASURED as Python source")
    parser.add_argument("--no-check", action="store_true", help="skip the H200 comparison")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    from transformers.utils import logging

    logging.set_verbosity_error()
    lengths = tuple(int(n) for n in args.lengths.split(","))
    found, configs = {}, {}
    for name in args.models:
        if not CONFIGS[name].exists():
            print(f"# {name}: no config at {CONFIGS[name]}; skipped")
            continue
        configs[name] = load(name)
        start = time.perf_counter()
        found[name] = memory.measure_activations(configs[name], lengths=lengths)
        print(f"# {name}: measured in {time.perf_counter() - start:.1f} s")
    print("\n## saved for backward (paper setting: bf16, LoRA r16 dropout, fp32 adapter, sdpa, "
          "padded rows)\n")
    print(measured_table(found).to_markdown(index=False))
    print(f"\n## estimated peak at {LENGTH} tokens per sequence\n")
    print(pd.concat([peaks_table(n, configs[n], found[n]) for n in found]).to_markdown(index=False))
    print(f"\n## plans for batch {BATCH} x {LENGTH} tokens\n")
    for name, acts in found.items():
        for line in plans(name, configs[name], acts):
            print(f"- {line}")
    emitted = dict(found)
    if not args.no_check and "llama-3.1-8b" in found:
        acts = memory.measure_activations(load("llama-3.1-8b"), rank=H200_RUN.rank,
                                          alpha=H200_RUN.alpha, dropout=H200_RUN.dropout,
                                          padded=H200_RUN.padded, lengths=lengths)
        emitted["llama-3.1-8b, H200 run"] = acts
        print("\n## against the H200 measurement (Llama-3.1-8B shape, 4 x 1,024, allocator peak)\n")
        for line in h200_check(acts):
            print(f"- {line}")
    print("\n## length-bucketed micro-batches (Aya-like lengths, 4,096 examples)\n")
    for line in bucketing_lines():
        print(f"- {line}")
    if args.emit:
        print("\n" + emit(emitted))


if __name__ == "__main__":
    main()
