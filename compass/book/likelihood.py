"""Held-out likelihood: the NLL tables (methods x languages), COMPASS against each
baseline, the gap vs covered split and figure, and NLL against training steps."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from compass import paths
from compass.book.cells import interval, markdown_table, seed_wins, stars
from compass.book.runs import labels, per_language, runs


def likelihood_tables(cfg, generated: Path) -> tuple[str, str, str]:
    """The held-out NLL tables (methods x languages, one "mean [CI]" per cell), COMPASS against
    each baseline on the gap and covered test items, and one line of findings; plus the gap vs
    covered figure. Read from the evaluate stages' nll_summary.csv / nll_vs_baselines.csv."""
    summary = per_language(cfg, "nll_summary.csv")
    versus = per_language(cfg, "nll_vs_baselines.csv")
    nll = summary[summary["metric"] == "nll"]
    order = list(dict.fromkeys(["zero_shot", *cfg.train.methods]))
    rows, split = [], []
    for method in order:
        row, cells = {"method": method}, {"method": method}
        for lang in labels(cfg):
            of = nll[(nll["language"] == lang) & (nll["method"] == method)].set_index("subset")
            if "all" in of.index:
                h = of.loc["all"]
                row[lang] = interval(h["mean"], h["ci_low"], h["ci_high"], 3)
            if method != "zero_shot" and {"gap", "covered"} <= set(of.index):
                cells[lang] = f"{of.loc['gap', 'change']:+.3f} / {of.loc['covered', 'change']:+.3f}"
        rows.append(row)
        if len(cells) > 1:
            split.append(cells)
    counts = (nll[nll["method"] == "zero_shot"].set_index(["language", "subset"])["n"]
              if len(nll) else pd.Series(dtype=float))
    note = "Held-out pairs per language (all / gap / covered): " + "; ".join(
        f"{lang} {int(counts.get((lang, 'all'), 0))} / {int(counts.get((lang, 'gap'), 0))} / "
        f"{int(counts.get((lang, 'covered'), 0))}" for lang in labels(cfg)) + ".\n"
    table = (markdown_table(pd.DataFrame(rows)) + "\n" + note
             + "\n**Change against zero-shot on gap / covered test items** (nats per token; "
             "negative: the adapter lowers the loss there)\n\n"
             + markdown_table(pd.DataFrame(split)))
    vs_text = "COMPASS was not among the trained methods.\n"
    findings = ""
    if len(versus):
        vs = versus[(versus["metric"] == "nll") & (versus["baseline"] != "zero_shot")]
        cells = []
        for (baseline, subset), g in vs.groupby(["baseline", "subset"], sort=False):
            row = {"COMPASS vs": baseline, "test items": subset}
            for _, r in g.iterrows():
                row[r["language"]] = (interval(r["change"], r["change_ci_low"], r["change_ci_high"])
                                      + stars(r["p_holm"]) + seed_wins(r))
            cells.append(row)
        vs_text = markdown_table(pd.DataFrame(cells))
        wins = vs[vs["significant"] & (vs["change"] < 0)]
        losses = vs[vs["significant"] & (vs["change"] > 0)]
        def listed(frame):
            return ", ".join(f"{r.language} {r.subset} vs `{r.baseline}` ({r.change:+.3f})"
                             for r in frame.itertuples()) or "none"
        findings = (f"- Held-out NLL, COMPASS against each baseline (Holm-adjusted p < 0.05 over "
                    f"the baselines of one language and subset): lower NLL in {len(wins)} of "
                    f"{len(vs)} comparisons ({listed(wins[wins['subset'] != 'all'])} on the "
                    f"gap/covered split); higher in {len(losses)} ({listed(losses)}).\n")
    from compass import plotting

    change = nll[(nll["method"] != "zero_shot") & nll["subset"].isin(["gap", "covered"])].dropna(
        subset=["change"])
    if len(change):
        fig = plotting.nll_gap_overview(change)
        for ax in fig.axes:  # one short label per facet (the long one overlapped its neighbours)
            if ax.get_xlabel():
                ax.set_xlabel("NLL change (nats/token)")
        fig.savefig(generated / "nll_overview.png", dpi=110, bbox_inches="tight")
    return table, vs_text, findings


def step_curve(cfg) -> pd.DataFrame:
    """The evaluate stages' nll_by_step.csv rows after training steps (all test items), or an
    empty frame where no earlier step was scored (train.curve_steps empty: the paper profile)."""
    if not cfg.train.curve_steps:
        return pd.DataFrame()
    frame = per_language(cfg, "nll_by_step.csv")
    if frame.empty or frame["step"].nunique() <= 2:
        return pd.DataFrame()
    return frame[(frame["subset"] == "all") & (frame["step"] > 0)]


def steps_section(cfg, generated: Path) -> str:
    """NLL against training steps: COMPASS minus each baseline after each step count (the first
    seed's adapters; paired item-bootstrap CIs), per language, and the per-language figures
    (copied from the evaluate stages); empty without train.curve_steps."""
    frame = step_curve(cfg)
    if frame.empty:
        return "The step curve was not measured in this build (`train.curve_steps` is empty).\n"
    cells = []
    for baseline in [m for m in cfg.train.methods if m != "compass"]:
        row = {"COMPASS vs": baseline}
        for r in frame[frame["method"] == baseline].sort_values(["language", "step"]).itertuples():
            row[f"{r.language} @{int(r.step)}"] = interval(
                r.compass_minus, r.compass_minus_ci_low, r.compass_minus_ci_high)
        cells.append(row)
    figures = []
    for label, lang, model in runs(cfg):
        source = paths.evaluation_dir(lang, model) / "nll_by_step.png"
        if source.exists():
            target = generated / f"nll_by_step_{lang}_{model}.png"
            target.write_bytes(source.read_bytes())
            figures.append(f"```{{figure}} generated/{target.name}\n`{label}`: change in "
                           "held-out NLL against zero-shot of each method's first-seed adapter "
                           "after each number of training steps (left) and COMPASS minus each "
                           "baseline (right), 95% paired item-bootstrap bands (made by "
                           "notebook 03_evaluate).\n```\n")
    return ("COMPASS minus each baseline in held-out NLL (nats per token; negative: COMPASS ahead) "
            "after each number of training steps, first seed, 95% paired CIs over items:\n\n"
            + markdown_table(pd.DataFrame(cells)) + "\n" + "\n".join(figures))


def steps_line(cfg) -> list[str]:
    """One finding line: COMPASS minus `all` and `random` in NLL at each measured step count."""
    frame = step_curve(cfg)
    if frame.empty:
        return []
    frame = frame[frame["method"].isin(["all", "random"])]
    parts = []
    for (label, baseline), g in frame.groupby(["language", "method"], sort=False):
        g = g.sort_values("step")
        parts.append(f"{label} vs `{baseline}` "
                     + " / ".join(f"{v:+.3f}" for v in g["compass_minus"]))
    steps = " / ".join(str(int(s)) for s in sorted(frame["step"].unique()))
    return [f"- With training steps (after {steps} steps, first seed), COMPASS minus the baseline "
            f"in held-out NLL: {'; '.join(parts)} (negative: COMPASS ahead)."]
