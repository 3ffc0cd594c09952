"""Assemble and build the Jupyter Book from the executed notebooks and the stages' metrics.

The static chapters live in book/; this copies them into book/_src with generated tables (made
here from the metrics files the stages wrote) and the executed notebooks, writes the table of
contents for the configured target languages, and runs Jupyter Book 1.x (offline-capable).

The built HTML reads without a network: book/_config.yml serves MathJax from the book's own
_static/ (the pinned `sphinx-mathjax-offline` package) and keeps ipywidgets' CDN loader out;
:func:`offline_problems` checks every page and stylesheet, and :func:`build` refuses a book that
would load anything from the internet or reference a file it does not contain.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pandas as pd

from compass import io, paths
from compass.languages import display_name
from compass.training import catalog

SRC = paths.BOOK / "_src"
STATIC = ("_config.yml", "intro.md", "data.md", "sampling.md", "results.md", "continual.md")


def _markdown_table(frame: pd.DataFrame, floatfmt: str = ".3f") -> str:
    return frame.to_markdown(index=False, floatfmt=floatfmt) + "\n"


def data_sources_line(cfg) -> str:
    """Paper profile: where its data came from, and plainly when that was the test fixtures."""
    if cfg.profile != "paper":
        return ""
    d = cfg.data
    models = ", ".join(f"`{m}`" for m in cfg.train.models)
    if built_on_fixtures(cfg):
        return ("- **built on fixtures**: the paper profile's stages ran on real rows from "
                "`../shared/fixtures` (a sample of Aya, Global-MMLU dev and Lite test rows), with "
                f"{models} standing in for the paper's models and a few items and steps; the numbers "
                "test the pipeline, not the paper's claims\n")
    lines = [f"- data ({d.test_set} Global-MMLU test): Aya {_pinned(d.aux_dataset)}, Global-MMLU "
             f"{_pinned(d.target_dataset)}, Global-MMLU-Lite {_pinned(d.target_lite_dataset)}, "
             f"MMLU-ProX-Lite {_pinned(d.prox_lite_dataset)}\n"]
    lines += [f"- model `{m}`: {_pinned(catalog.source(m, cfg.train.model_sources))}\n"
              for m in cfg.train.models]
    return "".join(lines)


def built_on_fixtures(cfg) -> bool:
    """Whether the paper profile's data came from the test fixtures (../shared/fixtures): then
    its numbers test the pipeline, not the paper's claims."""
    d = cfg.data
    return any("fixtures" in str(s) for s in (d.aux_dataset, d.target_dataset,
                                               d.target_lite_dataset, d.prox_lite_dataset))


def _pinned(source) -> str:
    """A data set or model as the run read it: hub id and revision, or a local path."""
    from compass import hub_ids

    repo, revision = hub_ids.split(str(source))
    if not hub_ids.HUB_ID.match(repo):
        return f"local `{repo}`"
    return f"`{repo}` at revision `{revision}`" if revision else f"`{repo}` (hub main, not pinned)"


def profile_page(cfg) -> str:
    summary = io.read_json(paths.pool_summary())
    targets = ", ".join(f"{display_name(t)} (`{t}`)" for t in cfg.targets)
    return (
        f"- profile: **{cfg.profile}**; seed {cfg.seed}\n" + data_sources_line(cfg) +
        f"- target languages: {targets}\n"
        f"- pool: {summary['pairs']} pairs in {len(summary['languages'])} languages; encoder "
        f"`{summary['encoder']}` ({summary['dim']}-d)\n"
        f"- clustering: {cfg.clustering.algorithm}, K in [{cfg.clustering.k_min}, "
        f"{cfg.clustering.k_max}]; budget {cfg.sampling.budget} items per method\n"
        + coverage_line(cfg) + precision_line(cfg) + training_line(cfg) + stage_times_line()
    )


def coverage_line(cfg) -> str:
    """Paper profile: the evaluations each target gets, and the benchmarks that do not cover it
    (compass.coverage): a target runs without those, and its tables have no row for them."""
    if cfg.profile != "paper":
        return ""
    from compass import coverage

    names = {"mmlu_prox_lite": "MMLU-ProX-Lite", "oneruler": "OneRuler templates"}
    parts = []
    for row in coverage.table(cfg).to_dict("records"):
        lacking = [name for key, name in names.items() if not row[key]]
        parts.append(f"{display_name(row['language'])} (`{row['language']}`): {row['runs']}"
                     + (f" (no {', no '.join(lacking)})" if lacking else ""))
    return "- evaluations per target: " + "; ".join(parts) + "\n"


def precision_line(cfg) -> str:
    """Which float type the adapters were trained and scored in, and why (train.dtype)."""
    used = set()
    for _, lang, model in _runs(cfg):
        for method in cfg.train.methods:
            summary = paths.adapter_dir(lang, model, method) / "summary.json"
            if summary.exists():
                p = io.read_json(summary).get("precision", {})
                used.add(f"{p.get('dtype', '?')} on {p.get('device', '?')}")
    from compass.training import precision

    recorded = precision.recorded()  # the one decision every stage of the run read
    why = (f"; on a CPU `auto` means {recorded.dtype} here, decided once by the `precision` stage: "
           f"{recorded.reason}" if recorded else "")
    return (f"- precision: {', '.join(sorted(used)) or 'unknown'} (`train.dtype = "
            f"{cfg.train.dtype}`{why})\n")


def training_line(cfg) -> str:
    """The training-speed switches the adapters were trained with (from their summaries: what
    ran, not what params say now)."""
    for _, lang, model in _runs(cfg):
        for method in cfg.train.methods:
            summary = paths.adapter_dir(lang, model, method) / "summary.json"
            if summary.exists():
                t = io.read_json(summary).get("train_config", {})
                break
        else:
            continue
        break
    else:
        return ""
    on = {True: "on", False: "off", "auto": "auto (the memory plan decides)"}
    return (f"- training switches (README, \"Training speed\"): packing {on.get(t.get('packing'), '?')}, "
            f"fused loss {t.get('fused_loss', 'off')}, gradient checkpointing "
            f"{on.get(t.get('gradient_checkpointing', False), '?')}, compile "
            f"{on.get(t.get('compile', False), '?')}, LoRA weights {t.get('adapter_dtype', 'float32')}, "
            f"{t.get('processes', 1)} process{'es' if t.get('processes', 1) != 1 else ''}\n"
            + adapters_line(cfg))


def adapters_line(cfg) -> str:
    """Per base model: what its adapters change (modules, kinds, trainable parameters) and, on a
    GPU, how training fit the card (from the first adapter's summary: what ran)."""
    lines = []
    for model in cfg.train.models:
        for lang in cfg.targets:
            summary = paths.adapter_dir(lang, model, cfg.train.methods[0]) / "summary.json"
            if summary.exists():
                s = io.read_json(summary)
                a = s.get("adapted", {})
                plan = f"; memory plan: {s['memory_plan']}" if s.get("memory_plan") else ""
                lines.append(f"- adapters of `{model}`: {a.get('trainable_parameters', 0):,} "
                             f"trainable parameters on {', '.join(a.get('target_modules', []))} "
                             f"({', '.join(a.get('kinds', []))}){plan}\n")
                break
    return "".join(lines)


def stage_times_line() -> str:
    """Wall time per pipeline stage on the machine that built this book (from the timing log,
    which only exists where the stages ran: a book built from pulled results says so)."""
    from compass import timings

    log = timings.read()
    log = log[log["kind"] == "stage"].drop_duplicates("stage", keep="last")
    if log.empty:
        return "- stage times: not recorded here (results were pulled, not computed)\n"
    group = log["stage"].str.extract(r"^\d\d_((?:long_)?[a-z]+)|^([a-z]+)").bfill(axis=1)[0]
    per = log.groupby(group, sort=False)["seconds"].sum()
    return ("- stage times on the machine that built this (s): "
            + ", ".join(f"{name} {seconds:.0f}" for name, seconds in per.items())
            + f"; total {per.sum():.0f}\n")


