"""Reading one data file, one `save_to_disk` folder or one hub split into rows.

Text tables go through :mod:`compass.data.textrows` (every cell as text, errors name the file
and line); Parquet, Arrow, saved datasets and the hub through `datasets`. Each reader checks the
columns the caller needs before returning a row, so a foreign file never yields a half-result.
"""
from __future__ import annotations

from pathlib import Path

from compass.data.cells import require_columns
from compass.data.textrows import read_json_rows, read_table
from compass.schemas import SchemaError

DATA_EXTENSIONS = (".csv", ".tsv", ".jsonl", ".json", ".parquet", ".arrow")


def hf():
    """The `datasets` module, imported on first use: it is slow to import and only the paper
    profile needs it."""
    try:
        import datasets
    except ImportError:
        raise ImportError(
            "the paper profile needs the package 'datasets' (pip install datasets); "
            "the tiny profile does not"
        ) from None
    return datasets


def load_file(path: Path, required: tuple[str, ...], what: str, cache_dir=None) -> list[tuple]:
    """``[(location, row), ...]`` of one local data file; location is 'line N' for text files.

    Text tables go through :mod:`compass.data.textrows` (every cell as text, errors name the file
    and line); Parquet and Arrow through the `datasets` builders (no lines to name: location None).
    """
    ext = path.suffix.lower()
    if ext in (".csv", ".tsv"):
        def check(header):
            require_columns(header, required, str(path), what)
        _, rows = read_table(path, "\t" if ext == ".tsv" else ",", check_header=check)
        return rows
    if ext in (".jsonl", ".json"):
        rows = read_json_rows(path)
        for location, row in rows:
            require_columns(row, required, f"{path} {location}", what)
        return rows
    if ext in (".parquet", ".arrow"):
        return [(None, row) for row in _load_binary(path, ext[1:], required, what, cache_dir)]
    raise SchemaError(
        f"{path}: unsupported file type {ext!r}; allowed: {', '.join(DATA_EXTENSIONS)}"
    )


def _load_binary(path: Path, builder: str, required: tuple[str, ...], what: str,
                 cache_dir) -> list[dict]:
    try:
        dataset = hf().load_dataset(builder, data_files=[str(path)], split="train",
                                    cache_dir=cache_dir)
    except Exception as err:  # any parse failure of a local file is a corrupt/foreign file
        raise SchemaError(
            f"{path}: cannot be read as {builder} ({type(err).__name__}: {err})"
        ) from err
    require_columns(dataset.column_names, required, str(path), what)
    return dataset.to_list()


def data_files(folder: Path) -> list[Path]:
    """The data files directly in ``folder`` (by extension), sorted by name."""
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in DATA_EXTENSIONS)


def is_saved_dataset(folder: Path) -> bool:
    """True for a folder written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``."""
    return folder.is_dir() and (
        (folder / "dataset_dict.json").exists()
        or ((folder / "state.json").exists() and (folder / "dataset_info.json").exists())
    )


def load_saved(folder: Path, split: str, required: tuple[str, ...], what: str):
    """``(rows, split_recorded)`` of a `save_to_disk` folder (a Dataset, or a DatasetDict's split).

    ``split_recorded`` is False for a Dataset saved without a split: the caller must find out
    from elsewhere which split it holds.
    """
    datasets = hf()
    try:
        dataset = datasets.load_from_disk(str(folder))
    except Exception as err:
        raise SchemaError(f"{folder}: cannot be read with datasets.load_from_disk ({err})") from err
    if isinstance(dataset, datasets.DatasetDict):
        if split not in dataset:
            raise SchemaError(f"{folder}: has no split {split!r}; splits: {sorted(dataset)}")
        dataset = dataset[split]
    elif dataset.split is not None and str(dataset.split) != split:
        raise SchemaError(
            f"{folder}: holds split {str(dataset.split)!r}, not the requested {split!r}"
        )
    require_columns(dataset.column_names, required, str(folder), what)
    return dataset.to_list(), dataset.split is not None


def load_hub(source: str, config: str | None, split: str, required: tuple[str, ...], what: str,
             cache_dir=None, revision=None) -> list[dict]:
    """The rows of one hub split (``config`` is the language code where the data set has one)."""
    datasets = hf()
    args = (source,) if config is None else (source, config)
    dataset = datasets.load_dataset(*args, split=split, cache_dir=cache_dir, revision=revision)
    where = (f"hub data set {source!r}" + (f" config {config!r}" if config else "")
             + f" split {split!r}")
    require_columns(dataset.column_names, required, where, what)
    return dataset.to_list()
