"""Scoring and training throughput on the offline Gemma-3-270M, side by side in one run.

    python benchmarks/bench_models.py [--items 40] [--steps 6] [--dtype bfloat16|float32]

1. Multiple-choice scoring: compass.evaluation.scoring (prefix KV cache, positions-only output layer)
   against lm-eval's HF backend on the same model and items: items/s and identical choices.
2. Training tokens/s: completion-only loss with positions-only logits (compass.training.adapters) against
   the plain full-logit loss in the same loop, and against HF Trainer + peft.
Needs the converted model (`dvc repro model`).
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import numpy as np
import pandas as pd
import torch

from compass import config, io, paths
from compass.evaluation import lmeval, scoring
from compass.training import adapters, models


def scoring(model, tok, items):
    start = time.perf_counter()
    ours = scoring.score_items(model, tok, items, show_progress_bar=False)
    t_ours = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        lmeval.write_local_task(items, "bench_mc", folder)
        result = lmeval.run(model, tok, ["bench_mc"], include_path=folder)
        t_lm = time.perf_counter() - start
    theirs = lmeval.per_item_choices(result, "bench_mc")
    merged = ours.merge(theirs, on="id")
    same = int((merged["pred"] == merged["lm_eval_pred"]).sum())
    return pd.DataFrame([
        {"scorer": "compass.evaluation.scoring (prefix cache, positions-only head)", "items": len(items),
         "seconds": t_ours, "items_per_s": len(items) / t_ours, "same_choices": f"{same}/{len(merged)}"},
        {"scorer": "lm-eval HFLM (batch 1)", "items": len(items), "seconds": t_lm,
         "items_per_s": len(items) / t_lm, "same_choices": "reference"},
    ])


def training(name, dtype, examples, train_cfg, steps):
    rows = []
    encoded = None
    for label, loss_fn in (("compass loop, completion-only + positions-only logits", adapters.completion_loss),
                           ("compass loop, plain full-logit loss", adapters.full_logits_loss)):
        model, tok = models.load(name, dtype=dtype)
        from peft import get_peft_model

        peft_model = get_peft_model(model, adapters.lora_config(train_cfg))
        peft_model.train()
        encoded = [adapters.encode_example(tok, e["prompt"], e["response"], train_cfg.max_length)
                   for e in examples]
        opt = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=1e-4)
        tokens, seconds = 0, 0.0
        for step in range(steps + 1):
            rows_idx = adapters.batch_indices(len(encoded), step, train_cfg.batch_size, 0)
            batch = adapters.collate([encoded[i] for i in rows_idx], tok.pad_token_id)
            start = time.perf_counter()
            loss, _ = loss_fn(peft_model, batch)
            loss.backward()
            opt.step()
            opt.zero_grad()
            if step:  # the first step warms up kernels and allocations
                seconds += time.perf_counter() - start
                tokens += int(batch["attention_mask"].sum())
        rows.append({"trainer": label, "steps": steps, "tokens": tokens, "seconds": seconds,
                     "tokens_per_s": tokens / seconds})
    rows.append(hf_trainer(name, dtype, encoded, train_cfg, steps))
    frame = pd.DataFrame(rows)
    frame["ratio_vs_fastest_plain"] = frame["tokens_per_s"] / frame["tokens_per_s"].iloc[1:].max()
    return frame


def hf_trainer(name, dtype, encoded, train_cfg, steps):
    from peft import get_peft_model
    from transformers import Trainer, TrainingArguments

    model, tok = models.load(name, dtype=dtype)
    peft_model = get_peft_model(model, adapters.lora_config(train_cfg))
    counted = {"tokens": 0}

    def collator(batch):
        out = adapters.collate(batch, tok.pad_token_id)
        counted["tokens"] += int(out["attention_mask"].sum())
        return out

    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(output_dir=out, per_device_train_batch_size=train_cfg.batch_size,
                                 max_steps=steps + 1, learning_rate=1e-4, report_to=[],
                                 logging_strategy="no", save_strategy="no", use_cpu=True,
                                 dataloader_num_workers=0, remove_unused_columns=False,
                                 bf16=dtype == "bfloat16", disable_tqdm=True)
        trainer = Trainer(model=peft_model, args=args, train_dataset=encoded, data_collator=collator)
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    # Trainer's time includes its first (warm-up) step: scale tokens to the same step count
    tokens = counted["tokens"] * steps / (steps + 1)
    return {"trainer": "HF Trainer + peft (full-logit loss)", "steps": steps + 1,
            "tokens": int(counted["tokens"]), "seconds": seconds,
            "tokens_per_s": tokens / (seconds * steps / (steps + 1))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--dtype", default=None, help="default: params.yaml train.dtype")
    parser.add_argument("--lang", default="uk")
    args = parser.parse_args()
    cfg = config.load()
    dtype = args.dtype or cfg.train.dtype
    print(f"# compass model benchmarks: {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"model {cfg.train.model}, dtype {dtype}")
    print(f"# command: python benchmarks/bench_models.py --items {args.items} --steps {args.steps} "
          f"--dtype {dtype}\n")
    items = io.read_jsonl(paths.test_items_file(args.lang))[: args.items]
    model, tok = models.load(cfg.train.model, dtype=dtype)
    print("## Multiple-choice scoring\n")
    print(scoring(model, tok, items).to_markdown(index=False, floatfmt=".2f"))
    del model
    pairs = [p for p in io.read_jsonl(paths.pool_file()) if p["language"] in ("uk", "ru", "ja")]
    rng = np.random.default_rng(0)
    examples = [pairs[i] for i in rng.choice(len(pairs), size=200, replace=False)]
    print("\n## LoRA training throughput\n")
    print(training(cfg.train.model, dtype, examples, cfg.train, args.steps)
          .to_markdown(index=False, floatfmt=".2f"))


if __name__ == "__main__":
    main()