def data_tables(cfg) -> str:
    summary = io.read_json(paths.pool_summary())
    pool = pd.DataFrame([{"language": k, "name": display_name(k), "pairs": v}
                         for k, v in summary["languages"].items()]).sort_values("pairs", ascending=False)
    per_target = pd.DataFrame([io.read_json(paths.data_metrics(t)) for t in cfg.targets])
    return (_markdown_table(pool) + "\n**Target languages: splits**\n\n"
            + _markdown_table(per_target))


def sampling_tables(cfg) -> str:
    rows, overview, notes = [], [], []
    for lang in cfg.targets:
        m = io.read_json(paths.sampling_metrics(lang))
        overview.append({k: m[k] for k in ("language", "k", "dev_items", "train_items",
                                           "aux_candidates", "aux_eligible", "decontaminated",
                                           "coverage_gap_of_train")})
        if m.get("k_note"):
            notes.append(f"- {display_name(lang)}: {m['k_note']}\n")
        for method, v in m["methods"].items():
            placed = v.get("placed")
            rows.append({"language": lang, "method": method, "selected": v["selected"],
                         "languages": v["n_languages"], "tv_to_target": v["tv_to_target"],
                         "tv_train_plus_selection_to_target": v["tv_train_plus_selection_to_target"],
                         "own / spill / widened": ("" if not placed else
                                                   f"{placed['own']} / {placed['spill']} / {placed['widened']}")})
    return (_markdown_table(pd.DataFrame(overview)) + ("\n" + "".join(notes) if notes else "")
            + "\n**Per method**\n\n" + _markdown_table(pd.DataFrame(rows)))


def _interval(mean: float, low: float, high: float, digits: int = 3) -> str:
    """One table cell: "value [low, high]"."""
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _stars(p: float) -> str:
    """Significance marks, escaped: two in one table cell would otherwise become bold text."""
    return "" if pd.isna(p) else (" \\*\\*" if p < 0.01 else " \\*" if p < 0.05 else "")


def _runs(cfg) -> list[tuple[str, str, str]]:
    """(label, language, model) of every evaluated pair. The label, which heads table columns, is
    the language code when one base model is configured, else 'lang · model'."""
    one = len(cfg.train.models) == 1
    return [(lang if one else f"{lang} · {model}", lang, model)
            for model in cfg.train.models for lang in cfg.targets]


def _labels(cfg) -> list[str]:
    return [label for label, _, _ in _runs(cfg)]


def _per_language(cfg, name: str, optional: bool = False) -> pd.DataFrame:
    """One evaluation file (e.g. summary.csv) of every (language, model), with a language column
    holding its label; pairs whose file has no rows are left out (an empty frame when none has).
    ``optional``: a file only some profiles write (the paper profile scores no held-out NLL)."""
    files = [(label, paths.evaluation_dir(lang, model) / name) for label, lang, model in _runs(cfg)]
    frames = [frame.assign(language=label) for label, file in files
              if not (optional and not file.exists())
              and len(frame := io.read_csv(file, numeric=True))]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def likelihood_tables(cfg) -> tuple[str, str, str]:
    """The held-out NLL tables (methods x languages, one "mean [CI]" per cell), COMPASS against
    each baseline on the gap and covered test items, and one line of findings; plus the gap vs
    covered figure. Read from the evaluate stages' nll_summary.csv / nll_vs_baselines.csv."""
    summary = _per_language(cfg, "nll_summary.csv")
    versus = _per_language(cfg, "nll_vs_baselines.csv")
    nll = summary[summary["metric"] == "nll"]
    order = list(dict.fromkeys(["zero_shot", *cfg.train.methods]))
    rows, split = [], []
    for method in order:
        row, cells = {"method": method}, {"method": method}
        for lang in _labels(cfg):
            of = nll[(nll["language"] == lang) & (nll["method"] == method)].set_index("subset")
            if "all" in of.index:
                h = of.loc["all"]
                row[lang] = _interval(h["mean"], h["ci_low"], h["ci_high"], 3)
            if method != "zero_shot" and {"gap", "covered"} <= set(of.index):
                cells[lang] = f"{of.loc['gap', 'change']:+.3f} / {of.loc['covered', 'change']:+.3f}"
        rows.append(row)
        if len(cells) > 1:
            split.append(cells)
    counts = (nll[nll["method"] == "zero_shot"].set_index(["language", "subset"])["n"]
              if len(nll) else pd.Series(dtype=float))
    note = "Held-out pairs per language (all / gap / covered): " + "; ".join(
        f"{lang} {int(counts.get((lang, 'all'), 0))} / {int(counts.get((lang, 'gap'), 0))} / "
        f"{int(counts.get((lang, 'covered'), 0))}" for lang in _labels(cfg)) + ".\n"
    table = (_markdown_table(pd.DataFrame(rows)) + "\n" + note
             + "\n**Change against zero-shot on gap / covered test items** (nats per token; "
             "negative: the adapter lowers the loss there)\n\n" + _markdown_table(pd.DataFrame(split)))
    vs_text = "COMPASS was not among the trained methods.\n"
    findings = ""
    if len(versus):
        vs = versus[(versus["metric"] == "nll") & (versus["baseline"] != "zero_shot")]
        cells = []
        for (baseline, subset), g in vs.groupby(["baseline", "subset"], sort=False):
            row = {"COMPASS vs": baseline, "test items": subset}
            for _, r in g.iterrows():
                row[r["language"]] = (_interval(r["change"], r["change_ci_low"], r["change_ci_high"])
                                      + _stars(r["p_holm"]) + _seed_wins(r))
            cells.append(row)
        vs_text = _markdown_table(pd.DataFrame(cells))
        wins = vs[vs["significant"] & (vs["change"] < 0)]
        losses = vs[vs["significant"] & (vs["change"] > 0)]
        def listed(frame):
            return ", ".join(f"{r.language} {r.subset} vs `{r.baseline}` ({r.change:+.3f})"
                             for r in frame.itertuples()) or "none"
        findings = (f"- Held-out NLL, COMPASS against each baseline (Holm-adjusted p < 0.05 over the "
                    f"baselines of one language and subset): lower NLL in {len(wins)} of {len(vs)} "
                    f"comparisons ({listed(wins[wins['subset'] != 'all'])} on the gap/covered "
                    f"split); higher in {len(losses)} ({listed(losses)}).\n")
    from compass import plotting

    change = nll[(nll["method"] != "zero_shot") & nll["subset"].isin(["gap", "covered"])].dropna(
        subset=["change"])
    if len(change):
        fig = plotting.nll_gap_overview(change)
        for ax in fig.axes:  # one short label per facet (the long one overlapped its neighbours)
            if ax.get_xlabel():
                ax.set_xlabel("NLL change (nats/token)")
        fig.savefig(SRC / "generated" / "nll_overview.png", dpi=110, bbox_inches="tight")
    return table, vs_text, findings


def _long_context_runs(cfg) -> list[tuple[str, str, str]]:
    """The (label, language, model) runs of the long-context stage (long_context.languages)."""
    return [run for run in _runs(cfg) if run[1] in cfg.long_context.languages]


def _long_context_summaries(cfg) -> tuple[pd.DataFrame, list[str]]:
    """Every (language, model)'s long-context summary.csv with a language column holding its label
    (empty when none has rows), and the notes of pairs that could not be scored."""
    frames, notes = [], []
    for label, lang, model in _long_context_runs(cfg):
        note = io.read_json(paths.long_context_metrics(lang, model)).get("note")
        if note:
            notes.append(f"`{label}`: {note}.")
        frame = io.read_csv(paths.long_context_dir(lang, model) / "summary.csv", numeric=True)
        if len(frame):
            frames.append(frame.assign(language=label))
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), notes


