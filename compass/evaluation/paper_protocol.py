"""The evaluate stage under the paper protocol: Global-MMLU through lm-eval's own task (on local
rows, see compass.evaluation.paper_tasks) for zero-shot and every adapter, cross-checked item by
item with the project's fast scorer; the held-out NLL of each test item's correct answer (gap /
covered); MMLU-ProX-Lite through lm-eval's generative task where asked; the same statistics as the
tiny protocol on every comparison, and breakdowns by subject category and cultural sensitivity."""
from __future__ import annotations

import pandas as pd

from compass import io, paths
from compass.evaluation.method_tables import LIKELIHOOD_COLUMNS, accuracy_tables, per_method

BREAKDOWNS = {"subject_category": "by_category.csv", "cs_label": "by_cultural_label.csv"}


def _seeded_order(items: list[dict], seed: int, lang: str) -> list[dict]:
    """The test items in a seeded order: Global-MMLU files are sorted by subject, so the first
    max_items (or nll_items) in file order would all be the first subjects."""
    from compass.data.splits import rng_for

    return [items[i] for i in rng_for(seed, lang, "evaluation_order").permutation(len(items))]


def cultural_label(label) -> str:
    """CS or CA where Global-MMLU annotated the item; "not annotated" for the rest ('-', or no
    label): 2,850 of the full test set's 14,042 items per language are annotated, so a CS/CA split
    of the full set covers those alone, and the others are a group of their own, not CA."""
    return label if label in ("CS", "CA") else "not annotated"


def _wants_prox(cfg, lang: str) -> bool:
    """MMLU-ProX-Lite for ``lang`` (without reading languages.targets: lang is one of them)."""
    langs = cfg.evaluation.prox.languages
    return langs == "targets" or lang in langs


def scored_items(cfg, lang: str) -> list[dict]:
    """The first evaluation.max_items test items (all when 0) in the seeded order."""
    from compass.schemas import MC_FIELDS

    items = io.read_jsonl(paths.test_items_file(lang), required=MC_FIELDS)
    items = _seeded_order(items, cfg.seed, lang)
    return items[: cfg.evaluation.max_items] if cfg.evaluation.max_items else items


class MethodRuns:
    """Everything one model state is scored on: Global-MMLU via lm-eval (cross-checked for one
    method), the answer-only NLL pairs, MMLU-ProX-Lite where asked. Collects each method's rows."""

    def __init__(self, cfg, lang: str, model_name: str, tokenizer, items: list[dict], turn,
                 show_progress_bar: bool):
        from compass.evaluation import likelihood
        from compass.training import chat

        e = cfg.evaluation
        self.cfg, self.lang, self.tokenizer, self.show_progress_bar = cfg, lang, tokenizer, \
            show_progress_bar
        self.chat = turn is not None
        self.benchmarks = io.read_json(paths.benchmark_file(lang))
        self.by_sample = {it["sample_id"]: it for it in items}
        self.originals = [{**it, "id": it["sample_id"]} for it in items]  # the dataset's ids
        self.nll_items = chat.for_scoring(turn, [likelihood.answer_only(it)
                                                 for it in items[: e.nll_items]])
        self.tasks = paths.cache_dir() / "lm_eval_tasks" / model_name / lang  # not results
        methods = list(cfg.train.methods)
        self.check_method = "compass" if "compass" in methods else methods[0]
        self.frames, self.likelihoods, self.prox_frames, self.prox_summaries = [], [], [], []
        self.check = {}

    def __call__(self, method: str, model) -> None:
        """Score ``model`` (the adapter of ``method``, or the base model) on every benchmark and
        keep its rows; the lm-eval cross-check runs for one method only."""
        from compass.evaluation import paper_tasks, scoring

        cfg, e, lang = self.cfg, self.cfg.evaluation, self.lang
        frame = paper_tasks.run_global_mmlu(
            model, self.tokenizer, self.originals, lang, self.tasks,
            lite=cfg.data.test_set == "lite", num_fewshot=e.num_fewshot,
            fewshot_items=self.benchmarks["dev"], cross_check=False,
            batch_size=e.lm_eval_batch_size, chat=self.chat)
        if method == self.check_method and e.lm_eval_check_items:  # lm-eval's requests re-scored
            c = paper_tasks.cross_check_global_mmlu(model, self.tokenizer,
                                                    frame.head(e.lm_eval_check_items))
            self.check = {"items": c["items"], "same_choice_acc": c["same_choice"],
                          "max_abs_loglikelihood_diff": c["max_abs_loglikelihood_diff"],
                          "method": method, "lm_eval_acc": frame.attrs["lm_eval"]["acc"]}
        by_sample = self.by_sample
        self.frames.append(frame.assign(
            method=method, sample_id=frame["id"], id=[by_sample[s]["id"] for s in frame["id"]],
            cs_label=[by_sample[s].get("cs_label", "") for s in frame["id"]]))
        pairs = scoring.score_items(model, self.tokenizer, self.nll_items,
                                    desc=f"{lang} {method} NLL",
                                    show_progress_bar=self.show_progress_bar)
        self.likelihoods.append(pairs.assign(method=method, seed=cfg.seed)[LIKELIHOOD_COLUMNS])
        if _wants_prox(cfg, lang):
            p = e.prox
            prox, summary = paper_tasks.run_prox_lite(
                model, self.tokenizer, self.benchmarks["prox_test"],
                self.benchmarks["prox_validation"], lang, self.tasks, num_fewshot=p.num_fewshot,
                limit=p.limit or None, max_gen_toks=p.max_gen_toks, generator=p.generator,
                gen_batch_size=p.batch_size, chat=self.chat)
            self.prox_frames.append(prox.assign(method=method))
            self.prox_summaries.append({"method": method, **summary})


