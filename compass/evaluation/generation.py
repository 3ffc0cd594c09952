"""Batched greedy generation with a KV cache and stop strings, giving lm-eval's HF outputs.

Why this exists: the paper's MMLU-ProX-Lite runs are lm-eval generative tasks
(``mmlu_prox_lite_<lang>``: 5-shot chain of thought, greedy, up to ``max_gen_toks`` new tokens,
cut at "Question:" and friends), answered by lm-eval's ``HFLM.generate_until``. That path works
but spends its time badly: with the default ``batch_size=1`` every prompt is decoded alone, and
in a batch its stop check (one ``MultiTokenEOSCriteria`` per stop string, each tracking its own
rows) only ends the batch once *one and the same* stop string has appeared in *every* row, so a
batch where one row ended on "Question:" and another on "Q:" (or on EOS) decodes on to
``max_gen_toks``. :func:`greedy_generate` is the same computation, batched, ending each batch
as soon as every row has produced some stop string or EOS; :class:`CompassGenerationLM` plugs it
into lm-eval, so the tasks, filters and metrics stay lm-eval's own.

What is matched, so the outputs are lm-eval's (``HFLM.generate_until`` / ``tok_batch_encode`` /
``_model_generate`` in lm-eval 0.4.13):

* encoding: the tokenizer's own special tokens (BOS) unless the prompt already starts with the
  BOS text (then none), or ``add_special_tokens`` forces them (HFLM's ``add_bos_token``); lm-eval
  takes that decision from the first prompt of each batch, here it is taken per prompt (the same
  unless one batch mixes prompts with and without a leading BOS text);
* left truncation to ``max_length - max_new_tokens`` tokens, ``max_length`` defaulting to the
  model's context length resolved as lm-eval does (``text_config`` / ``n_positions`` /
  ``max_position_embeddings`` / ``n_ctx``, then the tokenizer's ``model_max_length``, else 2048);
* left padding with the tokenizer's pad id (else unk, else EOS: lm-eval's ``configure_pad_token``)
  and ``model.generate(do_sample=False, max_length=<padded prompt> + max_new_tokens,
  pad_token_id=..., use_cache=True)`` with the model's own generation config (EOS ids included);
* order: prompts sorted longest first (token count, ties by prompt text: lm-eval's ``Collator``
  key), so a batch size of ``B`` builds exactly lm-eval's batches of ``B``, and padding, hence
  the floating-point arithmetic, is the same;
* decoding: the new tokens only, ``skip_special_tokens=True``, cut at the first occurrence of any
  stop string or of the EOS text (lm-eval adds it to ``until``);
* a special token whose text is a stop string (Qwen's "<|im_end|>" in MMLU-ProX's ``until``, or
  the tokenizer's EOS when the model's generation config has other EOS ids) ends its row where
  it is generated, as lm-eval's stop check (which decodes with special tokens) does at batch
  size 1. Batched, lm-eval lets such a row decode on past the dropped token until its whole
  batch stops, so its text there depends on the batch; here it does not.

Stopping early cannot change an output: decoding is causal, so tokens already generated do not
depend on how long the batch runs on, and a row counts as finished only when its decoded text so
far contains a stop string (checked on the whole text, after a cheap look at the last tokens) or
it has emitted a stop token or an EOS id (after which ``generate`` pads it). The criterion answers
for the whole batch, so rows that are finished keep being decoded until every row is, exactly as
in lm-eval's batches, and the batch's arithmetic is unchanged.
"""
from __future__ import annotations

import json
from collections.abc import Sequence

import torch
from lm_eval.models.huggingface import HFLM
from lm_eval.models.utils import normalize_gen_kwargs
from tqdm.auto import tqdm
from transformers import StoppingCriteria, StoppingCriteriaList

DEFAULT_MAX_LENGTH = 2048  # lm-eval's HFLM._DEFAULT_MAX_LENGTH
_TOKENIZER_INFINITY = 1000000000000000019884624838656  # transformers' "no limit" model_max_length
# generation kwargs (after lm-eval's normalize_gen_kwargs) that the greedy path answers itself
GREEDY_KEYS = {"until", "max_gen_toks", "do_sample", "temperature"}