def long_context_table(cfg) -> str:
    """Rows task x context length, columns zero-shot and each adapter: the mean OneRuler score over
    the (language, model) pairs that have one, with the samples behind each cell; from the
    long_context stages' summary.csv files."""
    both, notes = _long_context_summaries(cfg)
    if both.empty:
        return "No long-context scores in this build. " + " ".join(notes) + "\n"
    order = list(dict.fromkeys(["zero_shot", *cfg.train.methods]))
    both["cell"] = both["task"] + " @" + both["length"].astype(int).astype(str)
    cells = list(dict.fromkeys(both["cell"]))
    rows = []
    for method in order:  # methods as rows: the table stays narrow however many tasks and lengths
        of = both[both["method"] == method]
        if of.empty:
            continue
        row = {"method": method}
        for cell in cells:
            m = of[of["cell"] == cell]
            if len(m):
                row[cell] = f"{(m['score'] * m['n']).sum() / m['n'].sum():.2f}"
        rows.append(row)
    per_cell = both[both["method"] == "zero_shot"].groupby("cell", sort=False)["n"].sum()
    languages = ", ".join(sorted(set(both["language"])))
    return (_markdown_table(pd.DataFrame(rows), floatfmt=".2f") + f"\nColumns: task @ context tokens. Languages: "
            f"{languages}; samples per cell: {', '.join(sorted({str(int(n)) for n in per_cell}))} "
            "(each method answers the same prompts). " + " ".join(notes) + "\n")


def long_context_line(cfg) -> list[str]:
    """One finding line for the long-context tasks: the share answered, zero-shot vs adapters."""
    both, _ = _long_context_summaries(cfg)
    if both.empty:
        return []
    right = (both["score"] * both["n"]).groupby(both["method"]).sum()
    asked = both.groupby("method")["n"].sum()
    adapters = [m for m in asked.index if m != "zero_shot"]
    return [f"- Long context (OneRuler-style, {int(asked.get('zero_shot', 0))} prompts per model): "
            f"zero-shot answered {int(right.get('zero_shot', 0))}, the adapters "
            + ", ".join(f"`{m}` {int(right[m])}" for m in adapters)
            + f" of them (contexts of {', '.join(str(n) for n in cfg.long_context.lengths)} tokens)."]


def headline(cfg) -> str:
    """The intro's findings, computed from the stages' outputs: held-out NLL (adapters against
    zero-shot, COMPASS against all-data mixing and random), accuracy, and the continual run."""
    lines = []
    for label, lang, model in _runs(cfg):
        out = paths.evaluation_dir(lang, model)
        nll = io.read_csv(out / "nll_summary.csv", numeric=True)
        nll = nll[(nll["metric"] == "nll") & (nll["subset"] == "all")].set_index("method")
        if "zero_shot" not in nll.index or len(nll) < 2:
            continue
        adapters = nll.drop(index="zero_shot")
        best = adapters["mean"].idxmin()
        who = f"- **{display_name(lang)}** (`{label}`)"
        text = (f"{who}: every adapter lowers the held-out NLL "
                if (adapters["change_ci_high"] < 0).all() else
                f"{who}: adapters change the held-out NLL ")
        text += (f"from {nll.loc['zero_shot', 'mean']:.3f} (zero-shot) to "
                 f"{adapters['mean'].min():.3f}–{adapters['mean'].max():.3f} nats per token; "
                 f"lowest: `{best}`.")
        vs = io.read_csv(out / "nll_vs_baselines.csv", numeric=True)
        vs = vs[(vs["metric"] == "nll") & (vs["subset"] == "all")].set_index("baseline") if len(vs) else vs
        parts = []
        for baseline in ("all", "random"):
            if len(vs) and baseline in vs.index:
                r = vs.loc[baseline]
                wins = _seed_wins(r).strip(" ()")
                parts.append(f"`{baseline}` {r['change']:+.3f} [{r['change_ci_low']:+.3f}, "
                             f"{r['change_ci_high']:+.3f}], Holm p = {r['p_holm']:.3g}"
                             + (f", lower in {wins} seeds" if wins else ""))
        if parts:
            text += (" COMPASS against " + "; against ".join(parts)
                     + " (change in NLL; negative: COMPASS better).")
        lines.append(text)
    items = {io.read_json(paths.evaluation_metrics(lang, model))["items"] for _, lang, model in _runs(cfg)}
    acc = _per_language(cfg, "compass_vs_baselines.csv")
    acc = acc[acc["metric"] == "acc"] if len(acc) else acc
    acc_sig, acc_n = (int(acc["significant"].sum()) if len(acc) else 0), len(acc)
    lines.append(f"- Multiple-choice accuracy separates COMPASS from a baseline in {acc_sig} of "
                 f"{acc_n} comparisons (Holm p < 0.05): with {'/'.join(map(str, sorted(items)))} items per "
                 "language near chance level it cannot see differences of this size.")
    lines += steps_line(cfg)
    lines += long_context_line(cfg)
    metrics_file = paths.ecda_metrics(cfg.ecda.language)
    if metrics_file.exists():
        m = io.read_json(metrics_file)
        if "forgetting_pp" in m:
            forget = "(pp): " + ", ".join(f"`{k}` {v:+.1f}" for k, v in m["forgetting_pp"].items())
        else:  # ecda.scoring: answer: NLL only
            forget = "(NLL, nats/token; positive: forgot): " + ", ".join(
                f"`{k}` {v:+.3f}" for k, v in m["forgetting_nll"].items())
        lines.append(f"- Continual stream of `{m['language']}`: ECDA's drift monitor triggered "
                     f"{m['triggers']} update(s) in {m['steps'] - 1} windows, {m['rollbacks']} "
                     f"update(s) were rolled back; forgetting {forget}.")
    if cfg.profile == "paper":  # its intro opens on the paper's claims (compass.book_paper)
        lines.append("\nThe paper's claims, this run's numbers and whether they agree: the table "
                     "on the first page.")
    else:
        lines.append("\nThe tiny profile runs a 270M-parameter model for a few CPU minutes; these "
                     "numbers test the pipeline and the direction of effects, not the paper's "
                     "effect sizes.")
    return "\n".join(lines) + "\n"


def _change_cells(frame: pd.DataFrame, value: str, low: str, high: str, fmt: str = "+.3f") -> str:
    """ "fa -0.045 [-0.07, -0.02]*; ja ..." for the rows of ``frame`` (one per language)."""
    return "; ".join(f"{r['language']} {r[value]:{fmt}} [{r[low]:{fmt}}, {r[high]:{fmt}}]"
                     + _stars(r.get("p_holm", r.get("p_value"))).replace(" ", "") + _seed_wins(r)
                     for _, r in frame.iterrows()) or "not run"


def _verdict(nll_sum: pd.DataFrame, method: str) -> str:
    """How many languages' held-out NLL ``method`` significantly lowers / raises vs zero-shot."""
    rows = nll_sum[(nll_sum["metric"] == "nll") & (nll_sum["subset"] == "all")
                   & (nll_sum["method"] == method)]
    lower = int(((rows["p_value"] < 0.05) & (rows["change"] < 0)).sum())
    higher = int(((rows["p_value"] < 0.05) & (rows["change"] > 0)).sum())
    return f"**Lower NLL than zero-shot in {lower}, higher in {higher} of {len(rows)} languages.**"


def seeds_sentence(cfg) -> str:
    """What the intervals cover: items, and training seeds where there are several."""
    seeds = cfg.train.seeds
    if seeds > 1:
        return (f"Each adapter was trained with {seeds} seeds: the NLL intervals and p-values come "
                "from a crossed seeds x items model, never narrower than a t test on the seed means "
                f"with {seeds - 1} degrees of freedom (Holm over the baselines); they cover test-item "
                "sampling and training seeds, not the data split or the selection, which are fixed "
                f"per run. (k/{seeds}) after a COMPASS comparison counts the seeds in which COMPASS's "
                "mean NLL is the lower one. Accuracy is the first seed's adapters' (intervals over "
                "items only).")
    return ("One training seed per adapter: the intervals cover test-item sampling, not seed "
            "variation.")


