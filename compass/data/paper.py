"""Loaders for the `paper` profile: Aya Dataset, Global-MMLU (full and Lite) and MMLU-ProX (full and Lite).

Each loader takes either the real Hugging Face hub name (read with ``datasets.load_dataset``; the
config name is the language code) or a local path, so the same code runs offline on saved copies
and on the test fixtures. Local forms understood:

* a single file: ``.csv``, ``.tsv``, ``.jsonl`` / ``.json``, ``.parquet``, ``.arrow``;
* a folder written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``;
* a folder holding ``<lang>.<ext>``, ``<lang>/``, ``<split>/<lang>.<ext>`` or ``<split>.<ext>``;
* a folder of per-subject files (the Global-MMLU ``<lang>/<subject>.csv`` layout);
* for MMLU-ProX, the two-column "flattened" TSV (see :func:`parse_flattened_prox_tsv`).

Every loader checks the columns it needs before mapping a single row and raises
:class:`~compass.schemas.SchemaError` naming the missing columns and the file or source; a bad
answer label raises naming the row. Text files are read by :mod:`compass.data.textrows`, whose
errors name the file and line (a truncated row, a file cut inside a quoted field, an empty file).
A corrupt or foreign file therefore never yields a half-result.

The evaluation loaders (Global-MMLU, MMLU-ProX) also refuse a local source whose path says it
holds another language or split than the one asked for (:class:`SourceMismatchError`), and one
whose path names no split unless the caller states it (``source_split``): a test file read as dev
would leak test items into the target usage sample E_t.

A name is not proof of content, so a local Global-MMLU file is also checked by what it holds:
its letters' scripts and, for some Latin-script languages, its common words must fit the asked
language (:class:`ContentLanguageError`, compass.data.text_language), and a language
column, where the file has one, must name it. A repeated ``sample_id`` is refused
(:class:`DuplicateRowError`), as are flattened MMLU-ProX option letters with a gap or past J
(:class:`OptionMarkerError`) and a Lite test file without its labels (:class:`MissingColumnError`).
Rows map to the PAIR and MC_ITEM schemas of :mod:`compass.schemas`.
"""
from __future__ import annotations

import os
import re
import warnings
from collections import Counter
from pathlib import Path
from typing import Iterable

import langcodes

from compass.data import text_language
from compass.data.textrows import iter_records, read_json_rows, read_table
from compass.languages import UnknownLanguageError, normalize, require_available
from compass.schemas import MC_FIELDS, SchemaError, check_record

AYA_HUB = "CohereLabs/aya_dataset"
GLOBAL_MMLU_HUB = "CohereLabs/Global-MMLU"
GLOBAL_MMLU_LITE_HUB = "CohereLabs/Global-MMLU-Lite"
MMLU_PROX_HUB = "li-lab/MMLU-ProX"
MMLU_PROX_LITE_HUB = "li-lab/MMLU-ProX-Lite"

AYA_SPLITS = ("train", "test")
GLOBAL_MMLU_SPLITS = ("dev", "test")
MMLU_PROX_SPLITS = ("test", "validation")
ALL_SPLITS = ("train", "dev", "validation", "test")

AYA_COLUMNS = ("inputs", "targets")  # needed, plus a language code: see _aya_code
# aya_dataset names the language in `language` and codes it in `language_code`; the aya_collection
# layout (its `aya_dataset` subset: id, inputs, targets, dataset_name, ..., language, script) has
# only `language`, holding the ISO 639-3 code
AYA_COLLECTION_MARK = "dataset_name"
GLOBAL_MMLU_OPTIONS = ("option_a", "option_b", "option_c", "option_d")
GLOBAL_MMLU_COLUMNS = ("sample_id", "subject", "subject_category", "question",
                       *GLOBAL_MMLU_OPTIONS, "answer")
CS_LABELS = ("CS", "CA", "-")  # '-': not annotated (the dev split, most of the full test split)
CS_LABELS_LITE_TEST = ("CS", "CA")  # Global-MMLU-Lite's test split is annotated throughout
PROX_OPTIONS = tuple(f"option_{i}" for i in range(10))
PROX_COLUMNS = ("question_id", "question", *PROX_OPTIONS, "answer", "answer_index", "category")
# src (e.g. 'ori_mmlu-business_ethics') is used as the topic when present, else category

