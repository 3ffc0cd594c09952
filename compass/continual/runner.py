"""Runs every continual method over a simulated stream and records what each costs and scores.

One base model carries one trainable adapter; each method's adapter state lives in memory and is
loaded before that method acts, so six methods cost one model.

Why the caches: most of the stage's time is scoring, and at a step several methods often serve
the same adapter version (all of them serve T0 until they accept an update). Everything that
depends only on the served version (and the step) is therefore computed once per version:
per-item correctness (test and validation items alike), the drift check (the reference moves
with the version; a calibrated threshold is the permutation threshold of reference and window),
the COMPASS selection (history and used ids move with the version) and the Fisher (weights and
history). ``run(..., cache=False)`` recomputes all of it every time; the tests check both paths
give the same tables.

The rollback guard judges every update on the step's validation items by accuracy and by the
mean NLL of the correct answers (both from the same scoring pass). To show it can act, one
*planted* bad update (``ecda.planted_regression_at``) is tried on ECDA's served adapter after the
methods acted at that step: see :func:`plant_regression`. It is never served nor charged.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from compass.continual import update as ecda
from compass.continual.drift import DriftMonitor
from compass.continual.recipes import RECIPES
from compass.evaluation import scoring
from compass.training import chat
from compass.selection.compass_method import select_compass


@dataclass
class MethodState:
    """One method's state along the stream: the adapter it serves, everything it trained on, the
    drift reference it compares windows with, and the compute it has spent."""
    name: str
    weights: dict  # adapter parameters
    version: str
    history: pd.DataFrame  # id, cluster, prompt, response: everything trained on so far
    reference_labels: np.ndarray
    reference_vectors: np.ndarray
    used_ids: set = field(default_factory=set)
    compute: dict = field(default_factory=lambda: {"updates": 0, "steps": 0, "tokens": 0,
                                                   "seconds": 0.0})


class Memo:
    """Values computed once per key. ``enabled=False`` recomputes every time: the reference path
    that shows the cache changes nothing."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.values: dict = {}

    def get(self, key, compute: Callable[[], Any]):
        """The value for ``key``; ``compute`` runs only when it is missing (or the memo is off)."""
        if not self.enabled or key not in self.values:
            self.values[key] = compute()
        return self.values[key]