def _seed_wins(r) -> str:
    """" (2/3)": the seeds in which COMPASS is ahead, where several seeds were trained."""
    wins = r.get("seeds_better")
    return f" ({wins})" if isinstance(wins, str) and wins else ""


def _step_curve(cfg) -> pd.DataFrame:
    """The evaluate stages' nll_by_step.csv rows after training steps (all test items), or an
    empty frame where no earlier step was scored (train.curve_steps empty: the paper profile)."""
    if not cfg.train.curve_steps:
        return pd.DataFrame()
    frame = _per_language(cfg, "nll_by_step.csv")
    if frame.empty or frame["step"].nunique() <= 2:
        return pd.DataFrame()
    return frame[(frame["subset"] == "all") & (frame["step"] > 0)]


def steps_section(cfg) -> str:
    """NLL against training steps: COMPASS minus each baseline after each step count (the first
    seed's adapters; paired item-bootstrap CIs), per language, and the per-language figures
    (copied from the evaluate stages); empty without train.curve_steps."""
    frame = _step_curve(cfg)
    if frame.empty:
        return "The step curve was not measured in this build (`train.curve_steps` is empty).\n"
    cells = []
    for baseline in [m for m in cfg.train.methods if m != "compass"]:
        row = {"COMPASS vs": baseline}
        for r in frame[frame["method"] == baseline].sort_values(["language", "step"]).itertuples():
            row[f"{r.language} @{int(r.step)}"] = _interval(
                r.compass_minus, r.compass_minus_ci_low, r.compass_minus_ci_high)
        cells.append(row)
    figures = []
    for label, lang, model in _runs(cfg):
        source = paths.evaluation_dir(lang, model) / "nll_by_step.png"
        if source.exists():
            target = SRC / "generated" / f"nll_by_step_{lang}_{model}.png"
            target.write_bytes(source.read_bytes())
            figures.append(f"```{{figure}} generated/{target.name}\n`{label}`: change in held-out NLL against "
                           "zero-shot of each method's first-seed adapter after each number of "
                           "training steps (left) and COMPASS minus each baseline (right), 95% "
                           "paired item-bootstrap bands (made by notebook 03_evaluate).\n```\n")
    return ("COMPASS minus each baseline in held-out NLL (nats per token; negative: COMPASS ahead) "
            "after each number of training steps, first seed, 95% paired CIs over items:\n\n"
            + _markdown_table(pd.DataFrame(cells)) + "\n" + "\n".join(figures))


def steps_line(cfg) -> list[str]:
    """One finding line: COMPASS minus `all` and `random` in NLL at each measured step count."""
    frame = _step_curve(cfg)
    if frame.empty:
        return []
    frame = frame[frame["method"].isin(["all", "random"])]
    parts = []
    for (label, baseline), g in frame.groupby(["language", "method"], sort=False):
        g = g.sort_values("step")
        parts.append(f"{label} vs `{baseline}` " + " / ".join(f"{v:+.3f}" for v in g["compass_minus"]))
    steps = " / ".join(str(int(s)) for s in sorted(frame["step"].unique()))
    return [f"- With training steps (after {steps} steps, first seed), COMPASS minus the baseline in "
            f"held-out NLL: {'; '.join(parts)} (negative: COMPASS ahead)."]


def gap_differences(cfg) -> str:
    """COMPASS's change on gap items minus on covered items, per language and baseline, with the
    permutation p of the gap labels (likelihood.gap_interaction); negative: more gain in gaps."""
    frame = _per_language(cfg, "nll_gap_interaction.csv", optional=True)
    if frame.empty:
        return "not run"
    return "; ".join(f"{r['language']} vs `{r['baseline']}` {r['difference']:+.3f} (p = {r['p_value']:.3f})"
                     for _, r in frame.iterrows())


def instrument_checks(cfg) -> dict[str, str]:
    """Per kind of test behind a claim, its measured false-positive rate and power, short (the
    section "How far to trust each number" has them in full)."""
    out = {}
    seeded, gap = [], []
    for label, lang, model in _runs(cfg):
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
            out["forgetting"] = (f"no change: intervals exclude 0 in {n['false_positive_rate']:.2f} of "
                                 f"null streams (mean {n['forgetting_pp']:+.1f} pp; final minus best "
                                 f"gave {n['old_definition_pp']:+.1f} pp); planted forgetting: "
                                 + stream_forgetting(cfg)[0])
    return out


