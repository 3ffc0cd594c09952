"""Greedy generation with stop strings: lm-eval's HFLM.generate_until against compass's batched
greedy_generate, on the same model, prompts, stop strings and max_new_tokens, in one run.

    python benchmarks/bench_generation.py [--size tiny|small|1b|8b] [--prompts 32]
        [--max-new-tokens 64] [--batch 8] [--max-prompt-tokens 256] [--device auto]

The model is Llama-shaped, built from a config with random weights (no download); its vocabulary
is the tests' byte-level BPE (400 tokens) at every size, so ``--size`` scales hidden size and
depth only. Prompts are slices of the tiny multilingual pairs, log-uniform lengths from 8 to
``--max-prompt-tokens`` tokens. Rows should end as MMLU-ProX's do, some on EOS, some on a stop
string, few at max_new_tokens, but random weights never write EOS or "Question:". So, before
anything is timed: EOS's output-layer row becomes 1.1 times the row of a token that about half of
the rows generate (they end on EOS about there), and the stop strings are MMLU-ProX's ``until``
("</s>", "Q:", "Question:", "<|im_end|>") plus up to three pieces of text that between them
most of the other rows' outputs contain (picked from an untimed pass without stops), so rows end
on different strings, as on "Q:" or "Question:" or EOS. The header says how the rows end.

Rows: ``lm-eval HFLM generate_until (batch 1)`` (the reference: what the paper profile runs),
``lm-eval HFLM (batch B)``, ``compass greedy_generate (batch B)``. Columns: seconds; new tokens/s
(the tokens of the reference outputs, re-encoded without special tokens: the same count for every
row, so it is a rate of useful output); decode steps (model forward calls, all batches: lm-eval's
batch goes on until one and the same stop string is in every row, compass's until every row has
stopped); outputs identical to the batch-1 reference and to lm-eval's batch B (k/N).

Default sizes finish in well under a minute on 2 CPU cores; device auto: CUDA when present
(bfloat16 there unless ``--dtype float32``; batched bf16 arithmetic can legitimately flip a near
tie against batch 1, for lm-eval's batches as for ours, which the last column separates).
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from compass.evaluation.generation import greedy_generate  # noqa: E402

SHAPES = {
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2),
    "small": dict(hidden_size=512, intermediate_size=1536, num_hidden_layers=8,
                  num_attention_heads=8, num_key_value_heads=4),
    "1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
               num_key_value_heads=8),
    "8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=8),
}
PROX_UNTIL = ["</s>", "Q:", "Question:", "<|im_end|>"]


def build_model(size: str, vocab: int, device, dtype):
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = LlamaConfig(**SHAPES[size], vocab_size=vocab, max_position_embeddings=8192,
                         tie_word_embeddings=False, pad_token_id=0, eos_token_id=1, bos_token_id=2)
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    return model.eval()


def make_prompts(tokenizer, n: int, max_tokens: int, seed: int = 0) -> list[str]:
    from compass.data.tiny import load_pairs

    text = "\n".join(f"{p['prompt']}\n{p['response']}" for p in load_pairs())
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    rng = np.random.default_rng(seed)
    lengths = np.exp(rng.uniform(np.log(8), np.log(max_tokens), size=n)).astype(int)
    prompts = []
    for length in lengths:
        start = int(rng.integers(0, len(ids) - length))
        prompts.append(tokenizer.decode(ids[start:start + length]))
    return prompts


def pick_stops(outputs: list[str], k: int = 3) -> list[str]:
    """Up to ``k`` short ASCII pieces (after an output's first character) that between them
    occur in as many outputs as possible (greedy set cover)."""
    found: dict[str, set[int]] = {}
    for row, text in enumerate(outputs):
        for piece in {text[i:i + n] for n in (3, 2) for i in range(1, len(text) - n + 1)}:
            if piece.isascii() and piece.isprintable() and piece == piece.strip():
                found.setdefault(piece, set()).add(row)
    chosen, covered = [], set()
    for _ in range(k):
        gain = {p: len(rows - covered) for p, rows in found.items() if p not in chosen}
        if not gain or max(gain.values()) == 0:
            break
        best = min(gain, key=lambda p: (-gain[p], -len(p), p))
        chosen.append(best)
        covered |= found[best]
    return chosen or ["Question:"]


def new_ids(model, tokenizer, prompts, n_new: int, batch: int, device) -> list[list[int]]:
    """Greedy new token ids (plain HF generate in left-padded batches, no stop strings)."""
    out = []
    saved, tokenizer.padding_side = tokenizer.padding_side, "left"
    try:
        for start in range(0, len(prompts), batch):
            enc = tokenizer(prompts[start:start + batch], padding=True, return_tensors="pt").to(device)
            with torch.no_grad():
                gen = model.generate(**enc, max_new_tokens=n_new, do_sample=False,
                                     pad_token_id=tokenizer.pad_token_id)
            out += gen[:, enc["input_ids"].shape[1]:].tolist()
    finally:
        tokenizer.padding_side = saved
    return out


def end_some_rows_on_eos(model, tokenizer, generated: list[list[int]], skip: int = 8) -> int:
    """Random weights never choose EOS; give EOS's output-layer row 1.1 times the row of a token
    that about half of the rows generate, none of them in its first ``skip`` new tokens, so
    EOS comes out about there instead (nothing trained). Returns that token."""
    rows_with = Counter(t for row in generated for t in set(row))
    early = {t for row in generated for t in row[:skip]}
    fits = [t for t in rows_with if t not in early] or list(rows_with)
    if not fits:
        return tokenizer.eos_token_id
    token = min(fits, key=lambda t: (abs(rows_with[t] - len(generated) / 2), t))
    with torch.no_grad():
        head = model.get_output_embeddings().weight
        head[tokenizer.eos_token_id] = 1.1 * head[token]
    return token


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, model, device):
    steps = []
    hook = model.register_forward_hook(lambda *args: steps.append(1))
    try:
        _sync(device)
        start = time.perf_counter()
        out = fn()
        _sync(device)
        return out, time.perf_counter() - start, len(steps)
    finally:
        hook.remove()


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=list(SHAPES), default="tiny")
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-prompt-tokens", type=int, default=256)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", choices=["auto", "float32", "bfloat16", "float16"], default="auto")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1: steady timings on a shared 2-core machine, where "
                             "a second OpenMP thread waiting on a busy core stalls every step)")
    args = parser.parse_args(argv)

    import logging

    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from tiny_lm import tiny_tokenizer

    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else "cpu" if args.device == "auto" else args.device)
    dtype = (torch.bfloat16 if device.type == "cuda" else torch.float32) if args.dtype == "auto" \
        else getattr(torch, args.dtype)
    if device.type == "cpu" and args.threads:
        torch.set_num_threads(args.threads)
    tokenizer = tiny_tokenizer()
    model = build_model(args.size, len(tokenizer), device, dtype)
    prompts = make_prompts(tokenizer, args.prompts, args.max_prompt_tokens)
    n_new = args.max_new_tokens

    # untimed: warm-up, then the rows' endings are arranged (a share on EOS, a share on a stop)
    eos_token = end_some_rows_on_eos(model, tokenizer, new_ids(model, tokenizer, prompts, n_new,
                                                                args.batch, device))
    warm = new_ids(model, tokenizer, prompts, n_new, args.batch, device)
    on_eos = [tokenizer.eos_token_id in row for row in warm]
    texts = tokenizer.batch_decode(warm, skip_special_tokens=True)
    picked = pick_stops([t for t, eos in zip(texts, on_eos) if not eos] or texts)
    until = [*PROX_UNTIL, *picked]
    gen_kwargs = {"until": until, "max_gen_toks": n_new, "do_sample": False}
    requests = [Instance("generate_until", doc={}, arguments=(p, dict(gen_kwargs)), idx=i)
                for i, p in enumerate(prompts)]

    def lm_eval(batch_size):
        lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, device=str(device))
        return lambda: lm.generate_until(requests, disable_tqdm=True)

    runs = {
        "lm-eval HFLM generate_until (batch 1)": lm_eval(1),
        f"lm-eval HFLM (batch {args.batch})": lm_eval(args.batch),
        f"compass greedy_generate (batch {args.batch})": lambda: greedy_generate(
            model, tokenizer, prompts, n_new, stop=until, batch_size=args.batch,
            show_progress_bar=False),
    }
    results = {name: timed(fn, model, device) for name, fn in runs.items()}
    reference, batched = (results[name][0] for name in list(runs)[:2])
    useful = sum(len(tokenizer(o, add_special_tokens=False)["input_ids"]) for o in reference)
    rows = []
    for name, (outputs, seconds, steps) in results.items():
        rows.append({"run": name, "seconds": round(seconds, 2),
                     "new tokens/s": round(useful / seconds, 1), "decode steps": steps,
                     "identical to batch-1 reference": f"{sum(a == b for a, b in zip(outputs, reference))}/{len(prompts)}",
                     f"identical to lm-eval batch {args.batch}": f"{sum(a == b for a, b in zip(outputs, batched))}/{len(prompts)}"})
    frame = pd.DataFrame(rows)
    lengths = [len(tokenizer(p)["input_ids"]) for p in prompts]
    stopped = sum(any(p in t for p in picked) and not eos for t, eos in zip(texts, on_eos))
    print(f"{args.size} Llama-shaped model ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M "
          f"parameters, random weights), {device.type} {str(dtype).removeprefix('torch.')}, "
          f"{torch.get_num_threads() if device.type == 'cpu' else ''}"
          f"{' CPU thread(s); ' if device.type == 'cpu' else ''}"
          f"{len(prompts)} prompts of {min(lengths)}-{max(lengths)} tokens, max_new_tokens "
          f"{n_new}, until {until}; rows ending on EOS (token {eos_token}'s direction): "
          f"{sum(on_eos)}, on one of {picked}: {stopped}, at max_new_tokens: "
          f"{len(prompts) - sum(on_eos) - stopped}\n")
    print(frame.to_markdown(index=False))
    return frame


if __name__ == "__main__":
    main()
