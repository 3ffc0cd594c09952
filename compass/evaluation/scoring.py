"""Multiple-choice accuracy by log-likelihood, with lm-eval's `multiple_choice` semantics.

For each item: context = question + "\\n", continuation = choice; lm-eval moves the context's
trailing whitespace into the continuation and takes the continuation's tokens from the tokenised
whole, and so do we. acc = argmax of the summed log-probabilities, acc_norm = argmax of the sum
divided by the choice's length in characters.

`score_items` batches across items: every (item, choice) request goes into a forward pass with
many others, sorted by length and padded on the right (causal model: real tokens never attend to
the pads after them, so no attention mask is needed). Where the choices of an item share a long
question prefix, the prefix is run once per item (a batch of prefixes, left-padded so that the
choices' tails follow their prefix directly in the KV cache) and its cache reused for all the
item's choices. In both cases the output layer runs only at the positions that predict a
continuation token, and the log-softmax is taken in chunks of positions to bound memory.
`choice_loglikelihoods` is the earlier one-item-at-a-time scorer (kept as a reference and for
the benchmark); `choice_loglikelihoods_plain` is the full-logits reference for tests.

`score_items` also reports, per item, the likelihood of the correct choice alone, a continuous
metric that moves where accuracy near chance cannot: on the test items the correct choice is the
held-out response to the item's prompt, so its log-likelihood is that of the held-out response
given the prompt. ``nll`` = -ll[answer] / answer_tokens (nats per token of the continuation, as
the scorer tokenises it) and ``bpc`` = -ll[answer] / ln 2 / answer_chars (bits per character of
the continuation text, comparable across tokenisers). Both count exactly what the summed
log-probability covers: the continuation after lm-eval's whitespace move, i.e. the question's
trailing whitespace + "\n" + the choice.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from compass.training.adapters import causal_lm_parts, output_logits

TARGET_DELIMITER = "\n"  # between question and choice; an item's "delimiter" overrides it
LOGIT_CHUNK_BYTES = 1 << 28  # fp32 logits per output-layer chunk (256 MiB; peak about twice)
# default tokens per forward pass (rows x padded length): on a CPU the matrix products reach
# their speed at a few hundred rows; on a GPU larger batches keep paying
DEFAULT_BATCH_TOKENS = {"cpu": 512, "cuda": 8192}
# a batch of reused prefixes may hold this many times the batch tokens in its (expanded) KV cache
CACHE_TOKENS_FACTOR = 4
# prefix reuse is used for an item when it saves at least this many tokens of the forward pass
MIN_PREFIX_SAVING = 32


def split_pair(context: str, continuation: str) -> tuple[str, str]:
    """lm-eval's split of a request: the context's trailing whitespace moves to the continuation
    (so the continuation of question + "\n" and a choice is "\n" + the choice, or more)."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    return context, continuation


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """lm-eval's causal `_encode_pair`: trailing whitespace moves to the continuation."""
    context, continuation = split_pair(context, continuation)
    whole = tokenizer(context + continuation, add_special_tokens=True)["input_ids"]
    ctx = tokenizer(context, add_special_tokens=True)["input_ids"]
    return ctx, whole[len(ctx):]


