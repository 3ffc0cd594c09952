"""Training, scoring and generation throughput on models built from configs (no downloads), each
training option against plain transformers + peft, side by side in one run.

    python benchmarks/bench_gpu.py [--size 1b|8b|tiny] [--tiny] [--steps 8] [--items 32]
        [--compile] [--out benchmarks/results/gpu.json]

Scoring and generation run first, on the fresh model: never compiled, never wrapped by peft (the
training rows come after them, the torch.compile row last).
Scoring: two item shapes, each by compass's batched scorer, the plain per-choice full-logits
  scorer (the reference for agreement) and lm-eval's HF backend (``HFLM.loglikelihood`` on the
  requests its multiple_choice tasks build; batch auto on CUDA, 8 on CPU):
  items/s, context + continuation tokens scored per second (an item's context counted once, as
  the scorers run it), and whether each picks the same choices (max log-likelihood difference):
  - long: a long question (drawn as 700 token ids, 32 in --tiny, which re-encode to more) and 4
    choices of an eighth of that, after "\n" (the project's own multiple-choice format);
  - Global-MMLU-shaped: a ~200-token context (32 in --tiny) of question, options A-D and
    "Answer:", and four one-letter continuations scored as lm-eval's global_mmlu task scores
    " A".." D" (one token each; lm-eval scores all four in one pass).
Generation: greedy decoding of a batch of prompts with a KV cache (HF generate): prefill tokens/s
  (one forward pass over the prompts) and generated tokens/s (the decoding steps alone: a
  generate call of N tokens less one of 1 token), after a warm-up of both.
Training (LoRA r=16 on every linear layer, AdamW, the same batches for every row):
  - fixed-length rows (half prompt, half completion): plain transformers + peft (full-logit
    loss), compass's completion loss (output layer only where a completion token is predicted),
    the same with gradient checkpointing, and with each decoder layer compiled (``--compile``);
  - variable-length examples (Aya-like lengths: log-normal, median a quarter of the row):
    padded against packed (``train.packing``), counting the tokens that carry loss.
  Columns: tokens/s, loss tokens/s, peak GiB (CUDA), MFU (4 x linear parameters FLOPs per token
  against the measured peak matmul rate of the device and dtype), ratio to plain.

``--tiny`` (CI) shrinks everything to seconds on a CPU. Results go to ``--out`` as JSON; the
keys compass.cost reads are written to benchmarks/results/gpu.json by default only for a
full-size run on a GPU, so a CPU or tiny run never passes for GPU rates:

- ``train_tokens_per_s``: the "compass completion loss" training row (what the train stage runs);
- ``score_items_per_s``: long items/s by compass's batched scorer, and ``score_item_tokens``: the
  tokens of one such item as scored (context once + 4 continuations);
- ``score_tokens_per_s``: tokens/s on Global-MMLU-shaped items by compass's batched scorer, with
  ``score_gmmlu_items_per_s`` and ``score_gmmlu_item_tokens``; ``score_lm_eval_tokens_per_s``: the
  same items by lm-eval's HF backend (what the paper's Global-MMLU runs through; absent without
  lm-eval);
- ``gen_tokens_per_s``, ``prefill_tokens_per_s``: generation as above;
- ``params_b``, ``device``: the model size (billions of parameters) and the accelerator.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from compass.evaluation import scoring  # noqa: E402
from compass.training import adapters, speed  # noqa: E402

# Llama shapes (Llama-3.2-1B, Llama-3.1-8B) and a CPU-seconds one
SHAPES = {
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=400),
    "1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
               num_key_value_heads=8, vocab_size=128256),
    "8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=8, vocab_size=128256),
}
RESULTS = ROOT / "benchmarks" / "results" / "gpu.json"


def device_and_dtype() -> tuple[torch.device, torch.dtype]:
    if torch.cuda.is_available():
        return torch.device("cuda"), torch.bfloat16
    return torch.device("cpu"), torch.float32


def build_model(size: str, device, dtype):
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = LlamaConfig(**SHAPES[size], max_position_embeddings=8192, tie_word_embeddings=False,
                         pad_token_id=0, bos_token_id=2, eos_token_id=1)
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return model.eval()


def linear_params(model) -> int:
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))


def peak_matmul_flops(device, dtype) -> float:
    """Measured dense matmul FLOP/s of the device in ``dtype`` (the MFU denominator)."""
    n = 8192 if device.type == "cuda" else 1024
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    _sync(device)
    reps = 20 if device.type == "cuda" else 5
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(device)
    return 2 * n ** 3 * reps / (time.perf_counter() - start)


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _peak_gib(device) -> float:
    return torch.cuda.max_memory_allocated() / 2 ** 30 if device.type == "cuda" else math.nan


# ---- data ------------------------------------------------------------------------------------
def fixed_examples(n: int, length: int, vocab: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        ids = [2] + rng.integers(3, vocab, size=length - 1).tolist()
        out.append({"input_ids": ids, "labels": [adapters.IGNORE] * (length // 2) + ids[length // 2:]})
    return out


def variable_examples(n: int, length: int, vocab: int, seed: int = 1) -> list[dict]:
    """Aya-like: log-normal lengths (median a quarter of ``length``), prompt the first 40%."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(np.log(length / 4), 0.8, size=n).astype(int), 8, length)
    out = []
    for n_tok in lengths:
        ids = [2] + rng.integers(3, vocab, size=int(n_tok) - 1).tolist()
        cut = max(1, int(0.4 * n_tok))
        out.append({"input_ids": ids, "labels": [adapters.IGNORE] * cut + ids[cut:]})
    return out


