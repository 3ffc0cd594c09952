"""One section per table of the paper, laid out by base model: Global-MMLU gains (with the
figure), culturally sensitive / agnostic, MMLU-ProX-Lite, long context and ECDA."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from compass import paths
from compass.book.paper_claims import gain_estimate
from compass.book.paper_rule import PAPER_FINAL, PAPER_FORGETTING, PAPER_GAINS, SOURCE
from compass.book.paper_runs import (
    bare_stars,
    csv_or_empty,
    full_width,
    json_or_empty,
    markdown_rows,
    methods_with_zero_shot,
    on_fixtures,
    paper_name,
    read_per_language,
)
from compass.book.runs import long_context_runs
from compass.languages import display_name


def model_section(model: str, body: str) -> str:
    """One base model's table under its name (and the paper's name for it, or stand-in)."""
    return f"**`{model}`** ({paper_name(model) or 'stand-in'})\n\n" + body + "\n"


def global_mmlu_table(cfg, model: str) -> str:
    """Methods x languages: accuracy, gain over zero-shot [CI] (pp) and the pooled gain."""
    summary = read_per_language(cfg, model, "summary.csv")
    if summary.empty:
        return "No Global-MMLU results for this model.\n"
    acc = summary[summary["metric"] == "acc"]
    paper = {name: figure for names, figure in PAPER_GAINS.values() for name in names}
    rows = []
    for method in methods_with_zero_shot(cfg):
        row = {"method": f"`{method}`"}
        for lang in cfg.targets:
            hit = acc[(acc["language"] == lang) & (acc["method"] == method)]
            if not len(hit):
                continue
            r = hit.iloc[0]
            row[lang] = (f"{r['accuracy']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
                         if method == "zero_shot" else
                         f"{r['accuracy']:.3f}; {r['gain_pp']:+.1f} [{r['gain_ci_low_pp']:+.1f}, "
                         f"{r['gain_ci_high_pp']:+.1f}]{bare_stars(r['p_value'])}")
        est = None if method == "zero_shot" else gain_estimate(cfg, model, method)
        row["mean gain over languages"] = est.cell() if est else ""
        row["paper"] = ({"compass": f"{paper[model]:+.1f} pp" if model in paper else "",
                         "all": "below 0"}.get(method, ""))
        rows.append(row)
    return full_width(markdown_rows(rows))


def gains_by_model(frame: pd.DataFrame, paper: dict[str, float] | None = None):
    """Gain over zero-shot (pp, 95% CI) per method, one panel per base model and one colour per
    language; ``paper`` (model -> the paper's COMPASS gain) draws the figure to compare with.
    Here, not in compass.plotting: every stage that makes figures depends on that module, and
    this figure is the book's alone."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from compass import plotting  # noqa: F401  (the figures' shared seaborn theme)

    models = list(dict.fromkeys(frame["model"]))
    languages = list(dict.fromkeys(frame["language"]))
    methods = list(dict.fromkeys(frame["method"]))
    height = 0.45 * len(methods) * len(languages) ** 0.5 + 1.6
    fig, axes = plt.subplots(1, len(models), figsize=(3.6 * len(models) + 1.2, height),
                             sharey=True, squeeze=False)
    colours = dict(zip(languages, sns.color_palette(n_colors=len(languages))))
    step = 0.6 / max(1, len(languages))
    for ax, model in zip(axes[0], models):
        for k, lang in enumerate(languages):
            rows = frame[(frame["model"] == model) & (frame["language"] == lang)]
            y = [methods.index(m) + (k - (len(languages) - 1) / 2) * step for m in rows["method"]]
            ax.errorbar(rows["gain_pp"], y, xerr=[rows["gain_pp"] - rows["gain_ci_low_pp"],
                                                  rows["gain_ci_high_pp"] - rows["gain_pp"]],
                        fmt="o", capsize=3, color=colours[lang], label=lang)
        ax.axvline(0, color="grey", lw=1)
        if paper and model in paper:
            ax.axvline(paper[model], color="black", lw=1, ls="--", label="paper (COMPASS)")
        ax.set_yticks(range(len(methods)), methods)
        ax.set_title(model, fontsize=10)
        ax.set_xlabel("gain over zero-shot (pp, 95% CI)")
    axes[0][0].invert_yaxis()  # methods top to bottom in the tables' order (shared y axis)
    legend = {}  # one entry per language and the paper's line, from whichever panel has it
    for ax in axes[0]:
        handles, labels = ax.get_legend_handles_labels()
        legend.update({label: h for h, label in zip(handles, labels) if label not in legend})
    fig.legend(legend.values(), legend.keys(), loc="center left", bbox_to_anchor=(1.0, 0.5),
               fontsize=8)
    fig.tight_layout()
    return fig

