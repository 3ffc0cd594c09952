"""What a local path says about its language and split, and the refusals that follow from it.

A test file read as dev would leak test items into the target usage sample E_t, and a French
file read as Spanish would score the wrong language, so the evaluation loaders refuse a path
that names another language or split than the one asked for, and one that names no split
unless the caller states it (``source_split``).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from compass.data.errors import SourceMismatchError
from compass.languages import UnknownLanguageError, normalize

ALL_SPLITS = ("train", "dev", "validation", "test")
_LANG_STEM = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
_NAME_WORDS = re.compile(r"[\s._-]+")  # 'lite_test' -> lite, test


def stem_language(name: str) -> str | None:
    """The language a file/folder name stands for ('en', 'zh-CN'), or None ('anatomy', 'dev')."""
    if name in ALL_SPLITS or not _LANG_STEM.match(name):
        return None
    try:
        return normalize(name.replace("_", "-"))
    except UnknownLanguageError:
        return None


def _name_splits(name: str) -> set[str]:
    """The splits a file/folder name states as a whole word: 'dev', 'test.tsv', 'lite_test'."""
    words = set(_NAME_WORDS.split(name.lower()))
    return {split for split in ALL_SPLITS if split in words}


def path_claims(path: Path) -> dict:
    """What the end of ``path`` says about its language and split.

    The names read are those of the layouts :mod:`compass.data.locate` resolves: the file stem
    (or folder name), its folder, and the folder above that only when its folder is itself a
    language or split folder (``fr/dev/anatomy.csv``, ``test/en/anatomy.csv``). Returns
    ``{"language": (tag, name), "split": ({splits}, name)}`` for what was found, nearest first.
    """
    path = Path(os.path.abspath(path))
    names = [path.stem if path.is_file() else path.name, path.parent.name, path.parent.parent.name]
    claims: dict = {}
    for depth, name in enumerate(names):
        language = stem_language(name)
        splits = set() if language else _name_splits(name)
        if language:
            claims.setdefault("language", (language, name))
        if splits:
            claims.setdefault("split", (splits, name))
        if depth >= 1 and not (language or splits):
            break
    return claims


def check_language(path: Path, tag: str) -> None:
    """Refuse a path named after another language: its rows would load under the asked code."""
    claimed = path_claims(path).get("language")
    if claimed and claimed[0] != tag:
        raise SourceMismatchError(
            f"{path}: the path names language {claimed[0]!r} (in {claimed[1]!r}) but language "
            f"{tag!r} was asked for; refusing to load {claimed[0]!r} rows as {tag!r}"
        )


def check_split(path: Path, split: str, source_split: str | None) -> None:
    """Refuse a local source that is not identifiable as ``split`` (test rows must not pass as dev).

    The path must name the split (see :func:`path_claims`); where it names none, the caller may
    state it with ``source_split``. A path naming another split is refused either way.
    """
    claimed = path_claims(path).get("split")
    if claimed and claimed[0] != {split}:
        named = "/".join(sorted(claimed[0]))
        raise SourceMismatchError(
            f"{path}: the path names split {named!r} (in {claimed[1]!r}) but split {split!r} was "
            f"asked for; refusing to load {named!r} rows as {split!r}"
        )
    if claimed is None and source_split is None:
        raise SourceMismatchError(
            f"{path}: cannot tell which split this holds: neither its name nor its folder's names "
            f"one of {', '.join(ALL_SPLITS)}; put it under a folder named {split!r} (or name it "
            f"{split + path.suffix!r}), or state it with source_split={split!r}"
        )


def check_source_split(source_split: str | None, split: str) -> None:
    """Refuse a stated ``source_split`` that contradicts the split asked for."""
    if source_split is not None and source_split != split:
        raise SourceMismatchError(
            f"source_split {source_split!r} (what the local source holds) differs from the "
            f"requested split {split!r}"
        )
