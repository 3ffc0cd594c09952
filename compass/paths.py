"""Every path the project reads or writes, in one place (showyourwork style).

The data root can be moved with the environment variable ``COMPASS_DATA_DIR`` (tests use this to
work in a temporary folder); everything else hangs off the repository root.
"""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PARAMS = ROOT / "params.yaml"
PROFILES = ROOT / "profiles"  # presets: tiny.yaml, paper.yaml, paper_fixtures.yaml
NOTEBOOKS = ROOT / "notebooks"
BOOK = ROOT / "book"
BOOK_BUILD = BOOK / "_build"
ONERULER = ROOT / "compass" / "evaluation" / "oneruler"  # OneRuler's templates and nouns (MIT)


def data_root() -> Path:
    """The folder holding all inputs and intermediate artifacts (DVC outputs)."""
    return Path(os.environ.get("COMPASS_DATA_DIR", ROOT / "data"))


def cache_dir() -> Path:
    """Caches that are not DVC outputs (embedding store): survive `dvc repro`."""
    return data_root() / "cache"


def embedding_store(encoder_name: str) -> Path:
    """The SQLite embedding cache of one encoder and prefix (``/`` in hub ids made file-safe)."""
    safe = encoder_name.replace("/", "__")
    return cache_dir() / "embeddings" / f"{safe}.sqlite"


def pool_file() -> Path:
    """Every prompt/response pair of the profile, one JSON record per line."""
    return data_root() / "pool" / "pairs.jsonl"


def pool_summary() -> Path:
    """The pool stage's summary: pairs per language, the encoder and its dimension."""
    return data_root() / "pool" / "summary.json"


def benchmarks_dir() -> Path:
    """Paper profile: each target's benchmark items (E_t, test, MMLU-ProX-Lite) as loaded."""
    return data_root() / "pool" / "benchmarks"


def benchmark_file(lang: str) -> Path:
    """Paper profile: one target's benchmark items (E_t, test, MMLU-ProX-Lite) as the pool stage
    loaded them."""
    return benchmarks_dir() / f"{lang}.json"


def pool_embeddings() -> Path:
    """Embeddings of every pool pair, aligned with :func:`pool_file` by id."""
    return data_root() / "pool" / "embeddings.npz"


def params_check() -> Path:
    """Written by the `check` stage when params pass every check (constant content)."""
    return data_root() / "pool" / "params_check.json"


def precision_record() -> Path:
    """This machine's float type for ``train.dtype: auto`` (the `precision` stage's output)."""
    return data_root() / "machine" / "precision.json"


def models_dir() -> Path:
    """Base models as the model stage prepared or recorded them, one folder or report per name."""
    return data_root() / "models"


def model_dir(name: str) -> Path:
    """A base model by name: the converted offline model (plain Hugging Face folder), or for a hub
    model a record of its source."""
    return models_dir() / name.replace("/", "__")


def model_report(name: str) -> Path:
    """The model stage's report (conversion check, or the source a hub model loads from)."""
    return models_dir() / f"{name.replace('/', '__')}.json"


def model_results_dir(lang: str, model: str) -> Path:
    """Everything one base model produced for one language: adapters, evaluation, long context."""
    return language_dir(lang) / model


def adapters_dir(lang: str, model: str) -> Path:
    """Every adapter of one (language, model) (the train stage's output)."""
    return model_results_dir(lang, model) / "adapters"


def adapter_dir(lang: str, model: str, method: str, replicate: int = 0) -> Path:
    """Registry layout: data/languages/<lang>/<model>/adapters/<method>/ (adapter + logs) for the
    first training seed; replicate r >= 1 (seed + r, train.seeds) in its seeds/<r>/ folder."""
    folder = adapters_dir(lang, model) / method
    return folder if replicate == 0 else folder / "seeds" / str(replicate)


def adapter_snapshot(lang: str, model: str, method: str, step: int) -> Path:
    """The first seed's adapter after ``step`` optimizer steps (train.curve_steps)."""
    return adapter_dir(lang, model, method) / "steps" / str(step)


def evaluation_dir(lang: str, model: str) -> Path:
    """The evaluate stage's tables and per-sample logs for one (language, model)."""
    return model_results_dir(lang, model) / "evaluation"


def evaluation_metrics(lang: str, model: str) -> Path:
    """The evaluate stage's metrics for one (language, model), read by the book."""
    return model_results_dir(lang, model) / "evaluation_metrics.json"