def resolve_max_length(model, tokenizer=None, default: int = DEFAULT_MAX_LENGTH) -> int:
    """The model's context length as lm-eval's HFLM resolves it (``resolve_max_length``)."""
    config = getattr(model, "config", None)
    config = getattr(config, "text_config", None) or config
    for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(config, attr, None)
        if value is not None:
            return int(value)
    limit = getattr(tokenizer, "model_max_length", None)
    if limit is not None and limit != _TOKENIZER_INFINITY:
        return int(limit)
    return default


def _pad_id(tokenizer) -> int:
    for attr in ("pad_token_id", "unk_token_id", "eos_token_id"):
        value = getattr(tokenizer, attr, None)
        if value is not None:
            return int(value)
    raise ValueError("the tokenizer has no pad, unk or eos token to pad a batch with")


def _eos_ids(model) -> list[int]:
    config = getattr(model, "generation_config", None)
    eos = getattr(config, "eos_token_id", None)
    if eos is None:
        eos = getattr(getattr(model, "config", None), "eos_token_id", None)
    if eos is None:
        return []
    return [int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])]


def _stop_list(stop) -> list[str]:
    if isinstance(stop, str):
        return [stop]
    stop = list(stop) if stop is not None else []
    bad = [s for s in stop if not isinstance(s, str)]
    if bad:
        raise ValueError(f"stop must be strings; got {bad!r}")
    return stop


def _special_stop_ids(tokenizer, stops: Sequence[str]) -> set[int]:
    """Special tokens whose own text holds a stop string but which decoding drops
    (``skip_special_tokens``): e.g. "<|im_end|>" in Qwen's tokenizer, or the EOS text."""
    ids = set()
    candidates = set(getattr(tokenizer, "added_tokens_decoder", None) or {})
    candidates |= set(getattr(tokenizer, "all_special_ids", None) or [])
    for token_id in sorted(candidates):
        raw = tokenizer.decode([token_id], skip_special_tokens=False)
        if any(s and s in raw for s in stops) and \
                tokenizer.decode([token_id], skip_special_tokens=True) == "":
            ids.add(int(token_id))
    return ids


def _until_token(tokens: list[int], stop_ids: set[int]) -> list[int]:
    """The tokens before the first stop token (lm-eval at batch size 1 stops right there)."""
    for i, token in enumerate(tokens):
        if token in stop_ids:
            return tokens[:i]
    return tokens


def _cut(text: str, stops: Sequence[str]) -> str:
    """``text`` up to the first occurrence of any non-empty stop string (lm-eval's
    ``postprocess_generated_text``: split on each in turn and keep the head)."""
    for term in stops:
        if term:
            text = text.split(term)[0]
    return text


class _UntilEveryRowStops(StoppingCriteria):
    """Ends the batch when every row has emitted an EOS id or a stop token, or produced a stop
    string.

    Answers for the batch as a whole (all False until every row is finished), so no row is
    padded early by ``generate`` on our account: the batch computes what lm-eval's would. A row
    is looked at through its last ``window`` new tokens (cheap), and a hit is confirmed on the
    whole decoded text of its new tokens, which is what the output is cut from."""

    def __init__(self, tokenizer, stops: Sequence[str], prompt_width: int, rows: int,
                 end_ids: Sequence[int]):
        self.tokenizer = tokenizer
        self.stops = [s for s in stops if s]
        self.prompt_width = prompt_width
        self.end_ids = set(end_ids)
        self.done = [False] * rows
        # a stop string of n characters spans at most 4n byte-level tokens (+ margin)
        self.window = 4 * max((len(s) for s in self.stops), default=0) + 8

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        new = input_ids[:, self.prompt_width:]
        if self.end_ids:
            for row, token in enumerate(new[:, -1].tolist()):
                if token in self.end_ids:
                    self.done[row] = True
        pending = [row for row, done in enumerate(self.done) if not done]
        if pending and self.stops:
            tails = new[pending, -self.window:].tolist()
            texts = self.tokenizer.batch_decode(tails, skip_special_tokens=True)
            for row, text in zip(pending, texts):
                if any(s in text for s in self.stops):
                    whole = self.tokenizer.decode(new[row].tolist(), skip_special_tokens=True)
                    self.done[row] = any(s in whole for s in self.stops)
        return torch.full((input_ids.shape[0],), all(self.done), dtype=torch.bool,
                          device=input_ids.device)