def gains_figure(cfg, folder: Path) -> str:
    """The gains of every (model, language, method) as one figure, with the paper's line per
    model; returns its MyST block ('' when nothing was scored)."""
    frames = [f.assign(model=m) for m in cfg.train.models
              if len(f := read_per_language(cfg, m, "summary.csv"))]
    if not frames:
        return ""
    gains = pd.concat(frames, ignore_index=True)
    gains = gains[(gains["metric"] == "acc") & (gains["method"] != "zero_shot")].dropna(
        subset=["gain_pp"])
    if gains.empty:
        return ""
    paper = {m: PAPER_GAINS[paper_name(m)][1] for m in cfg.train.models if paper_name(m)}
    fig = gains_by_model(gains, paper)
    fig.savefig(folder / "paper_gains.png", dpi=110, bbox_inches="tight")
    return ("\n```{figure} generated/paper_gains.png\nGain over zero-shot in percentage "
            "points with 95% paired bootstrap CIs, per base model (panel), target language "
            "(colour) and method; dashed: the paper's gain for COMPASS with that model (made by "
            "compass/book/paper_tables.py from the evaluate stages' summary.csv files).\n```\n")


def global_mmlu_section(cfg, folder: Path | None = None) -> str:
    """The Global-MMLU table of every base model, how to read the cells, and the figure (drawn
    into ``folder``, the book's generated/, when given)."""
    body = "".join(model_section(m, global_mmlu_table(cfg, m)) for m in cfg.train.models)
    figure = gains_figure(cfg, folder) if folder is not None else ""
    gains = ", ".join(f"{name} {gain:+.1f}" for name, (_, gain) in PAPER_GAINS.items())
    return (body + "\nCells: accuracy; gain over zero-shot in pp [95% paired bootstrap CI] "
            "(\\* / \\*\\*: paired permutation p < 0.05 / 0.01, unadjusted). Zero-shot: "
            "accuracy [95% CI]. *Mean gain over languages*: the equal-weight mean with its "
            f"interval (what the claims table compares). *Paper*: {SOURCE}: COMPASS's gain per "
            f"model ({gains} pp), and all-data mixing below zero-shot.\n" + figure)


def cultural_table(cfg, model: str) -> str:
    """Methods x (language, CS / CA): accuracy and its change against zero-shot (pp)."""
    frame = read_per_language(cfg, model, "by_cultural_label.csv")
    if frame.empty:
        return "No cultural-label breakdown for this model.\n"
    frame["cs_label"] = frame["cs_label"].astype(str)
    rows = []
    for method in methods_with_zero_shot(cfg):
        row = {"method": f"`{method}`"}
        for lang in cfg.targets:
            for label in ("CS", "CA"):
                hit = frame[(frame["language"] == lang) & (frame["cs_label"] == label)]
                own, zero = hit[hit["method"] == method], hit[hit["method"] == "zero_shot"]
                if not len(own):
                    continue
                a = float(own["accuracy"].iloc[0])
                change = ("" if method == "zero_shot" or not len(zero) else
                          f" ({100 * (a - float(zero['accuracy'].iloc[0])):+.1f})")
                row[f"{lang} {label}"] = f"{a:.3f}{change}"
        rows.append(row)
    counts = []
    for lang in cfg.targets:
        zero = frame[(frame["language"] == lang) & (frame["method"] == "zero_shot")]
        n = dict(zip(zero["cs_label"], zero["n"].astype(int)))
        counts.append(f"{lang} {n.get('CS', 0)} / {n.get('CA', 0)} / {n.get('not annotated', 0)}")
    return (full_width(markdown_rows(rows)) + "\nItems CS / CA / not annotated: "
            + "; ".join(counts) + ".\n")