# ---- training --------------------------------------------------------------------------------
def train_rate(model, examples, batch_size: int, steps: int, loss_fn, packed: bool, device,
               checkpointing: bool = False, compiled: bool = False, attention: str | None = None,
               fused_loss: str = "off", warmup: int = 2) -> dict:
    """Tokens/s of LoRA steps on ``examples`` (the same batches for every call); ``attention``
    switches the model's attention implementation for this row (e.g. flex_attention)."""
    from peft import LoraConfig, get_peft_model

    before = model.config._attn_implementation
    if attention:
        model.set_attn_implementation(attention)

    peft_model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0,
                                                  target_modules="all-linear", task_type="CAUSAL_LM"))
    if fused_loss != "off":
        loss_fn = functools.partial(loss_fn, fused_loss=fused_loss)
    params = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    tokens = loss_tokens = 0
    seconds, first_loss = 0.0, math.nan
    try:  # the pipeline's own switches (train.gradient_checkpointing, train.compile), undone after
        with speed.training_speedups(peft_model, checkpointing, compiled):
            peft_model.train()
            for step in range(warmup + steps):
                batch = adapters.batch_of(examples, step, batch_size, 0, 0, device, packed=packed)
                _sync(device)
                start = time.perf_counter()
                loss, n = loss_fn(peft_model, batch)
                if step == 0:  # the fresh adapter (B = 0) on the first batch: the base model's
                    first_loss = float(loss.detach())  # loss, equal for padded and packed rows
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                _sync(device)
                if step >= warmup:
                    seconds += time.perf_counter() - start
                    tokens += int(batch["attention_mask"].sum())
                    loss_tokens += n
    finally:
        peft_model.unload()
        if attention:
            model.set_attn_implementation(before)
    return {"tokens_per_s": tokens / seconds, "loss_tokens_per_s": loss_tokens / seconds,
            "peak_gib": _peak_gib(device), "batch_rows": int(batch["input_ids"].shape[0]),
            "first_loss": first_loss}


