"""What a full run costs, from params alone: adapters, tokens, requests and GPU-hours per base
model.

``python -m compass.cost [--params FILE] [--gpu FILE]`` prints the table and the assumptions behind
it; :func:`cost_table` and :func:`assumptions` give the same to the book.

Counted per base model (``train.models``), with A = |targets| x |train.methods| adapters:

- training: A x steps x batch_size x grad_accum x max_length tokens (an upper bound: every example
  counted at max_length);
- multiple choice (paper: Global-MMLU test; tiny: the pool's test items): per target, items x
  (1 zero-shot + |methods| adapters) scored items, each one log-likelihood request per choice;
  items = evaluation.max_items, or when 0 all of them (400 per language in Global-MMLU-Lite,
  14,042 in the full set; tiny: up to data.split.max_test_items); GPU time from the tokens
  scored (context + continuations per item, per language) at a tokens-per-second rate;
- MMLU-ProX-Lite (paper profile): per prox language, items (evaluation.prox.limit, or 588) x
  (1 + |methods|) generations of up to max_gen_toks tokens after a few-shot prompt;
- long context: per target, tasks x lengths x samples_per_task x (1 + |methods|) generations,
  each reading a prompt of that length and writing up to max_new_tokens.

GPU time divides these by throughputs measured at one model size and scaled by size. The
throughputs come from ``benchmarks/results/gpu.json`` when it exists, a JSON object with any of

- ``train_tokens_per_s``: LoRA training tokens per second (forward + backward);
- ``score_items_per_s``: 4-choice multiple-choice items scored per second (bench_gpu's long
  items), with ``score_item_tokens``: the tokens of one such item as scored;
- ``score_tokens_per_s``: context + continuation tokens scored per second on Global-MMLU-shaped
  items by compass's scorer, and ``score_lm_eval_tokens_per_s`` the same by lm-eval's HF backend
  (what the paper profile's Global-MMLU runs through: preferred when present); without either, the
  rate is derived from ``score_items_per_s`` x the tokens of those items;
- ``gen_tokens_per_s``: generated tokens per second, summed over the sequences of one batch;
- ``prefill_tokens_per_s``: prompt tokens read per second before generating;
- ``params_b``: the size (billions of parameters) of the model these were measured on;
- ``device``: the accelerator, in words;

and otherwise (per key) from :data:`FALLBACK`: the figures measured on one H200 (or, where nothing
was measured, a labelled assumption).

Prompt lengths (tokens per Global-MMLU item, per MMLU-ProX-Lite prompt, per language, plain and
in the chat template) come from ``benchmarks/results/prompt_lengths.json`` when it exists
(``benchmarks/prompt_lengths.py``: Llama-3.1's tokenizer on the fixtures' rows); a target it does
not measure takes the mean over the languages it does. Without the file, the earlier constants,
labelled as estimates: every MC item as long as bench_gpu's long item (:data:`BENCH_ITEM_TOKENS`),
:data:`PROX_TOKENS_PER_SHOT` per ProX shot.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from compass import paths
from compass.config import Config, ConfigError
from compass.protocols import protocol_of
from compass import model_catalog as catalog

GPU_RESULTS = paths.ROOT / "benchmarks" / "results" / "gpu.json"
PROMPT_LENGTHS = paths.ROOT / "benchmarks" / "results" / "prompt_lengths.json"
REFERENCE_B = 8.0  # the model size the fallback throughputs belong to
GMMLU_ITEMS = {"lite": 400, "full": 14_042}  # Global-MMLU test items per language
GMMLU_CHOICES = 4
PROX_LITE_ITEMS = 588  # MMLU-ProX-Lite test items per language
PROX_TOKENS_PER_SHOT = 250  # ESTIMATE: a chain-of-thought shot (question, options, worked answer)
# in tokens; the prompt holds num_fewshot shots + the question: 1,500 tokens at 5 shots
BENCH_ITEM_TOKENS = 1_672.2  # tokens of one item of bench_gpu's long multiple-choice row as its
# scorer runs them (the 64 items of --items 64, re-encoded with its tokenizer and seeds): the
# question once (1,114.8 tokens) + 4 continuations ("\n" + choice, 139.3 each). Its log calls them
# "~700-token question, 4 choices" of 700 // 8 tokens: random token ids, decoded and re-encoded,
# come back longer. What score_items_per_s was measured on when gpu.json gives no score_item_tokens
PREFILL_PER_TRAIN = 2.0  # prompt tokens read per second = this x LoRA training tokens per second
ATTENTION_TOKENS = 8e9 / (32 * 4096)  # ~61,035: at a context of this many tokens a prefill's
# attention FLOPs equal its weight FLOPs (params / (layers x d_model), Llama-3.1-8B's shape); the
# default for a model whose shape is not in SHAPES
SHAPES = {  # (decoder layers, d_model) from each model's config.json
    "gemma-3-270m": (18, 640), "phi-4-mini": (32, 3072), "llama-3.1-8b": (32, 4096),
    "llama-3.1-8b-instruct": (32, 4096), "qwen2.5-7b": (28, 3584),
    "qwen2.5-7b-instruct": (28, 3584)}


def attention_tokens(name: str) -> float:
    """The context length at which model ``name``'s attention FLOPs per token equal its weight
    FLOPs: params / (layers x d_model), from its shape (:data:`ATTENTION_TOKENS` if unknown)."""
    if name not in SHAPES:
        return ATTENTION_TOKENS
    layers, d_model = SHAPES[name]
    return model_size(name) * 1e9 / (layers * d_model)
H200 = ("measured on one H200 (bf16, LoRA r=16 on every linear layer, random-init Llama-3.1-8B "
        "shape)")
FALLBACK = {  # key -> (value at REFERENCE_B, where it comes from)
    "train_tokens_per_s": (9_080.0, f"{H200}: training at batch 4 x 1,024 tokens (measured there)"),
    "score_items_per_s": (3.2, f"{H200}: one 4-choice item per forward call, unbatched"),
    "gen_tokens_per_s": (30.0, "ASSUMPTION, nothing measured: 30 generated tokens/s for one "
                               "sequence at batch 1 on an 8B model with plain transformers"),
}
RATE_KEYS = ("train_tokens_per_s", "score_items_per_s", "score_tokens_per_s", "gen_tokens_per_s",
             "prefill_tokens_per_s")
MEASURED_KEYS = (*RATE_KEYS, "score_lm_eval_tokens_per_s", "score_item_tokens")  # gpu.json's
COLUMNS = {  # DataFrame column -> printed label
    "params_b": "params (B)", "adapters": "adapters",
    "train_tokens": "train tokens", "train_gpu_h": "train GPU-h",
    "mc_items": "MC items scored", "mc_requests": "MC loglik requests",
    "mc_tokens": "MC tokens scored", "mc_gpu_h": "MC GPU-h",
    "prox_generations": "ProX generations", "prox_prompt_tokens": "ProX prompt tokens",
    "prox_gen_tokens": "ProX gen tokens (max)", "prox_gpu_h": "ProX GPU-h",
    "lc_generations": "long-ctx generations", "lc_prompt_tokens": "long-ctx prompt tokens",
    "lc_gpu_h": "long-ctx GPU-h", "gpu_h": "GPU-h total",
}


@dataclass(frozen=True)
class Rate:
    """A throughput measured (or assumed) on a model of ``params_b`` billion parameters."""

    value: float
    params_b: float
    source: str

    def at(self, params_b: float) -> float:
        """Scaled to a model of ``params_b`` billion parameters (inversely with size)."""
        return self.value * self.params_b / params_b


def rates(gpu: str | Path | dict | None = None) -> dict[str, Rate]:
    """The throughputs to use: ``gpu`` (a dict, or a gpu.json path; default :data:`GPU_RESULTS`
    when it exists) key by key, the rest from :data:`FALLBACK`."""
    measured, where = _read_gpu(gpu)
    size = float(measured.get("params_b", REFERENCE_B))
    device = f" on {measured['device']}" if measured.get("device") else ""
    out = {}
    for key in RATE_KEYS:
        if key == "score_tokens_per_s" and "score_lm_eval_tokens_per_s" in measured:
            out[key] = Rate(float(measured["score_lm_eval_tokens_per_s"]), size,
                            f"measured{device} at {size:g}B with lm-eval's HF backend on "
                            f"Global-MMLU-shaped items ({where})")
        elif key == "score_tokens_per_s" and key in measured:
            out[key] = Rate(float(measured[key]), size, f"measured{device} at {size:g}B with "
                            f"compass's scorer on Global-MMLU-shaped items ({where})")
        elif key == "score_tokens_per_s":
            out[key] = _derived_score_rate(out["score_items_per_s"], measured)
        elif key in measured:
            out[key] = Rate(float(measured[key]), size, f"measured{device} at {size:g}B ({where})")
        elif key == "prefill_tokens_per_s":
            train = out["train_tokens_per_s"]
            out[key] = Rate(PREFILL_PER_TRAIN * train.value, train.params_b,
                            f"ESTIMATE: {PREFILL_PER_TRAIN:g} x the training rate (a LoRA step "
                            "costs about two forward passes: no gradients for the frozen "
                            "weights)")
        else:
            value, source = FALLBACK[key]
            out[key] = Rate(value, REFERENCE_B, source)
    return out


def _derived_score_rate(items: Rate, measured: dict) -> Rate:
    """Tokens/s of scoring, where none was measured: the items/s rate x the tokens of the items
    it was measured on (gpu.json's score_item_tokens, else :data:`BENCH_ITEM_TOKENS`)."""
    if "score_item_tokens" in measured:
        tokens, what = float(measured["score_item_tokens"]), "as measured with them"
    else:
        tokens, what = BENCH_ITEM_TOKENS, ("bench_gpu's long items re-encoded here: a 1,115-token"
                                           " question + 4 x 139-token choices, not the ~700 + 4 x"
                                           " 88 its log names")
    return Rate(items.value * tokens, items.params_b,
                f"DERIVED (no tokens/s measured yet): {items.value:g} items/s, {items.source}, x "
                f"{tokens:,.0f} tokens per item ({what})")


def _read_gpu(gpu) -> tuple[dict, str]:
    if isinstance(gpu, dict):
        data, where = gpu, "given"
    else:
        path = Path(gpu) if gpu is not None else GPU_RESULTS
        if gpu is None and not path.exists():
            return {}, ""
        if not path.exists():
            raise ConfigError(f"throughput file {path} does not exist")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as err:
            raise ConfigError(f"throughput file {path} is not valid JSON: {err}") from None
        where = str(path)
        if not isinstance(data, dict):
            raise ConfigError(f"throughput file {path} must hold a JSON object")
    for key in (*MEASURED_KEYS, "params_b"):
        value = data.get(key)
        if key in data and (isinstance(value, bool) or not isinstance(value, (int, float))
                            or value <= 0):
            raise ConfigError(f"{where or 'throughputs'}: {key} = {value!r} must be a positive "
                              "number")
    return data, where


def prompt_lengths(lengths: str | Path | dict | None = None) -> tuple[dict, str]:
    """The measured prompt lengths: ``lengths`` (a dict, or a prompt_lengths.json path; default
    :data:`PROMPT_LENGTHS` when it exists), and where they come from; ({}, "") when none."""
    if isinstance(lengths, dict):
        data, where = lengths, "given"
    else:
        path = Path(lengths) if lengths is not None else PROMPT_LENGTHS
        if lengths is None and not path.exists():
            return {}, ""
        if not path.exists():
            raise ConfigError(f"prompt-lengths file {path} does not exist")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as err:
            raise ConfigError(f"prompt-lengths file {path} is not valid JSON: {err}") from None
        where = str(path)
    if data != {}:
        _check_lengths(data, where)
    return data, where


LENGTH_FIGURES = {  # benchmark -> the figures cost_table reads from each language and the mean
    "global_mmlu_lite_test": ("item_tokens", "item_tokens_chat", "shot_tokens", "shot_tokens_chat"),
    "global_mmlu_dev": ("shot_tokens", "shot_tokens_chat"),
    "mmlu_prox_lite_test": ("prompt_0shot", "prompt_0shot_chat", "prompt_5shot",
                            "prompt_5shot_chat"),
}


def _check_lengths(data, where: str) -> None:
    """A ConfigError unless every benchmark present has its figures as positive numbers (a
    prompt's stats: a positive ``mean``)."""
    benchmarks = data.get("benchmarks") if isinstance(data, dict) else None
    if not isinstance(benchmarks, dict):
        raise ConfigError(f"{where}: prompt lengths must be a JSON object with 'benchmarks'")
    for name, keys in LENGTH_FIGURES.items():
        if name not in benchmarks:
            continue
        bench = benchmarks[name]
        if not isinstance(bench, dict) or not isinstance(bench.get("languages"), dict):
            raise ConfigError(f"{where}: {name} needs 'languages' (an object, one per language)")
        groups = {**bench["languages"], "mean": bench.get("mean")}
        for lang, figures in groups.items():
            for key in keys:
                value = (figures or {}).get(key)
                value = value.get("mean") if isinstance(value, dict) else value
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                    raise ConfigError(f"{where}: {name} {lang} {key} = {value!r} must be a "
                                      "positive number")


def _figures(bench: dict, lang: str) -> dict:
    """A language's figures, or the mean over the measured languages where it has none."""
    return bench["languages"].get(lang) or bench["mean"]


def mc_item_tokens(cfg: Config, lang: str, chat: bool, lengths: dict) -> float:
    """Tokens scored per multiple-choice item in ``lang``: the measured context (plain, or in the
    chat template) + 4 one-letter answers, + num_fewshot dev shots (the dev rows of ``lang``,
    else its test rows, else the mean); without measurements (or in the tiny profile) bench_gpu's
    long item per 4 choices, as the items/s rate counted it."""
    bench = lengths.get("benchmarks", {}).get("global_mmlu_lite_test")
    if not protocol_of(cfg).hub_benchmarks or not bench:
        return BENCH_ITEM_TOKENS * _mc_items(cfg)[1] / GMMLU_CHOICES
    suffix = "_chat" if chat else ""
    tokens = _figures(bench, lang)["item_tokens" + suffix]
    if cfg.evaluation.num_fewshot:
        dev = lengths["benchmarks"].get("global_mmlu_dev")
        shots = (dev["languages"][lang] if dev and lang in dev["languages"] else
                 _figures(bench, lang) if lang in bench["languages"] or not dev else dev["mean"])
        tokens += cfg.evaluation.num_fewshot * shots["shot_tokens" + suffix]
    return tokens


def prox_prompt_tokens(cfg: Config, lang: str, chat: bool, lengths: dict) -> float:
    """Mean tokens of an MMLU-ProX-Lite prompt in ``lang`` at evaluation.prox.num_fewshot shots:
    measured at 0 and 5 shots (each shot's worked answer an estimate) and interpolated; without
    measurements :data:`PROX_TOKENS_PER_SHOT` x (shots + 1)."""
    shots = cfg.evaluation.prox.num_fewshot
    bench = lengths.get("benchmarks", {}).get("mmlu_prox_lite_test")
    if not bench:
        return PROX_TOKENS_PER_SHOT * (shots + 1)
    suffix = "_chat" if chat else ""
    figures = _figures(bench, lang)
    zero, five = figures["prompt_0shot" + suffix]["mean"], figures["prompt_5shot" + suffix]["mean"]
    return zero + shots * (five - zero) / bench.get("num_fewshot", 5)


def _reads_chat(cfg: Config, name: str) -> bool:
    """Whether model ``name`` reads its prompts in its chat template (train.chat_template)."""
    from compass.training import chat

    return chat.wanted(cfg.train.chat_template, name)


def scored_lengths(cfg: Config, name: str) -> list[int]:
    """The long-context lengths the stage scores on model ``name``: those whose prompt and answer
    budget fit its window, with YaRN where the model needs it (compass.training.context_window,
    as compass.stages.long_context decides); all for a model the catalog does not list."""
    from compass.training import context_window

    lc = cfg.long_context
    answer = max(lc.max_new_tokens, lc.cwe_max_new_tokens)
    return list(context_window.plan(name, lc.lengths, answer).scored)


def model_size(name: str) -> float:
    """Billions of parameters of a model name (:data:`REFERENCE_B` when the catalog lacks it)."""
    return float(catalog.PARAMETERS_B.get(name, REFERENCE_B))


def _mc_items(cfg: Config) -> tuple[int, int]:
    """(items per language, choices per item) of the multiple-choice evaluation."""
    if protocol_of(cfg).hub_benchmarks:
        return cfg.evaluation.max_items or GMMLU_ITEMS[cfg.data.test_set], GMMLU_CHOICES
    return (cfg.evaluation.max_items or cfg.data.split.max_test_items,
            cfg.data.split.n_distractors + 1)


def _prefill_seconds(tokens: int, rate: float, attention: float = ATTENTION_TOKENS) -> float:
    """Seconds to read a prompt of ``tokens``: weight FLOPs plus attention's, which grow with length
    (``attention``: :func:`attention_tokens` of the model)."""
    return tokens * (1 + tokens / attention) / rate


def cost_table(cfg: Config, gpu: str | Path | dict | None = None,
               lengths: str | Path | dict | None = None) -> pd.DataFrame:
    """One row per base model and a 'total' row: adapters, tokens, requests and GPU-hours (see the
    module docstring for what is counted and :func:`assumptions` for the rates); ``lengths``: the
    prompt lengths (see :func:`prompt_lengths`)."""
    r = rates(gpu)
    measured, _ = prompt_lengths(lengths)
    targets, methods = len(cfg.targets), len(cfg.train.methods)
    runs = 1 + methods  # zero-shot + one adapter per method, per language
    t = cfg.train
    adapters = targets * methods * t.seeds
    train_tokens = adapters * t.steps * t.batch_size * t.grad_accum * t.max_length
    items, choices = _mc_items(cfg)
    mc_items = targets * runs * items
    prox_langs = protocol_of(cfg).prox_languages(cfg)
    p = cfg.evaluation.prox
    per_prox_lang = runs * (p.limit or PROX_LITE_ITEMS)  # generations per prox language
    lc = cfg.long_context
    lc_per_length = len(cfg.long_context_scored()) * len(lc.tasks) * lc.samples_per_task * runs
    rows = {}
    for name in t.models:
        size = model_size(name)
        train_tok_s, score_s = r["train_tokens_per_s"].at(size), r["score_tokens_per_s"].at(size)
        gen_s, prefill_s = r["gen_tokens_per_s"].at(size), r["prefill_tokens_per_s"].at(size)
        attention = attention_tokens(name)
        in_chat = _reads_chat(cfg, name)
        mc_tokens = runs * items * sum(mc_item_tokens(cfg, lang, in_chat, measured)
                                       for lang in cfg.targets)
        prompts = [prox_prompt_tokens(cfg, lang, in_chat, measured) for lang in prox_langs]
        prox_seconds = sum(per_prox_lang * (p.max_gen_toks / gen_s
                                            + _prefill_seconds(n, prefill_s, attention))
                           for n in prompts)
        lc_lengths = scored_lengths(cfg, name)  # nothing counted that the stage does not score
        lc_seconds = sum(lc_per_length * (_prefill_seconds(length, prefill_s, attention)
                                          + lc.max_new_tokens / gen_s) for length in lc_lengths)
        row = {
            "params_b": size, "adapters": adapters,
            "train_tokens": train_tokens, "train_gpu_h": train_tokens / train_tok_s / 3600,
            "mc_items": mc_items, "mc_requests": mc_items * choices, "mc_tokens": round(mc_tokens),
            "mc_gpu_h": mc_tokens / score_s / 3600,
            "prox_generations": per_prox_lang * len(prompts),
            "prox_prompt_tokens": round(per_prox_lang * sum(prompts)),
            "prox_gen_tokens": per_prox_lang * len(prompts) * p.max_gen_toks,
            "prox_gpu_h": prox_seconds / 3600,
            "lc_generations": lc_per_length * len(lc_lengths),
            "lc_prompt_tokens": lc_per_length * sum(lc_lengths), "lc_gpu_h": lc_seconds / 3600,
        }
        row["gpu_h"] = row["train_gpu_h"] + row["mc_gpu_h"] + row["prox_gpu_h"] + row["lc_gpu_h"]
        rows[name] = row
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(COLUMNS))
    total = table.drop(columns="params_b").sum()
    table.loc["total"] = total
    table.index.name = "model"
    counts = [c for c in COLUMNS if not c.endswith("_gpu_h") and c not in ("params_b", "gpu_h")]
    table[counts] = table[counts].astype("int64")
    return table