class ItemScores:
    """Correctness (0/1, lm-eval ``acc``) and NLL of adapter versions on multiple-choice items.

    Each (version, item id) is scored once: an unchanged adapter is never scored again on an item
    it has seen, whichever step's test or validation set the item came with, and all that a
    version still lacks is scored in one pass. The same pass gives each item's NLL (nats/token of
    its correct choice, :func:`compass.evaluation.scoring.answer_likelihood`), kept next to the
    correctness at no extra cost. Item ids name items (the data stage's ids are unique;
    :func:`check_item_ids` guards it). ``per_set`` keeps (version, set key) -> correctness array
    for the tables, ``per_set_nll`` the NLL array of the same items.
    """

    def __init__(self, model, tokenizer, cache: bool = True, turn=None):
        self.model, self.tokenizer, self.cache, self.turn = model, tokenizer, cache, turn
        self.by_item: dict[tuple[str, str], int] = {}
        self.nll_by_item: dict[tuple[str, str], float] = {}
        self.per_set: dict[tuple[str, str], np.ndarray] = {}
        self.per_set_nll: dict[tuple[str, str], np.ndarray] = {}
        self.items_scored = 0
        self._candidate: dict[str, tuple[int, float]] = {}

    def _score(self, items: list[dict]) -> dict[str, tuple[int, float]]:
        """(correctness, NLL) of the weights the model holds now on ``items``, by item id (NLL is
        NaN where the scorer reports none)."""
        if not items:
            return {}
        frame = scoring.score_items(self.model, self.tokenizer, chat.for_scoring(self.turn, items),
                                    show_progress_bar=False)
        self.items_scored += len(items)
        nll = frame["nll"] if "nll" in frame else [math.nan] * len(frame)
        return {i: (int(a), float(n)) for i, a, n in zip(frame["id"], frame["acc"], nll)}

    def sets(self, version: str, weights: dict,
             needs: list[tuple[str, list[dict]]]) -> list[np.ndarray]:
        """Correctness of adapter ``version`` (parameters ``weights``) on each (key, items) of
        ``needs``, in order; items it was never scored on are scored together in one pass."""
        todo: dict[str, dict] = {}
        for _, items in needs:
            for item in items:
                if not self.cache or (version, item["id"]) not in self.by_item:
                    todo.setdefault(item["id"], item)
        if todo:
            ecda.restore(self.model, weights)
            for item_id, scored in self._score(list(todo.values())).items():
                self._keep(version, item_id, scored)
        out = []
        for key, items in needs:
            correct = np.array([self.by_item[(version, it["id"])] for it in items], dtype=np.int64)
            self.per_set[(version, key)] = correct
            self.per_set_nll[(version, key)] = np.array(
                [self.nll_by_item[(version, it["id"])] for it in items], dtype=np.float64)
            out.append(correct)
        return out

    def _keep(self, version: str, item_id: str, scored: tuple[int, float]) -> None:
        self.by_item[(version, item_id)], self.nll_by_item[(version, item_id)] = scored

    def summary(self, version: str, key: str) -> dict[str, float]:
        """{"acc", "nll"}: mean correctness and mean NLL of a scored set (:meth:`sets` first)."""
        return {"acc": float(self.per_set[(version, key)].mean()),
                "nll": _mean(self.per_set_nll[(version, key)])}

    def candidate(self, items: list[dict]) -> dict[str, float]:
        """{"acc", "nll"}: mean correctness and NLL of the weights the model holds now, an update
        being judged (not a version yet); its per-item results are kept for :meth:`adopt`
        should it be accepted."""
        self._candidate = self._score(items)
        return {"acc": float(np.mean([self._candidate[it["id"]][0] for it in items])),
                "nll": _mean([self._candidate[it["id"]][1] for it in items])}

    def candidate_accuracy(self, items: list[dict]) -> float:
        """Only the accuracy of :meth:`candidate`."""
        return self.candidate(items)["acc"]

    def adopt(self, version: str) -> None:
        """The judged candidate became ``version``: its validation items need no second pass."""
        if self.cache:
            for item_id, scored in self._candidate.items():
                self._keep(version, item_id, scored)
        self._candidate = {}

    def discard(self) -> None:
        """The judged candidate was not kept (or is never to be served): forget its results."""
        self._candidate = {}


def _mean(values) -> float:
    """Mean of the finite values (NaN if none): an item without answer tokens has no NLL."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else math.nan


def check_item_ids(stream) -> None:
    """Scores are cached by item id, so one id must name one item throughout the stream."""
    seen: dict[str, dict] = {}
    for step in stream:
        for item in [*step.validation, *step.test]:
            if seen.setdefault(item["id"], item) != item:
                raise ValueError(f"item id {item['id']!r} names two different items in the stream")


@dataclass
class Context:
    """What every method's turn needs: the model, the data, the settings and the caches."""
    model: Any
    tokenizer: Any
    pool: Any
    pairs_by_id: dict
    cfg: Any
    init_lora: dict
    scores: ItemScores
    checks: Memo  # (version, t) -> drift check
    selections: Memo  # (version, t) -> new training rows
    fishers: Memo  # version -> diagonal Fisher
    events: list = field(default_factory=list)
    turn: Any = None  # an instruct model's chat template (compass.training.chat), or None


def _examples(frame: pd.DataFrame) -> list[dict]:
    return frame[["prompt", "response"]].to_dict("records")


def select_for_window(pool, cfg, window_labels, history_labels, used_ids, budget, seed):
    """COMPASS against the new window: the window is the target usage, the history the
    existing training data; items used before are not picked again."""
    keep = ~pool.aux["id"].isin(used_ids).to_numpy()
    sub = replace(pool, aux=pool.aux[keep].reset_index(drop=True),
                  aux_vectors=pool.aux_vectors[keep], dev_labels=np.asarray(window_labels),
                  train_labels=np.asarray(history_labels))
    sel_cfg = replace(cfg, sampling=replace(cfg.sampling, budget=budget))
    return select_compass(sub, sel_cfg, seed).manifest