# ---- KV cache: passed in, never read from the output -------------------------------------------
def _cache_kwarg(decoder) -> str:
    """Name of the decoder's cache argument: `cache` from transformers 5.2x on, `past_key_values`
    before (5.2x still accepts the old name, with a deprecation warning)."""
    params = inspect.signature(decoder.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _new_cache(config):
    """An empty DynamicCache that the decoder fills in place (so we keep our own reference and
    never depend on the output attribute's name, `cache` or `past_key_values`)."""
    from transformers import DynamicCache

    try:
        return DynamicCache(config=config)  # sliding-window layers keep only their window
    except TypeError:  # older signature without config
        return DynamicCache()


def _common_prefix(seqs: list[list[int]]) -> list[int]:
    shared = seqs[0]
    for seq in seqs[1:]:
        n = 0
        while n < min(len(shared), len(seq)) and shared[n] == seq[n]:
            n += 1
        shared = shared[:n]
    return shared


def _logit_chunk(base, head) -> int:
    """Positions per output-layer call: as many as LOGIT_CHUNK_BYTES of fp32 logits hold."""
    vocab = head.weight.shape[0] if hasattr(head, "weight") else base.config.vocab_size
    return max(1, LOGIT_CHUNK_BYTES // (4 * vocab))


def _picked_logprobs(base, head, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(target) at each row of ``hidden`` ([P, H]), the output layer and the log-softmax
    taken over chunks of rows so that about LOGIT_CHUNK_BYTES of logits exist at once."""
    chunk = _logit_chunk(base, head)
    out = []
    for start in range(0, hidden.shape[0], chunk):
        # log_softmax as lm-eval and the plain scorer take it: torch's fp32 log_softmax over a
        # 262k vocabulary is biased by up to ~6e-5 per token against fp64 (gather - logsumexp
        # is not), so logsumexp would move Gemma-3-270M's sums ~5e-4 away from lm-eval's
        logp = torch.log_softmax(output_logits(base, head, hidden[start:start + chunk]).float(),
                                 dim=-1)
        out.append(logp.gather(1, targets[start:start + chunk, None])[:, 0])
    return torch.cat(out) if out else hidden.new_zeros(0, dtype=torch.float32)


@torch.no_grad()
def choice_loglikelihoods(model, tokenizer, question: str, choices: list[str]) -> np.ndarray:
    """Summed log p(choice | question) for each choice of one item, reusing the question's KV
    cache (the one-item-at-a-time scorer; `score_items` batches across items instead)."""
    base, decoder, head = causal_lm_parts(model)
    device = next(model.parameters()).device
    encoded = [encode_pair(tokenizer, question + TARGET_DELIMITER, c) for c in choices]
    # tokenisation of context + continuation can merge across the boundary, so contexts may
    # differ between choices; share the cache over the longest common context prefix
    shared = _common_prefix([ctx for ctx, _ in encoded])
    n_shared = len(shared) - 1  # keep one token to produce the first prediction
    tails = [ctx[n_shared:] + cont for ctx, cont in encoded]
    cache, cache_arg = None, {}
    if n_shared > 0:
        cache = _new_cache(base.config)
        decoder(input_ids=torch.tensor([shared[:n_shared]], device=device), use_cache=True,
                **{_cache_kwarg(decoder): cache})
        cache.batch_repeat_interleave(len(tails))
        cache_arg = {_cache_kwarg(decoder): cache}
    width = max(len(t) for t in tails)
    ids = torch.full((len(tails), width), _pad_id(tokenizer), dtype=torch.long, device=device)
    for row, tail in enumerate(tails):
        ids[row, :len(tail)] = torch.tensor(tail, device=device)
    positions = torch.arange(n_shared, n_shared + width, device=device)
    hidden = decoder(input_ids=ids, use_cache=cache is not None, **cache_arg,
                     position_ids=positions.unsqueeze(0).expand(len(tails), -1)).last_hidden_state
    scores = np.zeros(len(choices))
    rows, cols, targets = [], [], []
    for row, (ctx, cont) in enumerate(encoded):
        first = len(ctx) - n_shared - 1  # position predicting the first continuation token
        for j, token in enumerate(cont):
            rows.append(row)
            cols.append(first + j)
            targets.append(token)
    logp = torch.log_softmax(output_logits(base, head,
                                           hidden[torch.tensor(rows), torch.tensor(cols)])
                             .float(), dim=-1)
    picked = logp[torch.arange(len(targets)), torch.tensor(targets, device=device)].cpu().numpy()
    np.add.at(scores, np.array(rows), picked)
    return scores


@torch.no_grad()
def choice_loglikelihoods_plain(model, tokenizer, question: str, choices: list[str]) -> np.ndarray:
    """Reference scorer: each choice as its own full sequence, full logits (for tests)."""
    device = next(model.parameters()).device
    scores = []
    for choice in choices:
        ctx, cont = encode_pair(tokenizer, question + TARGET_DELIMITER, choice)
        ids = torch.tensor([ctx + cont], device=device)
        logp = torch.log_softmax(model(input_ids=ids).logits.float(), dim=-1)[0]
        scores.append(sum(logp[len(ctx) - 1 + j, t].item() for j, t in enumerate(cont)))
    return np.array(scores)


# ---- batched across items ----------------------------------------------------------------------
def _pad_id(tokenizer) -> int:
    pad = tokenizer.pad_token_id
    return pad if pad is not None else 0  # pads are never attended to nor scored: any id does


@dataclass
class _Item:
    index: int
    encoded: list[tuple[list[int], list[int]]]  # (context, continuation) per choice
    n_shared: int  # context tokens run once for all choices (0: each choice runs in full)
    tails: list[list[int]] = field(init=False)  # what runs per choice after the shared prefix

    def __post_init__(self):
        self.tails = [ctx[self.n_shared:] + cont for ctx, cont in self.encoded]


def _plan(tokenizer, items: list[dict], prefix_reuse: bool | None) -> list[_Item]:
    """Tokenise every (item, choice); decide per item whether its question prefix is reused."""
    planned = []
    for index, item in enumerate(items):
        encoded = [encode_pair(tokenizer, context_of(item), c) for c in item["choices"]]
        n_shared = len(_common_prefix([ctx for ctx, _ in encoded])) - 1 if encoded else 0
        saving = n_shared * (len(encoded) - 1)
        use = saving >= MIN_PREFIX_SAVING if prefix_reuse is None else bool(prefix_reuse)
        planned.append(_Item(index, encoded,
                             n_shared if use and n_shared > 0 and len(encoded) > 1 else 0))
    return planned


class _Head:
    """The output layer, applied to the hidden states at the positions that predict a continuation
    token. States are gathered over forward passes and sent through the output layer in chunks of
    ``chunk`` positions: the 262k-row matrix product stays efficient while the forward passes can
    stay small (little padding). Sums log p per (item, choice) and reports finished items."""

    def __init__(self, base, head, planned: list[_Item], bar, chunk: int):
        self.base, self.head, self.bar, self.chunk = base, head, bar, chunk
        sizes = [len(p.encoded) for p in planned]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self.flat = np.zeros(int(self.offsets[-1]))
        self.item_of = np.repeat(np.arange(len(planned)), sizes)
        self.left = np.array([sum(len(cont) for _, cont in p.encoded) for p in planned])
        bar.update(int((self.left == 0).sum()))
        self.states, self.targets, self.owners, self.pending = [], [], [], 0

    def add(self, hidden: torch.Tensor, spans: list[tuple[int, int, list[int], int]]) -> None:
        """spans: (row of ``hidden``, column predicting the first token, tokens, request index)."""
        rows, cols, targets, owners = [], [], [], []
        for row, first, cont, request in spans:
            rows += [row] * len(cont)
            cols += range(first, first + len(cont))
            targets += cont
            owners += [request] * len(cont)
        device = hidden.device
        self.states.append(hidden[torch.tensor(rows, device=device),
                                  torch.tensor(cols, device=device)])
        self.targets.append(torch.tensor(targets, device=device))
        self.owners += owners
        self.pending += len(owners)
        if self.pending >= self.chunk:
            self.flush(self.pending - self.pending % self.chunk)

    def flush(self, n: int | None = None) -> None:
        """Score the first ``n`` pending positions (all by default)."""
        if not self.pending:
            return
        states, targets = torch.cat(self.states), torch.cat(self.targets)
        n = self.pending if n is None else n
        picked = _picked_logprobs(self.base, self.head, states[:n],
                                  targets[:n]).double().cpu().numpy()
        owners = np.array(self.owners[:n])
        np.add.at(self.flat, owners, picked)
        items = self.item_of[owners]
        before = self.left[np.unique(items)] > 0
        np.subtract.at(self.left, items, 1)
        self.bar.update(int(before.sum() - (self.left[np.unique(items)] > 0).sum()))
        self.states, self.targets = [states[n:]], [targets[n:]]
        self.owners, self.pending = self.owners[n:], self.pending - n

    def scores(self) -> list[np.ndarray]:
        self.flush()
        return [self.flat[a:b] for a, b in zip(self.offsets[:-1], self.offsets[1:])]


def _run_full(decoder, items_full: list[_Item], offsets, budget: int, pad: int, device,
              head: _Head):
    """Each choice of these items as its own sequence: sorted by length, right-padded, no mask."""
    requests = [(offsets[p.index] + c, ctx + cont, len(ctx) - 1, cont)
                for p in items_full for c, (ctx, cont) in enumerate(p.encoded)]
    requests.sort(key=lambda r: -len(r[1]))
    start = 0
    while start < len(requests):
        width = len(requests[start][1])
        stop = start + max(1, budget // width)
        batch, start = requests[start:stop], stop
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        for row, (_, seq, _, _) in enumerate(batch):
            ids[row, :len(seq)] = torch.tensor(seq)
        hidden = decoder(input_ids=ids.to(device), use_cache=False).last_hidden_state
        head.add(hidden, [(row, first, cont, request)
                          for row, (request, _, first, cont) in enumerate(batch)])


def _prefix_groups(items_prefix: list[_Item], budget: int) -> list[list[_Item]]:
    """Items sorted by prefix length, grouped so that the prefixes (items x longest prefix), the
    tails (rows x longest tail) and the expanded cache (rows x (prefix + tail)) fit the budget."""
    order = sorted(items_prefix, key=lambda p: (-p.n_shared, -max(len(t) for t in p.tails)))
    groups, group, width_p, width_t, rows = [], [], 0, 0, 0
    for p in order:
        wp, wt = max(width_p, p.n_shared), max(width_t, max(len(t) for t in p.tails))
        r = rows + len(p.tails)
        fits = ((len(group) + 1) * wp <= budget and r * wt <= budget
                and r * (wp + wt) <= CACHE_TOKENS_FACTOR * budget)
        if group and not fits:
            groups.append(group)
            group, wp, wt, r = [], p.n_shared, max(len(t) for t in p.tails), len(p.tails)
        group.append(p)
        width_p, width_t, rows = wp, wt, r
    if group:
        groups.append(group)
    return groups


def _run_prefix(decoder, config, items_prefix: list[_Item], offsets, budget: int, pad: int, device,
                head: _Head):
    """Per group of items: their shared prefixes in one left-padded pass that fills a KV cache,
    then all their choices' tails in one right-padded pass on that cache, repeated per choice.
    Left padding keeps each tail right after its own prefix in the cache, so sliding-window
    layers see the true distances; the pads are masked out (needed only when lengths differ)."""
    cache_kw = _cache_kwarg(decoder)
    for group in _prefix_groups(items_prefix, budget):
        lengths = [p.n_shared for p in group]
        width_p = max(lengths)
        ragged = min(lengths) != width_p
        ids = torch.full((len(group), width_p), pad, dtype=torch.long)
        positions = torch.zeros((len(group), width_p), dtype=torch.long)
        mask = torch.zeros((len(group), width_p), dtype=torch.long)
        for b, p in enumerate(group):
            n = p.n_shared
            ids[b, width_p - n:] = torch.tensor(p.encoded[0][0][:n])
            positions[b, width_p - n:] = torch.arange(n)
            mask[b, width_p - n:] = 1
        cache = _new_cache(config)
        masks = {"attention_mask": mask.to(device)} if ragged else {}
        decoder(input_ids=ids.to(device), position_ids=positions.to(device), use_cache=True,
                **masks, **{cache_kw: cache})
        spans, owners, tails = [], [], []
        for b, p in enumerate(group):
            for c, ((ctx, cont), tail) in enumerate(zip(p.encoded, p.tails)):
                spans.append((len(tails), len(ctx) - p.n_shared - 1, cont, offsets[p.index] + c))
                owners.append(b)
                tails.append(tail)
        cache.batch_select_indices(torch.tensor(owners, device=device))
        width_t = max(len(t) for t in tails)
        ids = torch.full((len(tails), width_t), pad, dtype=torch.long)
        positions = torch.empty((len(tails), width_t), dtype=torch.long)
        for row, (tail, b) in enumerate(zip(tails, owners)):
            ids[row, :len(tail)] = torch.tensor(tail)
            positions[row] = torch.arange(lengths[b], lengths[b] + width_t)
        if ragged:
            mask = torch.cat([mask[owners], torch.ones((len(tails), width_t), dtype=torch.long)],
                             dim=1)
            masks = {"attention_mask": mask.to(device)}
        hidden = decoder(input_ids=ids.to(device), position_ids=positions.to(device),
                         use_cache=True,
                         **masks, **{cache_kw: cache}).last_hidden_state
        del cache
        head.add(hidden, spans)


@torch.no_grad()
def batched_loglikelihoods(model, tokenizer, items: list[dict], batch_tokens: int | None = None,
                           prefix_reuse: bool | None = None, desc: str = "scoring",
                           show_progress_bar: bool = False) -> list[np.ndarray]:
    """Summed log p(choice | question) for every choice of every item, batched across items.

    batch_tokens: tokens per forward pass (rows x padded length); default by device
    (DEFAULT_BATCH_TOKENS). prefix_reuse: None (default) reuses an item's question prefix when
    that saves at least MIN_PREFIX_SAVING tokens; True / False force it on / off."""
    base, decoder, head = causal_lm_parts(model)
    device = next(model.parameters()).device
    budget = int(batch_tokens or DEFAULT_BATCH_TOKENS.get(device.type,
                                                          DEFAULT_BATCH_TOKENS["cuda"]))
    planned = _plan(tokenizer, items, prefix_reuse)
    pad = _pad_id(tokenizer)
    with tqdm(total=len(items), desc=desc, disable=not show_progress_bar) as bar:
        scorer = _Head(base, head, planned, bar, _logit_chunk(base, head))
        offsets = scorer.offsets
        _run_prefix(decoder, base.config, [p for p in planned if p.n_shared > 0], offsets, budget,
                    pad, device, scorer)
        _run_full(decoder, [p for p in planned if p.n_shared == 0 and p.encoded], offsets, budget,
                  pad, device, scorer)
        return scorer.scores()


def score_items(model, tokenizer, items: list[dict], desc: str = "scoring",
                show_progress_bar: bool = True, scorer=None, batch_tokens: int | None = None,
                prefix_reuse: bool | None = None) -> pd.DataFrame:
    """Per-item predictions: the choice picked by acc and acc_norm, and whether each is right.

    Batched across items (`batched_loglikelihoods`, with ``batch_tokens`` and ``prefix_reuse``)
    unless ``scorer`` names a one-item function such as `choice_loglikelihoods`."""
    was_training = model.training
    model.eval()
    try:
        if scorer is None:
            lls = batched_loglikelihoods(model, tokenizer, items, batch_tokens=batch_tokens,
                                         prefix_reuse=prefix_reuse, desc=desc,
                                         show_progress_bar=show_progress_bar)
        else:
            lls = [scorer(model, tokenizer, item["question"], item["choices"])
                   for item in tqdm(items, desc=desc, disable=not show_progress_bar)]
    finally:
        if was_training:
            model.train()
    rows = []
    for item, ll in zip(items, lls):
        lengths = np.array([float(len(c)) for c in item["choices"]])
        pred, pred_norm = int(np.argmax(ll)), int(np.argmax(ll / lengths))
        rows.append({"id": item["id"], "topic": item["topic"], "category": item.get("category", ""),
                     "answer": item["answer"], "pred": pred, "pred_norm": pred_norm,
                     "acc": int(pred == item["answer"]),
                     "acc_norm": int(pred_norm == item["answer"]),
                     "loglikelihoods": [round(float(x), 5) for x in ll],
                     **answer_likelihood(tokenizer, item, float(ll[item["answer"]]))})
    return pd.DataFrame(rows)


def context_of(item: dict) -> str:
    """The text a choice continues: the question and the item's delimiter (a chat turn's prompt
    has none: the assistant's answer follows its header, compass.training.chat)."""
    return item["question"] + item.get("delimiter", TARGET_DELIMITER)


def answer_likelihood(tokenizer, item: dict, loglikelihood: float) -> dict:
    """Per-token and per-character likelihood of an item's correct choice, from its summed
    log-probability: answer_tokens and answer_chars (what the sum covers: the continuation's
    tokens as `encode_pair` makes them, and its characters after the whitespace move), nll
    (nats per token) and bpc (bits per character)."""
    context = context_of(item)
    choice = item["choices"][item["answer"]]
    n_tokens = len(encode_pair(tokenizer, context, choice)[1])
    n_chars = len(split_pair(context, choice)[1])
    return {"answer_tokens": n_tokens, "answer_chars": n_chars,
            "nll": round(-loglikelihood / n_tokens, 5) if n_tokens else math.nan,
            "bpc": round(-loglikelihood / math.log(2) / n_chars, 5)}


def breakdown(predictions: pd.DataFrame, by: str = "topic") -> pd.DataFrame:
    """Accuracy per topic (tiny) or subject / category (paper)."""
    return (predictions.groupby(by)
            .agg(acc=("acc", "mean"), acc_norm=("acc_norm", "mean"), n=("acc", "size"))
            .reset_index())