def assumptions(cfg: Config, gpu: str | Path | dict | None = None,
                lengths: str | Path | dict | None = None) -> list[str]:
    """What :func:`cost_table` assumed, one sentence each: every rate and length with whether it
    was measured (where, on what), derived or estimated."""
    r = rates(gpu)
    measured, where = prompt_lengths(lengths)
    out = [
        f"LoRA training: {r['train_tokens_per_s'].value:,.0f} tokens/s at "
        f"{r['train_tokens_per_s'].params_b:g}B, {r['train_tokens_per_s'].source}.",
        f"Multiple-choice scoring: {r['score_tokens_per_s'].value:,.0f} tokens/s (context + "
        f"continuation tokens) at {r['score_tokens_per_s'].params_b:g}B, "
        f"{r['score_tokens_per_s'].source}.",
        f"Generation: {r['gen_tokens_per_s'].value:g} tokens/s at "
        f"{r['gen_tokens_per_s'].params_b:g}B, "
        f"{r['gen_tokens_per_s'].source}."
        + ("" if r["gen_tokens_per_s"].source != FALLBACK["gen_tokens_per_s"][1] else
           " Batched generation is much faster: put a measured gen_tokens_per_s in gpu.json "
           "(benchmarks/bench_gpu.py writes one) to replace it."),
        f"Prompt reading (prefill): {r['prefill_tokens_per_s'].value:,.0f} tokens/s at "
        f"{r['prefill_tokens_per_s'].params_b:g}B, {r['prefill_tokens_per_s'].source}; "
        "a prompt of L "
        f"tokens costs L x (1 + L / A) tokens' time (attention grows with L; A is each model's "
        "params / (layers x d_model): "
        + ", ".join(f"{m} {attention_tokens(m):,.0f}" for m in cfg.train.models) + ").",
        "APPROXIMATION: every throughput is scaled by (measured size / model size) with sizes from "
        "compass.model_catalog.PARAMETERS_B; small models do not speed up that much in practice "
        "(kernel launches, the vocabulary projection), so small models' hours are low.",
        f"Training tokens are an upper bound: steps x batch_size x grad_accum x max_length "
        f"({cfg.train.max_length}) per adapter, as if every example filled max_length.",
    ]
    out += _benchmark_notes(cfg, measured, where)
    out += [
        "MMLU-ProX-Lite and long context count only the languages they cover (compass.coverage): "
        f"MMLU-ProX-Lite {', '.join(protocol_of(cfg).prox_languages(cfg)) or 'none'}; "
        f"OneRuler {', '.join(cfg.long_context_scored()) or 'none'}.",
        "Long context: one set per target language; each generation reads its full context length "
        "and writes up to long_context.max_new_tokens at the generation rate (decoding over a long "
        "cache is slower: a lower bound).",
        "Zero-shot is scored once per language per model, each adapter on its own language.",
        "Not counted: embedding and selection (CPU), held-out NLL items, lm-eval check items, "
        "model loading, checkpointing, and data downloads.",
    ]
    sizes = [name for name in cfg.train.models if name not in catalog.PARAMETERS_B]
    if sizes:
        out.append(f"Size unknown for {', '.join(sizes)}: assumed {REFERENCE_B:g}B.")
    return out


