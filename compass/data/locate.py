"""Where the rows of one language and split live: a hub name, a file, or a folder layout.

Local forms understood:

* a single file: ``.csv``, ``.tsv``, ``.jsonl`` / ``.json``, ``.parquet``, ``.arrow``;
* a folder written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``;
* a folder holding ``<lang>.<ext>``, ``<lang>/``, ``<split>/<lang>.<ext>`` or ``<split>.<ext>``;
* a folder of per-subject files (the Global-MMLU ``<lang>/<subject>.csv`` layout).

What is found is then checked against what its path claims (:mod:`compass.data.path_claims`).
"""
from __future__ import annotations

from pathlib import Path

from compass.data.path_claims import ALL_SPLITS, check_language, check_split, stem_language
from compass.data.readers import DATA_EXTENSIONS, data_files, is_saved_dataset
from compass.hub_ids import HUB_ID
from compass.languages import UnknownLanguageError
from compass.schemas import SchemaError


def is_local(source) -> bool:
    """True for an existing path; False for a hub name 'owner/name'; an error for anything else."""
    if Path(source).exists():
        return True
    if isinstance(source, str) and HUB_ID.match(source):
        return False
    raise FileNotFoundError(
        f"source {str(source)!r} is neither an existing file/folder nor a hub data set name "
        f"'owner/name'"
    )


def resolve(root: Path, tag: str, split: str, what: str):
    """Where the rows of language ``tag`` / ``split`` live under ``root``.

    Returns ``("saved", folder)`` or ``("files", [paths])``; raises naming what the folder has.
    """
    if root.is_file():
        return "files", [root]
    if is_saved_dataset(root):
        return "saved", root
    files = data_files(root)
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    by_lang_file = {p: stem_language(p.stem) for p in files}
    by_lang_dir = {p: stem_language(p.name) for p in folders}
    for path, lang in by_lang_file.items():
        if lang == tag:
            return "files", [path]
    for path, lang in by_lang_dir.items():
        if lang == tag:
            return resolve_language_folder(path, split, what)
    split_dir = root / split
    if split_dir.is_dir():
        return resolve(split_dir, tag, split, what)
    split_files = [p for p in files if p.stem == split]
    if split_files:
        return "files", split_files[:1]
    languages = sorted({lang for lang in [*by_lang_file.values(), *by_lang_dir.values()] if lang})
    if languages:
        raise UnknownLanguageError(
            f"{root}: no {what} data for language {tag!r}; available: {', '.join(languages)}"
        )
    other_splits = [p.name for p in files if p.stem in ALL_SPLITS]
    if other_splits:
        raise SchemaError(f"{root}: no {split!r} split file; has {other_splits}")
    if not files:
        raise SchemaError(
            f"{root}: no {what} data files ({', '.join(DATA_EXTENSIONS)}) for language {tag!r} "
            f"split {split!r}"
        )
    named = stem_language(root.name)
    if named is not None and named != tag:
        raise UnknownLanguageError(
            f"{root}: this folder holds language {named!r} data, not {tag!r}; available: {named}"
        )
    return "files", files  # per-subject files of one language (the language is the caller's)


def resolve_language_folder(folder: Path, split: str, what: str):
    """A folder holding one language: a saved dataset, ``<split>.<ext>`` or per-subject files."""
    if is_saved_dataset(folder):
        return "saved", folder
    split_dir = folder / split
    if is_saved_dataset(split_dir):
        return "saved", split_dir
    files = data_files(folder)
    split_files = [p for p in files if p.stem == split]
    if split_files:
        return "files", split_files[:1]
    other_splits = [p.name for p in files if p.stem in ALL_SPLITS]
    if other_splits:
        raise SchemaError(f"{folder}: no {split!r} split file; has {other_splits}")
    if not files:
        raise SchemaError(f"{folder}: no {what} data files ({', '.join(DATA_EXTENSIONS)})")
    return "files", files


def locate(root: Path, tag: str, split: str, what: str, source_split: str | None):
    """:func:`resolve`, then refuse what the path says is another language or split.

    A saved dataset's split is checked when it is read: its own record of the split, where it
    has one, is better evidence than its path.
    """
    kind, found = resolve(root, tag, split, what)
    for path in [found] if kind == "saved" else found:
        check_language(path, tag)
        if kind == "files":
            check_split(path, split, source_split)
    return kind, found
