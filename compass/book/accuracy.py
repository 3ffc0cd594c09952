"""Multiple-choice accuracy: the methods x languages table, COMPASS against each baseline,
the overview figure, and the results chapter's caveats (book/templates/results_caveats.md)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from compass.book.cells import interval, markdown_table, stars
from compass.book.prose import render, seeds_sentence
from compass.book.runs import labels, models_phrase, per_language
from compass.protocols import protocol_of


def results_tables(cfg, generated: Path) -> tuple[str, str, str]:
    """Accuracy/gain table, COMPASS-vs-baselines table and the caveats, from the stages' files."""
    summary = per_language(cfg, "summary.csv")
    versus = per_language(cfg, "compass_vs_baselines.csv")
    order = list(dict.fromkeys(["zero_shot", *cfg.train.methods]))
    rows = []
    for method in order:
        row = {"method": method}
        for lang in labels(cfg):
            for metric, label in (("acc", "acc"), ("acc_norm", "acc_norm")):
                hit = summary[(summary["language"] == lang) & (summary["method"] == method)
                              & (summary["metric"] == metric)]
                if len(hit):
                    h = hit.iloc[0]
                    row[f"{lang} {label}"] = interval(h["accuracy"], h["ci_low"], h["ci_high"], 2)
        rows.append(row)
    n_items = ", ".join(f"{lang} {int(g['n'].iloc[0])}"
                        for lang, g in summary.groupby("language", sort=False))
    table = (markdown_table(pd.DataFrame(rows)) + f"\nTest items per language: {n_items}.\n")
    vs_table = "COMPASS was not among the trained methods.\n"
    if len(versus):
        cells = []
        for (baseline, metric), g in versus.groupby(
                ["baseline", "metric"], sort=False):
            row = {"COMPASS vs": baseline, "metric": metric}
            for _, r in g.iterrows():
                row[r["language"]] = (f"{r['gain_pp']:+.1f} [{r['gain_ci_low_pp']:+.1f}, "
                                      f"{r['gain_ci_high_pp']:+.1f}]" + stars(r["p_holm"]))
            cells.append(row)
        vs_table = markdown_table(pd.DataFrame(cells))
    from compass import plotting

    gains = summary[summary["method"] != "zero_shot"].dropna(subset=["gain_pp"])
    if len(gains):
        fig = plotting.results_overview(gains[gains["metric"] == "acc"])
        fig.savefig(generated / "results_overview.png", dpi=110, bbox_inches="tight")
    acc_versus = versus[versus["metric"] == "acc"] if len(versus) else versus
    n_sig, n_cmp = int(acc_versus["significant"].sum()) if len(acc_versus) else 0, len(acc_versus)
    acc = summary[summary["metric"] == "acc"]
    best_text = ", ".join(  # every method tied at the top is named: no silent tie-breaking
        f"{lang}: "
        + " = ".join(f"`{m}`" for m in g.loc[g["accuracy"] == g["accuracy"].max(), "method"])
        + f" ({g['accuracy'].max():.3f})" for lang, g in acc.groupby("language", sort=False))
    steps = cfg.train.steps * cfg.train.batch_size * cfg.train.grad_accum
    caveats = render("results_caveats.md", best=best_text, significant=n_sig,
                     comparisons=n_cmp, examples=steps, steps=cfg.train.steps,
                     batch_size=cfg.train.batch_size, models=models_phrase(cfg),
                     profile=cfg.profile, describes_paper=protocol_of(cfg).describes_paper,
                     seeds=seeds_sentence(cfg))
    return table, vs_table, caveats