LETTERS = "ABCDEFGHIJ"
# option cells that mean "no option here" in MMLU-ProX (the Arrow copy stores None)
_MISSING_OPTION = {"", "N/A"}
DATA_EXTENSIONS = (".csv", ".tsv", ".jsonl", ".json", ".parquet", ".arrow")
_HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_LANG_STEM = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
_NAME_WORDS = re.compile(r"[\s._-]+")  # 'lite_test' -> lite, test
# the flattened TSV's option markers: a literal backslash-n, the letter, '. '
_FLAT_MARK = "\\n{letter}. "
# LaTeX control words (LaTeX, amsmath, amssymb) that begin with 'n'. The flattened TSV writes a
# line break as backslash-n and leaves backslashes unescaped, so '\nu' is either the Greek
# letter or a break before 'u': it is read as LaTeX exactly when the letters after the backslash
# form one of these words ('\nabla', '\neq'); '\nWhich', '\ncone', '\ny^{...}' are breaks.
_LATEX_N_WORDS = frozenset("""
    nabla natural ncong ne nearrow neg negthickspace neq newcommand newline nexists ngeq ngeqslant
    ngtr ni nleftarrow nLeftarrow nleftrightarrow nLeftrightarrow nleq nleqslant nless nmid
    nobreak noindent nolimits nonumber normalsize not notag notin nparallel nprec npreceq
    nrightarrow nRightarrow nshortmid nsim nsubseteq nsucc nsucceq nsupseteq ntriangleleft
    ntriangleright nu nvdash nvDash nVdash nwarrow
""".split())
_BACKSLASH_N = re.compile(r"\\(n[A-Za-z]*)")
# Of those, the ones that also read as a break before a common word: '\ne' is LaTeX's 'not
# equal' or a new line starting with Italian 'e'; '\ni' is LaTeX's 'contains' or a new line
# starting with 'i' or a list item 'i)'. They are LaTeX only inside math ($...$, $$...$$,
# \(...\), \[...\]), where they are operators; in running text they are breaks.
_PROSE_N_WORDS = frozenset({"ne", "ni"})
_MATH_DELIMITERS = re.compile(r"\\\$|\$\$|\$|\\[()\[\]]")
_MATH_CLOSE = {"$": "$", "$$": "$$", "\\(": "\\)", "\\[": "\\]"}
# any option marker of the flattened TSV: a literal backslash-n, a capital letter, '. '
_ANY_FLAT_MARK = re.compile(r"\\n([A-Z])\. ")


# --------------------------------------------------------------------------------------------
# helpers


class SourceMismatchError(SchemaError):
    """A local source whose path says it holds another language or split than the one asked for."""


class ContentLanguageError(SourceMismatchError):
    """A local source whose text is not in the language asked for, whatever its path says."""


class DuplicateRowError(SchemaError):
    """Two rows with one id: the item would count twice in every score and every sample."""


class OptionMarkerError(SchemaError):
    """A flattened MMLU-ProX row whose option letters skip one or run past J.

    Either would load silently with the wrong options: a skipped letter merges two options into
    one, a letter past J merges an extra option into J.
    """


class MissingColumnError(SchemaError):
    """A file or source without a column the loader needs."""


def _hf():
    """The `datasets` module, imported on first use (it is slow to import and only this profile needs it)."""
    try:
        import datasets
    except ImportError:
        raise ImportError(
            "the paper profile needs the package 'datasets' (pip install datasets); "
            "the tiny profile does not"
        ) from None
    return datasets


def _check_choice(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise ValueError(f"{what} {value!r} is not allowed; allowed: {', '.join(allowed)}")
    return value


def _is_local(source) -> bool:
    """True for an existing path; False for a hub name 'owner/name'; an error for anything else."""
    if Path(source).exists():
        return True
    if isinstance(source, str) and _HUB_NAME.match(source):
        return False
    raise FileNotFoundError(
        f"source {str(source)!r} is neither an existing file/folder nor a hub data set name 'owner/name'"
    )


# why a column is required where that is not obvious from the schema (appended to the error)
_WHY_REQUIRED = {
    "cultural_sensitivity_label": "Global-MMLU-Lite's test split is annotated throughout: every "
                                  "row needs its CS/CA label",
}


def _require_columns(columns: Iterable[str], required: Iterable[str], where: str, what: str) -> None:
    columns = list(columns)
    missing = [c for c in required if c not in columns]
    if missing:
        why = "".join(f" ({_WHY_REQUIRED[c]})" for c in missing if c in _WHY_REQUIRED)
        raise MissingColumnError(
            f"{where}: not a {what} file/source: missing column(s) {missing}{why}; has {columns}"
        )


def _text(value) -> str:
    """A cell as stripped text; None (a null cell) becomes ''."""
    if value is None:
        return ""
    if isinstance(value, float) and value != value:  # NaN
        return ""
    return str(value).strip()


def _load_file(path: Path, required: tuple[str, ...], what: str, cache_dir=None) -> list[tuple]:
    """``[(location, row), ...]`` of one local data file; location is 'line N' for text files.

    Text tables go through :mod:`compass.data.textrows` (every cell as text, errors name the file
    and line); Parquet and Arrow through the `datasets` builders (no lines to name: location None).
    """
    ext = path.suffix.lower()
    if ext in (".csv", ".tsv"):
        def check(header):
            _require_columns(header, required, str(path), what)
        _, rows = read_table(path, "\t" if ext == ".tsv" else ",", check_header=check)
        return rows
    if ext in (".jsonl", ".json"):
        rows = read_json_rows(path)
        for location, row in rows:
            _require_columns(row, required, f"{path} {location}", what)
        return rows
    if ext in (".parquet", ".arrow"):
        return [(None, row) for row in _load_binary(path, ext[1:], required, what, cache_dir)]
    raise SchemaError(
        f"{path}: unsupported file type {ext!r}; allowed: {', '.join(DATA_EXTENSIONS)}"
    )


def _load_binary(path: Path, builder: str, required: tuple[str, ...], what: str, cache_dir) -> list[dict]:
    try:
        dataset = _hf().load_dataset(builder, data_files=[str(path)], split="train",
                                     cache_dir=cache_dir)
    except Exception as err:  # any parse failure of a local file is a corrupt/foreign file
        raise SchemaError(f"{path}: cannot be read as {builder} ({type(err).__name__}: {err})") from err
    _require_columns(dataset.column_names, required, str(path), what)
    return dataset.to_list()


def _is_saved_dataset(folder: Path) -> bool:
    return folder.is_dir() and (
        (folder / "dataset_dict.json").exists()
        or ((folder / "state.json").exists() and (folder / "dataset_info.json").exists())
    )


def _load_saved(folder: Path, split: str, required: tuple[str, ...], what: str):
    """``(rows, split_recorded)`` of a `save_to_disk` folder (a Dataset, or a DatasetDict's split).

    ``split_recorded`` is False for a Dataset saved without a split: the caller must find out
    from elsewhere which split it holds.
    """
    hf = _hf()
    try:
        dataset = hf.load_from_disk(str(folder))
    except Exception as err:
        raise SchemaError(f"{folder}: cannot be read with datasets.load_from_disk ({err})") from err
    if isinstance(dataset, hf.DatasetDict):
        if split not in dataset:
            raise SchemaError(f"{folder}: has no split {split!r}; splits: {sorted(dataset)}")
        dataset = dataset[split]
    elif dataset.split is not None and str(dataset.split) != split:
        raise SchemaError(f"{folder}: holds split {str(dataset.split)!r}, not the requested {split!r}")
    _require_columns(dataset.column_names, required, str(folder), what)
    return dataset.to_list(), dataset.split is not None


def _load_hub(source: str, config: str | None, split: str, required: tuple[str, ...], what: str,
              cache_dir=None, revision=None) -> list[dict]:
    hf = _hf()
    args = (source,) if config is None else (source, config)
    dataset = hf.load_dataset(*args, split=split, cache_dir=cache_dir, revision=revision)
    where = f"hub data set {source!r}" + (f" config {config!r}" if config else "") + f" split {split!r}"
    _require_columns(dataset.column_names, required, where, what)
    return dataset.to_list()


def _data_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in DATA_EXTENSIONS)