def _benchmark_notes(cfg: Config, measured: dict, where: str) -> list[str]:
    """The multiple-choice and MMLU-ProX lines: item counts and prompt lengths, each labelled."""
    items, choices = _mc_items(cfg)
    if not protocol_of(cfg).hub_benchmarks:
        return [f"Tiny profile: {items} multiple-choice items per language (evaluation.max_items, "
                f"or data.split.max_test_items when 0) with {choices} choices, ESTIMATE of "
                f"{BENCH_ITEM_TOKENS * choices / GMMLU_CHOICES:,.0f} tokens each (bench_gpu's long "
                "item per 4 choices: the items/s rate's own); no MMLU-ProX."]
    benchmarks = measured.get("benchmarks", {})
    source = ("evaluation.max_items" if cfg.evaluation.max_items
              else f"all of Global-MMLU-{'Lite' if cfg.data.test_set == 'lite' else 'full'} test")
    chat_models = [m for m in cfg.train.models if _reads_chat(cfg, m)]
    kinds = ("in the chat template for " + (", ".join(chat_models) or "no model")
             + " (train.chat_template)"
             + (", plain for the rest" if len(chat_models) < len(cfg.train.models) else ""))
    out = [f"Global-MMLU: {items:,} items per language ({source}), {choices} log-likelihood "
           "requests each, scored from their tokens: " + _mc_length_note(cfg, benchmarks, where)]
    p = cfg.evaluation.prox
    out.append(f"MMLU-ProX-Lite: {p.limit or PROX_LITE_ITEMS:,} items per language, every "
               f"generation counted at max_gen_toks = {p.max_gen_toks:,} (an upper bound: most "
               "answers stop earlier); " + _prox_length_note(cfg, benchmarks, where))
    if benchmarks:
        out.append(f"Prompts are counted {kinds}; lengths are Llama-3.1's tokens and template for "
                   "every model (APPROXIMATION: Phi-4-mini's and Qwen2.5's tokenizers and "
                   "templates differ), and a target the fixtures lack ("
                   + ", ".join(_unmeasured(cfg, benchmarks))
                   + ") takes the mean over the measured languages.")
    return out