def run(model, tokenizer, stream, pool, pairs_by_id: dict, initial_history: pd.DataFrame,
        window_assign, cfg, show_progress_bar: bool = True, cache: bool = True,
        turn=None) -> dict:
    """``window_assign(window_frame) -> (labels, centred vectors)``; ``initial_history`` is the
    served adapter's training data (id, cluster, prompt, response). ``cache=False`` recomputes
    every score, drift check, selection and Fisher (same results, for tests)."""
    e = cfg.ecda
    check_item_ids(stream)
    init_lora = ecda.fresh_lora(model, cfg.seed)  # full retraining starts here
    start_weights = ecda.snapshot(model)
    windows = [window_assign(step.window) for step in stream]
    # the drift reference at deployment: usage at T0 (the T0 window), the same population the
    # later windows come from, so without a shift the monitor sees no drift from the population
    reference_labels, reference_vectors = windows[0]
    states = {m: MethodState(m, start_weights, "T0", initial_history.copy(),
                             np.asarray(reference_labels), np.asarray(reference_vectors),
                             set(initial_history["id"])) for m in e.methods}
    ctx = Context(model, tokenizer, pool, pairs_by_id, cfg, init_lora,
                  ItemScores(model, tokenizer, cache, turn), Memo(cache), Memo(cache), Memo(cache),
                  turn=turn)
    drift_rows, acc_rows = [], []
    planted_at, planted = e.planted_regression_at, None
    bar = tqdm(total=len(stream) * len(e.methods), desc="continual", disable=not show_progress_bar)
    for step, (labels, vectors) in zip(stream, windows):
        for name in e.methods:
            state = states[name]
            check = _drift_check(ctx, state, step, labels, vectors)
            drift_rows.append({"t": step.t, "method": name, **check})
            if wants_update(RECIPES[name], step.t, check["trigger"]):
                _update(ctx, state, RECIPES[name], step, labels, vectors)
            acc_rows += _accuracy_rows(ctx, state, stream, step.t)
            bar.update(1)
        if planted_at and step.t == planted_at and "ecda" in states:  # after every method acted
            planted = plant_regression(ctx, states["ecda"], step)
    bar.close()
    ecda.restore(model, states[e.methods[0]].weights)
    return {"drift": pd.DataFrame(drift_rows), "accuracy": pd.DataFrame(acc_rows),
            "events": pd.DataFrame(ctx.events), "states": states, "per_item": ctx.scores.per_set,
            "per_item_nll": ctx.scores.per_set_nll, "planted": planted,
            "init_lora": init_lora, "items_scored": ctx.scores.items_scored,
            "reference_labels": np.asarray(reference_labels)}


def wants_update(recipe: dict, t: int, triggered: bool) -> bool:
    """Updating methods act at every step after T0, except trigger-driven ones (ECDA), which act
    only where the drift monitor fired."""
    return t > 0 and recipe["update"] and (triggered or not recipe["on_trigger"])


def _drift_check(ctx: Context, state: MethodState, step, labels, vectors) -> dict:
    """The drift monitor's verdict on the window against the state's reference, which moves only
    with the version (so methods serving one version share one check). ``ecda.delta``: a fixed
    JS threshold, or calibrated: the permutation threshold of this reference and window."""
    e = ctx.cfg.ecda

    def check():
        monitor = DriftMonitor(state.reference_labels, state.reference_vectors, ctx.pool.k,
                               delta=None if e.delta == "calibrated" else float(e.delta),
                               false_alarm_rate=e.false_alarm_rate, alpha=e.alpha,
                               trigger_on=e.trigger_on, n_permutations=e.n_permutations,
                               seed=ctx.cfg.seed + step.t)
        return monitor.check(labels, vectors)

    return ctx.checks.get((state.version, step.t), check)


def _accuracy_rows(ctx: Context, state: MethodState, stream, t: int) -> list[dict]:
    """Accuracy of the served adapter on every test set so far (T0..Tt), in one pass for what is
    new."""
    needs = [(f"test{j}", stream[j].test) for j in range(t + 1)]
    scored = ctx.scores.sets(state.version, state.weights, needs)
    return [{"t": t, "eval_step": j, "method": state.name, "accuracy": float(correct.mean()),
             "nll": ctx.scores.summary(state.version, f"test{j}")["nll"],
             "n": len(correct), "version": state.version} for j, correct in enumerate(scored)]