def _stem_language(name: str) -> str | None:
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


def _path_claims(path: Path) -> dict:
    """What the end of ``path`` says about its language and split.

    The names read are those of the layouts this module resolves: the file stem (or folder
    name), its folder, and the folder above that only when its folder is itself a language or
    split folder (``fr/dev/anatomy.csv``, ``test/en/anatomy.csv``). Returns
    ``{"language": (tag, name), "split": ({splits}, name)}`` for what was found, nearest first.
    """
    path = Path(os.path.abspath(path))
    names = [path.stem if path.is_file() else path.name, path.parent.name, path.parent.parent.name]
    claims: dict = {}
    for depth, name in enumerate(names):
        language = _stem_language(name)
        splits = set() if language else _name_splits(name)
        if language:
            claims.setdefault("language", (language, name))
        if splits:
            claims.setdefault("split", (splits, name))
        if depth >= 1 and not (language or splits):
            break
    return claims


def _check_language(path: Path, tag: str) -> None:
    """Refuse a path named after another language: its rows would load under the asked code."""
    claimed = _path_claims(path).get("language")
    if claimed and claimed[0] != tag:
        raise SourceMismatchError(
            f"{path}: the path names language {claimed[0]!r} (in {claimed[1]!r}) but language "
            f"{tag!r} was asked for; refusing to load {claimed[0]!r} rows as {tag!r}"
        )


def _check_split(path: Path, split: str, source_split: str | None) -> None:
    """Refuse a local source that is not identifiable as ``split`` (test rows must not pass as dev).

    The path must name the split (see :func:`_path_claims`); where it names none, the caller may
    state it with ``source_split``. A path naming another split is refused either way.
    """
    claimed = _path_claims(path).get("split")
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


def _check_source_split(source_split: str | None, split: str) -> None:
    if source_split is not None and source_split != split:
        raise SourceMismatchError(
            f"source_split {source_split!r} (what the local source holds) differs from the "
            f"requested split {split!r}"
        )


def _resolve(root: Path, tag: str, split: str, what: str):
    """Where the rows of language ``tag`` / ``split`` live under ``root``.

    Returns ``("saved", folder)`` or ``("files", [paths])``; raises naming what the folder has.
    """
    if root.is_file():
        return "files", [root]
    if _is_saved_dataset(root):
        return "saved", root
    files = _data_files(root)
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    by_lang_file = {p: _stem_language(p.stem) for p in files}
    by_lang_dir = {p: _stem_language(p.name) for p in folders}
    for path, lang in by_lang_file.items():
        if lang == tag:
            return "files", [path]
    for path, lang in by_lang_dir.items():
        if lang == tag:
            return _resolve_language_folder(path, split, what)
    split_dir = root / split
    if split_dir.is_dir():
        return _resolve(split_dir, tag, split, what)
    split_files = [p for p in files if p.stem == split]
    if split_files:
        return "files", split_files[:1]
    languages = sorted({l for l in [*by_lang_file.values(), *by_lang_dir.values()] if l})
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
    named = _stem_language(root.name)
    if named is not None and named != tag:
        raise UnknownLanguageError(
            f"{root}: this folder holds language {named!r} data, not {tag!r}; available: {named}"
        )
    return "files", files  # per-subject files of one language (the language is the caller's)