def _mc_length_note(cfg: Config, benchmarks: dict, where: str) -> str:
    """Where the tokens per Global-MMLU item come from, with the figures used."""
    bench = benchmarks.get("global_mmlu_lite_test")
    if not bench:
        return (f"ESTIMATE of {BENCH_ITEM_TOKENS:,.0f} tokens per item (as long as bench_gpu's "
                "long item: no prompt-lengths file; benchmarks/prompt_lengths.py writes one).")
    shown = ", ".join(f"{lang} {mc_item_tokens(cfg, lang, True, {'benchmarks': benchmarks}):,.0f}"
                      f" / {mc_item_tokens(cfg, lang, False, {'benchmarks': benchmarks}):,.0f}"
                      for lang in cfg.targets)
    shots = cfg.evaluation.num_fewshot
    return (f"MEASURED tokens per item (context + 4 one-letter answers, one pass; chat / plain: "
            f"{shown}) on the Global-MMLU-Lite test rows of {', '.join(bench['languages'])} in "
            f"lm-eval's global_mmlu prompt ({where}); the Lite rows stand for the full test set"
            + (f"; {shots} dev shots each, measured on the dev rows" if shots else "") + ".")


def _prox_length_note(cfg: Config, benchmarks: dict, where: str) -> str:
    """Where the tokens per MMLU-ProX-Lite prompt come from, with the figures used."""
    p = cfg.evaluation.prox
    bench = benchmarks.get("mmlu_prox_lite_test")
    if not bench:
        return (f"ESTIMATE of {PROX_TOKENS_PER_SHOT} prompt tokens per shot, "
                f"{PROX_TOKENS_PER_SHOT * (p.num_fewshot + 1):,} per prompt at num_fewshot = "
                f"{p.num_fewshot}.")
    data = {"benchmarks": benchmarks}
    shown = ", ".join(f"{lang} {prox_prompt_tokens(cfg, lang, True, data):,.0f} / "
                      f"{prox_prompt_tokens(cfg, lang, False, data):,.0f}"
                      for lang in cfg.prox_languages())
    cot = bench["mean"].get("cot_tokens_per_shot")
    return (f"MEASURED prompt tokens at num_fewshot = {p.num_fewshot} (chat / plain: {shown}) on "
            f"the MMLU-ProX-Lite test and validation rows of {', '.join(bench['languages'])} in "
            f"lm-eval's mmlu_prox_lite prompt ({where}), except each shot's worked answer: an "
            f"ESTIMATE" + (f" of {cot:,.0f} tokens" if cot else "") + " (the fixtures have none: "
            "English MMLU CoT examples of lm-eval, scaled by language).")


