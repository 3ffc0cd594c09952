"""The claims table of a protocol that does not measure what the paper measured: each of the
paper's claims, whether this protocol can test it, what this build measured and how far to
trust it (the instruments' checks)."""
from __future__ import annotations

import pandas as pd

from compass import io, paths
from compass.book.cells import change_cells, interval
from compass.book.prose import seeds_sentence
from compass.book.runs import per_language, runs
from compass.book.trust import stream_forgetting


def nll_verdict(nll_sum: pd.DataFrame, method: str) -> str:
    """How many languages' held-out NLL ``method`` significantly lowers / raises vs zero-shot."""
    rows = nll_sum[(nll_sum["metric"] == "nll") & (nll_sum["subset"] == "all")
                   & (nll_sum["method"] == method)]
    lower = int(((rows["p_value"] < 0.05) & (rows["change"] < 0)).sum())
    higher = int(((rows["p_value"] < 0.05) & (rows["change"] > 0)).sum())
    return f"**Lower NLL than zero-shot in {lower}, higher in {higher} of {len(rows)} languages.**"


def gap_differences(cfg) -> str:
    """COMPASS's change on gap items minus on covered items, per language and baseline, with the
    permutation p of the gap labels (likelihood.gap_interaction); negative: more gain in gaps."""
    frame = per_language(cfg, "nll_gap_interaction.csv", optional=True)
    if frame.empty:
        return "not run"
    return "; ".join(f"{r['language']} vs `{r['baseline']}` {r['difference']:+.3f} "
                     f"(p = {r['p_value']:.3f})" for _, r in frame.iterrows())


def instrument_checks(cfg) -> dict[str, str]:
    """Per kind of test behind a claim, its measured false-positive rate and power, short (the
    section "How far to trust each number" has them in full)."""
    out = {}
    seeded, gap = [], []
    for label, lang, model in runs(cfg):
        metrics_file = paths.evaluation_metrics(lang, model)
        if not metrics_file.exists():
            continue
        m = io.read_json(metrics_file)
        if s := m.get("seeded_controls"):
            powers = " / ".join(f"{s[k]:.2f}" for k in s if k.startswith("power_"))
            seeded.append(f"{label}: FP {s['false_positive_rate']:.2f}, power {powers}")
        if g := m.get("gap_controls"):
            gap.append(f"{label}: FP {g['false_positive_rate']:.2f}, power {g['power']:.2f}")
    if seeded:
        out["seeded"] = ("seed test: " + "; ".join(seeded) + " (power at 0.02 / 0.05 nats)")
    if gap:
        out["gap"] = "gap test: " + "; ".join(gap) + " (power at 0.1 nats)"
    metrics_file = paths.ecda_metrics(cfg.ecda.language)
    if metrics_file.exists():
        nulls = {n["profile"]: n for n in io.read_json(metrics_file).get("forgetting_null", [])}
        if "every step" in nulls:
            n = nulls["every step"]
            out["forgetting"] = (f"no change: intervals exclude 0 in "
                                 f"{n['false_positive_rate']:.2f} of null streams (mean "
                                 f"{n['forgetting_pp']:+.1f} pp; final minus best gave "
                                 f"{n['old_definition_pp']:+.1f} pp); planted forgetting: "
                                 + stream_forgetting(cfg)[0])
    return out