def training_table(model, size, device, peak, steps, compile_layers) -> pd.DataFrame:
    length = {"tiny": 64, "1b": 1024, "8b": 1024}[size]
    batch = {"tiny": 8, "1b": 8, "8b": 4}[size]
    vocab = SHAPES[size]["vocab_size"]
    fixed = fixed_examples(batch * 4, length, vocab)
    variable = variable_examples(batch * 8, length, vocab)
    flops_per_token = 4 * linear_params(model)
    runs = [("fixed", "plain transformers+peft (full logits)", fixed, adapters.full_logits_loss, False, {}),
            ("fixed", "compass completion loss", fixed, adapters.completion_loss, False, {}),
            ("fixed", "compass + gradient checkpointing", fixed, adapters.completion_loss, False,
             {"checkpointing": True}),
            ("fixed", "compass + fused loss (chunked)", fixed, adapters.completion_loss, False,
             {"fused_loss": "chunked"})]
    if hasattr(torch.nn, "LinearCrossEntropyOptions"):
        runs.append(("fixed", "compass + fused loss (torch linear_cross_entropy)", fixed,
                     adapters.completion_loss, False, {"fused_loss": "torch"}))
    if device.type == "cuda" and speed.liger_available():
        runs.append(("fixed", "compass + fused loss (Liger)", fixed, adapters.completion_loss,
                     False, {"fused_loss": "liger"}))
    runs += [("variable", "plain transformers+peft, padded", variable, adapters.full_logits_loss, False, {}),
             ("variable", "compass completion loss, padded", variable, adapters.completion_loss, False, {}),
             ("variable", "compass completion loss, packed", variable, adapters.completion_loss, True, {})]
    if compile_layers:  # last: compiling stays on the model's layers
        runs.append(("fixed", "compass + torch.compile per layer", fixed, adapters.completion_loss,
                     False, {"compiled": True}))
    if device.type == "cuda":  # packed rows through FlexAttention's block-sparse document mask
        runs.append(("variable", "compass completion loss, packed, flex_attention", variable,
                     adapters.completion_loss, True, {"attention": "flex_attention"}))
    rows = []
    for data, name, examples, loss_fn, packed, options in runs:
        try:
            result = train_rate(model, examples, batch, steps, loss_fn, packed, device, **options)
        except Exception as err:  # one option failing (a kernel, a version) leaves the others
            print(f"# {name}: failed: {type(err).__name__}: {str(err)[:300]}")
            continue
        rows.append({"data": data, "trainer": name, **result,
                     "mfu": result["tokens_per_s"] * flops_per_token / peak})
    frame = pd.DataFrame(rows).sort_values("data", kind="stable").reset_index(drop=True)
    for data in ("fixed", "variable"):
        plain = frame[(frame["data"] == data) & frame["trainer"].str.startswith("plain")]
        key = "tokens_per_s" if data == "fixed" else "loss_tokens_per_s"
        frame.loc[frame["data"] == data, "ratio_to_plain"] = frame[key] / float(plain[key].iloc[0])
    frame.attrs["batch"], frame.attrs["length"] = batch, length
    return frame


# ---- scoring and generation -------------------------------------------------------------------
def bench_tokenizer(vocab_size: int = 400):
    """The tests' byte-level BPE trained on generated words: no corpus or download (ids <
    vocab_size, so any shape's embedding fits)."""
    from tests.tiny_lm import byte_level_bpe

    rng = np.random.default_rng(0)
    letters = list("abcdefghijklmnopqrstuvwxyzабвгдежзиклмнопрстуфхцчшщьюяابپتثجچحخدذرزسشصضطظعغفقکگلمنوهی")
    words = ["".join(rng.choice(letters, size=int(rng.integers(2, 9)))) for _ in range(3000)]
    return byte_level_bpe([" ".join(rng.choice(words, size=12)) for _ in range(500)], vocab_size)


def mc_items(tokenizer, n: int, question_tokens: int, choice_tokens: int, seed: int = 2) -> list[dict]:
    """Long items: random token ids decoded to text (they re-encode to more tokens: the table
    reports the tokens as scored)."""
    rng = np.random.default_rng(seed)
    vocab = len(tokenizer)

    def text(k):
        return tokenizer.decode(rng.integers(3, vocab, size=k).tolist(), skip_special_tokens=True)

    return [{"id": f"q{i:04d}", "topic": "bench", "question": text(question_tokens),
             "choices": [text(choice_tokens) for _ in range(4)], "answer": int(rng.integers(4))}
            for i in range(n)]


