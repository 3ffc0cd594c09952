"""COMPASS-ECDA: drift-triggered continual updates of a language adapter.

Update rule (as the paper is described in the README's sources; arXiv 2604.20720): L = L_task + lambda * L_EWC + beta * L_replay, with
- L_EWC = sum_i F_i (theta_i - theta*_i)^2, a diagonal (empirical) Fisher over the adapter's
  parameters computed on the data it was trained on, anchored at its weights before the update;
- L_replay the completion loss on a replay buffer of ``replay_fraction`` of the historical training
  data, stratified by target cluster ("distribution-anchored");
- new training data selected by COMPASS against the new window.
Baselines behind the same interface: no update, naive fine-tuning, EWC only, random rehearsal
(same buffer size, not stratified) and full retraining on everything so far.
An update whose loss goes non-finite, whose validation accuracy falls more than a tolerance
below the adapter it would replace, or whose mean validation NLL rises more than a tolerance above
it, is rolled back; the served adapter is replaced in one rename.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from compass.selection.allocation import largest_remainder
from compass.training.adapters import (NonFiniteLossError, batch_of, completion_loss, encode_example,
                                       packing_supported)


def trainable(model) -> dict[str, torch.nn.Parameter]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def snapshot(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in trainable(model).items()}


def restore(model, state: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for n, p in trainable(model).items():
            p.copy_(state[n])


def fisher_diagonal(model, tokenizer, examples: list[dict], max_length: int, batch_size: int,
                    n_batches: int, seed: int, packing: bool = False) -> dict[str, torch.Tensor]:
    """Empirical diagonal Fisher: mean squared gradient of the completion loss per parameter
    (``packing``: batches packed as in training, the same gradients at fewer tokens)."""
    params = trainable(model)
    fisher = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in params.items()}
    encoded = [encode_example(tokenizer, e["prompt"], e["response"], max_length) for e in examples]
    device = next(model.parameters()).device
    n_batches = max(1, min(n_batches, math.ceil(len(encoded) / batch_size)))
    packed = packing and packing_supported(model, encoded)
    for b in range(n_batches):
        batch = batch_of(encoded, b, batch_size, seed, tokenizer.pad_token_id, device, packed=packed)
        model.zero_grad(set_to_none=True)
        loss, _ = completion_loss(model, batch)
        loss.backward()
        for n, p in params.items():
            if p.grad is not None:
                fisher[n] += p.grad.detach().float() ** 2 / n_batches
    model.zero_grad(set_to_none=True)
    return fisher


def ewc_penalty(model, fisher: dict[str, torch.Tensor], anchor: dict[str, torch.Tensor]) -> torch.Tensor:
    """sum_i F_i (theta_i - theta*_i)^2 over the adapter's parameters (0 at the anchor)."""
    total = torch.zeros((), dtype=torch.float32)
    for n, p in trainable(model).items():
        total = total + (fisher[n] * (p.float() - anchor[n].float()) ** 2).sum()
    return total


def stratified_replay(history: pd.DataFrame, fraction: float, seed: int) -> pd.DataFrame:
    """``fraction`` of the history (at least one item), allocated over target clusters in
    proportion to their share of the history (largest remainder), random within a cluster."""
    size = max(1, int(round(fraction * len(history))))
    counts = history["cluster"].value_counts().sort_index()
    alloc = largest_remainder(counts.to_numpy(float), size)
    rng = np.random.default_rng([seed, 1])
    parts = [history[history["cluster"] == c].sample(n=int(a), random_state=rng)
             for c, a in zip(counts.index, alloc) if a > 0]
    return pd.concat(parts).sort_values("id").reset_index(drop=True)


def random_replay(history: pd.DataFrame, fraction: float, seed: int) -> pd.DataFrame:
    """The same buffer size as :func:`stratified_replay`, drawn uniformly."""
    size = max(1, int(round(fraction * len(history))))
    return history.sample(n=size, random_state=np.random.default_rng([seed, 2])).reset_index(drop=True)


@dataclass
class UpdateResult:
    steps: int
    tokens: int
    seconds: float
    losses: list[float] = field(default_factory=list)


@contextlib.contextmanager
def own_rng(seed: int, device: torch.device):
    """Run the block on torch generators seeded by ``seed`` and give the caller's back after.

    Why: LoRA dropout draws from torch's global generator, so without this an update's result
    would depend on every update (of every method) that ran before it in the process, and the
    update would shift the random state of whatever runs after it."""
    devices = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.default_generator.manual_seed(seed)
        if devices:
            with torch.cuda.device(devices[0]):
                torch.cuda.manual_seed(seed)
        yield