def cultural_section(cfg) -> str:
    """Markdown: per base model, accuracy on the culturally sensitive and agnostic items, with the
    note on how the cells were computed."""
    body = "".join(model_section(m, cultural_table(cfg, m)) for m in cfg.train.models)
    return (body + "\nCells: accuracy on the items Global-MMLU annotated as culturally sensitive "
            "(CS) or agnostic (CA), with the change against zero-shot in pp on the same items "
            "(no interval: the stage writes per-label means only). Items without an annotation "
            "are counted, not shown. The design brief gives no per-label figure of the paper.\n")


def prox_table(cfg, model: str) -> str:
    """Methods x languages: MMLU-ProX-Lite exact match [CI] and gain over zero-shot."""
    stats = read_per_language(cfg, model, "prox_stats.csv")
    summary = read_per_language(cfg, model, "prox_summary.csv")
    if stats.empty:
        return "Not run for this model.\n"
    rows = []
    for method in methods_with_zero_shot(cfg):
        row = {"method": f"`{method}`"}
        for lang in sorted(set(stats["language"]), key=list(cfg.targets).index):
            hit = stats[(stats["language"] == lang) & (stats["method"] == method)]
            if not len(hit):
                continue
            r = hit.iloc[0]
            cell = f"{r['accuracy']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
            if method != "zero_shot" and not pd.isna(r.get("gain_pp")):
                cell += f"; {r['gain_pp']:+.1f} pp{bare_stars(r.get('p_value'))}"
            row[lang] = cell
        rows.append(row)
    fails = ("; ".join(f"{r.language} `{r.method}` {r.extraction_failure_rate:.2f}"
                       for r in summary.itertuples())
             if "extraction_failure_rate" in summary else "")
    return full_width(markdown_rows(rows)) + (
        f"\nShare of answers with no extractable choice: {fails}.\n" if fails else "")


def prox_section(cfg) -> str:
    """Markdown: per base model, the MMLU-ProX-Lite exact match, or why it was not run."""
    if not cfg.prox_languages():
        why = (" (the fixtures hold no MMLU-ProX-Lite rows with the categories its few-shot "
               "prompts need)" if on_fixtures(cfg) else "")
        return f"Not run in this build: `evaluation.prox.languages` names no target{why}.\n"
    body = "".join(model_section(m, prox_table(cfg, m)) for m in cfg.train.models)
    return (body + f"\nCells: exact match [95% bootstrap CI] of lm-eval's generative "
            f"`mmlu_prox_lite_<lang>` ({cfg.evaluation.prox.num_fewshot}-shot chain of thought, "
            f"{cfg.evaluation.prox.limit or 'all'} items per language); gain over zero-shot in "
            "pp. The design brief gives no MMLU-ProX-Lite figure of the paper.\n")


