"""The paper's claims as this run measured them: one row per claim and base model, judged
by the rule of :mod:`compass.book.paper_rule`."""
from __future__ import annotations

from compass import paths
from compass.book.paper_rule import (
    PAPER_FINAL,
    PAPER_FORGETTING,
    PAPER_GAINS,
    PAPER_LANGSIM_D,
    RULE,
    SOURCE,
    Estimate,
    pooled,
    verdict,
)
from compass.book.paper_runs import (
    csv_or_empty,
    full_width,
    how_measured,
    json_or_empty,
    markdown_rows,
    model_label,
    model_line,
    paper_name,
    read_per_language,
    stand_in_reason,
)


# ---------------------------------------------------------------- claims
def claim_row(claim, model, paper, run, decided, how) -> dict:
    """One row of the claims table; ``decided`` is the (verdict, reason) pair the rule returned."""
    return {"paper's claim": claim, "base model": model, "paper": paper, "this run": run,
            "reproduces?": f"**{decided[0]}**: {decided[1]}", "how measured": how}


def judged(cfg, model: str, est: Estimate | None, **rule) -> tuple[str, str]:
    """The rule's verdict, or "not measured here" for a stand-in model (with what the rule would
    say on its numbers, so the table shows the rule at work on any run)."""
    decided = verdict(est, **rule)
    reason = stand_in_reason(cfg, model)
    if reason is None:
        return decided
    would = f"; the rule on these numbers: {decided[0]}" if est is not None else ""
    return "not measured here", reason + would


def gain_estimate(cfg, model: str, method: str) -> Estimate | None:
    """``method``'s Global-MMLU gain over zero-shot for ``model``, pooled over languages."""
    summary = read_per_language(cfg, model, "summary.csv")
    if summary.empty:
        return None
    rows = summary[(summary["metric"] == "acc") & (summary["method"] == method)]
    return pooled(rows, "gain_pp", "gain_ci_low_pp", "gain_ci_high_pp", cfg.evaluation.confidence)


def versus_estimate(cfg, model: str, baseline: str) -> tuple[Estimate | None, str]:
    """COMPASS minus ``baseline`` in Global-MMLU accuracy (pp) pooled over languages, and each
    language's paired Cohen's d_z."""
    versus = read_per_language(cfg, model, "compass_vs_baselines.csv")
    if versus.empty:
        return None, ""
    rows = versus[(versus["metric"] == "acc") & (versus["baseline"] == baseline)]
    d = "; ".join(f"{r.language} {r.cohens_dz:+.2f}" for r in rows.itertuples())
    return pooled(rows, "gain_pp", "gain_ci_low_pp", "gain_ci_high_pp",
                  cfg.evaluation.confidence), d


def gain_claims(cfg) -> list[dict]:
    """The paper's per-model gains: one row per paper model, measured on it or not."""
    rows = []
    trained = list(cfg.train.models)
    stand_ins = [m for m in trained if paper_name(m) is None]
    for paper, (names, figure) in PAPER_GAINS.items():
        claim = f"COMPASS gains {figure:+.1f} pp over zero-shot on Global-MMLU"
        ran = [m for m in trained if m in names] or stand_ins
        if not ran or "compass" not in cfg.train.methods:
            why = ("`compass` is not in `train.methods`" if ran else
                   f"{paper} is not in `train.models` ({', '.join(trained)})")
            rows.append(claim_row(claim, paper, f"{figure:+.1f} pp", "not run",
                               ("not measured here", why), ""))
            continue
        for model in ran:
            est = gain_estimate(cfg, model, "compass")
            label = paper if model in names else f"{paper}: `{model}` stands in"
            rows.append(claim_row(claim, label, f"{figure:+.1f} pp",
                               est.cell() if est else "no results",
                               judged(cfg, model, est, figure=figure), how_measured(cfg, model)))
    return rows