def claims_table(cfg) -> str:
    """The paper's claims, whether this profile can test each, and what this build measured
    (numbers from the stages' outputs; * / ** = Holm-adjusted p < 0.05 / 0.01, or the
    permutation p for changes against zero-shot)."""
    nll_vs = _per_language(cfg, "nll_vs_baselines.csv")
    acc_vs = _per_language(cfg, "compass_vs_baselines.csv")
    nll_sum = _per_language(cfg, "nll_summary.csv")
    acc_sum = _per_language(cfg, "summary.csv")

    def nll_against(baseline, subset="all"):
        if nll_vs.empty:
            return "not run"
        rows = nll_vs[(nll_vs["metric"] == "nll") & (nll_vs["subset"] == subset)
                      & (nll_vs["baseline"] == baseline)]
        better = int((rows["significant"] & (rows["change"] < 0)).sum())
        worse = int((rows["significant"] & (rows["change"] > 0)).sum())
        return (f"**COMPASS better in {better}, worse in {worse} of {len(rows)} languages** "
                f"(Holm p < 0.05). " + _change_cells(rows, "change", "change_ci_low", "change_ci_high"))

    def acc_against(baseline):
        if acc_vs.empty:
            return "not run"
        rows = acc_vs[(acc_vs["metric"] == "acc") & (acc_vs["baseline"] == baseline)]
        return _change_cells(rows, "gain_pp", "gain_ci_low_pp", "gain_ci_high_pp", "+.1f")

    def vs_zero_shot(method, subset="all"):
        rows = nll_sum[(nll_sum["metric"] == "nll") & (nll_sum["subset"] == subset)
                       & (nll_sum["method"] == method)]
        return _change_cells(rows, "change", "change_ci_low", "change_ci_high")

    acc_all = acc_sum[(acc_sum["metric"] == "acc") & (acc_sum["method"] == "all")]
    rows = [
        ("COMPASS beats random sampling", "yes (NLL; accuracy near chance)",
         f"NLL change: {nll_against('random')}. Accuracy (pp): {acc_against('random')}"),
        ("COMPASS beats all-data mixing", "yes (NLL; accuracy near chance)",
         f"NLL change: {nll_against('all')}. Accuracy (pp): {acc_against('all')}"),
        ("All-data mixing hurts (below zero-shot)", "partly: 300 items, not the whole pool",
         f"{_verdict(nll_sum, 'all')} `all` vs zero-shot, NLL change: {vs_zero_shot('all')}. "
         "Accuracy gain (pp): "
         + _change_cells(acc_all, "gain_pp", "gain_ci_low_pp", "gain_ci_high_pp", "+.1f")),
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
                value = f"{r['final_accuracy']:.2f} [{r['final_ci_low']:.2f}, {r['final_ci_high']:.2f}]"
            else:
                value = f"NLL {r['final_nll']:.3f} [{r['final_nll_ci_low']:.3f}, {r['final_nll_ci_high']:.3f}]"
            return f"`{m}` {value} after {int(r['steps'])} optimizer steps"

        scored = "accuracy / NLL" if "forgetting_pp" in ecda else "NLL of the answers; accuracy not scored"
        final_what = "final accuracy" if "final_accuracy" in ecda else "final NLL"
        rows += [
            ("ECDA forgets far less than naive updates (-1.6 vs -10.9 pp)",
             "weakly: a few dozen items per step; NLL sees more",
             f"forgetting ({scored}): {forgetting('naive')}; {forgetting('ecda')}"),
            ("ECDA reaches full retraining's accuracy at a fraction of its compute",
             "weakly: intervals of +-0.1-0.2", f"{final_what}: {final('ecda')}; {final('full_retrain')}"),
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


def _rate(value, low, high) -> str:
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def stream_forgetting(cfg) -> tuple[str, str]:
    """Whether this build's stream (meant as forgetting's positive control) made naive updates
    forget: a verdict ("yes", "not shown" or "not run") and naive's NLL backward transfer with its
    interval, read from the ECDA summary."""
    file = paths.ecda_dir(cfg.ecda.language) / "summary.csv"
    if not file.exists():
        return "not run", ""
    summary = io.read_csv(file, numeric=True).set_index("method")
    if "naive" not in summary.index or "forgetting_nll" not in summary.columns:
        return "not run", "no naive method"
    r = summary.loc["naive"]
    cell = (f"naive's NLL forgetting on this build's stream {r['forgetting_nll']:+.3f} "
            f"[{r['forgetting_nll_ci_low']:+.3f}, {r['forgetting_nll_ci_high']:+.3f}] nats")
    if r["forgetting_nll_ci_low"] > 0:
        return "yes", cell
    return "not shown", (f"{cell}, an interval that includes 0; this stream planted no forgetting "
                         "the instrument could find, so its power is not measured here")


def _reductions(summary: pd.DataFrame) -> str:
    """Which methods forgot less than naive updates on the same items (paired intervals)."""
    if "forgetting_nll_vs_naive" not in summary:
        return ""
    verdicts = []
    for method, r in summary.drop(index=["naive", "no_update"], errors="ignore").iterrows():
        low, high = r["forgetting_nll_vs_naive_ci_low"], r["forgetting_nll_vs_naive_ci_high"]
        word = "less" if high < 0 else "more" if low > 0 else "no difference shown"
        verdicts.append(f"`{method}` {r['forgetting_nll_vs_naive']:+.3f} [{low:+.3f}, {high:+.3f}] "
                        f"({word})")
    return ("; forgetting minus naive's on the same items: " + ", ".join(verdicts)) if verdicts else ""


def _stream_forgetting_answer(cfg) -> str:
    verdict, detail = stream_forgetting(cfg)
    answer = {"yes": "Yes", "not shown": "No"}.get(verdict, verdict.capitalize())
    if verdict == "yes":  # then the question the paper asks: who forgot less
        summary = io.read_csv(paths.ecda_dir(cfg.ecda.language) / "summary.csv", numeric=True)
        detail += _reductions(summary.set_index("method"))
    return f"{answer}: {detail}" if detail else answer


def _stream_forgetting_text(cfg) -> str:
    verdict, detail = stream_forgetting(cfg)
    return f"{verdict}: {detail}" if detail else verdict


def trust_rows(cfg) -> list[dict]:
    """Each instrument's false-positive rate under no effect and its power at a planted effect,
    as this build measured them (every number from a stage's metrics)."""
    rows = []
    for label, lang, model in _runs(cfg):
        metrics_file = paths.evaluation_metrics(lang, model)
        if not metrics_file.exists():
            continue
        m = io.read_json(metrics_file)
        seeded = m.get("seeded_controls") or {}
        if seeded:
            rows.append({
                "instrument": f"COMPASS vs a baseline, held-out NLL (`{label}`)",
                "no effect: rejects": _rate(seeded["false_positive_rate"], seeded["fp_ci_low"],
                                            seeded["fp_ci_high"]),
                "planted effect: detects": "; ".join(
                    f"{seeded[k]:.2f} at {k.split('_', 1)[1]} nats" for k in seeded if k.startswith("power_")),
                "measured how": (f"simulated at this run's shape: {seeded['seeds']} seeds x "
                                 f"{seeded['items']} items, SDs of COMPASS minus `{seeded['baseline']}`"
                                 f" (seed / item / noise) {seeded['difference_seed_sd']:.3f} / "
                                 f"{seeded['difference_item_sd']:.3f} / {seeded['difference_noise_sd']:.3f}")})
        gap = m.get("gap_controls") or {}
        if gap:
            rows.append({
                "instrument": f"gap vs covered, COMPASS minus `{gap['baseline']}` (`{label}`)",
                "no effect: rejects": _rate(gap["false_positive_rate"], gap["fp_ci_low"], gap["fp_ci_high"]),
                "planted effect: detects": (f"{_rate(gap['power'], gap['power_ci_low'], gap['power_ci_high'])}"
                                            f" at {gap['planted']:g} nats"),
                "measured how": (f"this run's per-item changes ({gap['gap_items']} gap, "
                                 f"{gap['covered_items']} covered items): gap labels shuffled; "
                                 "a drop planted on the gap items")})
    metrics_file = paths.ecda_metrics(cfg.ecda.language)
    if metrics_file.exists():
        e = io.read_json(metrics_file)
        for null in e.get("forgetting_null", []):
            if null["profile"] == "never":
                continue
            rows.append({
                "instrument": f"forgetting (backward transfer), a method updating {null['profile']}",
                "no effect: rejects": (_rate(null["false_positive_rate"], null["false_positive_ci_low"],
                                             null["false_positive_ci_high"])
                                       + f"; mean {null['forgetting_pp']:+.1f} pp (final minus best: "
                                       f"{null['old_definition_pp']:+.1f} pp)"),
                "planted effect: detects": _stream_forgetting_text(cfg),
                "measured how": (f"{null['simulations']} simulated streams of {null['steps']} steps, "
                                 f"{null['items_per_window']} items per step, 30% of outcomes "
                                 "redrawn per update")})
        control = e.get("no_drift_control")
        calibration = paths.ecda_calibration(cfg.ecda.language)
        if control and calibration.exists():
            frame = io.read_csv(calibration, numeric=True)
            t0 = frame[frame["reference"] == "T0"].set_index("rule")
            for rule in ("calibrated", "fixed"):
                r = t0.loc[rule]
                detections = [c for c in t0.columns if c.startswith("detection_")]
                rows.append({
                    "instrument": f"drift trigger, {rule} rule" + (" (used)" if r["used"] else ""),
                    "no effect: rejects": (_rate(control["false_alarm_rate"], control["ci_low"],
                                                 control["ci_high"]) + " (real T0 windows)"
                                           if rule == "calibrated" else
                                           _rate(r["false_alarm"], r["false_alarm_ci_low"],
                                                 r["false_alarm_ci_high"]) + " (simulated)"),
                    "planted effect: detects": "; ".join(f"{r[c]:.2f} at s = {c.split('_', 1)[1]}"
                                                         for c in detections),
                    "measured how": f"target {control['target']:g}; planted shifts simulated"})
        planted = e.get("planted_regression")
        if planted:
            rows.append({"instrument": "rollback guard", "no effect: rejects": "",
                         "planted effect: detects": "caught" if planted["caught"] else "NOT caught",
                         "measured how": f"one corrupted update at T{planted['t']} ({planted['rule'] or 'no rule'})"})
    sampling = paths.sampling_metrics(cfg.targets[0])
    if sampling.exists():
        recall = io.read_json(sampling).get("decontamination_recall") or []
        if recall:
            rows.append({"instrument": "decontamination (near-copies and translations)",
                         "no effect: rejects": "",
                         "planted effect: detects": "; ".join(
                             f"{r['recall']:.2f} of {r['pairs']:,} {r['parallel_set']} translations"
                             for r in recall),
                         "measured how": "OneRuler's parallel templates and nouns, 26 languages, "
                                         "every ordered pair"})
    return rows


def trust_table(cfg) -> str:
    """The section beside the claims table: how far to trust each number."""
    rows = trust_rows(cfg)
    if not rows:
        return "No instrument controls were run in this build.\n"
    return (pd.DataFrame(rows).to_markdown(index=False) + "\n\n*No effect: rejects*: how often the "
            "instrument reports an effect where there is none by construction (its false-positive "
            "rate, nominally 0.05, with a 95% Clopper-Pearson interval). *Planted effect: detects*: "
            "how often it finds an effect of known size planted into the data (its power).\n")


def results_tables(cfg) -> tuple[str, str, str]:
    """Accuracy/gain table, COMPASS-vs-baselines table and the caveats, from the stages' files."""
    summary = _per_language(cfg, "summary.csv")
    versus = _per_language(cfg, "compass_vs_baselines.csv")
    order = list(dict.fromkeys(["zero_shot", *cfg.train.methods]))
    rows = []
    for method in order:
        row = {"method": method}
        for lang in _labels(cfg):
            for metric, label in (("acc", "acc"), ("acc_norm", "acc_norm")):
                hit = summary[(summary["language"] == lang) & (summary["method"] == method)
                              & (summary["metric"] == metric)]
                if len(hit):
                    h = hit.iloc[0]
                    row[f"{lang} {label}"] = _interval(h["accuracy"], h["ci_low"], h["ci_high"], 2)
        rows.append(row)
    n_items = ", ".join(f"{lang} {int(g['n'].iloc[0])}" for lang, g in summary.groupby("language", sort=False))
    table = (_markdown_table(pd.DataFrame(rows)) + f"\nTest items per language: {n_items}.\n")
    vs_table = "COMPASS was not among the trained methods.\n"
    if len(versus):
        cells = []
        for (baseline, metric), g in versus.groupby(
                ["baseline", "metric"], sort=False):
            row = {"COMPASS vs": baseline, "metric": metric}
            for _, r in g.iterrows():
                row[r["language"]] = (f"{r['gain_pp']:+.1f} [{r['gain_ci_low_pp']:+.1f}, "
                                      f"{r['gain_ci_high_pp']:+.1f}]" + _stars(r["p_holm"]))
            cells.append(row)
        vs_table = _markdown_table(pd.DataFrame(cells))
    from compass import plotting

    gains = summary[summary["method"] != "zero_shot"].dropna(subset=["gain_pp"])
    if len(gains):
        fig = plotting.results_overview(gains[gains["metric"] == "acc"])
        fig.savefig(SRC / "generated" / "results_overview.png", dpi=110, bbox_inches="tight")
    acc_versus = versus[versus["metric"] == "acc"] if len(versus) else versus
    n_sig, n_cmp = int(acc_versus["significant"].sum()) if len(acc_versus) else 0, len(acc_versus)
    acc = summary[summary["metric"] == "acc"]
    best_text = ", ".join(  # every method tied at the top is named: no silent tie-breaking
        f"{lang}: " + " = ".join(f"`{m}`" for m in g.loc[g["accuracy"] == g["accuracy"].max(), "method"])
        + f" ({g['accuracy'].max():.3f})" for lang, g in acc.groupby("language", sort=False))
    steps = cfg.train.steps * cfg.train.batch_size * cfg.train.grad_accum
    caveats = (
        f"- Highest accuracy per language in this build (acc, zero-shot included): {best_text}. COMPASS beats a baseline "
        f"significantly (acc, Holm-adjusted p < 0.05) in {n_sig} of {n_cmp} comparisons.\n"
        "- `acc_norm` (log-likelihood per character) is far above `acc` here: the true responses "
        "and the distractors differ a lot in length, and summed log-likelihood favours short "
        "answers. Both are reported; neither was chosen after seeing the results.\n"
        f"- Each adapter saw {steps} training examples ({cfg.train.steps} steps of "
        f"{cfg.train.batch_size}) on a 270M-parameter model: a 2-core CPU budget. That is far "
        "too little training to move multiple-choice accuracy, so accuracy differences between "
        "methods here are small and within the intervals; the held-out NLL above does move. This "
        "profile tests that the pipeline, the selection and the statistics work end to end, not "
        "the size of the paper's effects.\n"
        "- The tiny test items are chit-chat responses from a different topic (chatterbot-corpus), "
        "not knowledge questions as in Global-MMLU; a base model can often spot the odd topic "
        "without any adaptation, which caps what an adapter can add.\n"
        "- The paper's claims (+6 to +9 pp over zero-shot on Global-MMLU for 4-8B models, all-data "
        "mixing below zero-shot, d = 0.52-0.64 against LangRank/LangSim) need the `paper` profile: "
        "the real data, models and GPUs. Nothing on this page confirms or refutes them.\n"
        "- " + seeds_sentence(cfg) + "\n"
    )
    return table, vs_table, caveats


def continual_table(cfg) -> str:
    lang = cfg.ecda.language
    frame = io.read_csv(paths.ecda_dir(lang) / "summary.csv", numeric=True)
    metrics = io.read_json(paths.ecda_metrics(lang))
    planted = _planted_sentence(metrics.get("planted_regression"), metrics.get("scoring", "choices"))
    head = (f"Stream of `{lang}` ({metrics['steps']} steps, {metrics['schedule']} shift toward "
            f"{metrics['shift']}, updates trained on {metrics.get('train_on', 'selection')}): ECDA "
            f"triggered {metrics['triggers']} update(s); {metrics['rollbacks']} update(s) were "
            f"rolled back (only ECDA's updates are guarded).{planted}\n\n")
    compute = {"updates": frame["updates"].astype(int), "optimizer steps": frame["steps"].astype(int)}
    text = head
    if "forgetting_pp" in frame:  # ecda.scoring: choices
        columns = {
            "method": frame["method"],
            "forgetting (pp)": [f"{r.forgetting_pp:+.1f} [{r.forgetting_ci_low:+.1f}, {r.forgetting_ci_high:+.1f}]"
                                for r in frame.itertuples()],
            "plasticity": [_interval(r.plasticity, r.plasticity_ci_low, r.plasticity_ci_high, 2)
                           for r in frame.itertuples()],
            "final accuracy": [_interval(r.final_accuracy, r.final_ci_low, r.final_ci_high, 2)
                               for r in frame.itertuples()]}
        text += _markdown_table(pd.DataFrame({**columns, **compute}))
        compute = {}
        text += ("\n**The same stream in held-out likelihood**: NLL forgetting is the final mean NLL "
                 "minus the mean right after each earlier step was learned (positive: the adapter "
                 "forgot).\n\n")
    else:
        text += ("The stream scores each item's correct answer alone (`ecda.scoring: answer`): its "
                 "NLL in nats/token, not accuracy. Forgetting is the final mean NLL minus the mean "
                 "right after each earlier step was learned (positive: the adapter forgot); "
                 "plasticity, the NLL on each step's items right after that step.\n\n")
    if "forgetting_nll" in frame:  # nats/token of the correct answers; positive = forgot
        nll = pd.DataFrame({
            "method": frame["method"],
            "forgetting (NLL, nats/token)": [
                f"{r.forgetting_nll:+.3f} [{r.forgetting_nll_ci_low:+.3f}, {r.forgetting_nll_ci_high:+.3f}]"
                for r in frame.itertuples()],
            **({"forgetting minus naive's": [
                f"{r.forgetting_nll_vs_naive:+.3f} [{r.forgetting_nll_vs_naive_ci_low:+.3f}, "
                f"{r.forgetting_nll_vs_naive_ci_high:+.3f}]" for r in frame.itertuples()]}
               if "forgetting_nll_vs_naive" in frame else {}),
            **({"plasticity (NLL)": [_interval(r.plasticity_nll, r.plasticity_nll_ci_low,
                                               r.plasticity_nll_ci_high, 3) for r in frame.itertuples()]}
               if "plasticity_nll" in frame else {}),
            "final NLL": [_interval(r.final_nll, r.final_nll_ci_low, r.final_nll_ci_high, 3)
                          for r in frame.itertuples()]})
        text += _markdown_table(nll)
        spent = pd.DataFrame({"method": frame["method"], **compute,
                              "tokens trained": frame["tokens"].astype(int)})
        text += ("\n**Compute each method spent** (real updates, kept or rolled back; the planted "
                 "one is not charged):\n\n" + _markdown_table(spent))
    windows_file = paths.ecda_dir(lang) / "forgetting_by_window.csv"
    if windows_file.exists():
        windows = io.read_csv(windows_file, numeric=True)
        if "forgetting_nll" in windows and len(windows):
            wide = windows.assign(cell=[
                f"{r.forgetting_nll:+.3f} [{r.forgetting_nll_ci_low:+.3f}, {r.forgetting_nll_ci_high:+.3f}]"
                for r in windows.itertuples()]).pivot(index="method", columns="window", values="cell")
            wide = wide.reindex(frame["method"]).rename(columns=lambda j: f"T{j}'s items")
            text += ("\n**Forgetting per earlier window** (NLL, nats/token): the T0 window is the usage "
                     "the adapter was built for; later windows were learned by an adapter the shift "
                     "had already changed.\n\n" + _markdown_table(wide.reset_index()))
    if cfg.ecda.shift in ("book", "language"):  # the streams meant to make naive updates forget
        text += ("\n**Did this stream make naive updates forget?** "
                 + _stream_forgetting_answer(cfg) + "." + _guard_sentence(lang) + "\n")
    return text


def _guard_sentence(lang: str) -> str:
    """Where ECDA's low forgetting is its guard's doing (every update it trained was rolled
    back, so it served its starting adapter), say so: it is not EWC or replay at work."""
    file = paths.ecda_dir(lang) / "events.csv"
    if not file.exists():
        return ""
    try:
        events = io.read_csv(file)
    except pd.errors.EmptyDataError:  # no method updated at all
        return ""
    if "method" not in events:
        return ""
    mine = events[(events["method"] == "ecda") & (events["planted"].astype(str) != "True")]
    if not len(mine) or (mine["event"] != "rolled_back").any():
        return ""
    return (f" ECDA's number is its guard's: the monitor triggered {len(mine)} update(s) and the "
            "guard rolled back every one (the validation NLL rose), so ECDA served its starting "
            "adapter throughout, as `no_update` did; what EWC and replay do on their own is in the "
            "`ewc` and `random_rehearsal` rows.")


def _planted_sentence(planted: dict | None, scoring: str = "choices") -> str:
    """The planted regression (ecda.planted_regression_at): a check of the rollback guard, not a
    method's result, so it is reported apart from the table. Accuracy only where the stream
    scores choices (``ecda.scoring``)."""
    if not planted:
        return ""
    verdict = ("rolled back, and ECDA's served weights stayed bit-identical" if planted["caught"]
               else "**not caught** by the guard")
    accuracy = (f", accuracy {planted['old_val']:.2f} -> {planted['new_val']:.2f}"
                if scoring == "choices" else "")
    return (f" A planted bad update (corrupted data) tried on ECDA's adapter at T{planted['t']} was "
            f"{verdict} (validation NLL {planted['old_nll']:.3f} -> {planted['new_nll']:.3f} "
            f"nats/token{accuracy}); it is not counted in any column below.")


def toc(cfg) -> str:
    def chapter(page, notebook):
        lines = [f"  - file: {page}", "    sections:"]
        stems = [f"{notebook}_{t}" for t in cfg.targets] if notebook < "02" else \
            [f"{notebook}_{m}_{t}" for _, t, m in _runs(cfg)]
        lines += [f"      - file: notebooks/{stem}" for stem in stems]
        return lines

    lines = ["format: jb-book", "root: intro", "chapters:",
             *(["  - file: paper"] if cfg.profile == "paper" else []),  # the paper's tables first
             *chapter("data", "00_data"), *chapter("sampling", "01_sampling"),
             *chapter("results", "03_evaluate")]
    lines += [f"      - file: notebooks/02_train_{m}_{t}" for _, t, m in _runs(cfg)]
    lines += [f"      - file: notebooks/05_long_context_{m}_{t}" for _, t, m in _long_context_runs(cfg)]
    lines += ["  - file: continual", "    sections:", "      - file: notebooks/04_ecda"]
    return "\n".join(lines) + "\n"


def calibration_table(cfg) -> str:
    """The drift trigger's two rules against the starting reference (the ecda stage's
    calibration.csv): each one's threshold, false-alarm rate on simulated no-drift windows [95%
    Clopper-Pearson CI] and detection rate per planted shift strength; which rule the run used;
    and the negative control on the real stream's T0 population."""
    lang = cfg.ecda.language
    frame = io.read_csv(paths.ecda_calibration(lang), numeric=True)
    metrics = io.read_json(paths.ecda_metrics(lang))
    t0 = frame[frame["reference"] == "T0"]
    first = t0.iloc[0]
    detections = [c for c in t0.columns if c.startswith("detection_")]
    rows = [{"rule": f"{r['rule']}{' (used)' if r['used'] else ''}",
             "delta": (f"{r['delta']:.4f}" + (" (median)" if r["rule"] == "calibrated" else "")),
             "false alarms [95% CI]": (f"{r['false_alarm']:.3f} [{r['false_alarm_ci_low']:.3f}, "
                                       f"{r['false_alarm_ci_high']:.3f}]"),
             **{f"detected, s = {c.split('_', 1)[1]}": f"{r[c]:.2f}" for c in detections}}
            for _, r in t0.iterrows()]
    target = t0.loc[t0["rule"] == "calibrated", "target_false_alarm"].iloc[0]
    control = metrics.get("no_drift_control")
    real = ("" if not control else
            f" On the real stream, {control['draws']} pairs of no-drift windows drawn from the T0 "
            f"population ({control['population']} usage pairs, assigned to clusters as the stream's "
            f"windows are) fired {control['false_alarm_rate']:.3f} of the time "
            f"[{control['ci_low']:.3f}, {control['ci_high']:.3f}] (target {control['target']:g}).")
    head = (f"This run's drift monitor used the {metrics['delta_mode']} rule. Simulation: windows "
            f"of {int(first['window'])} inputs, K = {int(first['k'])} clusters, a reference of "
            f"{int(first['reference_size'])} labels (the T0 window), target false-alarm rate "
            f"{target:g}, {int(first['draws'])} simulated windows per column; the calibrated "
            "rule's `delta` is the median permutation threshold (each check computes its own, in "
            f"the notebook's drift table).{real} *Detected, s*: the share of windows with mass s "
            "moved onto random clusters that trigger.\n\n")
    return head + pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True) + "\n"


def page_title(heading: str, stem: str, cfg) -> str:
    """A notebook page's title with what it ran on: every language runs the same notebook, and
    the sidebar would otherwise list identical titles ("Training the adapters of one language"
    three times). ``stem`` is the executed copy's name, e.g. 03_evaluate_fa or 04_ecda."""
    lang = next((t for t in cfg.targets if stem.endswith(f"_{t}")), None)
    if lang is None and stem.startswith("04_ecda"):
        lang = cfg.ecda.language
    if lang is None:
        return heading
    name = display_name(lang)
    model = next((m for m in cfg.train.models if f"_{m}_" in stem), None)
    if model is not None and len(cfg.train.models) > 1:
        name = f"{name} ({model})"
    if "one language" in heading:
        return heading.replace("one language", name)
    head, colon, rest = heading.partition(":")
    return f"{head} for {name}:{rest}" if colon else f"{heading}: {name}"


WIDGET = "application/vnd.jupyter.widget-view+json"


def copy_titled(source: Path, target: Path, cfg) -> None:
    """Copy an executed notebook into the book, its first heading naming the language, without
    progress-bar widgets (live feedback for whoever runs it; in the book only their frozen text,
    e.g. "Loading weights: 0%", would show)."""
    import json

    notebook = json.loads(source.read_text(encoding="utf-8"))
    for cell in notebook.get("cells", []):
        if "outputs" in cell:
            cell["outputs"] = [o for o in cell["outputs"] if WIDGET not in o.get("data", {})]
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") != "markdown":
            continue
        text = "".join(cell.get("source", []))
        if text.startswith("# "):
            first, _, rest = text.partition("\n")
            cell["source"] = "# " + page_title(first[2:].strip(), source.stem, cfg) + "\n" + rest
        break
    target.write_text(json.dumps(notebook, ensure_ascii=False, indent=1), encoding="utf-8")


def assemble(cfg) -> Path:
    if SRC.exists():
        shutil.rmtree(SRC)
    (SRC / "generated").mkdir(parents=True)
    (SRC / "notebooks").mkdir()
    for name in STATIC:
        shutil.copy2(paths.BOOK / name, SRC / name)
    (SRC / "generated" / "profile.md").write_text(profile_page(cfg), encoding="utf-8")
    (SRC / "generated" / "headline.md").write_text(headline(cfg), encoding="utf-8")
    (SRC / "generated" / "data_tables.md").write_text(data_tables(cfg), encoding="utf-8")
    (SRC / "generated" / "sampling_tables.md").write_text(sampling_tables(cfg), encoding="utf-8")
    table, versus, caveats = results_tables(cfg)
    nll_table, nll_versus, nll_findings = likelihood_tables(cfg)
    (SRC / "generated" / "nll_table.md").write_text(nll_table, encoding="utf-8")
    (SRC / "generated" / "nll_versus.md").write_text(nll_versus, encoding="utf-8")
    (SRC / "generated" / "claims.md").write_text(claims_table(cfg), encoding="utf-8")
    (SRC / "generated" / "trust.md").write_text(trust_table(cfg), encoding="utf-8")
    (SRC / "generated" / "nll_by_step.md").write_text(steps_section(cfg), encoding="utf-8")
    (SRC / "generated" / "long_context.md").write_text(long_context_table(cfg), encoding="utf-8")
    caveats = nll_findings + caveats
    (SRC / "generated" / "results_tables.md").write_text(table, encoding="utf-8")
    (SRC / "generated" / "results_versus.md").write_text(versus, encoding="utf-8")
    (SRC / "generated" / "results_caveats.md").write_text(caveats, encoding="utf-8")
    executed = [paths.executed_notebook(nb, lang) for nb in ("00_data", "01_sampling")
                for lang in cfg.targets]
    executed += [paths.executed_notebook(nb, lang, model) for nb in ("02_train", "03_evaluate")
                 for _, lang, model in _runs(cfg)]
    executed += [paths.executed_notebook("05_long_context", lang, model)
                 for _, lang, model in _long_context_runs(cfg)]
    executed.append(paths.executed_notebook("04_ecda"))
    (SRC / "generated" / "continual_table.md").write_text(continual_table(cfg), encoding="utf-8")
    (SRC / "generated" / "calibration_table.md").write_text(calibration_table(cfg), encoding="utf-8")
    for source in executed:
        if not source.exists():
            raise FileNotFoundError(f"{source} is missing: run `dvc repro` to execute it")
        copy_titled(source, SRC / "notebooks" / source.name, cfg)
    if cfg.profile == "paper":  # its own pages and the paper's tables (compass.book_paper)
        from compass import book_paper

        book_paper.write(cfg, SRC)
    (SRC / "_toc.yml").write_text(toc(cfg), encoding="utf-8")
    return SRC


# Attributes through which a page makes the browser load something (links such as <a href> are not
# loads: a reader may follow them or not).
_ASSET_ATTRS = {"script": ("src",), "link": ("href",), "img": ("src", "srcset"),
                "source": ("src", "srcset"), "video": ("src", "poster"), "audio": ("src",),
                "track": ("src",), "iframe": ("src",), "embed": ("src",), "object": ("data",),
                "input": ("src",)}
_CSS_URL = re.compile(r"""url\(\s*(['"]?)(.*?)\1\s*\)|@import\s+(['"])(.*?)\3""", re.I)


class _AssetParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.refs: list[tuple[str, str]] = []   # (what, reference)
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in _ASSET_ATTRS.get(tag, ()):
            value = attrs.get(name)
            if not value:
                continue
            if name == "srcset":  # "a.png 1x, b.png 2x"
                self.refs += [(f"<{tag} srcset>", part.split()[0])
                              for part in value.split(",") if part.strip()]
            else:
                self.refs.append((f"<{tag} {name}>", value.strip()))
        if attrs.get("style"):
            self.refs += [("style url()", ref) for ref in _css_refs(attrs["style"])]
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.refs += [("<style> url()", ref) for ref in _css_refs(data)]


def _css_refs(css: str) -> list[str]:
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    return [(m.group(2) if m.group(2) is not None else m.group(4)).strip()
            for m in _CSS_URL.finditer(css)]


def _check_ref(ref: str, source: Path, root: Path) -> str | None:
    """Why ``ref`` (found in ``source``) would not load offline, or None when it would."""
    parts = urlsplit(ref)
    if ref.startswith("//") or parts.scheme in ("http", "https", "ftp", "ws", "wss"):
        return "loads from the network"
    if parts.scheme == "data" or (not parts.path and not parts.netloc):  # data: URI, "#fragment"
        return None
    if parts.scheme:
        return f"unsupported scheme {parts.scheme}:"
    if parts.path.startswith("/"):
        return "absolute path (breaks when the book is served from a sub-path or a file)"
    target = (source.parent / unquote(parts.path)).resolve()
    if not target.is_relative_to(root.resolve()):
        return "points outside the built book"
    if not target.exists():
        return "missing from the built book"
    return None


def offline_problems(html_dir: Path) -> list[str]:
    """Every asset the built book would fetch from the network, or references but does not contain.

    Looks at each page's ``<script src>``, ``<link href>``, ``<img src>`` (and the other loading
    tags), inline ``style``/``<style>`` ``url()`` and every stylesheet's ``url()`` and ``@import``.
    ``data:`` URIs and plain links (``<a href>``) are fine. One line per problem; empty when the
    book reads fully offline.
    """
    root = Path(html_dir)
    problems = []
    for page in sorted(root.rglob("*.html")):
        if page.relative_to(root).parts[0] == "_static":  # theme templates shipped as files
            continue
        parser = _AssetParser()
        parser.feed(page.read_text(encoding="utf-8", errors="replace"))
        for what, ref in parser.refs:
            why = _check_ref(ref, page, root)
            if why:
                problems.append(f"{page.relative_to(root)}: {what} {ref!r} {why}")
    for sheet in sorted(root.rglob("*.css")):
        for ref in _css_refs(sheet.read_text(encoding="utf-8", errors="replace")):
            why = _check_ref(ref, sheet, root)
            if why:
                problems.append(f"{sheet.relative_to(root)}: url() {ref!r} {why}")
    return problems


def build(cfg) -> Path:
    """Assemble book/_src and build HTML into book/_build/html (replaced only on success)."""
    src = assemble(cfg)
    staging = paths.BOOK / "_staging"
    if staging.exists():
        shutil.rmtree(staging)
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build",
           str(src), "--path-output", str(staging)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"jupyter-book build failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    problems = offline_problems(staging / "_build" / "html")
    if problems:
        raise RuntimeError("the built book would not read offline (see book/_config.yml):\n"
                           + "\n".join(problems[:40]))
    html = paths.BOOK_BUILD / "html"
    if html.exists():
        shutil.rmtree(html)
    html.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(staging / "_build" / "html"), str(html))
    shutil.rmtree(staging)
    return html / "index.html"