def _resolve_language_folder(folder: Path, split: str, what: str):
    """A folder holding one language: a saved dataset, ``<split>.<ext>`` or per-subject files."""
    if _is_saved_dataset(folder):
        return "saved", folder
    split_dir = folder / split
    if _is_saved_dataset(split_dir):
        return "saved", split_dir
    files = _data_files(folder)
    split_files = [p for p in files if p.stem == split]
    if split_files:
        return "files", split_files[:1]
    other_splits = [p.name for p in files if p.stem in ALL_SPLITS]
    if other_splits:
        raise SchemaError(f"{folder}: no {split!r} split file; has {other_splits}")
    if not files:
        raise SchemaError(f"{folder}: no {what} data files ({', '.join(DATA_EXTENSIONS)})")
    return "files", files


def _rows(source, tag: str, split: str, required, what: str, cache_dir=None, revision=None,
          config: str | None = None, source_split: str | None = None):
    """``[(where, row_index, location, row), ...]`` from a hub name or a local path.

    ``location`` is 'line N' for rows of text files, None where there are no lines to name.
    """
    if not _is_local(source):
        rows = _load_hub(source, config, split, required, what, cache_dir, revision)
        where = f"{source}[{config or 'default'}/{split}]"
        return [(where, i, None, row) for i, row in enumerate(rows)]
    kind, found = _locate(Path(source), tag, split, what, source_split)
    return _local_rows(kind, found, split, required, what, cache_dir, source_split)


def _locate(root: Path, tag: str, split: str, what: str, source_split: str | None):
    """:func:`_resolve`, then refuse what the path says is another language or split.

    A saved dataset's split is checked when it is read: its own record of the split, where it
    has one, is better evidence than its path.
    """
    kind, found = _resolve(root, tag, split, what)
    for path in [found] if kind == "saved" else found:
        _check_language(path, tag)
        if kind == "files":
            _check_split(path, split, source_split)
    return kind, found


def _local_rows(kind: str, found, split: str, required, what: str, cache_dir=None,
                source_split: str | None = None, check_split: bool = True):
    if kind == "saved":
        rows, recorded = _load_saved(found, split, required, what)
        if not recorded and check_split:
            _check_split(found, split, source_split)
        return [(str(found), i, None, row) for i, row in enumerate(rows)]
    out = []
    for path in found:
        rows = _load_file(path, required, what, cache_dir)
        out.extend((str(path), i, location, row) for i, (location, row) in enumerate(rows))
    return out


def _at(where: str, i: int, location, key: str, value) -> str:
    """How an error names a row: file, row index, its id and, for text files, its line."""
    line = f", {location}" if location else ""
    return f"{where} row {i} ({key} {value!r}){line}"


# --------------------------------------------------------------------------------------------
# content checks: is a local file in the language asked for (compass.data.text_language)?

def _check_text_language(where: str, texts: list[str], tag: str) -> None:
    """Refuse rows whose text is in another language than ``tag`` (compass.data.text_language)."""
    problem = text_language.problem(texts, tag)
    if problem:
        raise ContentLanguageError(
            f"{where}: the questions and options are not in {tag!r}: {problem}; refusing to load "
            f"them as {tag!r} (a file's name does not say what it holds)"
        )


# columns that state a row's language, where a file has one
_LANGUAGE_COLUMNS = ("language", "lang", "language_code")


def _check_language_column(row: dict, tag: str, at: str) -> None:
    """Refuse a row whose own language column names another language than ``tag``.

    The column may hold a code ('es', 'spa', 'es-ES') or a name ('Spanish', 'Español'); a
    regional variant counts as its language. A value that names no language is no evidence
    either way and is let through (the content check still applies).
    """
    for column in _LANGUAGE_COLUMNS:
        value = _text(row.get(column))
        stated = _stated_language(value) if value else None
        if stated and stated.split("-")[0] != tag.split("-")[0]:
            raise ContentLanguageError(f"{at}: column {column!r} says {value!r}, but language "
                                       f"{tag!r} was asked for; expected {tag!r} in every row")


def _stated_language(value: str) -> str | None:
    """The language tag a cell names, by code or by name; None where it names none."""
    try:
        return normalize(value)
    except UnknownLanguageError:
        pass
    try:
        return normalize(str(langcodes.find(value)))
    except (LookupError, ValueError):
        return None


def _check_duplicates(rows, key: str) -> None:
    """Refuse two rows with one ``key`` (an id): naming both, and saying if they are identical."""
    seen: dict[str, tuple] = {}
    for where, i, location, row in rows:
        value = _text(row[key])
        if value not in seen:
            seen[value] = (where, i, location, row)
            continue
        first = seen[value]
        other = _at(first[0], first[1], first[2], key, value)
        what = "an exact duplicate of" if first[3] == row else f"{key} {value!r} again, first in"
        raise DuplicateRowError(f"{_at(where, i, location, key, value)}: {what} {other}; "
                                f"expected each {key} once")


# --------------------------------------------------------------------------------------------
# Aya Dataset


