"""What the book covers: the evaluated (language, model) runs with their column labels, one
output file of each read into one frame, and the base models as prose names them."""
from __future__ import annotations

import pandas as pd

from compass import io, paths
from compass import model_catalog as catalog


def runs(cfg) -> list[tuple[str, str, str]]:
    """(label, language, model) of every evaluated pair. The label, which heads table columns, is
    the language code when one base model is configured, else 'lang · model'."""
    one = len(cfg.train.models) == 1
    return [(lang if one else f"{lang} · {model}", lang, model)
            for model in cfg.train.models for lang in cfg.targets]


def labels(cfg) -> list[str]:
    """The column labels of :func:`runs`, in its order."""
    return [label for label, _, _ in runs(cfg)]


def per_language(cfg, name: str, optional: bool = False) -> pd.DataFrame:
    """One evaluation file (e.g. summary.csv) of every (language, model), with a language column
    holding its label; pairs whose file has no rows are left out (an empty frame when none has).
    ``optional``: a file only some profiles write (the paper profile scores no held-out NLL)."""
    files = [(label, paths.evaluation_dir(lang, model) / name) for label, lang, model in runs(cfg)]
    frames = [frame.assign(language=label) for label, file in files
              if not (optional and not file.exists())
              and len(frame := io.read_csv(file, numeric=True))]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def long_context_runs(cfg) -> list[tuple[str, str, str]]:
    """The (label, language, model) runs of the long-context stage (long_context.languages)."""
    return [run for run in runs(cfg) if run[1] in cfg.long_context.languages]


def models_phrase(cfg) -> str:
    """The base models by size, for prose: "a 270M-parameter model", or each model's name and
    size where several ran (sizes from the catalog; a model it lacks is named alone)."""
    def size(model: str) -> str | None:
        billions = catalog.PARAMETERS_B.get(model)
        if billions is None:
            return None
        return f"{billions * 1000:g}M" if billions < 1 else f"{billions:g}B"

    models = cfg.train.models
    if len(models) == 1:
        return f"a {size(models[0])}-parameter model" if size(models[0]) else f"`{models[0]}`"
    return ", ".join(f"`{m}` ({size(m)} parameters)" if size(m) else f"`{m}`" for m in models)
