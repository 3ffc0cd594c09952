"""Stage `evaluate`: zero-shot and every adapter of one target language on the same test items,
with intervals, paired permutation tests and an lm-eval cross-check; the same statistics for the
held-out responses' NLL and bits per character, overall and on the test items in COMPASS's gap /
covered clusters (the sampling stage's assignment)."""
from __future__ import annotations

import time

import pandas as pd

from compass import io, paths
from compass.stages.data import read_language

# per held-out pair and model: what the likelihood tables read
LIKELIHOOD_COLUMNS = ["id", "topic", "method", "seed", "answer_tokens", "answer_chars", "nll", "bpc"]


def evaluation_items(cfg, lang: str) -> tuple[list[dict], list[dict]]:
    """(multiple-choice items, further held-out pairs measured by likelihood only): the first
    evaluation.max_items test items are scored on all choices, the next ones up to
    evaluation.nll_items on their correct answer alone."""
    from compass.evaluation.likelihood import answer_only

    _, items = read_language(lang)
    e = cfg.evaluation
    n = e.max_items or len(items)  # 0: every test item
    return items[:n], [answer_only(it) for it in items[n: max(n, e.nll_items)]]


def per_method(predictions: pd.DataFrame, column: str) -> dict:
    """method -> per-item scores in id order (paired across methods)."""
    return {m: g.sort_values("id")[column].to_numpy() for m, g in predictions.groupby("method")}