def load_aya(source: str | Path = AYA_HUB, split: str = "train", languages: Iterable[str] | None = None,
             *, cache_dir=None, revision=None) -> list[dict]:
    """Aya Dataset prompt/response pairs (the auxiliary pool of the paper profile) as PAIR records.

    Aya labels rows with 3-letter codes ('eng', 'ukr', 'pes'); they are normalised to the project's
    ISO 639-1 tags so the pool joins with the target languages. Ids are '<lang>/aya/<row index>'
    with the index in the unfiltered split, so they do not move when ``languages`` changes. Rows
    whose prompt or response is empty are skipped (they carry no pair). ``languages`` keeps only
    those languages; a code that is not in the data raises, listing the available ones.
    """
    _check_choice(split, AYA_SPLITS, "Aya split")
    if _is_local(source):
        path = Path(source)
        kind, found = ("files", [path]) if path.is_file() else _resolve_language_folder(path, split, "Aya")
        rows = _local_rows(kind, found, split, AYA_COLUMNS, "Aya", cache_dir, check_split=False)
    else:
        rows = [(f"{source}[{split}]", i, None, r)
                for i, r in enumerate(_load_hub(source, None, split, AYA_COLUMNS, "Aya", cache_dir, revision))]
    codes: dict[str, str] = {}
    pairs = []
    for n, (where, i, location, row) in enumerate(rows):
        code = _aya_code(row, where, i, location)
        if code not in codes:
            try:
                codes[code] = normalize(code)
            except UnknownLanguageError as err:
                line = f", {location}" if location else ""
                raise SchemaError(f"{where} row {i}: bad language_code {code!r} ({err}{line})") from None
        lang = codes[code]
        prompt, response = _text(row["inputs"]), _text(row["targets"])
        if not prompt or not response:
            continue
        pairs.append({
            "id": f"{lang}/aya/{n}",
            "language": lang,
            "topic": _text(row.get("annotation_type")) or "aya",
            "prompt": prompt,
            "response": response,
            "source": "aya_dataset",
        })
    if languages is not None:
        if isinstance(languages, str):
            languages = [languages]
        available = sorted({p["language"] for p in pairs})
        wanted = {require_available(code, available, "Aya language") for code in languages}
        pairs = [p for p in pairs if p["language"] in wanted]
    return pairs


# --------------------------------------------------------------------------------------------
# Global-MMLU


def _aya_code(row: dict, where: str, i: int, location) -> str:
    if "language_code" in row:
        return _text(row["language_code"])
    if AYA_COLLECTION_MARK in row and "language" in row:
        return _text(row["language"])
    line = f", {location}" if location else ""
    raise SchemaError(f"{where} row {i}: not an Aya row: no 'language_code' (aya_dataset layout) and "
                      f"no 'language' + '{AYA_COLLECTION_MARK}' (aya_collection layout); has "
                      f"{sorted(row)}{line}")


def _answer_index(letter, n_letters: int, where: str) -> int:
    text = _text(letter)
    allowed = LETTERS[:n_letters]
    if len(text) != 1 or text not in allowed:
        raise SchemaError(f"{where}: answer {letter!r} is not one of {', '.join(allowed)}")
    return allowed.index(text)


class MCItems(list):
    """MC items a loader kept, and the rows it dropped, so a report can say how many and why.

    ``dropped`` holds one dict per dropped row (id, topic, where: file/row/line, reason, the
    empty ``fields``); ``drops`` counts them by reason. It is a list, so callers that only
    iterate keep working.
    """

    def __init__(self, items=(), dropped=()):
        super().__init__(items)
        self.dropped = list(dropped)

    @property
    def drops(self) -> Counter:
        return Counter(d["reason"] for d in self.dropped)


def load_global_mmlu(lang: str, split: str = "dev", source: str | Path = GLOBAL_MMLU_HUB,
                     subjects: Iterable[str] | None = None, *, cache_dir=None, revision=None,
                     source_split: str | None = None) -> MCItems:
    """Global-MMLU items of one language as MC_ITEM records.

    The dev split (5 per subject) is the target usage sample E_t (see
    :func:`global_mmlu_dev_as_pairs`); test is the evaluation. ``cultural_sensitivity_label``
    is kept as ``cs_label`` so results can be split by cultural sensitivity; a value other than
    CS / CA / '-' (not annotated) raises naming the row.
    ``subjects`` keeps only those subjects (an unknown subject raises, listing the available ones).

    A row with an empty (or null) question or option is dropped, not loaded with a blank
    choice: the result's ``dropped`` / ``drops`` say which and how many, so a report can give
    the count, and a warning says so too. A row that lacks an option key altogether is another
    schema and raises.

    A local file must be identifiable as ``lang`` and ``split``, or test items could leak into
    E_t: a path naming another language or split is refused (``fr.csv`` asked for 'es',
    ``lite_test/`` or ``test/`` asked for 'dev'), and so is one naming no split unless the
    caller states what it holds with ``source_split`` (see :func:`_path_claims` for the names
    read). Hub sources and saved datasets that record their split are checked by that record.
    """
    return _load_global_mmlu(lang, split, source, subjects, cache_dir, revision, source_split,
                             CS_LABELS, "Global-MMLU")


