"""Scoring and training throughput on the offline Gemma-3-270M, side by side in one run.

    python benchmarks/bench_models.py [--items 40] [--steps 6] [--dtype bfloat16|float32]
        [--batch-tokens N] [--lm-eval-batch 1 8] [--threads N] [--no-training]

1. Multiple-choice scoring on the same model and items: compass.evaluation.scoring batched across
   items (`score_items`), its one-item-at-a-time path (`choice_loglikelihoods`: prefix KV cache,
   positions-only output layer) and lm-eval's HF backend (HFLM) at the given batch sizes: items/s,
   agreement of the chosen options (acc and acc_norm) and the largest log-likelihood difference.
   Items: the language's test items, or (before `dvc repro data`) items built the same way from
   the chatterbot corpus (question = prompt, 4 responses).
2. Training tokens/s: completion-only loss with positions-only logits (compass.training.adapters),
   packed (train.packing; also with train.fused_loss chunked) and padded, against the plain full-logit loss in the same loop, and
   against HF Trainer + peft. Tokens are the examples' real tokens (the same batches in each row).
Needs the converted model (`dvc repro model`).
"""
from __future__ import annotations

import argparse
import functools
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


def bench_items(lang: str, n: int, seed: int = 0) -> tuple[list[dict], str]:
    """The first ``n`` test items of ``lang``, or items made like them from the chatterbot pairs."""
    path = paths.test_items_file(lang)
    if path.exists():
        return io.read_jsonl(path)[:n], str(path)
    from compass.data.tiny import load_pairs

    pairs = [p for p in load_pairs() if p["language"] == lang]
    rng = np.random.default_rng(seed)
    items = []
    for i in rng.choice(len(pairs), size=min(n, len(pairs)), replace=False):
        pair = pairs[i]
        others = sorted({p["response"] for p in pairs if p["topic"] != pair["topic"]})
        choices = [pair["response"], *rng.choice(others, size=3, replace=False).tolist()]
        order = rng.permutation(len(choices))
        items.append({"id": pair["id"], "topic": pair["topic"], "category": "", "question": pair["prompt"],
                      "choices": [choices[k] for k in order], "answer": int(np.where(order == 0)[0][0])})
    return items, f"chatterbot {lang} pairs (no {path})"


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _lm_eval(model, tok, items, batch_size: int, folder: str) -> tuple[pd.DataFrame, float]:
    """lm-eval's HFLM on the items as a local task; only simple_evaluate is timed (the task index
    and the HFLM wrapper are built before)."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    lmeval.write_local_task(items, "bench_mc", folder)
    lm = HFLM(pretrained=model, tokenizer=tok, batch_size=batch_size,
              device=str(next(model.parameters()).device))
    manager = TaskManager(include_path=folder)
    result, seconds = _timed(lambda: lm_eval.simple_evaluate(
        model=lm, tasks=["bench_mc"], task_manager=manager, log_samples=True))
    return lmeval.per_item_choices(result, "bench_mc"), seconds


def scoring_table(model, tok, items, batch_tokens: int | None = None,
                  lm_eval_batches: tuple[int, ...] = (1, 8)) -> pd.DataFrame:
    """Every scorer on the same items; agreement is measured against lm-eval at batch 1."""
    scoring.score_items(model, tok, items[:4], show_progress_bar=False)  # warm-up
    runs = {}
    runs["compass batched (score_items)"] = _timed(lambda: scoring.score_items(
        model, tok, items, show_progress_bar=False, batch_tokens=batch_tokens))
    runs["compass per item (choice_loglikelihoods)"] = _timed(lambda: scoring.score_items(
        model, tok, items, show_progress_bar=False, scorer=scoring.choice_loglikelihoods))
    with tempfile.TemporaryDirectory() as folder:
        for size in lm_eval_batches:
            frame, seconds = _lm_eval(model, tok, items, size, folder)
            frame = frame.rename(columns={"lm_eval_pred": "pred", "lm_eval_pred_norm": "pred_norm",
                                          "lm_eval_loglikelihoods": "loglikelihoods"})
            runs[f"lm-eval HFLM (batch {size})"] = (frame, seconds)
    reference_name = f"lm-eval HFLM (batch {lm_eval_batches[0]})"
    reference = runs[reference_name][0].set_index("id")
    answers = pd.Series({it["id"]: it["answer"] for it in items})
    rows = []
    for name, (frame, seconds) in runs.items():
        frame = frame.set_index("id").loc[reference.index]
        diff = max(float(np.abs(np.array(a) - np.array(b)).max())
                   for a, b in zip(frame["loglikelihoods"], reference["loglikelihoods"]))
        rows.append({
            "scorer": name, "items": len(frame), "seconds": seconds, "items_per_s": len(frame) / seconds,
            "same_acc_choice": "reference" if name == reference_name
            else f"{int((frame['pred'] == reference['pred']).sum())}/{len(frame)}",
            "same_acc_norm_choice": "reference" if name == reference_name
            else f"{int((frame['pred_norm'] == reference['pred_norm']).sum())}/{len(frame)}",
            "max_abs_ll_diff": diff,
            "acc": float((frame["pred"] == answers.loc[frame.index]).mean()),
            "acc_norm": float((frame["pred_norm"] == answers.loc[frame.index]).mean()),
        })
    return pd.DataFrame(rows)


def training(name, dtype, examples, train_cfg, steps):
    rows = []
    encoded = None
    chunked = functools.partial(adapters.completion_loss, fused_loss="chunked")
    for label, loss_fn, packed in (
            ("compass loop, completion-only + positions-only logits, packed", adapters.completion_loss, True),
            ("compass loop, packed, fused loss (chunked)", chunked, True),
            ("compass loop, completion-only + positions-only logits", adapters.completion_loss, False),
            ("compass loop, plain full-logit loss", adapters.full_logits_loss, False)):
        model, tok = models.load(name, dtype=dtype)
        from peft import get_peft_model

        peft_model = get_peft_model(model, adapters.lora_config(train_cfg, model))
        peft_model.train()
        encoded = [adapters.encode_example(tok, e["prompt"], e["response"], train_cfg.max_length)
                   for e in examples]
        opt = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=1e-4)
        tokens, seconds = 0, 0.0
        for step in range(steps + 1):
            rows_idx = adapters.batch_indices(len(encoded), step, train_cfg.batch_size, 0)
            make = adapters.collate_packed if packed else adapters.collate
            batch = make([encoded[i] for i in rows_idx], tok.pad_token_id)
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
    plain = frame["trainer"].str.contains("full-logit|Trainer")
    frame["ratio_vs_fastest_plain"] = frame["tokens_per_s"] / frame.loc[plain, "tokens_per_s"].max()
    return frame


def hf_trainer(name, dtype, encoded, train_cfg, steps):
    from peft import get_peft_model
    from transformers import Trainer, TrainingArguments

    model, tok = models.load(name, dtype=dtype)
    peft_model = get_peft_model(model, adapters.lora_config(train_cfg, model))
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
    parser.add_argument("--batch-tokens", type=int, default=None,
                        help="tokens per forward pass of the batched scorer (default: by device)")
    parser.add_argument("--lm-eval-batch", type=int, nargs="+", default=[1, 8],
                        help="HFLM batch sizes; the first is the agreement reference")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--no-training", action="store_true", help="only the scoring table")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = config.load()
    dtype = args.dtype or cfg.train.dtype
    print(f"# compass model benchmarks: {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"model {cfg.train.models[0]}, dtype {dtype}")
    command = (f"python benchmarks/bench_models.py --items {args.items} --steps {args.steps} --dtype {dtype} "
               f"--lm-eval-batch {' '.join(map(str, args.lm_eval_batch))}"
               + (f" --batch-tokens {args.batch_tokens}" if args.batch_tokens else "")
               + (f" --threads {args.threads}" if args.threads else "")
               + (" --no-training" if args.no_training else ""))
    print(f"# command: {command}\n")
    items, source = bench_items(args.lang, args.items)
    model, tok = models.load(cfg.train.models[0], dtype=dtype)
    print(f"## Multiple-choice scoring ({len(items)} items: {source})\n")
    print(scoring_table(model, tok, items, args.batch_tokens, tuple(args.lm_eval_batch))
          .to_markdown(index=False, floatfmt=".3g"))
    del model
    if args.no_training:
        return
    pairs = [p for p in io.read_jsonl(paths.pool_file()) if p["language"] in ("uk", "ru", "ja")]
    rng = np.random.default_rng(0)
    examples = [pairs[i] for i in rng.choice(len(pairs), size=200, replace=False)]
    print("\n## LoRA training throughput\n")
    print(training(cfg.train.models[0], dtype, examples, cfg.train, args.steps)
          .to_markdown(index=False, floatfmt=".2f"))


if __name__ == "__main__":
    main()
