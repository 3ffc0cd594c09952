"""A paper-scale rehearsal: the paper stages' own functions (train, evaluate with the lm-eval
path, long context, one ECDA update) on the fixture rows, on the three paper architectures built
from their configs with random weights, without DVC or papermill.

    python benchmarks/rehearse_paper.py [--size reduced|full] [--steps 2] [--compile] [--out F]

``reduced`` (the default on a CPU, and what CI runs): two decoder layers, a narrow body and the
tests' small vocabulary, each architecture's own kind (Phi-3's fused projections and partial
rotary, Llama's grouped-query attention and rope scaling, Qwen's biases and tied-or-not head),
so every stage runs every code path in seconds. ``full`` (the default on a GPU): the published
shapes, bf16; the train stage then runs its memory plan (compass.training.memory) and the table
reports the plan it chose. Per model and stage: seconds, peak memory, tokens/s and, on a GPU,
MFU (6 x parameters x tokens for training, 2 x for the others, against the measured matmul
peak). ``--compile`` adds the train stage with ``train.compile`` against the plain run.

``--out`` keeps the table as JSON. The rates ``make cost`` reads come from
benchmarks/bench_gpu.py (benchmarks/results/gpu.json); a full-size run here is their check
through the stages' own code. The random weights make the scores meaningless: the rehearsal measures that the stages run, how
long and in how much memory, not what they find.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from compass import config as config_mod  # noqa: E402

FIXTURES = Path(os.environ.get("COMPASS_FIXTURES", ROOT.parent / "shared" / "fixtures"))
CONFIGS = {
    "phi-4-mini": ROOT / "tests" / "model_configs" / "phi-4-mini-instruct.json",
    "llama-3.1-8b": FIXTURES / "models" / "llama-3.1-8b" / "config.json",
    "qwen2.5-7b": FIXTURES / "models" / "qwen2.5-7b-instruct" / "config.json",
}
REDUCED = {"num_hidden_layers": 2, "head_dim": 16, "intermediate_size": 128, "vocab_size": 512,
           "pad_token_id": 0, "eos_token_id": 1, "bos_token_id": 2}  # the tests' tokenizer's ids


def model_config(name: str, size: str):
    """The architecture of ``name`` from its published config, at full size or reduced: the
    same kind of model (fused modules, attention grouping, rope) with a small body."""
    from transformers import AutoConfig

    raw = json.loads(CONFIGS[name].read_text())
    if size == "reduced":
        groups = raw["num_attention_heads"] // raw["num_key_value_heads"]
        heads = max(groups, 2)  # keep the grouped-query ratio with few heads
        raw.update(REDUCED, num_attention_heads=heads, num_key_value_heads=heads // groups,
                   hidden_size=heads * REDUCED["head_dim"])
        scaling = raw.get("rope_scaling") or {}
        if isinstance(scaling.get("short_factor"), list):  # longrope: one factor per rotary pair
            raw.pop("rope_scaling")
    return AutoConfig.for_model(raw.pop("model_type"), **raw)


def build(name: str, size: str, device, dtype):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(model_config(name, size), dtype=dtype)
    return model.eval()


class Meter:
    """Seconds and peak memory of one stage: CUDA's allocator peak, or the process's RSS peak."""

    def __init__(self, device):
        self.device = device

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak_gib = torch.cuda.max_memory_allocated() / 2 ** 30
        else:  # the process's peak so far (Linux: KiB): an upper bound for this stage
            self.peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
        self.seconds = time.perf_counter() - self.start
        return False


def fixture_data(tokenizer) -> dict:
    """Aya pairs, Global-MMLU-Lite test items and an English OneRuler sample, from the fixtures."""
    from compass.data import paper
    from compass.evaluation import longcontext

    pairs = paper.load_aya(FIXTURES / "aya" / "aya_collection_aya_dataset_sample_5k.parquet")
    items = paper.load_global_mmlu_lite("es", source=FIXTURES / "global_mmlu" / "lite_test")
    samples = longcontext.make_samples(tokenizer, "en", ["niah_single"], [384], 1, seed=0)
    return {"pairs": [{"prompt": p["prompt"], "response": p["response"]} for p in pairs[:48]],
            "items": list(items[:8]), "samples": samples}


def run_model(name: str, size: str, device, dtype, data: dict, tokenizer, steps: int,
              compile_too: bool, peak_flops: float | None) -> list[dict]:
    """The four stages on one architecture; one row per stage."""
    from compass.continual import update as ecda
    from compass.evaluation import longcontext, paper_tasks, scoring
    from compass.training import adapters

    model = build(name, size, device, dtype)
    params = sum(p.numel() for p in model.parameters())
    train_cfg = replace(config_mod.load(ROOT / "profiles" / "paper.yaml").train, steps=steps,
                        batch_size=4, max_length=256, warmup_steps=0, save_every=10 ** 6,
                        chat_template=False, device_memory_gib=None)
    rows = []

    def row(stage, meter, tokens, flops_per_token, **extra):
        mfu = (flops_per_token * params * tokens / meter.seconds / peak_flops
               if peak_flops and tokens else float("nan"))
        rows.append({"model": name, "stage": stage, "seconds": round(meter.seconds, 2),
                     "peak_gib": round(meter.peak_gib, 2),
                     "tokens_per_s": round(tokens / meter.seconds, 1) if tokens else float("nan"),
                     "mfu": round(mfu, 3), **extra})

    variants = [("train", False)] + ([("train + compile", True)] if compile_too else [])
    for label, compiled in variants:
        with tempfile.TemporaryDirectory() as out, Meter(device) as meter:
            summary = adapters.train_adapter(model, tokenizer, data["pairs"],
                                             replace(train_cfg, compile=compiled), Path(out),
                                             seed=0, base_name=name, show_progress_bar=False)
            plan = summary.get("memory_plan", "none (CPU)")
        row(label, meter, summary["tokens"], 6, plan=plan)
    with tempfile.TemporaryDirectory() as out, Meter(device) as meter:
        frame = paper_tasks.run_global_mmlu(model, tokenizer, data["items"], "es", Path(out),
                                            lite=True, cross_check=False)
    tokens = sum(len(tokenizer(r.context + c)["input_ids"])
                 for r in frame.itertuples() for c in r.continuations)
    row("evaluate: Global-MMLU via lm-eval", meter, tokens, 2, items=len(frame))
    with Meter(device) as meter:
        nll = scoring.score_items(model, tokenizer, data["items"], show_progress_bar=False)
    tokens = sum(len(tokenizer(it["question"] + "\n" + c)["input_ids"])
                 for it in data["items"] for c in it["choices"])
    row("evaluate: held-out NLL scorer", meter, tokens, 2, items=len(nll))
    with Meter(device) as meter:
        answers = longcontext.evaluate(model, tokenizer, data["samples"], max_new_tokens=8)
    row("long context", meter, int(answers["context_tokens"].sum()), 2)
    from peft import get_peft_model

    peft_model = get_peft_model(model, adapters.lora_config(train_cfg, model))
    with Meter(device) as meter:
        result = ecda.update(peft_model, tokenizer, data["pairs"][:8], 1, 1e-4, 4, 256, seed=0)
    row("ECDA update", meter, result.tokens, 6)
    peft_model.unload()
    del model, peft_model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return rows


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("reduced", "full"), default=None)
    parser.add_argument("--steps", type=int, default=2, help="training steps per adapter")
    parser.add_argument("--models", nargs="*", default=list(CONFIGS))
    parser.add_argument("--compile", action="store_true", help="also train with train.compile")
    parser.add_argument("--out", default=None, help="write the table (and rates) as JSON here")
    args = parser.parse_args(argv)
    missing = [str(CONFIGS[m]) for m in args.models if not CONFIGS[m].exists()]
    if missing or not (FIXTURES / "aya").is_dir():
        raise SystemExit(f"fixtures missing ({missing or FIXTURES}): set COMPASS_FIXTURES")
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    size = args.size or ("full" if cuda else "reduced")
    dtype = torch.bfloat16 if cuda else torch.float32
    from bench_gpu import peak_matmul_flops
    from tests.tiny_lm import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    data = fixture_data(tokenizer)
    peak = peak_matmul_flops(device, dtype) if cuda else None
    print(f"# rehearse_paper: {size} models on {device.type} ({dtype}), "
          f"{len(data['pairs'])} Aya pairs, {len(data['items'])} Global-MMLU-Lite items\n")
    rows = []
    for name in args.models:
        rows += run_model(name, size, device, dtype, data, tokenizer, args.steps, args.compile,
                          peak)
    table = pd.DataFrame(rows)
    print(table.to_markdown(index=False, floatfmt=".3g"))
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps({"size": size, "device": device.type,
                                   "rows": table.to_dict("records")}, indent=2, default=str))
        os.replace(tmp, out)
    return table


if __name__ == "__main__":
    main()