def load_global_mmlu_lite(lang: str, split: str = "test", source: str | Path = GLOBAL_MMLU_LITE_HUB,
                          subjects: Iterable[str] | None = None, *, cache_dir=None,
                          revision=None, source_split: str | None = None) -> MCItems:
    """Global-MMLU-Lite (400 test items per language, half culturally sensitive): same schema.

    Its test rows are all annotated, so there the label must be CS or CA.
    """
    labels = CS_LABELS_LITE_TEST if split == "test" else CS_LABELS
    return _load_global_mmlu(lang, split, source, subjects, cache_dir, revision, source_split,
                             labels, "Global-MMLU-Lite")


def _load_global_mmlu(lang, split, source, subjects, cache_dir, revision, source_split,
                      labels: tuple[str, ...], what: str) -> MCItems:
    _check_choice(split, GLOBAL_MMLU_SPLITS, f"{what} split")
    _check_source_split(source_split, split)
    tag = normalize(lang)
    required = GLOBAL_MMLU_COLUMNS
    if "-" not in labels:  # an annotated split: every row needs its label
        required = (*required, "cultural_sensitivity_label")
    rows = _rows(source, tag, split, required, what, cache_dir, revision,
                 config=tag, source_split=source_split)
    if _is_local(source):
        _check_rows_language(rows, tag)
    _check_duplicates(rows, "sample_id")
    items = MCItems()
    for where, i, location, row in rows:
        at = _at(where, i, location, "sample_id", _text(row["sample_id"]))
        _check_language_column(row, tag, at)
        item, empty = _gmmlu_item(row, tag, at, labels)
        if empty:
            reason = "empty question" if "question" in empty else "empty option"
            items.dropped.append({"id": item["id"], "topic": item["topic"], "where": at,
                                  "reason": reason, "fields": empty})
        else:
            items.append(item)
    if not items:
        dropped = f": all {len(items.dropped)} dropped ({dict(items.drops)})" if items.dropped else ""
        raise SchemaError(f"{source}: no usable {what} rows for {tag!r} split {split!r}{dropped}")
    items = _filter_subjects(items, subjects, f"{what} {tag}/{split}")
    if items.dropped:
        warnings.warn(f"{what} {tag}/{split} from {source}: dropped {len(items.dropped)} row(s) "
                      f"{dict(items.drops)}; the result's .dropped lists them", stacklevel=3)
    return items


def _check_rows_language(rows, tag: str) -> None:
    """Check each local file's questions and options for language ``tag`` (file by file)."""
    by_file: dict[str, list[str]] = {}
    for where, _, _, row in rows:
        texts = by_file.setdefault(where, [])
        texts.extend(_text(row[c]) for c in ("question", *GLOBAL_MMLU_OPTIONS))
    for where, texts in by_file.items():
        _check_text_language(where, texts, tag)


def _gmmlu_item(row: dict, tag: str, at: str, labels: tuple[str, ...]) -> tuple[dict, list[str]]:
    """The MC item of one row, and the names of its empty fields (non-empty: drop the row)."""
    answer = _answer_index(row["answer"], 4, at)
    question = _text(row["question"])
    choices = [_text(row[c]) for c in GLOBAL_MMLU_OPTIONS]
    item = {
        "id": _text(row["sample_id"]),
        "language": tag,
        "topic": _text(row["subject"]),
        "category": _text(row["subject_category"]),
        "question": question,
        "choices": choices,
        "answer": answer,
    }
    if "cultural_sensitivity_label" in row:
        item["cs_label"] = _cs_label(row["cultural_sensitivity_label"], labels, at)
    item["row"] = hub_row(row)
    texts = dict(zip(("question", *GLOBAL_MMLU_OPTIONS), (question, *choices)))
    return item, [name for name, text in texts.items() if not text]


def _cs_label(value, labels: tuple[str, ...], at: str) -> str:
    label = _text(value)
    if label not in labels:
        raise SchemaError(f"{at}: cultural_sensitivity_label {value!r} is not allowed; "
                          f"allowed: {', '.join(labels)}")
    return label


def _filter_subjects(items: MCItems, subjects, what: str) -> MCItems:
    if subjects is None:
        return items
    if isinstance(subjects, str):
        subjects = [subjects]
    available = sorted({item["topic"] for item in [*items, *items.dropped]})
    unknown = [s for s in subjects if s not in available]
    if unknown:
        raise ValueError(f"{what}: unknown subject(s) {unknown}; available: {', '.join(available)}")
    keep = set(subjects)
    return MCItems([item for item in items if item["topic"] in keep],
                   [drop for drop in items.dropped if drop["topic"] in keep])


def global_mmlu_dev_as_pairs(items: Iterable[dict], source: str = "global_mmlu") -> list[dict]:
    """MC items as PAIR records, so the Global-MMLU dev split can serve as the usage sample E_t.

    The prompt is the question with its lettered options (how the model sees it at test time), the
    response the text of the correct option. Ids are '<lang>/<source>/<item id>'.
    """
    pairs = []
    for item in items:
        check_record(item, MC_FIELDS, f"MC item {item.get('id', '?')!r}")
        choices, answer = item["choices"], item["answer"]
        if not isinstance(answer, int) or not 0 <= answer < len(choices):
            raise SchemaError(f"MC item {item['id']!r}: answer {answer!r} is not an index of its "
                              f"{len(choices)} choices")
        options = "\n".join(f"{LETTERS[k]}. {choice}" for k, choice in enumerate(choices))
        pairs.append({
            "id": f"{item['language']}/{source}/{item['id']}",
            "language": item["language"],
            "topic": item["topic"],
            "prompt": f"{item['question']}\n{options}",
            "response": choices[answer],
            "source": source,
        })
    return pairs