def evaluate_language(cfg, lang: str, model_name: str, show_progress_bar: bool = True) -> dict:
    """Evaluate the base model and every trained adapter of ``model_name`` on ``lang`` (paper
    protocol) and write the evaluate stage's results; returns what :func:`write_results` returns."""
    from compass.evaluation.sweep import AdapterSweep
    from compass.training import chat, models
    from compass.training.adapters import AdapterRegistry

    items = scored_items(cfg, lang)
    assignment = io.read_csv(paths.test_clusters_file(lang), required=("id", "cluster", "gap"))
    model, tokenizer = models.load(model_name, trust_remote_code=cfg.train.trust_remote_code,
                                   dtype=cfg.train.dtype, model_sources=cfg.train.model_sources)
    turn = chat.turn_for(cfg.train.chat_template, model_name, tokenizer)  # instruct: its template
    runs = MethodRuns(cfg, lang, model_name, tokenizer, items, turn, show_progress_bar)
    for method, current in AdapterSweep(model, AdapterRegistry(model_name), lang,
                                        list(cfg.train.methods)):
        runs(method, current)
    return write_results(cfg, lang, model_name, runs, len(items), assignment)


def write_results(cfg, lang: str, model_name: str, runs: MethodRuns, n_items: int,
                  assignment) -> dict:
    """The statistics, breakdowns and per-sample logs of every method, and the metrics file."""
    from compass.evaluation import likelihood

    e = cfg.evaluation
    out = paths.evaluation_dir(lang, model_name)
    predictions = pd.concat(runs.frames, ignore_index=True)
    predictions["acc"] = predictions["correct"]
    per_pair = pd.concat(runs.likelihoods, ignore_index=True)
    summary, versus = accuracy_tables(cfg, per_method(predictions, "correct"), "acc")
    breakdowns = {}
    labelled = predictions.assign(cs_label=predictions["cs_label"].map(cultural_label))
    for column, name in BREAKDOWNS.items():
        table = (labelled.groupby([column, "method"], sort=False)["correct"]
                 .agg(accuracy="mean", n="size").reset_index())
        breakdowns[column] = table
        io.write_csv(out / name, table)
    nll_summary, nll_versus = likelihood.likelihood_tables(
        per_pair, assignment, reference="zero_shot", method="compass", confidence=e.confidence,
        n_resamples=e.n_bootstrap, n_permutations=e.n_permutations, seed=cfg.seed)
    logged = predictions.drop(columns=["context"])  # per-sample logs (the prompt is re-creatable)
    io.write_csv(out / "predictions.csv", logged.drop(
        columns=["loglikelihoods", "continuations", "fast_loglikelihoods"], errors="ignore"))
    io.write_jsonl(out / "samples.jsonl", logged.to_dict("records"))
    io.write_csv(out / "likelihoods.csv", per_pair)
    io.write_csv(out / "summary.csv", summary)
    io.write_csv(out / "compass_vs_baselines.csv", versus)
    io.write_csv(out / "nll_summary.csv", nll_summary)
    io.write_csv(out / "nll_vs_baselines.csv", nll_versus)
    prox_table, prox_stats = write_prox(cfg, out, runs)
    metrics = {"language": lang, "model": model_name, "items": n_items,
               "benchmark": ("Global-MMLU-Lite" if cfg.data.test_set == "lite" else "Global-MMLU")
               + " test via lm-eval", "lm_eval_check": runs.check,
               "accuracy": predictions.groupby("method")["correct"].mean().to_dict(),
               "nll_pairs": len(runs.nll_items),
               "nll_pairs_by_subset": {k: len(v) for k, v in
                                       likelihood.subset_ids(assignment, per_pair["id"]).items()},
               "nll": {s: likelihood.means(nll_summary, "nll", s) for s in likelihood.SUBSETS},
               "bpc": {s: likelihood.means(nll_summary, "bpc", s) for s in likelihood.SUBSETS},
               "prox": {r["method"]: {"exact_match": r["exact_match"],
                                      "extraction_failure_rate": r["extraction_failure_rate"]}
                        for r in runs.prox_summaries}}
    io.write_json(paths.evaluation_metrics(lang, model_name), metrics)
    by_topic = breakdowns["subject_category"].pivot_table(
        index="subject_category", columns="method", values="accuracy", sort=False).reset_index()
    return {"predictions": predictions, "summary": summary, "versus": versus, "metrics": metrics,
            "by_topic": by_topic, "likelihoods": per_pair, "nll_summary": nll_summary,
            "nll_versus": nll_versus, "by_cultural_label": breakdowns["cs_label"],
            "prox": prox_table, "prox_versus": prox_stats[1], "nll_by_step": pd.DataFrame()}


def write_prox(cfg, out, runs: MethodRuns):
    """MMLU-ProX-Lite's predictions, per-method summary and statistics (empty tables without it)."""
    prox_table = pd.DataFrame(runs.prox_summaries)
    prox_stats = (pd.DataFrame(), pd.DataFrame())
    if runs.prox_frames:
        prox_all = pd.concat(runs.prox_frames, ignore_index=True)
        io.write_csv(out / "prox_predictions.csv", prox_all)
        prox_stats = accuracy_tables(cfg, per_method(prox_all, "correct"), "exact_match")
    io.write_csv(out / "prox_summary.csv", prox_table)
    io.write_csv(out / "prox_stats.csv", prox_stats[0])
    io.write_csv(out / "prox_vs_baselines.csv", prox_stats[1])
    return prox_table, prox_stats
