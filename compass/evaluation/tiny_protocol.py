"""The evaluate stage under the tiny protocol: zero-shot and every adapter of one target on the
same multiple-choice items (project scorer, lm-eval cross-check), the held-out responses' NLL and
bits per character for every seed and curve step, overall and on the test items in COMPASS's gap /
covered clusters (the sampling stage's assignment)."""
from __future__ import annotations

import time

import pandas as pd

from compass import io, paths
from compass.evaluation.method_tables import LIKELIHOOD_COLUMNS, accuracy_tables, per_method


def evaluation_items(cfg, lang: str) -> tuple[list[dict], list[dict]]:
    """(multiple-choice items, further held-out pairs measured by likelihood only): the first
    evaluation.max_items test items are scored on all choices, the next ones up to
    evaluation.nll_items on their correct answer alone."""
    from compass.evaluation.likelihood import answer_only
    from compass.schemas import MC_FIELDS

    items = io.read_jsonl(paths.test_items_file(lang), required=MC_FIELDS)
    e = cfg.evaluation
    n = e.max_items or len(items)  # 0: every test item
    return items[:n], [answer_only(it) for it in items[n: max(n, e.nll_items)]]


class Scorer:
    """One batched scoring pass per label: the multiple-choice items and answer-only pairs, or
    (further seeds, curve steps) only every pair's correct answer, a quarter of an MC item's
    cost. Keeps the MC rows, and each label's wall time for the timing log."""

    def __init__(self, tokenizer, lang: str, items: list[dict], answers_only: list[dict],
                 seed: int, show_progress_bar: bool):
        from compass.evaluation.likelihood import answer_only

        self.tokenizer, self.lang, self.seed = tokenizer, lang, seed
        self.items, self.answers_only = items, answers_only
        self.nll_pairs = [answer_only(it) for it in items] + answers_only
        self.mc_ids = {it["id"] for it in items}
        self.show_progress_bar = show_progress_bar
        self.timings, self.frames = {}, []

    def __call__(self, model, method: str, label: str, seed: int | None = None,
                 pairs_only: bool = False) -> pd.DataFrame:
        """Score ``model`` under ``label`` (every MC item and answer-only pair, or with
        ``pairs_only`` only the pairs' correct answers) and return the likelihood rows; MC rows are
        kept in :attr:`frames`."""
        from compass.evaluation import scoring

        seed = self.seed if seed is None else seed
        n_mc = 0 if pairs_only else len(self.items)
        scored = self.nll_pairs if pairs_only else self.items + self.answers_only
        start = time.perf_counter()
        frame = scoring.score_items(model, self.tokenizer, scored, desc=f"{self.lang} {label}",
                                    show_progress_bar=self.show_progress_bar)
        self.timings[label] = (round(time.perf_counter() - start, 2), n_mc, len(scored) - n_mc)
        frame = frame.assign(method=method, seed=seed)
        if not pairs_only:
            self.frames.append(frame[frame["id"].isin(self.mc_ids)].drop(columns="seed"))
        return frame[LIKELIHOOD_COLUMNS]


def score_every_adapter(cfg, lang: str, model, registry, score: Scorer):
    """(per-pair likelihoods, NLL against steps, the model with every adapter attached): zero-shot
    and each method's first seed on everything, then its further seeds and curve steps on the
    answer-only pairs."""
    from compass.evaluation.sweep import ZERO_SHOT, AdapterSweep

    t = cfg.train
    likelihoods, curve = [], []
    sweep = AdapterSweep(model, registry, lang, list(t.methods))
    for method, current in sweep:  # the first seed: multiple choice and NLL
        likelihoods.append(score(current, method, method))
        curve.append(likelihoods[-1].assign(step=0 if method == ZERO_SHOT else t.steps))
    attached = sweep.attached
    for method in t.methods:  # further seeds: NLL
        for replicate in range(1, t.seeds):
            with registry.activated(attached, lang, method, replicate=replicate):
                likelihoods.append(score(attached, method, f"{method}/seed{cfg.seed + replicate}",
                                         seed=cfg.seed + replicate, pairs_only=True))
    for method in t.methods:  # the first seed's adapter after fewer steps: NLL against steps
        for step in t.curve_steps:
            with registry.activated(attached, lang, method, step=step):
                curve.append(score(attached, method, f"{method}/step{step}", pairs_only=True)
                             .assign(step=step))
    return pd.concat(likelihoods, ignore_index=True), curve, attached