# --------------------------------------------------------------------------------------------
# MMLU-ProX


def load_mmlu_prox(lang: str, split: str = "test", source: str | Path = MMLU_PROX_HUB, *,
                   cache_dir=None, revision=None, source_split: str | None = None) -> list[dict]:
    """MMLU-ProX items of one language (up to 10 options) as MC_ITEM records.

    Missing options (None, '' or 'N/A' in some rows) are dropped and the answer index is moved to
    the kept options. Also reads a ``save_to_disk`` folder and the flattened two-column TSV
    (:func:`parse_flattened_prox_tsv`), detected by its lack of a header. Local sources must be
    identifiable as ``lang`` and ``split`` as for :func:`load_global_mmlu` (``source_split``
    states the split of one whose path names none, e.g. a saved Dataset without a split).
    """
    _check_choice(split, MMLU_PROX_SPLITS, "MMLU-ProX split")
    _check_source_split(source_split, split)
    tag = normalize(lang)
    if _is_local(source):
        kind, found = _locate(Path(source), tag, split, "MMLU-ProX", source_split)
        if kind == "files" and len(found) == 1 and found[0].suffix.lower() == ".tsv" \
                and not _has_header(found[0], "question_id"):
            return parse_flattened_prox_tsv(found[0], tag)
    rows = _rows(source, tag, split, PROX_COLUMNS, "MMLU-ProX", cache_dir, revision, config=tag,
                 source_split=source_split)
    items = [_prox_item(_at(where, i, location, "question_id", row["question_id"]), row, tag)
             for where, i, location, row in rows]
    if not items:
        raise SchemaError(f"{source}: no MMLU-ProX rows for {tag!r} split {split!r}")
    return items


def load_mmlu_prox_lite(lang: str, split: str = "test", source: str | Path = MMLU_PROX_LITE_HUB, *,
                        cache_dir=None, revision=None, source_split: str | None = None) -> list[dict]:
    """MMLU-ProX-Lite (588 test items per language): same schema as :func:`load_mmlu_prox`."""
    return load_mmlu_prox(lang, split=split, source=source, cache_dir=cache_dir, revision=revision,
                          source_split=source_split)


def _has_header(path: Path, column: str) -> bool:
    records = iter_records(path, "\t")
    try:
        first = next(records, None)
    finally:
        records.close()
    return first is not None and column in first[1]


def _prox_item(at: str, row: dict, tag: str) -> dict:
    letter = _text(row["answer"])
    letter_index = _answer_index(letter, 10, at)
    try:
        index = int(row["answer_index"])
    except (TypeError, ValueError):
        raise SchemaError(f"{at}: answer_index {row['answer_index']!r} is not an integer") from None
    if index != letter_index:
        raise SchemaError(f"{at}: answer {letter!r} disagrees with answer_index {index}")
    choices, answer = [], None
    for k, column in enumerate(PROX_OPTIONS):
        text = _text(row[column])
        if text in _MISSING_OPTION:
            continue
        if k == index:
            answer = len(choices)
        choices.append(text)
    if answer is None:
        raise SchemaError(f"{at}: the correct option {PROX_OPTIONS[index]} is missing "
                          f"({row[PROX_OPTIONS[index]]!r})")
    question = _text(row["question"])
    if not question:
        raise SchemaError(f"{at}: empty question")
    category = _text(row["category"])
    return {
        "id": str(row["question_id"]),
        "language": tag,
        "topic": _text(row.get("src")) or category,
        # the worked answer of a few-shot example (lm-eval's mmlu_prox prints it after the shot's
        # question): kept when the source has it, '' otherwise (the flattened TSVs have none)
        "cot_content": _text(row.get("cot_content")),
        "category": category,
        "question": question,
        "choices": choices,
        "answer": answer,
        "row": hub_row(row),
    }


def hub_row(row: dict) -> dict:
    """The source row as the data set holds it, every column and byte: what lm-eval's own task
    reads (compass.evaluation.paper_tasks), so its prompts equal ``lm_eval --tasks ...`` on the
    same rows, whitespace and all, while the item's fields are the cleaned ones."""
    return {str(k): (v if v is None or isinstance(v, (str, int, float, bool)) else str(v))
            for k, v in row.items()}


