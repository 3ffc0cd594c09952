"""Runs every continual method over a simulated stream and records what each costs and scores.

One base model carries one trainable adapter; each method's adapter state lives in memory and is
loaded before that method acts, so six methods cost one model. Scores are cached by adapter
version, so an adapter that did not change is not scored twice.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from compass.continual import update as ecda
from compass.continual.drift import DriftMonitor
from compass.continual.recipes import RECIPES
from compass.evaluation import scoring
from compass.selection.compass_method import select_compass


@dataclass
class MethodState:
    name: str
    weights: dict  # adapter parameters
    version: str
    history: pd.DataFrame  # id, cluster, prompt, response: everything trained on so far
    reference_labels: np.ndarray
    reference_vectors: np.ndarray
    used_ids: set = field(default_factory=set)
    compute: dict = field(default_factory=lambda: {"updates": 0, "steps": 0, "tokens": 0, "seconds": 0.0})


def _examples(frame: pd.DataFrame) -> list[dict]:
    return frame[["prompt", "response"]].to_dict("records")


def select_for_window(pool, cfg, window_labels, history_labels, used_ids, budget, seed):
    """COMPASS against the new window: the window is the target usage, the history the
    existing training data; items used before are not picked again."""
    keep = ~pool.aux["id"].isin(used_ids).to_numpy()
    sub = replace(pool, aux=pool.aux[keep].reset_index(drop=True), aux_vectors=pool.aux_vectors[keep],
                  dev_labels=np.asarray(window_labels), train_labels=np.asarray(history_labels))
    sel_cfg = replace(cfg, sampling=replace(cfg.sampling, budget=budget))
    return select_compass(sub, sel_cfg, seed).manifest


def run(model, tokenizer, stream, pool, pairs_by_id: dict, initial_history: pd.DataFrame,
        dev_vectors: np.ndarray, window_assign, cfg, show_progress_bar: bool = True) -> dict:
    """``window_assign(window_frame) -> (labels, centred vectors)``; ``initial_history`` is the
    served adapter's training data (id, cluster, prompt, response)."""
    e = cfg.ecda
    init_lora = {n: (torch.zeros_like(p) if "lora_B" in n else p.detach().clone())
                 for n, p in ecda.trainable(model).items()}  # a fresh LoRA (B = 0)
    start_weights = ecda.snapshot(model)
    rng = np.random.default_rng(cfg.seed)
    ref_rows = rng.choice(len(dev_vectors), size=min(len(dev_vectors), e.window), replace=False)
    states = {m: MethodState(m, start_weights, "T0", initial_history.copy(), pool.dev_labels.copy(),
                             dev_vectors[ref_rows], set(initial_history["id"])) for m in e.methods}
    cache: dict[tuple[str, str], np.ndarray] = {}  # (adapter version, item set) -> correctness

    def score(state, items, key):
        cache_key = (state.version, key)
        if cache_key not in cache:
            ecda.restore(model, state.weights)
            frame = scoring.score_items(model, tokenizer, items, show_progress_bar=False)
            cache[cache_key] = frame["acc"].to_numpy()
        return cache[cache_key]

    drift_rows, acc_rows, events = [], [], []
    windows = [window_assign(step.window) for step in stream]
    bar = tqdm(total=len(stream) * len(e.methods), desc="continual", disable=not show_progress_bar)
    for step, (labels, vectors) in zip(stream, windows):
        for name in e.methods:
            state, recipe = states[name], RECIPES[name]
            monitor = DriftMonitor(state.reference_labels, state.reference_vectors, pool.k,
                                   delta=e.delta, alpha=e.alpha, trigger_on=e.trigger_on,
                                   n_permutations=e.n_permutations, seed=cfg.seed + step.t)
            check = monitor.check(labels, vectors)
            drift_rows.append({"t": step.t, "method": name, **check})
            wants = step.t > 0 and recipe["update"] and (check["trigger"] or not recipe["on_trigger"])
            if wants:
                _update(model, tokenizer, state, recipe, step, labels, vectors, pool, pairs_by_id,
                        cfg, events, init_lora)
            for j in range(step.t + 1):
                correct = score(state, stream[j].test, f"test{j}")
                acc_rows.append({"t": step.t, "eval_step": j, "method": name,
                                 "accuracy": float(correct.mean()), "n": len(correct),
                                 "version": state.version})
            bar.update(1)
    bar.close()
    ecda.restore(model, states[e.methods[0]].weights)
    return {"drift": pd.DataFrame(drift_rows), "accuracy": pd.DataFrame(acc_rows),
            "events": pd.DataFrame(events), "states": states, "per_item": cache,
            "init_lora": init_lora}


def _accuracy(model, tokenizer, items) -> float:
    """Accuracy of the weights the model holds now (no cache: a candidate is being judged)."""
    return float(scoring.score_items(model, tokenizer, items, show_progress_bar=False)["acc"].mean())


def _update(model, tokenizer, state, recipe, step, labels, vectors, pool, pairs_by_id, cfg,
            events, init_lora):
    e, t_cfg = cfg.ecda, cfg.train
    manifest = select_for_window(pool, cfg, labels, state.history["cluster"].to_numpy(),
                                 state.used_ids, e.budget, cfg.seed + step.t)
    new = pd.DataFrame([{**pairs_by_id[i], "cluster": c} for i, c in zip(manifest["id"], manifest["cluster"])])
    ecda.restore(model, state.weights)
    fisher = anchor = replay = None
    if recipe["ewc"]:
        fisher = ecda.fisher_diagonal(model, tokenizer, _examples(state.history), t_cfg.max_length,
                                      t_cfg.batch_size, e.fisher_batches, cfg.seed)
        anchor = ecda.snapshot(model)
    if recipe["replay"] == "stratified":
        replay = _examples(ecda.stratified_replay(state.history, e.replay_fraction, cfg.seed + step.t))
    elif recipe["replay"] == "random":
        replay = _examples(ecda.random_replay(state.history, e.replay_fraction, cfg.seed + step.t))
    if recipe["retrain"]:
        data = _examples(pd.concat([state.history, new]))
        steps = e.update_steps * (state.compute["updates"] + 2)
    else:
        data, steps = _examples(new), e.update_steps

    def do_update():
        if recipe["retrain"]:
            ecda.restore(model, init_lora)
        return ecda.update(model, tokenizer, data, steps, t_cfg.learning_rate, t_cfg.batch_size,
                           t_cfg.max_length, cfg.seed + step.t, fisher=fisher, anchor=anchor,
                           lambda_ewc=e.lambda_ewc, replay=replay, beta=e.beta_replay)

    accepted, event, result = ecda.guarded_update(
        model, do_update, lambda: _accuracy(model, tokenizer, step.validation), e.rollback_tolerance)
    events.append({"t": step.t, "method": state.name, **event,
                   "new_items": len(new), "steps": result.steps if result else 0})
    if result is not None:
        state.compute["updates"] += 1
        state.compute["steps"] += result.steps
        state.compute["tokens"] += result.tokens
        state.compute["seconds"] += result.seconds
    if accepted:
        state.weights = ecda.snapshot(model)
        state.version = f"{state.name}@T{step.t}"
        state.history = pd.concat([state.history, new], ignore_index=True)
        state.used_ids |= set(new["id"])
        state.reference_labels, state.reference_vectors = np.asarray(labels), np.asarray(vectors)