def claims_table(cfg) -> str:
    """The paper's claims, whether this profile can test each, and what this build measured
    (numbers from the stages' outputs; * / ** = Holm-adjusted p < 0.05 / 0.01, or the
    permutation p for changes against zero-shot)."""
    nll_vs = per_language(cfg, "nll_vs_baselines.csv")
    acc_vs = per_language(cfg, "compass_vs_baselines.csv")
    nll_sum = per_language(cfg, "nll_summary.csv")
    acc_sum = per_language(cfg, "summary.csv")

    def nll_against(baseline, subset="all"):
        if nll_vs.empty:
            return "not run"
        rows = nll_vs[(nll_vs["metric"] == "nll") & (nll_vs["subset"] == subset)
                      & (nll_vs["baseline"] == baseline)]
        better = int((rows["significant"] & (rows["change"] < 0)).sum())
        worse = int((rows["significant"] & (rows["change"] > 0)).sum())
        return (f"**COMPASS better in {better}, worse in {worse} of {len(rows)} languages** "
                f"(Holm p < 0.05). "
                + change_cells(rows, "change", "change_ci_low", "change_ci_high"))

    def acc_against(baseline):
        if acc_vs.empty:
            return "not run"
        rows = acc_vs[(acc_vs["metric"] == "acc") & (acc_vs["baseline"] == baseline)]
        return change_cells(rows, "gain_pp", "gain_ci_low_pp", "gain_ci_high_pp", "+.1f")

    def vs_zero_shot(method, subset="all"):
        rows = nll_sum[(nll_sum["metric"] == "nll") & (nll_sum["subset"] == subset)
                       & (nll_sum["method"] == method)]
        return change_cells(rows, "change", "change_ci_low", "change_ci_high")

    acc_all = acc_sum[(acc_sum["metric"] == "acc") & (acc_sum["method"] == "all")]
    rows = [
        ("COMPASS beats random sampling", "yes (NLL; accuracy near chance)",
         f"NLL change: {nll_against('random')}. Accuracy (pp): {acc_against('random')}"),
        ("COMPASS beats all-data mixing", "yes (NLL; accuracy near chance)",
         f"NLL change: {nll_against('all')}. Accuracy (pp): {acc_against('all')}"),
        ("All-data mixing hurts (below zero-shot)",
         f"partly: {cfg.sampling.budget} items, not the whole pool",
         f"{nll_verdict(nll_sum, 'all')} `all` vs zero-shot, NLL change: {vs_zero_shot('all')}. "
         "Accuracy gain (pp): "
         + change_cells(acc_all, "gain_pp", "gain_ci_low_pp", "gain_ci_high_pp", "+.1f")),
        ("COMPASS beats typology-based selection (d = 0.52-0.64)", "yes, against `langsim`",
         f"NLL change: {nll_against('langsim')}"),
        ("The gain is largest where the existing data under-covers usage (gap clusters)",
         "yes: test items split by COMPASS's gap reading",
         f"COMPASS vs zero-shot on gap items: {vs_zero_shot('compass', 'gap')}; on covered items: "
         f"{vs_zero_shot('compass', 'covered')}. Gap minus covered (permutation p): "
         f"{gap_differences(cfg)}"),
    ]
    metrics_file = paths.ecda_metrics(cfg.ecda.language)
    summary_file = paths.ecda_dir(cfg.ecda.language) / "summary.csv"
    if metrics_file.exists() and summary_file.exists():
        ecda = io.read_csv(summary_file, numeric=True).set_index("method")

        def forgetting(m):
            if m not in ecda.index:
                return f"`{m}` not run"
            r = ecda.loc[m]
            parts = []
            if "forgetting_pp" in r:
                parts.append(f"{r['forgetting_pp']:+.1f} [{r['forgetting_ci_low']:+.1f}, "
                             f"{r['forgetting_ci_high']:+.1f}] pp")
            if "forgetting_nll" in r:
                parts.append(f"{r['forgetting_nll']:+.3f} [{r['forgetting_nll_ci_low']:+.3f}, "
                             f"{r['forgetting_nll_ci_high']:+.3f}] nats")
            return f"`{m}` " + " / ".join(parts)

        def final(m):
            if m not in ecda.index:
                return f"`{m}` not run"
            r = ecda.loc[m]
            if "final_accuracy" in r:
                value = interval(r["final_accuracy"], r["final_ci_low"], r["final_ci_high"], 2)
            else:
                value = "NLL " + interval(r["final_nll"], r["final_nll_ci_low"],
                                          r["final_nll_ci_high"], 3)
            return f"`{m}` {value} after {int(r['steps'])} optimizer steps"

        scored = ("accuracy / NLL" if "forgetting_pp" in ecda
                  else "NLL of the answers; accuracy not scored")
        final_what = "final accuracy" if "final_accuracy" in ecda else "final NLL"
        rows += [
            ("ECDA forgets far less than naive updates (-1.6 vs -10.9 pp)",
             "weakly: a few dozen items per step; NLL sees more",
             f"forgetting ({scored}): {forgetting('naive')}; {forgetting('ecda')}"),
            ("ECDA reaches full retraining's accuracy at a fraction of its compute",
             "weakly: intervals of +-0.1-0.2",
             f"{final_what}: {final('ecda')}; {final('full_retrain')}"),
        ]
    rows.append(("+6 to +9 pp on Global-MMLU for 4-8B models", "no: needs the `paper` profile",
                 "not measured here"))
    checks = instrument_checks(cfg)

    def kind(claim: str) -> str:
        if claim.startswith("ECDA"):
            return "forgetting"
        if "gap clusters" in claim:
            return "gap"
        return "" if claim.startswith("+6") else "seeded"

    rows = [(*row, checks.get(kind(row[0]), "")) for row in rows]
    table = pd.DataFrame(rows, columns=["paper's claim", "testable here?", "this build",
                                        "how far to trust it"])
    return (table.to_markdown(index=False) + "\n\nNLL changes in nats per token (negative: "
            "lower loss for the first-named method) with 95% CIs; accuracy in percentage points. "
            + seeds_sentence(cfg) + "\n")