def parse_flattened_prox_tsv(path: str | Path, lang: str) -> list[dict]:
    """MC items from the flattened MMLU-ProX TSV (no header; question+options, answer letter).

    Column 1 is the question followed by ``\\nA. ...\\nB. ...`` (up to J) where ``\\n`` is a
    literal backslash-n; column 2 is the answer letter. Fields holding quotes are CSV-quoted. The
    literal ``\\n`` is the flattening's escape for a newline and is decoded back to one (this
    reproduces the original questions: the English rows equal the Arrow copy's), except where
    it begins a LaTeX control word such as ``\\nu``, ``\\neq`` or ``\\nabla`` (see
    :data:`_LATEX_N_WORDS`; ``\\ne`` and ``\\ni`` count as LaTeX only inside math, see
    :data:`_PROSE_N_WORDS`); other backslash sequences are LaTeX and are kept. Option letters
    must run A, B, C, ... without a gap, at most to J (:class:`OptionMarkerError`).
    The layout has no ids, subjects or categories: ids are '<file stem>/<row>' (the row order is
    the original's, so rows can be zipped with it) and topic / category are ''.
    """
    path = Path(path)
    tag = normalize(lang)
    if not path.is_file():
        raise FileNotFoundError(f"flattened MMLU-ProX TSV {str(path)!r} does not exist")
    _check_language(path, tag)
    items = []
    for i, (location, row) in enumerate(iter_records(path, "\t")):
        at = f"{path} row {i}"
        if len(row) != 2:
            raise SchemaError(f"{at}: expected 2 tab-separated columns (question+options, answer "
                              f"letter), got {len(row)}; is this the flattened MMLU-ProX layout?")
        question, choices = _split_flattened(row[0], at, location)
        answer = _answer_index(row[1], len(choices), at)
        items.append({
            "id": f"{path.stem}/{i}",
            "language": tag,
            "topic": "",
            "category": "",
            "question": question,
            "choices": choices,
            "answer": answer,
        })
    if not items:
        raise SchemaError(f"{path}: no rows")
    return items


def _split_flattened(text: str, at: str, line: int | None = None) -> tuple[str, list[str]]:
    """Split 'question\\nA. a\\nB. b...' at its option markers A, B, C, ... (at most J).

    Every marker after the first 'A' must be the next letter: a skipped letter (an option
    removed) or one past J (an 11th option) is refused, not merged into the option before it.
    Rows with fewer than 10 options are normal (MMLU-ProX drops its N/A options and letters the
    rest A, B, ... without gaps); markers before 'A' belong to the question (a list 'I. ... II.').
    """
    start = text.find(_FLAT_MARK.format(letter="A"))
    if start < 0:
        raise SchemaError(f"{at}: no option marker '\\nA. ' in column 1")
    marks = list(_ANY_FLAT_MARK.finditer(text, start))
    letters = [m.group(1) for m in marks]
    for k, letter in enumerate(letters):
        if k >= len(LETTERS) or letter != LETTERS[k]:
            raise OptionMarkerError(_marker_problem(at, line, letters, k))
    bounds = [m.start() for m in marks] + [len(text)]
    mark = len(_FLAT_MARK.format(letter="A"))
    choices = [_unescape(text[a + mark:b]) for a, b in zip(bounds, bounds[1:])]
    question = _unescape(text[:start])
    if not question or any(not c for c in choices):
        raise SchemaError(f"{at}: empty question or option in column 1")
    return question, choices


def _marker_problem(at: str, line: int | None, letters: list[str], k: int) -> str:
    """The message for option marker ``k`` out of sequence: which letters, what was expected."""
    where = f"{at}, line {line}" if line else at
    run = ", ".join(letters)
    if k >= len(LETTERS):
        return (f"{where}: option letters run {run}: option {k + 1} ({letters[k]!r}) is past J; "
                f"expected at most 10 options, lettered A to J")
    return (f"{where}: option letters run {run}: after {letters[k - 1]!r} comes {letters[k]!r}, "
            f"expected {LETTERS[k]!r} (consecutive letters from A; an option was removed or "
            f"its marker damaged)")


def _unescape(text: str) -> str:
    """Decode the flattening's backslash-n line breaks; keep LaTeX words that begin with '\\n'."""
    math = _math_spans(text)

    def decode(match: re.Match) -> str:
        word = match.group(1)
        if word in _LATEX_N_WORDS and (word not in _PROSE_N_WORDS
                                       or _inside(math, match.start())):
            return match.group(0)
        return "\n" + word[1:]
    return _BACKSLASH_N.sub(decode, text).strip()


def _math_spans(text: str) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` of the math in ``text``: $...$, $$...$$, \\(...\\), \\[...\\].

    A single '$' follows Pandoc's rule, so prices are not math: it opens only before a
    non-space and closes only after a non-space and not before a digit ('$5 and $x$': the
    math is 'x'). An escaped dollar is text; an opening never closed is no math.
    """
    spans, opened = [], None
    for match in _MATH_DELIMITERS.finditer(text):
        token = match.group(0)
        if token == "\\$":
            continue
        if opened is not None and token == opened[1] and _may_close(text, match):
            spans.append((opened[0], match.start()))
            opened = None
        elif token in _MATH_CLOSE and (opened is None or opened[1] == "$") \
                and _may_open(text, match):  # a '$' left open may be a price: open anew
            opened = (match.end(), _MATH_CLOSE[token])
    return spans


def _may_open(text: str, match: re.Match) -> bool:
    after = text[match.end():match.end() + 1]
    return match.group(0) != "$" or (after != "" and not after.isspace())


def _may_close(text: str, match: re.Match) -> bool:
    before = text[match.start() - 1:match.start()]
    after = text[match.end():match.end() + 1]
    return match.group(0) != "$" or (before != "" and not before.isspace()
                                     and not after.isdigit())


def _inside(spans: list[tuple[int, int]], position: int) -> bool:
    return any(start <= position < end for start, end in spans)