def method_claims(cfg) -> list[dict]:
    """Claims about methods, one row per base model: all-data mixing below zero-shot, COMPASS
    above LangSim (and LangRank, which this package does not have)."""
    low, high = PAPER_LANGSIM_D
    methods = set(cfg.train.methods)
    rows = []
    for model in cfg.train.models:
        if "all" in methods:
            est = gain_estimate(cfg, model, "all")
            run, decided = (est.cell() if est else "no results"), judged(cfg, model, est,
                                                                          direction=-1)
        else:
            run, decided = "not run", ("not measured here", "`all` is not in `train.methods`")
        rows.append(claim_row("All-data mixing falls below zero-shot", model_label(model),
                           "below 0 pp", run, decided, how_measured(cfg, model)))
    for model in cfg.train.models:
        if {"langsim", "compass"} <= methods:
            est, d = versus_estimate(cfg, model, "langsim")
            run = (f"COMPASS minus `langsim` {est.cell()}; paired d_z: {d}" if est
                   else "no results")
            decided = judged(cfg, model, est, direction=+1)
        else:
            run, decided = "not run", ("not measured here",
                                       "`langsim` and `compass` are not both in `train.methods`")
        rows.append(claim_row("COMPASS beats typology-based selection (LangSim)",
                              model_label(model), f"d = {low:.2f}-{high:.2f}", run, decided,
                              how_measured(cfg, model) + "; judged by the gain's sign: the "
                              "paper's d names no variant, and paired d_z is not comparable"))
    rows.append(claim_row("COMPASS beats LangRank", "all", f"d = {low:.2f}-{high:.2f}", "not run",
                       ("not measured here", "this package has no LangRank baseline"), ""))
    return rows


def ecda_claims(cfg) -> list[dict]:
    """The continual claims on the ECDA stream: forgetting and final accuracy per method."""
    lang, model = cfg.ecda.language, cfg.ecda.model
    summary = csv_or_empty(paths.ecda_dir(lang) / "summary.csv")
    metrics = json_or_empty(paths.ecda_metrics(lang))
    how = (f"stream of `{lang}`, {metrics.get('steps', cfg.ecda.steps)} steps x "
           f"{cfg.ecda.test_items_per_step} test items, shift toward {cfg.ecda.shift}; its "
           f"COMPASS adapter, {model_line(cfg, model)}")
    forgetting = ("forgetting_pp", "forgetting_ci_low", "forgetting_ci_high")
    final = ("final_accuracy", "final_ci_low", "final_ci_high")
    claims = [("Naive updates forget", *forgetting, "naive", PAPER_FORGETTING["naive"], True,
               " pp"),
              ("ECDA forgets little", *forgetting, "ecda", PAPER_FORGETTING["ecda"], True, " pp"),
              ("ECDA matches full retraining: ECDA's final accuracy", *final, "ecda",
               PAPER_FINAL["ecda"], False, ""),
              ("ECDA matches full retraining: full retraining's", *final, "full_retrain",
               PAPER_FINAL["full_retrain"], False, "")]
    rows = []
    for claim, value, low, high, method, figure, change, unit in claims:
        paper = f"{figure:+.1f} pp" if change else f"{figure:.3f}"
        fmt = "+.1f" if change else ".3f"
        if summary.empty or value not in summary or method not in set(summary["method"]):
            scoring = metrics.get("scoring", cfg.ecda.scoring)
            why = ("no ECDA results" if summary.empty else
                   f"`{method}` not in `ecda.methods`" if "method" in summary
                   and method not in set(summary["method"]) else
                   f"`ecda.scoring = {scoring}`: accuracy not scored")
            rows.append(claim_row(claim, model_label(model), paper, "not run",
                               ("not measured here", why), how))
            continue
        r = summary.set_index("method").loc[method]
        est = Estimate(float(r[value]), float(r[low]), float(r[high]))
        rows.append(claim_row(claim, model_label(model), paper, est.cell(fmt, unit),
                           judged(cfg, model, est, figure=figure, change=change), how))
    return rows


def claim_rows(cfg) -> list[dict]:
    """Every claim row the book checks: the gains, the method comparisons, then the ECDA claims."""
    return gain_claims(cfg) + method_claims(cfg) + ecda_claims(cfg)


def claims_table(cfg) -> str:
    """The paper's claims, its figures, this run's and whether they agree (by :data:`RULE`)."""
    return (full_width(markdown_rows(claim_rows(cfg)))
            + f"\n*Paper*: the published figure, from {SOURCE}. "
            "*This run*: mean [95% CI] from this build's outputs (Global-MMLU: the evaluate "
            "stages' summary.csv and compass_vs_baselines.csv, pooled over the target languages; "
            "ECDA: the ecda stage's summary.csv). Gains in percentage points of accuracy.\n\n"
            + RULE + "\n")