def letters(tokenizer) -> list[str]:
    """Four continuations of one token each, as Llama-3.1 encodes " A".." D": those, or " a".." d"
    where the tokenizer splits the capitals (the tiny bench tokenizer does)."""
    for candidate in ([" A", " B", " C", " D"], [" a", " b", " c", " d"]):
        if all(len(tokenizer(c, add_special_tokens=False)["input_ids"]) == 1 for c in candidate):
            return candidate
    return [" A", " B", " C", " D"]


def gmmlu_items(tokenizer, n: int, context_tokens: int, seed: int = 3) -> list[dict]:
    """Global-MMLU-shaped items: a question and four options (about 60% and 4 x 10% of
    ``context_tokens``), laid out as lm-eval's global_mmlu prompt ending in "Answer:", and four
    one-letter continuations. Scored with scoring.TARGET_DELIMITER = "" (the request's own)."""
    rng = np.random.default_rng(seed)
    vocab = len(tokenizer)

    def text(k):  # random ids, decoded, re-encoded and cut to k tokens: about k tokens of text
        rough = tokenizer.decode(rng.integers(3, vocab, size=k).tolist(), skip_special_tokens=True)
        ids = tokenizer(rough, add_special_tokens=False)["input_ids"][:k]
        return tokenizer.decode(ids, skip_special_tokens=True).strip()

    option = max(1, context_tokens // 10)
    out = []
    for i in range(n):
        options = "".join(f"\n{letter}. {text(option)}" for letter in "ABCD")
        out.append({"id": f"g{i:04d}", "topic": "bench",
                    "question": f"{text(context_tokens - 4 * option - 8)}{options}\nAnswer:",
                    "choices": letters(tokenizer), "answer": int(rng.integers(4))})
    return out


def item_tokens(tokenizer, items: list[dict]) -> float:
    """Mean tokens of an item as the scorers run it: its context once (the first choice's) and
    every continuation (lm-eval's split: the context's trailing whitespace moves over)."""
    counts = []
    for item in items:
        context = scoring.context_of(item)
        pairs = [scoring.encode_pair(tokenizer, context, c) for c in item["choices"]]
        counts.append(len(pairs[0][0]) + sum(len(cont) for _, cont in pairs))
    return float(np.mean(counts))


@contextlib.contextmanager
def target_delimiter(delimiter: str):
    """scoring.TARGET_DELIMITER for a block (Global-MMLU requests carry their own: ""); undone."""
    saved = scoring.TARGET_DELIMITER
    scoring.TARGET_DELIMITER = delimiter
    try:
        yield
    finally:
        scoring.TARGET_DELIMITER = saved


def scoring_table(model, tokenizer, items, device, delimiter: str = "\n") -> pd.DataFrame:
    """Every scorer on the same items (joined to their choices by ``delimiter``): items/s,
    tokens/s and agreement with the plain per-choice scorer."""
    runs = {}
    with target_delimiter(delimiter):
        scoring.score_items(model, tokenizer, items[:2], show_progress_bar=False)  # warm-up
        for name, kwargs in (("compass batched (score_items)", {}),
                             ("plain per-choice, full logits",
                              {"scorer": scoring.choice_loglikelihoods_plain})):
            _sync(device)
            start = time.perf_counter()
            frame = scoring.score_items(model, tokenizer, items, show_progress_bar=False, **kwargs)
            _sync(device)
            runs[name] = (frame, time.perf_counter() - start)
        tokens = item_tokens(tokenizer, items)
    try:
        import lm_eval  # noqa: F401

        runs.update(_lm_eval_run(model, tokenizer, items, device, delimiter))
    except ImportError:
        pass
    reference = runs["plain per-choice, full logits"][0].set_index("id")
    rows = []
    for name, (frame, seconds) in runs.items():
        frame = frame.set_index("id").loc[reference.index]
        diff = max(float(np.abs(np.array(a) - np.array(b)).max())
                   for a, b in zip(frame["loglikelihoods"], reference["loglikelihoods"]))
        rows.append({"scorer": name, "items": len(frame), "items_per_s": len(frame) / seconds,
                     "tokens_per_item": tokens, "tokens_per_s": len(frame) * tokens / seconds,
                     "same_choice": f"{int((frame['pred'] == reference['pred']).sum())}/{len(frame)}",
                     "max_abs_ll_diff": diff})
    frame = pd.DataFrame(rows)
    frame["ratio_to_plain"] = frame["items_per_s"] / float(
        frame.loc[frame["scorer"].str.startswith("plain"), "items_per_s"].iloc[0])
    return frame


def _lm_eval_run(model, tokenizer, items, device, delimiter: str = "\n") -> dict:
    """lm-eval's HF backend on the items' requests, (context, delimiter + choice) as its
    multiple_choice tasks build them, through ``HFLM.loglikelihood`` (its batching, one-token
    logits cache and auto batch size); only the scoring call is timed, after a warm-up on two
    items (task and dataset building are lm-eval's fixed cost per run, not per token)."""
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    batch = "auto" if device.type == "cuda" else 8
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch, device=str(device))

    def score(some: list[dict]) -> tuple[np.ndarray, float]:
        requests = [Instance("loglikelihood", item, (item["question"], delimiter + choice), k)
                    for item in some for k, choice in enumerate(item["choices"])]
        _sync(device)
        start = time.perf_counter()
        out = lm.loglikelihood(requests, disable_tqdm=True)
        _sync(device)
        return np.array([ll for ll, _ in out]).reshape(len(some), -1), time.perf_counter() - start

    score(items[:2])  # warm-up
    lls, seconds = score(items)
    frame = pd.DataFrame({"id": [item["id"] for item in items], "pred": lls.argmax(axis=1),
                          "loglikelihoods": [row.tolist() for row in lls]})
    return {f"lm-eval HFLM (batch {batch})": (frame, seconds)}


