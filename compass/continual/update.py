"""COMPASS-ECDA: drift-triggered continual updates of a language adapter.

Update rule (as the paper is described in the README's sources; arXiv 2604.20720):
L = L_task + lambda * L_EWC + beta * L_replay, with
- L_EWC the Laplace approximation of what the adapter learned: (1/2) N_old sum_i F_i
  (theta_i - theta*_i)^2, with F the diagonal empirical Fisher, the mean over examples of the old
  data of each example's squared gradient of its log-likelihood (:func:`fisher_diagonal`), and
  N_old the number of those examples, anchored at the adapter's weights before the update. The
  task loss is a mean over answer tokens, so the term enters divided by the new data's answer
  tokens: lambda = 1 is the Bayesian posterior of the old data, the paper's lambda = 2 doubles it
  (:func:`ewc_weight`). Why so: the earlier version squared the gradient of a batch-mean loss and
  added lambda * sum F (theta - theta*)^2 to a token-mean loss; its gradient was ~1e-5 of the task
  gradient, so `ewc` equalled `naive`. Each update logs the ratio of the EWC gradient to the task
  gradient (:class:`UpdateResult`).
- L_replay the completion loss on a replay buffer of ``replay_fraction`` of the historical training
  data, stratified by target cluster ("distribution-anchored");
- new training data selected by COMPASS against the new window.
Baselines behind the same interface: no update, naive fine-tuning, EWC only, random rehearsal
(same buffer size, not stratified) and full retraining (a fresh LoRA initialisation trained for
train.steps on everything so far: :func:`fresh_lora`).
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
from compass.training.adapters import (NonFiniteLossError, batch_of, collate, completion_loss,
                                       encode_example, packing_supported)


def trainable(model) -> dict[str, torch.nn.Parameter]:
    """The parameters an update trains (the adapter's, by name): what EWC, snapshots and rollback
    act on."""
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def snapshot(model) -> dict[str, torch.Tensor]:
    """Detached copies of the trainable parameters: what :func:`restore` rolls back to."""
    return {n: p.detach().clone() for n, p in trainable(model).items()}


def restore(model, state: dict[str, torch.Tensor]) -> None:
    """Copy ``state`` (from :func:`snapshot`) back into the trainable parameters, in place."""
    with torch.no_grad():
        for n, p in trainable(model).items():
            p.copy_(state[n])


@dataclass
class Fisher:
    """The diagonal empirical Fisher of an adapter on its training data."""

    values: dict[str, torch.Tensor]  # mean over examples of the squared per-example gradient
    n_data: int  # examples of the data it stands for (N_old of the Laplace approximation)


def fisher_diagonal(model, tokenizer, examples: list[dict], max_length: int, n_examples: int,
                    seed: int, turn=None) -> Fisher:
    """Empirical diagonal Fisher: over ``n_examples`` of ``examples`` (a seeded sample), the mean
    of each example's squared gradient of its log-likelihood (the sum over its answer tokens),
    one backward pass per example: the squared gradient of a batch mean is not a Fisher (it
    shrinks with the batch and vanishes where the examples' gradients cancel)."""
    params = trainable(model)
    fisher = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in params.items()}
    rows = np.random.default_rng([seed, 11]).permutation(len(examples))[:max(1, n_examples)]
    device = next(model.parameters()).device
    for i in rows:
        e = examples[int(i)]
        batch = {k: v.to(device) for k, v in collate(
            [encode_example(tokenizer, e["prompt"], e["response"], max_length, turn)],
            tokenizer.pad_token_id).items()}
        model.zero_grad(set_to_none=True)
        loss, n_tokens = completion_loss(model, batch)
        (loss * n_tokens).backward()  # the example's negative log-likelihood
        for n, p in params.items():
            if p.grad is not None:
                fisher[n] += p.grad.detach().float() ** 2 / len(rows)
    model.zero_grad(set_to_none=True)
    return Fisher(fisher, len(examples))


def ewc_weight(lambda_ewc: float, fisher: Fisher, new_tokens: int) -> float:
    """The factor of sum F (theta - theta*)^2 beside a token-mean task loss: lambda / 2 x N_old /
    (answer tokens of the new data), the Laplace approximation on the task loss's scale."""
    return lambda_ewc / 2.0 * fisher.n_data / max(1, new_tokens)


def fresh_lora(model, seed: int) -> dict[str, torch.Tensor]:
    """A fresh LoRA initialisation of the model's adapter by peft's own initialiser (A
    Kaiming-uniform, B zero), seeded: the starting point of full retraining. The model's weights
    are left as they were."""
    from peft.tuners.lora import LoraLayer

    before = snapshot(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, LoraLayer):
                    for name in list(module.lora_A.keys()):
                        module.reset_lora_parameters(name, True)
    fresh = snapshot(model)
    restore(model, before)
    return fresh


def ewc_penalty(model, fisher: dict[str, torch.Tensor],
                anchor: dict[str, torch.Tensor]) -> torch.Tensor:
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
    return history.sample(n=size,
                          random_state=np.random.default_rng([seed, 2])).reset_index(drop=True)


@dataclass
class UpdateResult:
    """What one update spent (optimizer steps, tokens, seconds) with its losses and, under EWC, the
    ratio of the EWC gradient to the task gradient per step."""
    steps: int
    tokens: int
    seconds: float
    losses: list[float] = field(default_factory=list)
    ewc_ratios: list[float] = field(default_factory=list)  # |EWC gradient| / |task gradient|


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
           max_length: int, seed: int, fisher: Fisher | None = None, anchor=None,
           lambda_ewc: float = 0.0, replay: list[dict] | None = None, beta: float = 0.0,
           packing: bool = False, turn=None) -> UpdateResult:
    """Optimise L_task (+ lambda L_EWC + beta L_replay) for ``steps`` steps; raises
    NonFiniteLossError when the loss is NaN/inf (the caller rolls back). Deterministic given
    ``seed``: batches and dropout masks come from it alone. ``packing``: batches packed as in
    adapter training (:func:`compass.training.adapters.collate_packed`). The EWC term's gradient,
    2 w F (theta - theta*) with w = :func:`ewc_weight`, is added to the task gradient after the
    backward pass, and the ratio of the two norms is logged per step. ``turn``: an instruct
    model's chat template (compass.training.chat), as in adapter training."""
    device = next(model.parameters()).device
    encoded = [encode_example(tokenizer, e["prompt"], e["response"], max_length, turn)
               for e in new_examples]
    replay_enc = [encode_example(tokenizer, e["prompt"], e["response"], max_length, turn)
                  for e in (replay or [])]
    named = trainable(model)
    params = list(named.values())
    optimizer = torch.optim.AdamW(params, lr=lr)
    use_ewc = fisher is not None and lambda_ewc > 0
    weight = ewc_weight(lambda_ewc, fisher,
                        sum(sum(t != -100 for t in e["labels"]) for e in encoded)) \
        if use_ewc else 0.0
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
            if use_ewc:
                with torch.no_grad():
                    task = torch.sqrt(sum((p.grad.float() ** 2).sum() for p in params
                                          if p.grad is not None))
                    ewc_sq = torch.zeros(())
                    for n, p in named.items():
                        grad = 2.0 * weight * fisher.values[n] * (p.float() - anchor[n].float())
                        p.grad = grad.to(p.dtype) if p.grad is None else p.grad + grad.to(p.dtype)
                        ewc_sq += (grad ** 2).sum()
                    result.ewc_ratios.append(float(torch.sqrt(ewc_sq) / max(float(task), 1e-30)))
                    loss = loss + weight * ewc_penalty(model, fisher.values, anchor)
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
    fired (``rule``: "accuracy", "nll", "accuracy+nll", "non_finite_loss", "non_finite_weights"
    or ""). Non-finite loss or weights roll back whatever the tolerances (an unguarded method
    passes infinite ones)."""
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
    if not all(bool(torch.isfinite(p).all()) for p in trainable(model).values()):
        restore(model, before)  # a numerical failure, whatever the rules (even an unguarded method)
        return False, {"event": "rolled_back", "rule": "non_finite_weights",
                       "reason": "non-finite weights after the update", **base,
                       "new_val": math.nan, "new_nll": math.nan}, result
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
