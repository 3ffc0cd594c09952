"""Multiple-choice accuracy by log-likelihood, with lm-eval's `multiple_choice` semantics.

For each item: context = question + "\\n", continuation = choice; lm-eval moves the context's
trailing whitespace into the continuation and takes the continuation's tokens from the tokenised
whole, and so do we. acc = argmax of the summed log-probabilities, acc_norm = argmax of the sum
divided by the choice's length in characters. The question prefix is run once per item and its
KV cache reused for all choices, which are scored together in one batch; the output layer runs
only at the positions that predict a continuation token.
"""
from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from compass.training.adapters import causal_lm_parts, output_logits

TARGET_DELIMITER = "\n"


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """lm-eval's causal `_encode_pair`: trailing whitespace moves to the continuation."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = tokenizer(context + continuation, add_special_tokens=True)["input_ids"]
    ctx = tokenizer(context, add_special_tokens=True)["input_ids"]
    return ctx, whole[len(ctx):]


@torch.no_grad()
def choice_loglikelihoods(model, tokenizer, question: str, choices: list[str]) -> np.ndarray:
    """Summed log p(choice | question) for each choice, reusing the question's KV cache."""
    base, decoder, head = causal_lm_parts(model)
    device = next(model.parameters()).device
    encoded = [encode_pair(tokenizer, question + TARGET_DELIMITER, c) for c in choices]
    # tokenisation of context + continuation can merge across the boundary, so contexts may
    # differ between choices; share the cache over the longest common context prefix
    contexts = [ctx for ctx, _ in encoded]
    shared = contexts[0]
    for ctx in contexts[1:]:
        n = 0
        while n < min(len(shared), len(ctx)) and shared[n] == ctx[n]:
            n += 1
        shared = shared[:n]
    n_shared = len(shared) - 1  # keep one token to produce the first prediction
    tails = [ctx[n_shared:] + cont for ctx, cont in encoded]
    cache = None
    if n_shared > 0:
        out = decoder(input_ids=torch.tensor([shared[:n_shared]], device=device), use_cache=True)
        cache = out.cache
    width = max(len(t) for t in tails)
    ids = torch.full((len(tails), width), tokenizer.pad_token_id, dtype=torch.long, device=device)
    for row, tail in enumerate(tails):
        ids[row, :len(tail)] = torch.tensor(tail, device=device)
    if cache is not None:
        cache = copy.deepcopy(cache)
        cache.batch_repeat_interleave(len(tails))
    positions = torch.arange(n_shared, n_shared + width, device=device)
    hidden = decoder(input_ids=ids, cache=cache, use_cache=cache is not None,
                     position_ids=positions.unsqueeze(0).expand(len(tails), -1)).last_hidden_state
    scores = np.zeros(len(choices))
    rows, cols, targets = [], [], []
    for row, ((ctx, cont), tail) in enumerate(zip(encoded, tails)):
        first = len(ctx) - n_shared - 1  # position predicting the first continuation token
        for j, token in enumerate(cont):
            rows.append(row)
            cols.append(first + j)
            targets.append(token)
    logp = torch.log_softmax(output_logits(base, head, hidden[torch.tensor(rows), torch.tensor(cols)])
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


def score_items(model, tokenizer, items: list[dict], desc: str = "scoring",
                show_progress_bar: bool = True, scorer=choice_loglikelihoods) -> pd.DataFrame:
    """Per-item predictions: the choice picked by acc and acc_norm, and whether each is right."""
    was_training = model.training
    model.eval()
    rows = []
    for item in tqdm(items, desc=desc, disable=not show_progress_bar):
        ll = scorer(model, tokenizer, item["question"], item["choices"])
        lengths = np.array([float(len(c)) for c in item["choices"]])
        pred, pred_norm = int(np.argmax(ll)), int(np.argmax(ll / lengths))
        rows.append({"id": item["id"], "topic": item["topic"], "category": item.get("category", ""),
                     "answer": item["answer"], "pred": pred, "pred_norm": pred_norm,
                     "acc": int(pred == item["answer"]), "acc_norm": int(pred_norm == item["answer"]),
                     "loglikelihoods": [round(float(x), 5) for x in ll]})
    if was_training:
        model.train()
    return pd.DataFrame(rows)


def breakdown(predictions: pd.DataFrame, by: str = "topic") -> pd.DataFrame:
    """Accuracy per topic (tiny) or subject / category (paper)."""
    return (predictions.groupby(by)
            .agg(acc=("acc", "mean"), acc_norm=("acc_norm", "mean"), n=("acc", "size"))
            .reset_index())