def _new_rows(ctx: Context, state: MethodState, step, labels) -> pd.DataFrame:
    """An update's new training rows (``ecda.train_on``): COMPASS's selection for this window
    (history and used ids move with the version), or the window's own pairs (recent traffic, as
    logged)."""
    if ctx.cfg.ecda.train_on == "window":
        return step.window.assign(cluster=np.asarray(labels))[["id", "cluster", "prompt",
                                                               "response"]]

    def select():
        manifest = select_for_window(ctx.pool, ctx.cfg, labels, state.history["cluster"].to_numpy(),
                                     state.used_ids, ctx.cfg.ecda.budget, ctx.cfg.seed + step.t)
        return pd.DataFrame([{**ctx.pairs_by_id[i], "cluster": c}
                             for i, c in zip(manifest["id"], manifest["cluster"])])

    return ctx.selections.get((state.version, step.t), select)


def _fisher(ctx: Context, state: MethodState) -> dict:
    """Diagonal Fisher of the served adapter on its training history (both fixed by the version);
    the model must hold ``state.weights``."""
    t_cfg, e = ctx.cfg.train, ctx.cfg.ecda
    return ctx.fishers.get(state.version, lambda: ecda.fisher_diagonal(
        ctx.model, ctx.tokenizer, _examples(state.history), t_cfg.max_length, e.fisher_examples,
        ctx.cfg.seed, turn=ctx.turn))


def _update(ctx: Context, state: MethodState, recipe: dict, step, labels, vectors) -> None:
    """Train a candidate adapter per ``recipe``, keep it if it passes the rollback guard."""
    model, cfg = ctx.model, ctx.cfg
    e, t_cfg = cfg.ecda, cfg.train
    new = _new_rows(ctx, state, step, labels)
    old = _served_validation(ctx, state, step)
    ecda.restore(model, state.weights)
    fisher = anchor = replay = None
    if recipe["ewc"]:
        fisher, anchor = _fisher(ctx, state), state.weights
    if recipe["replay"] == "stratified":
        replay = _examples(ecda.stratified_replay(state.history, e.replay_fraction,
                                                  cfg.seed + step.t))
    elif recipe["replay"] == "random":
        replay = _examples(ecda.random_replay(state.history, e.replay_fraction, cfg.seed + step.t))
    if recipe["retrain"]:  # a fresh adapter trained as the first one was, on everything so far
        data = _examples(pd.concat([state.history, new]))
        steps = t_cfg.steps
    else:
        data, steps = _examples(new), e.update_steps

    def do_update():
        if recipe["retrain"]:
            ecda.restore(model, ctx.init_lora)
        lr = t_cfg.learning_rate if recipe["retrain"] or e.learning_rate is None \
            else e.learning_rate
        return ecda.update(model, ctx.tokenizer, data, steps, lr, t_cfg.batch_size,
                           t_cfg.max_length, cfg.seed + step.t, fisher=fisher, anchor=anchor,
                           lambda_ewc=e.lambda_ewc, replay=replay, beta=e.beta_replay,
                           packing=t_cfg.packing, turn=ctx.turn)

    guarded = recipe["guard"]  # unguarded methods serve what they trained (a non-finite loss aside)
    accepted, event, result = ecda.guarded_update(
        model, do_update, lambda: ctx.scores.candidate(step.validation),
        e.rollback_tolerance if guarded else math.inf, old_score=old,
        nll_tolerance=e.rollback_nll_tolerance if guarded else None)
    ctx.events.append({"t": step.t, "method": state.name, **event, "guarded": guarded,
                       "planted": False,
                       "new_items": len(new), "steps": result.steps if result else 0,
                       "ewc_grad_ratio": (float(np.mean(result.ewc_ratios))
                                          if result and result.ewc_ratios else math.nan)})
    if result is not None:
        _charge(state, result)
    if accepted:
        state.weights = ecda.snapshot(model)
        state.version = f"{state.name}@T{step.t}"
        ctx.scores.adopt(state.version)
        state.history = pd.concat([state.history, new], ignore_index=True)
        state.used_ids |= set(new["id"])
        state.reference_labels, state.reference_vectors = np.asarray(labels), np.asarray(vectors)