def generation_rates(model, device, vocab: int, prompts: int, prompt_tokens: int, new_tokens: int) -> dict:
    """Prefill tokens/s (one forward pass over the prompts) and generated tokens/s (a generate
    call of ``new_tokens`` less one of 1 token: the decoding steps alone), both warmed up."""
    ids = torch.randint(3, vocab, (prompts, prompt_tokens), device=device)
    mask = torch.ones_like(ids)

    def generate(n: int) -> float:
        _sync(device)
        start = time.perf_counter()
        model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n,
                       do_sample=False, pad_token_id=0)
        _sync(device)
        return time.perf_counter() - start

    with torch.no_grad():
        model(input_ids=ids, attention_mask=mask)  # warm-up at the full shape
        generate(2)
        _sync(device)
        start = time.perf_counter()
        model(input_ids=ids, attention_mask=mask, use_cache=True)
        _sync(device)
        prefill = time.perf_counter() - start
        first, total = generate(1), generate(new_tokens)
    return {"prefill_tokens_per_s": prompts * prompt_tokens / prefill,
            "gen_tokens_per_s": prompts * (new_tokens - 1) / max(total - first, 1e-9)}


def _rate(table: pd.DataFrame, scorer: str, column: str) -> float:
    """``column`` of the first row whose scorer name starts with ``scorer``."""
    return float(table.loc[table["scorer"].str.startswith(scorer), column].iloc[0])