def _unmeasured(cfg: Config, benchmarks: dict) -> list[str]:
    """The targets (and prox languages) that some measured benchmark lacks, or 'none'."""
    def lacks(name: str, lang: str) -> bool:
        return name in benchmarks and lang not in benchmarks[name]["languages"]

    langs = [lang for lang in cfg.targets if lacks("global_mmlu_lite_test", lang)
             or (lang in cfg.prox_languages() and lacks("mmlu_prox_lite_test", lang))]
    return langs or ["none"]


def format_table(table: pd.DataFrame) -> str:
    """The table turned on its side (one column per model, one row per quantity: it fits a
    terminal) as markdown, or plain text when tabulate is missing; counts with thousands
    separators, hours to one decimal (three below 0.1)."""
    def cell(column: str, value) -> str:
        if column == "params_b":
            return "" if pd.isna(value) else f"{value:g}"
        if column.endswith("gpu_h"):
            if value == 0 or value >= 0.1:
                return f"{value:,.1f}"
            return f"{value:.3f}" if value >= 0.001 else "<0.001"
        return f"{int(value):,}"

    shown = pd.DataFrame({model: [cell(c, row[c]) for c in COLUMNS]
                          for model, row in table.iterrows()},
                         index=list(COLUMNS.values()))
    try:
        return shown.to_markdown(colalign=("left",) + ("right",) * shown.shape[1],
                                 disable_numparse=True)
    except ImportError:
        return shown.to_string()