def greedy_generate(model, tokenizer, prompts: list[str], max_new_tokens: int,
                    stop: list[str] | tuple = (), batch_size: int = 16,
                    max_length: int | None = None, show_progress_bar=True, *,
                    add_special_tokens: bool | None = None, truncation: bool = False) -> list[str]:
    """Greedy continuations of ``prompts`` (in their order), as lm-eval's HFLM generates them.

    Up to ``max_new_tokens`` new tokens each, decoded without special tokens and cut at the first
    occurrence of any string in ``stop`` or of the EOS text. Prompts are left-truncated to
    ``max_length - max_new_tokens`` tokens (``max_length``: the model's context length as lm-eval
    resolves it). ``add_special_tokens`` (None: the tokenizer's default) and ``truncation`` are
    HFLM's ``add_bos_token`` and ``truncation``. Works for a plain model and a PeftModel (its
    active adapter); the model runs in eval mode and gets its training mode back afterwards."""
    if isinstance(prompts, str) or not isinstance(prompts, Sequence):
        raise ValueError(f"prompts must be a list of strings, got {type(prompts).__name__}")
    bad = [i for i, p in enumerate(prompts) if not isinstance(p, str)]
    if bad:
        raise ValueError(f"prompts must be strings; prompt {bad[0]} is "
                         f"{type(prompts[bad[0]]).__name__}")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) \
            or max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be an integer >= 1, got {max_new_tokens!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    stops = _stop_list(stop)
    if not prompts:
        return []
    if max_length is None:
        max_length = resolve_max_length(model, tokenizer)
    max_context = int(max_length) - max_new_tokens
    if max_context < 1:
        raise ValueError(f"max_new_tokens={max_new_tokens} leaves no room for the prompt in "
                         f"max_length={max_length}")
    if tokenizer.eos_token_id is not None:
        eos_text = tokenizer.decode(tokenizer.eos_token_id, skip_special_tokens=False)
        if eos_text not in stops:
            stops = [*stops, eos_text]
    pad = _pad_id(tokenizer)
    stop_ids = _special_stop_ids(tokenizer, stops)
    end_ids = stop_ids | set(_eos_ids(model))
    device = next(model.parameters()).device

    bos = getattr(tokenizer, "bos_token", None)
    encoded = []
    for prompt in prompts:
        if bos and prompt.startswith(bos):
            special = {"add_special_tokens": False}
        elif add_special_tokens is not None:
            special = {"add_special_tokens": add_special_tokens}
        else:
            special = {}
        encoded.append(tokenizer(prompt, truncation=truncation, **special)["input_ids"])
    order = sorted(range(len(prompts)), key=lambda i: (-len(encoded[i]), prompts[i]))

    outputs: list[str | None] = [None] * len(prompts)
    was_training = model.training
    model.eval()
    bar = tqdm(total=len(prompts), desc="greedy_generate", disable=not show_progress_bar)
    try:
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            ids = [encoded[i][-max_context:] for i in batch]
            width = max(len(x) for x in ids)
            input_ids = torch.full((len(ids), width), pad, dtype=torch.long)
            attention = torch.zeros((len(ids), width), dtype=torch.long)
            for row, x in enumerate(ids):
                if x:
                    input_ids[row, width - len(x):] = torch.tensor(x, dtype=torch.long)
                    attention[row, width - len(x):] = 1
            criterion = _UntilEveryRowStops(tokenizer, stops, width, len(ids), end_ids)
            with torch.no_grad():
                out = model.generate(input_ids=input_ids.to(device),
                                     attention_mask=attention.to(device),
                                     max_length=width + max_new_tokens, do_sample=False,
                                     pad_token_id=pad, use_cache=True,
                                     stopping_criteria=StoppingCriteriaList([criterion]))
            rows = [_until_token(row, stop_ids) for row in out[:, width:].tolist()]
            texts = tokenizer.batch_decode(rows, skip_special_tokens=True)
            for i, text in zip(batch, texts):
                outputs[i] = _cut(text, stops)
            bar.update(len(batch))
    finally:
        bar.close()
        if was_training:
            model.train()
    return outputs


class CompassGenerationLM(HFLM):
    """lm-eval's HFLM whose greedy ``generate_until`` requests go through :func:`greedy_generate`
    (batches of ``gen_batch_size``); everything else (log-likelihoods, sampling requests, tasks,
    filters, metrics) is lm-eval's own.

    A request is answered here when its generation kwargs, normalised as lm-eval does, hold only
    ``until``, ``max_gen_toks`` and greedy decoding (``do_sample`` False, or absent with
    temperature 0) and the model is a causal LM without a ``think_end_token``; anything else
    goes to ``HFLM.generate_until`` unchanged."""

    def __init__(self, *args, gen_batch_size: int = 16, **kwargs):
        if isinstance(gen_batch_size, bool) or not isinstance(gen_batch_size, int) \
                or gen_batch_size < 1:
            raise ValueError(f"gen_batch_size must be an integer >= 1, got {gen_batch_size!r}")
        super().__init__(*args, **kwargs)
        self.gen_batch_size = gen_batch_size

    def _greedy_key(self, gen_kwargs) -> tuple[tuple[str, ...], int] | None:
        """(until, max_gen_toks) when the request is greedy and plain, else None."""
        if not isinstance(gen_kwargs, dict):
            return None
        kwargs = normalize_gen_kwargs(gen_kwargs, self.max_gen_toks)
        if set(kwargs) - GREEDY_KEYS or kwargs.get("do_sample") is not False:
            return None
        until = kwargs.get("until") or []
        if not all(isinstance(u, str) for u in until):
            return None
        return tuple(until), int(kwargs["max_gen_toks"])

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        """Greedy requests in batches of ``gen_batch_size`` through :func:`greedy_generate`, grouped
        as lm-eval groups them; other requests and models go to HFLM unchanged. Results keep the
        order of ``requests``."""
        if self.backend != "causal" or self.think_end_token is not None:
            return super().generate_until(requests, disable_tqdm=disable_tqdm)
        # grouped by the request's own kwargs, as lm-eval's Collator groups them, so that at the
        # same batch size the batches (and their padding) are the ones lm-eval builds
        groups: dict[str, tuple[tuple, list[int]]] = {}
        fallback = []
        for i, request in enumerate(requests):
            key = self._greedy_key(request.args[1])
            if key is None:
                fallback.append(i)
            else:
                raw = json.dumps(request.args[1], sort_keys=True, default=repr)
                groups.setdefault(raw, (key, []))[1].append(i)
        results: list[str | None] = [None] * len(requests)
        if fallback:
            answers = super().generate_until([requests[i] for i in fallback],
                                             disable_tqdm=disable_tqdm)
            for i, answer in zip(fallback, answers):
                results[i] = answer
        for (until, max_gen_toks), indices in groups.values():
            contexts = [requests[i].args[0] for i in indices]
            answers = greedy_generate(self.model, self.tokenizer, contexts, max_gen_toks,
                                      stop=list(until), batch_size=self.gen_batch_size,
                                      max_length=self.max_length,
                                      show_progress_bar=not disable_tqdm and self.rank == 0,
                                      add_special_tokens=self.add_bos_token,
                                      truncation=bool(self.truncation))
            for i, answer in zip(indices, answers):
                results[i] = answer
                self.cache_hook.add_partial("generate_until", requests[i].args, answer)
        return results