def long_context_table(cfg, model: str) -> tuple[str, list[str]]:
    """Methods x context length: the mean OneRuler score over tasks and languages (weighted by
    samples), and the notes of (language, model) pairs that could not be scored."""
    frames, notes = [], []
    for lang in [lang for _, lang, m in long_context_runs(cfg) if m == model]:
        note = json_or_empty(paths.long_context_metrics(lang, model)).get("note")
        if note:
            notes.append(f"`{lang}`: {note}.")
        frame = csv_or_empty(paths.long_context_dir(lang, model) / "summary.csv")
        if len(frame):
            frames.append(frame.assign(language=lang))
    if not frames:
        return "No long-context scores for this model.\n", notes
    both = pd.concat(frames, ignore_index=True)
    rows = []
    for method in methods_with_zero_shot(cfg):
        of = both[both["method"] == method]
        if of.empty:
            continue
        row = {"method": f"`{method}`"}
        for length, g in of.groupby("length"):
            row[f"{int(length):,} tokens"] = f"{(g['score'] * g['n']).sum() / g['n'].sum():.2f}"
        rows.append(row)
    zero = both[both["method"] == "zero_shot"]
    n = ", ".join(f"{int(k):,}: {int(v)}" for k, v in zero.groupby("length")["n"].sum().items())
    return (markdown_rows(rows)
            + f"\nSamples per cell (every method answers the same prompts): {n}; "
            f"tasks {', '.join(sorted(set(both['task'])))}; languages "
            f"{', '.join(sorted(set(both['language'])))}.\n"), notes


def long_context_section(cfg) -> str:
    """Markdown: per base model, the long-context (OneRuler) accuracy, with its notes."""
    parts, notes = [], []
    for model in cfg.train.models:
        text, more = long_context_table(cfg, model)
        parts.append(model_section(model, text))
        notes += more
    return ("".join(parts) + "\nCells: share of samples answered correctly (OneRuler's scoring), "
            "averaged over tasks and languages. The design brief gives no long-context figure "
            "of the paper. " + " ".join(notes) + "\n")


def ecda_section(cfg) -> str:
    """The ECDA table (forgetting and final score per method) beside the paper's figures."""
    lang, model = cfg.ecda.language, cfg.ecda.model
    summary = csv_or_empty(paths.ecda_dir(lang) / "summary.csv")
    if summary.empty:
        return "No ECDA run in this build.\n"
    rows = []
    for r in summary.itertuples():
        row = {"method": f"`{r.method}`"}
        if "forgetting_pp" in summary:
            row["forgetting (pp)"] = (f"{r.forgetting_pp:+.1f} [{r.forgetting_ci_low:+.1f}, "
                                      f"{r.forgetting_ci_high:+.1f}]")
            row["paper"] = (f"{PAPER_FORGETTING[r.method]:+.1f}"
                            if r.method in PAPER_FORGETTING else "")
            row["final accuracy"] = (f"{r.final_accuracy:.3f} [{r.final_ci_low:.3f}, "
                                     f"{r.final_ci_high:.3f}]")
            row["paper "] = f"{PAPER_FINAL[r.method]:.3f}" if r.method in PAPER_FINAL else ""
        if "forgetting_nll" in summary:
            row["forgetting (NLL)"] = (f"{r.forgetting_nll:+.3f} [{r.forgetting_nll_ci_low:+.3f}, "
                                       f"{r.forgetting_nll_ci_high:+.3f}]")
        row["updates"] = str(int(r.updates))
        row["optimizer steps"] = str(int(r.steps))
        rows.append(row)
    metrics = json_or_empty(paths.ecda_metrics(lang))
    return (model_section(model, full_width(markdown_rows(rows)))
            + f"\nStream of `{lang}` ({display_name(lang)}), "
            f"{metrics.get('steps', cfg.ecda.steps)} steps, {metrics.get('schedule', '')} shift "
            f"toward {metrics.get('shift', cfg.ecda.shift)}; ECDA's drift monitor triggered "
            f"{metrics.get('triggers', 0)} update(s), {metrics.get('rollbacks', 0)} rolled back. "
            "*Forgetting*: backward transfer (final minus just-learned accuracy on each earlier "
            "step's items; negative: forgot); *final accuracy*: over all steps' items at the end; "
            "*forgetting (NLL)*: the same backward transfer in the NLL of the correct answers "
            "(nats/token; positive: forgot); 95% bootstrap CIs over items; *updates* and "
            f"*optimizer steps*: the compute each method spent. *Paper*: {SOURCE}. The chapter "
            "*Continual adaptation* has the full table and the trigger's calibration.\n")