def report(cfg: Config, gpu: str | Path | dict | None = None,
           lengths: str | Path | dict | None = None) -> str:
    """What the command line prints: a header, the table and the assumptions."""
    lines = [f"Cost of a full run: profile {cfg.profile}, {len(cfg.targets)} targets "
             f"({', '.join(cfg.targets)}), methods {', '.join(cfg.train.methods)}, "
             f"{len(cfg.train.models)} model(s)", "", format_table(cost_table(cfg, gpu, lengths)),
             "", "Assumptions:"]
    lines += [f"- {line}" for line in assumptions(cfg, gpu, lengths)]
    from compass import makespan

    wall = makespan.table_lines(cfg, gpu, lengths)
    if wall:
        lines += ["", "Wall time on G GPUs (compass.cluster: one stage per GPU, critical path "
                  "first; compass.makespan):", "", *wall]
    return "\n".join(lines)


def main(argv=None) -> int:
    """Print the cost report for the params; returns 2 when the params are invalid."""
    from compass import config

    parser = argparse.ArgumentParser(prog="python -m compass.cost",
                                     description="GPU-hours and tokens of a full run, "
                                                 "from params alone")
    parser.add_argument("--params", default=None, help="params.yaml to read (default: the repo's)")
    parser.add_argument("--gpu", default=None,
                        help="measured throughputs (default: "
                             f"{GPU_RESULTS.relative_to(paths.ROOT)} when it exists)")
    parser.add_argument("--lengths", default=None,
                        help="measured prompt lengths (default: "
                             "benchmarks/results/prompt_lengths.json when it exists)")
    args = parser.parse_args(argv)
    try:
        print(report(config.load(args.params), args.gpu, args.lengths))
    except ConfigError as err:
        print(f"error in params: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