# ---- main ----------------------------------------------------------------------------------------
def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SHAPES), default=None,
                        help="model shape (default: 8b on a GPU, tiny on a CPU)")
    parser.add_argument("--tiny", action="store_true", help="tiny shapes and counts (CI smoke run)")
    parser.add_argument("--steps", type=int, default=None, help="timed training steps per row")
    parser.add_argument("--items", type=int, default=None, help="multiple-choice items scored")
    parser.add_argument("--compile", action="store_true", help="add a torch.compile row (GPU default)")
    parser.add_argument("--out", default=None, help="JSON results (default: see the module doc)")
    args = parser.parse_args(argv)
    device, dtype = device_and_dtype()
    size = "tiny" if args.tiny else (args.size or ("8b" if device.type == "cuda" else "tiny"))
    steps = args.steps or (2 if size == "tiny" else 8)
    n_items = args.items or (6 if size == "tiny" else 64)
    compile_layers = args.compile or (device.type == "cuda" and size != "tiny")
    name = torch.cuda.get_device_name() if device.type == "cuda" else (platform.processor() or platform.machine())
    print(f"# bench_gpu: {name} ({device.type}), {dtype}, shape {size}, torch {torch.__version__}, "
          f"{os.cpu_count()} CPUs")
    print(f"# command: python benchmarks/bench_gpu.py --size {size} --steps {steps} --items {n_items}"
          + (" --compile" if compile_layers else "") + "\n")
    model = build_model(size, device, dtype)
    peak = peak_matmul_flops(device, dtype)
    # scoring and generation first: the fresh model, before any training row wraps or compiles it
    tokenizer = bench_tokenizer()
    q_tokens = 32 if size == "tiny" else 700
    score = scoring_table(model, tokenizer, mc_items(tokenizer, n_items, q_tokens, q_tokens // 8),
                          device)
    long_tokens = float(score["tokens_per_item"].iloc[0])
    print(f"## scoring, long items: {n_items} items, {long_tokens:,.0f} tokens each as scored "
          f"(question drawn as {q_tokens} token ids, 4 choices; fresh model)\n")
    print(score.to_markdown(index=False, floatfmt=".3g") + "\n")
    g_items = n_items if size == "tiny" else 4 * n_items
    g_context = 32 if size == "tiny" else 200
    gmmlu = scoring_table(model, tokenizer, gmmlu_items(tokenizer, g_items, g_context), device,
                          delimiter="")
    print(f"## scoring, Global-MMLU-shaped items: {g_items} items, "
          f"{float(gmmlu['tokens_per_item'].iloc[0]):,.0f} tokens each as scored (a ~{g_context}-"
          "token context, 4 one-letter continuations; fresh model)\n")
    print(gmmlu.to_markdown(index=False, floatfmt=".3g") + "\n")
    gen = generation_rates(model, device, SHAPES[size]["vocab_size"], prompts=4 if size == "tiny" else 16,
                           prompt_tokens=q_tokens, new_tokens=8 if size == "tiny" else 128)
    print("## generation (greedy, KV cache; fresh model): "
          + ", ".join(f"{k} {v:,.0f}" for k, v in gen.items()) + "\n")
    if device.type == "cuda":  # the scorers' cached blocks back to the device for training
        torch.cuda.empty_cache()
    train = training_table(model, size, device, peak, steps, compile_layers)
    print(f"## training: LoRA r=16 all linear, batch {train.attrs['batch']} x "
          f"{train.attrs['length']} tokens, {steps} timed steps; peak matmul "
          f"{peak / 1e12:.1f} TFLOP/s\n")
    print(train.to_markdown(index=False, floatfmt=".3g") + "\n")
    fixed = train[train["data"] == "fixed"].set_index("trainer")
    pipeline_train = float(fixed.loc["compass completion loss", "tokens_per_s"])  # what train runs
    results = {"device": name, "dtype": str(dtype).removeprefix("torch."), "shape": size,
               "params_b": float(f"{sum(p.numel() for p in model.parameters()) / 1e9:.4g}"),
               "train_tokens_per_s": pipeline_train,
               "score_items_per_s": _rate(score, "compass", "items_per_s"),
               "score_item_tokens": long_tokens,
               "score_tokens_per_s": _rate(gmmlu, "compass", "tokens_per_s"),
               "score_gmmlu_items_per_s": _rate(gmmlu, "compass", "items_per_s"),
               "score_gmmlu_item_tokens": float(gmmlu["tokens_per_item"].iloc[0]),
               **({"score_lm_eval_tokens_per_s": _rate(gmmlu, "lm-eval", "tokens_per_s")}
                  if gmmlu["scorer"].str.startswith("lm-eval").any() else {}),
               **gen, "peak_matmul_tflops": peak / 1e12,
               "training": train.to_dict("records"), "scoring": score.to_dict("records"),
               "scoring_gmmlu": gmmlu.to_dict("records")}
    out = Path(args.out) if args.out else (RESULTS if device.type == "cuda" and size != "tiny" else None)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=2, default=float), encoding="utf-8")
        os.replace(tmp, out)
        print(f"# results: {out}")
    return results


if __name__ == "__main__":
    main()