def lm_eval_check(cfg, lang: str, model_name: str, attached, registry, tokenizer, plain,
                  predictions, chat: bool) -> dict:
    """lm-eval's own multiple-choice run on the first items with COMPASS's adapter (else the
    first method's), compared item by item with the project's scorer ({} when asked for none)."""
    from compass.evaluation import lmeval

    methods = list(cfg.train.methods)
    check_method = "compass" if "compass" in methods else methods[0]
    registry.activate(attached, lang, check_method)
    n_check = min(cfg.evaluation.lm_eval_check_items, len(plain))
    if not n_check:
        return {}
    ours = predictions[predictions["method"] == check_method].head(n_check)
    # the task file names its rows by absolute path: under the cache, not in the stage's outputs,
    # whose bytes must not depend on where the workspace is
    check = lmeval.cross_check(attached, tokenizer, plain[:n_check], ours,
                               paths.cache_dir() / "lm_eval_tasks" / model_name / lang,
                               name=f"compass_mc_{lang.replace('-', '_')}",
                               batch_size=cfg.evaluation.lm_eval_batch_size, chat=chat)
    check["method"] = check_method
    return check


def evaluate_language(cfg, lang: str, model_name: str, show_progress_bar: bool = True) -> dict:
    """Evaluate the base model and every trained adapter of ``model_name`` on ``lang`` (tiny
    protocol: likelihood scoring), write the evaluate stage's results and return its tables."""
    from compass.training import chat, models
    from compass.training.adapters import AdapterRegistry

    items, answers_only = evaluation_items(cfg, lang)
    assignment = io.read_csv(paths.test_clusters_file(lang), required=("id", "cluster", "gap"))
    model, tokenizer = models.load(model_name, trust_remote_code=cfg.train.trust_remote_code,
                                   dtype=cfg.train.dtype, model_sources=cfg.train.model_sources)
    turn = chat.turn_for(cfg.train.chat_template, model_name, tokenizer)  # instruct: its template
    plain = items  # lm-eval's cross-check renders the template itself
    score = Scorer(tokenizer, lang, chat.for_scoring(turn, items),
                   chat.for_scoring(turn, answers_only), cfg.seed, show_progress_bar)
    registry = AdapterRegistry(model_name)
    per_pair, curve, attached = score_every_adapter(cfg, lang, model, registry, score)
    predictions = pd.concat(score.frames, ignore_index=True)
    check = lm_eval_check(cfg, lang, model_name, attached, registry, tokenizer, plain,
                          predictions, chat=turn is not None)
    result = tables(cfg, predictions, per_pair, curve, assignment)
    write(cfg, lang, model_name, result, score.timings)
    metrics = language_metrics(cfg, lang, model_name, result, assignment, check,
                               len(score.items), len(score.items) + len(score.answers_only))
    io.write_json(paths.evaluation_metrics(lang, model_name), metrics)
    return {**{k: result[k] for k in ("predictions", "summary", "versus")}, "metrics": metrics,
            **{k: result[k] for k in ("by_topic", "likelihoods", "nll_summary", "nll_versus",
                                      "nll_by_step")}}