def long_context_dir(lang: str, model: str) -> Path:
    """OneRuler-style samples, per-sample predictions and the summary of one (language, model)."""
    return model_results_dir(lang, model) / "long_context"


def long_context_metrics(lang: str, model: str) -> Path:
    """The long-context stage's metrics for one (language, model), read by the book."""
    return model_results_dir(lang, model) / "long_context_metrics.json"


def language_dir(lang: str) -> Path:
    """Everything of one target language: its data splits, sampling, and per-model results."""
    return data_root() / "languages" / lang


def splits_file(lang: str) -> Path:
    """The data stage's split of one target's pairs into dev (E_t), train and test (schema
    SPLIT)."""
    return language_dir(lang) / "data" / "splits.csv"


def test_items_file(lang: str) -> Path:
    """The data stage's multiple-choice test items of one target (schema MC_ITEM)."""
    return language_dir(lang) / "data" / "test_items.jsonl"


def data_metrics(lang: str) -> Path:
    """The data stage's metrics for one target, read by the book's data tables."""
    return language_dir(lang) / "data" / "metrics.json"


def sampling_dir(lang: str) -> Path:
    """The sampling stage's outputs for one target: clusters, selections, metrics."""
    return language_dir(lang) / "sampling"


def selections_dir(lang: str) -> Path:
    """One folder per selection method under the target's sampling outputs."""
    return sampling_dir(lang) / "selections"


def selection_dir(lang: str, method: str) -> Path:
    """What one selection method picked for one target: its manifest and cluster report."""
    return selections_dir(lang) / method


def manifest_file(lang: str, method: str) -> Path:
    """The pool pairs one method selected for one target (id, language, cluster, score): what
    training reads."""
    return selection_dir(lang, method) / "manifest.csv"


def cluster_report_file(lang: str, method: str) -> Path:
    """Per target cluster: shares, eligible items, COMPASS's quota and what one method selected."""
    return selection_dir(lang, method) / "cluster_report.csv"


def sampling_metrics(lang: str) -> Path:
    """The sampling stage's metrics for one target (clustering, and each method's selection)."""
    return sampling_dir(lang) / "metrics.json"


def gap_clusters_file(lang: str) -> Path:
    """Per target cluster: p_target, p_train and whether COMPASS's coverage gap marks it a gap."""
    return sampling_dir(lang) / "gap_clusters.csv"


def test_clusters_file(lang: str) -> Path:
    """Each test item's target cluster and gap flag (the evaluation's gap / covered split)."""
    return sampling_dir(lang) / "test_clusters.csv"


def figures_dir(lang: str, stage: str) -> Path:
    """Figures of one stage ('data' or 'sampling') of one language."""
    return language_dir(lang) / stage / "figures"


def executed_notebooks_dir() -> Path:
    """Executed notebooks (papermill outputs): rendered by the book, never a dependency of data."""
    return data_root() / "executed"


def executed_notebook(name: str, lang: str | None = None, model: str | None = None) -> Path:
    """Where papermill writes notebook ``name`` run for ``model`` and ``lang``: each part that is
    given joins the stem, so each run has a file of its own."""
    stem = "_".join(part for part in (Path(name).stem, model, lang) if part)
    return executed_notebooks_dir() / f"{stem}.ipynb"


def ecda_dir(lang: str) -> Path:
    """Outputs of the continual (COMPASS-ECDA) stage for one language."""
    return data_root() / "ecda" / lang


def ecda_calibration(lang: str) -> Path:
    """The drift threshold's calibration: false-alarm and detection rates per reference."""
    return ecda_dir(lang) / "calibration.csv"


def ecda_metrics(lang: str) -> Path:
    """The ECDA stage's metrics for one language (triggers, rollbacks, the stream's settings)."""
    return data_root() / "ecda" / f"{lang}_metrics.json"


def scratch_root() -> Path:
    """Exploratory runs (JupyterLab, `notebook_run --set`) write here, never into DVC outputs."""
    return ROOT / "data" / "scratch"


def stage_timings() -> Path:
    """Wall time of every stage run (a log, not a DVC output): benchmarks/bench_pipeline.py."""
    return data_root() / "timings.jsonl"


def notebook(name: str) -> Path:
    """A notebook of the repository by file name (with ``.ipynb``)."""
    return NOTEBOOKS / name