def accuracy_tables(cfg, correct: dict, metric: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Accuracy of every method with CIs and tests against zero-shot, and COMPASS against each
    baseline (an empty frame without COMPASS): the statistics of both profiles."""
    from compass.evaluation import stats

    e = cfg.evaluation
    summary = stats.accuracy_summary(correct, reference="zero_shot", confidence=e.confidence,
                                     n_resamples=e.n_bootstrap, n_permutations=e.n_permutations,
                                     seed=cfg.seed).reset_index().assign(metric=metric)
    versus = pd.DataFrame()
    if "compass" in correct and len(correct) > 1:
        versus = stats.compare_to_baselines(
            correct, method="compass", baselines=[m for m in correct if m != "compass"],
            confidence=e.confidence, n_resamples=e.n_bootstrap, n_permutations=e.n_permutations,
            seed=cfg.seed).reset_index().assign(metric=metric)
    return summary, versus


def evaluate_language(cfg, lang: str, model_name: str, show_progress_bar: bool = True) -> dict:
    if cfg.profile == "paper":
        from compass.stages.evaluate_paper import evaluate_language_paper

        return evaluate_language_paper(cfg, lang, model_name, show_progress_bar)
    from compass.evaluation import likelihood, lmeval, scoring
    from compass.training import chat, models
    from compass.training.adapters import AdapterRegistry

    items, answers_only = evaluation_items(cfg, lang)
    mc_ids = {it["id"] for it in items}
    assignment = io.read_csv(paths.test_clusters_file(lang), required=("id", "cluster", "gap"))
    model, tokenizer = models.load(model_name, trust_remote_code=cfg.train.trust_remote_code,
                                   dtype=cfg.train.dtype, model_sources=cfg.train.model_sources)
    timings, frames, likelihoods = {}, [], []
    turn = chat.turn_for(cfg.train.chat_template, model_name, tokenizer)  # instruct: its template
    plain = items  # lm-eval's cross-check renders the template itself
    items, answers_only = chat.for_scoring(turn, items), chat.for_scoring(turn, answers_only)
    nll_pairs = [likelihood.answer_only(it) for it in items] + answers_only

    def score(method, label, seed=cfg.seed, pairs_only=False):
        """One batched pass: the multiple-choice items and answer-only pairs, or (further seeds,
        curve steps) only every pair's correct answer, a quarter of an MC item's cost."""
        scored = nll_pairs if pairs_only else items + answers_only
        start = time.perf_counter()
        frame = scoring.score_items(model_now, tokenizer, scored, desc=f"{lang} {label}",
                                    show_progress_bar=show_progress_bar)
        timings[label] = (round(time.perf_counter() - start, 2), 0 if pairs_only else len(items),
                          len(scored) - (0 if pairs_only else len(items)))
        frame = frame.assign(method=method, seed=seed)
        if not pairs_only:
            frames.append(frame[frame["id"].isin(mc_ids)].drop(columns="seed"))
        return frame[LIKELIHOOD_COLUMNS]

    model_now = model
    likelihoods.append(score("zero_shot", "zero_shot"))
    curve = [likelihoods[-1].assign(step=0)]  # the first seed's NLL against steps
    registry = AdapterRegistry(model_name)
    methods = list(cfg.train.methods)
    model_now = registry.attach(model, [(lang, m) for m in methods])
    for method in methods:  # the first seed: multiple choice and NLL
        registry.activate(model_now, lang, method)
        likelihoods.append(score(method, method))
        curve.append(likelihoods[-1].assign(step=cfg.train.steps))
    for method in methods:  # further seeds: NLL
        for replicate in range(1, cfg.train.seeds):
            with registry.activated(model_now, lang, method, replicate=replicate):
                likelihoods.append(score(method, f"{method}/seed{cfg.seed + replicate}",
                                         seed=cfg.seed + replicate, pairs_only=True))
    for method in methods:  # the first seed's adapter after fewer steps: NLL against steps
        for step in cfg.train.curve_steps:
            with registry.activated(model_now, lang, method, step=step):
                curve.append(score(method, f"{method}/step{step}", pairs_only=True).assign(step=step))
    predictions = pd.concat(frames, ignore_index=True)
    per_pair = pd.concat(likelihoods, ignore_index=True)
    check_method = "compass" if "compass" in methods else methods[0]
    registry.activate(model_now, lang, check_method)
    n_check = min(cfg.evaluation.lm_eval_check_items, len(items))
    check = {}
    if n_check:
        ours = predictions[predictions["method"] == check_method].head(n_check)
        check = lmeval.cross_check(model_now, tokenizer, plain[:n_check], ours,
                                   paths.evaluation_dir(lang, model_name) / "lm_eval_task",
                                   name=f"compass_mc_{lang.replace('-', '_')}",
                                   batch_size=cfg.evaluation.lm_eval_batch_size,
                                   chat=turn is not None)
        check["method"] = check_method
    e = cfg.evaluation
    tables = [accuracy_tables(cfg, per_method(predictions, metric), metric)
              for metric in ("acc", "acc_norm")]  # both of lm-eval's multiple-choice metrics
    summary = pd.concat([s for s, _ in tables], ignore_index=True)
    versus = pd.concat([v for _, v in tables if len(v)], ignore_index=True) \
        if any(len(v) for _, v in tables) else pd.DataFrame()
    nll_summary, nll_versus = likelihood.likelihood_tables(
        per_pair, assignment, reference="zero_shot", method="compass", confidence=e.confidence,
        n_resamples=e.n_bootstrap, n_permutations=e.n_permutations, seed=cfg.seed)
    interaction = likelihood.gap_interaction(per_pair, assignment, method="compass",
                                             n_permutations=e.n_permutations, seed=cfg.seed)
    from compass.evaluation.controls import gap_controls, seeded_controls

    controls = gap_controls(per_pair, assignment, method="compass",
                            baseline="random" if "random" in methods else "zero_shot", seed=cfg.seed)
    seeded_check = seeded_controls(per_pair, "compass", "random" if "random" in methods else
                                   methods[0], seed=cfg.seed)
    per_step = pd.concat(curve, ignore_index=True).drop(columns="seed")
    by_step = likelihood.by_step_table(per_step, assignment, method="compass",
                                       confidence=e.confidence, n_resamples=e.n_bootstrap,
                                       seed=cfg.seed)
    out = paths.evaluation_dir(lang, model_name)
    io.write_csv(out / "predictions.csv", predictions)
    io.write_csv(out / "likelihoods.csv", per_pair)
    io.write_csv(out / "summary.csv", summary)
    io.write_csv(out / "compass_vs_baselines.csv", versus)
    io.write_csv(out / "nll_summary.csv", nll_summary)
    io.write_csv(out / "nll_vs_baselines.csv", nll_versus)
    io.write_csv(out / "nll_by_step.csv", by_step)
    io.write_csv(out / "nll_gap_interaction.csv", interaction)
    by_topic = predictions.groupby(["method", "topic"])["acc"].mean().unstack(0).reset_index()
    io.write_csv(out / "by_topic.csv", by_topic)
    from compass import timings as timing_log

    for label, (seconds, n_items, n_pairs) in timings.items():  # wall times: not tracked metrics
        timing_log.record(f"score {model_name}/{lang}/{label}", seconds, items=n_items,
                          answer_only_pairs=n_pairs)
    metrics = {"language": lang, "model": model_name, "items": len(items), "nll_pairs": len(items) + len(answers_only),
               "lm_eval_check": check,
               "accuracy": predictions.groupby("method")["acc"].mean().to_dict(),
               "accuracy_norm": predictions.groupby("method")["acc_norm"].mean().to_dict(),
               "nll_pairs_by_subset": {k: len(v) for k, v in
                                       likelihood.subset_ids(assignment, per_pair["id"]).items()},
               "nll": {subset: likelihood.means(nll_summary, "nll", subset)
                       for subset in likelihood.SUBSETS},
               "bpc": {subset: likelihood.means(nll_summary, "bpc", subset)
                       for subset in likelihood.SUBSETS},
               "seeds": cfg.train.seeds,
               "gap_controls": controls,
               "seeded_controls": seeded_check,
               "nll_by_step": {m: {int(k): float(v) for k, v in zip(g["step"], g["mean"])}
                               for m, g in by_step[by_step["subset"] == "all"].groupby("method")}}
    io.write_json(paths.evaluation_metrics(lang, model_name), metrics)
    return {"predictions": predictions, "summary": summary, "versus": versus, "metrics": metrics,
            "by_topic": by_topic, "likelihoods": per_pair, "nll_summary": nll_summary,
            "nll_versus": nll_versus, "nll_by_step": by_step}