def _served_validation(ctx: Context, state: MethodState, step) -> dict[str, float]:
    """{"acc", "nll"} of the served adapter on the step's validation items (cached by version)."""
    ctx.scores.sets(state.version, state.weights, [(f"val{step.t}", step.validation)])
    return ctx.scores.summary(state.version, f"val{step.t}")


PLANTED_LR_FACTOR = 20  # the planted update's learning rate: train.learning_rate times this
PLANTED_STEP_FACTOR = 2  # and its optimizer steps: ecda.update_steps times this


def corrupt(window: pd.DataFrame, seed: int) -> list[dict]:
    """The planted update's training data: the window's prompts, every response replaced by one
    character (drawn by ``seed`` from the window's responses) repeated to the response's length;
    stands for a broken labelling or logging job. Why this corruption: it teaches every model,
    pretrained or random, to put its mass on one character after a prompt, so the correct
    answers' NLL rises whatever the model knew (shuffled responses or shuffled characters keep
    the language's character statistics, which a near-random model even profits from)."""
    rng = np.random.default_rng([seed, 7])
    chars = [c for c in "".join(window["response"]) if not c.isspace()] or ["x"]
    junk = chars[int(rng.integers(len(chars)))]
    return [{"prompt": p, "response": junk * max(1, len(r))}
            for p, r in zip(window["prompt"], window["response"])]


def plant_regression(ctx: Context, state: MethodState, step) -> dict:
    """Try one planted bad update on ``state``'s served adapter (corrupted data from the step's
    window, :data:`PLANTED_STEP_FACTOR` x the steps at :data:`PLANTED_LR_FACTOR` x the learning
    rate, seeded) through the same rollback guard as real updates, and never serve it: it is a
    check of the guard, not a method's result. It is not charged to the method's compute, its
    event row has ``planted: True`` and event ``planted_rolled_back`` (caught) or
    ``planted_not_caught``. Returns the event row, with ``weights_unchanged``: the served
    weights are bit-identical before and after."""
    model, cfg = ctx.model, ctx.cfg
    e, t_cfg = cfg.ecda, cfg.train
    old = _served_validation(ctx, state, step)
    ecda.restore(model, state.weights)
    before = ecda.snapshot(model)
    data = corrupt(step.window, cfg.seed + step.t)

    def do_update():
        return ecda.update(model, ctx.tokenizer, data, e.update_steps * PLANTED_STEP_FACTOR,
                           t_cfg.learning_rate * PLANTED_LR_FACTOR, t_cfg.batch_size,
                           t_cfg.max_length, cfg.seed + step.t + 7919, packing=t_cfg.packing,
                           turn=ctx.turn)

    accepted, event, result = ecda.guarded_update(
        model, do_update, lambda: ctx.scores.candidate(step.validation), e.rollback_tolerance,
        old_score=old, nll_tolerance=e.rollback_nll_tolerance)
    ctx.scores.discard()  # never adopted: it is not a version
    ecda.restore(model, state.weights)  # served, whatever the guard said
    after = ecda.snapshot(model)
    unchanged = before.keys() == after.keys() and all(torch.equal(before[n], after[n])
                                                      for n in before)
    row = {"t": step.t, "method": state.name, **event,
           "event": "planted_rolled_back" if not accepted else "planted_not_caught",
           "guarded": True, "planted": True, "new_items": len(data),
           "steps": result.steps if result else 0,
           "weights_unchanged": unchanged}
    ctx.events.append(row)
    return row


def _charge(state: MethodState, result: ecda.UpdateResult) -> None:
    """Add an update's cost to the method's compute, whether it was kept or rolled back."""
    state.compute["updates"] += 1
    state.compute["steps"] += result.steps
    state.compute["tokens"] += result.tokens
    state.compute["seconds"] += result.seconds