def update(model, tokenizer, new_examples: list[dict], steps: int, lr: float, batch_size: int,
           max_length: int, seed: int, fisher=None, anchor=None, lambda_ewc: float = 0.0,
           replay: list[dict] | None = None, beta: float = 0.0, packing: bool = False) -> UpdateResult:
    """Optimise L_task (+ lambda L_EWC + beta L_replay) for ``steps`` steps; raises
    NonFiniteLossError when the loss is NaN/inf (the caller rolls back). Deterministic given
    ``seed``: batches and dropout masks come from it alone. ``packing``: batches packed as in
    adapter training (:func:`compass.training.adapters.collate_packed`)."""
    device = next(model.parameters()).device
    encoded = [encode_example(tokenizer, e["prompt"], e["response"], max_length) for e in new_examples]
    replay_enc = [encode_example(tokenizer, e["prompt"], e["response"], max_length)
                  for e in (replay or [])]
    params = list(trainable(model).values())
    optimizer = torch.optim.AdamW(params, lr=lr)
    packed = packing and packing_supported(model, encoded + replay_enc)
    model.train()
    result = UpdateResult(0, 0, 0.0)
    start = time.perf_counter()
    with own_rng(seed, device):
        for step in range(steps):
            batch = batch_of(encoded, step, batch_size, seed, tokenizer.pad_token_id, device,
                             packed=packed)
            loss, _ = completion_loss(model, batch)
            result.tokens += int(batch["attention_mask"].sum())
            if fisher is not None and lambda_ewc > 0:
                loss = loss + lambda_ewc * ewc_penalty(model, fisher, anchor)
            if replay_enc and beta > 0:
                rbatch = batch_of(replay_enc, step, min(batch_size, len(replay_enc)), seed + 7,
                                  tokenizer.pad_token_id, device, packed=packed)
                rloss, _ = completion_loss(model, rbatch)
                loss = loss + beta * rloss
                result.tokens += int(rbatch["attention_mask"].sum())
            if not torch.isfinite(loss):
                model.eval()
                raise NonFiniteLossError(f"update loss is {loss.item()} at step {step}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            result.losses.append(float(loss.item()))
            result.steps += 1
    model.eval()
    result.seconds = time.perf_counter() - start
    return result


def _scores(value) -> dict[str, float]:
    """A validation result as {"acc", "nll"}: a plain number is an accuracy (no NLL measured)."""
    if isinstance(value, dict):
        return {"acc": float(value["acc"]), "nll": float(value.get("nll", math.nan))}
    return {"acc": float(value), "nll": math.nan}


def guarded_update(model, do_update, validate, tolerance: float, old_score=None,
                   nll_tolerance: float | None = None):
    """Apply ``do_update()``; keep it only if the loss stayed finite and the candidate passes
    both validation rules against the adapter it replaces:

    - accuracy: ``validate()``'s accuracy did not drop more than ``tolerance`` below the old one;
    - likelihood (when ``nll_tolerance`` is given and the old NLL is finite): the mean
      validation NLL (nats/token) did not rise more than ``nll_tolerance`` above the old one.
      Why: at near-chance accuracy on a handful of validation items the accuracy rule rarely
      sees a regression; the NLL of the correct answers moves with every item.

    ``validate()`` returns the accuracy (a number) or ``{"acc": ..., "nll": ...}``. ``old_score``
    (same forms) is the replaced adapter's result when the caller already has it (the runner
    caches it by adapter version); otherwise ``validate()`` measures it first.
    Returns (accepted, event dict, update result or None); the event names the rule(s) that
    fired (``rule``: "accuracy", "nll", "accuracy+nll", "non_finite_loss" or "")."""
    before = snapshot(model)
    old = _scores(validate() if old_score is None else old_score)
    base = {"old_val": old["acc"], "old_nll": old["nll"]}
    try:
        result = do_update()
    except NonFiniteLossError as err:
        restore(model, before)
        return False, {"event": "rolled_back", "rule": "non_finite_loss",
                       "reason": f"non-finite loss ({err})", **base,
                       "new_val": math.nan, "new_nll": math.nan}, None
    new = _scores(validate())
    scores = {**base, "new_val": new["acc"], "new_nll": new["nll"]}
    fired = []
    if not np.isfinite(new["acc"]) or new["acc"] < old["acc"] - tolerance:
        fired.append("accuracy")
    if nll_tolerance is not None and np.isfinite(old["nll"]) \
            and not new["nll"] <= old["nll"] + nll_tolerance:  # a NaN candidate NLL fails too
        fired.append("nll")
    if fired:
        restore(model, before)
        reasons = {"accuracy": "validation accuracy dropped", "nll": "validation NLL rose"}
        return False, {"event": "rolled_back", "rule": "+".join(fired),
                       "reason": "; ".join(reasons[r] for r in fired), **scores}, result
    return True, {"event": "accepted", "rule": "", "reason": "", **scores}, result