def tables(cfg, predictions, per_pair, curve, assignment) -> dict:
    """Every table of one language: accuracy (both lm-eval metrics), NLL overall and by gap,
    the gap interaction, the controls and NLL against training steps."""
    from compass.evaluation import likelihood
    from compass.evaluation.controls import gap_controls, seeded_controls

    e, methods = cfg.evaluation, list(cfg.train.methods)
    acc = [accuracy_tables(cfg, per_method(predictions, metric), metric)
           for metric in ("acc", "acc_norm")]  # both of lm-eval's multiple-choice metrics
    summary = pd.concat([s for s, _ in acc], ignore_index=True)
    versus = pd.concat([v for _, v in acc if len(v)], ignore_index=True) \
        if any(len(v) for _, v in acc) else pd.DataFrame()
    nll_summary, nll_versus = likelihood.likelihood_tables(
        per_pair, assignment, reference="zero_shot", method="compass", confidence=e.confidence,
        n_resamples=e.n_bootstrap, n_permutations=e.n_permutations, seed=cfg.seed)
    interaction = likelihood.gap_interaction(per_pair, assignment, method="compass",
                                             n_permutations=e.n_permutations, seed=cfg.seed)
    controls = gap_controls(per_pair, assignment, method="compass",
                            baseline="random" if "random" in methods else "zero_shot",
                            seed=cfg.seed)
    seeded_check = seeded_controls(per_pair, "compass", "random" if "random" in methods else
                                   methods[0], seed=cfg.seed)
    per_step = pd.concat(curve, ignore_index=True).drop(columns="seed")
    by_step = likelihood.by_step_table(per_step, assignment, method="compass",
                                       confidence=e.confidence, n_resamples=e.n_bootstrap,
                                       seed=cfg.seed)
    by_topic = predictions.groupby(["method", "topic"])["acc"].mean().unstack(0).reset_index()
    return {"predictions": predictions, "likelihoods": per_pair, "summary": summary,
            "versus": versus, "nll_summary": nll_summary, "nll_versus": nll_versus,
            "nll_by_step": by_step, "nll_gap_interaction": interaction, "by_topic": by_topic,
            "gap_controls": controls, "seeded_controls": seeded_check}


# table -> the file it is written to, in the order they are written
FILES = {"predictions": "predictions.csv", "likelihoods": "likelihoods.csv",
         "summary": "summary.csv", "versus": "compass_vs_baselines.csv",
         "nll_summary": "nll_summary.csv", "nll_versus": "nll_vs_baselines.csv",
         "nll_by_step": "nll_by_step.csv", "nll_gap_interaction": "nll_gap_interaction.csv",
         "by_topic": "by_topic.csv"}


def write(cfg, lang: str, model_name: str, result: dict, timings: dict) -> None:
    """The tables, and each scoring pass's wall time to the timing log (not a tracked metric)."""
    from compass import timings as timing_log

    out = paths.evaluation_dir(lang, model_name)
    for key, name in FILES.items():
        io.write_csv(out / name, result[key])
    for label, (seconds, n_items, n_pairs) in timings.items():
        timing_log.record(f"score {model_name}/{lang}/{label}", seconds, items=n_items,
                          answer_only_pairs=n_pairs)


def language_metrics(cfg, lang: str, model_name: str, result: dict, assignment, check: dict,
                     n_items: int, n_pairs: int) -> dict:
    """The metrics file of one (language, model)."""
    from compass.evaluation import likelihood

    predictions, nll_summary, by_step = (result[k] for k in ("predictions", "nll_summary",
                                                             "nll_by_step"))
    return {"language": lang, "model": model_name, "items": n_items, "nll_pairs": n_pairs,
            "lm_eval_check": check,
            "accuracy": predictions.groupby("method")["acc"].mean().to_dict(),
            "accuracy_norm": predictions.groupby("method")["acc_norm"].mean().to_dict(),
            "nll_pairs_by_subset": {k: len(v) for k, v in likelihood.subset_ids(
                assignment, result["likelihoods"]["id"]).items()},
            "nll": {subset: likelihood.means(nll_summary, "nll", subset)
                    for subset in likelihood.SUBSETS},
            "bpc": {subset: likelihood.means(nll_summary, "bpc", subset)
                    for subset in likelihood.SUBSETS},
            "seeds": cfg.train.seeds,
            "gap_controls": result["gap_controls"],
            "seeded_controls": result["seeded_controls"],
            "nll_by_step": {m: {int(k): float(v) for k, v in zip(g["step"], g["mean"])}
                            for m, g in by_step[by_step["subset"] == "all"].groupby("method")}}
