"""MMLU-ProX (full and Lite): up to ten-option questions in many languages.

Read from the hub, a saved dataset, a file in the original columns, or the flattened two-column
TSV (:mod:`compass.data.sets.prox_flattened`), told apart by its lack of a header.
"""
from __future__ import annotations

from pathlib import Path

from compass.data.cells import cell_text, check_choice, row_name
from compass.data.locate import is_local, locate
from compass.data.mc_items import LETTERS, answer_index, hub_row
from compass.data.path_claims import check_source_split
from compass.data.sets.prox_flattened import parse_flattened_prox_tsv
from compass.data.source_rows import source_rows
from compass.data.textrows import iter_records
from compass.languages import normalize
from compass.schemas import SchemaError

MMLU_PROX_HUB = "li-lab/MMLU-ProX"
MMLU_PROX_LITE_HUB = "li-lab/MMLU-ProX-Lite"
MMLU_PROX_SPLITS = ("test", "validation")
PROX_OPTIONS = tuple(f"option_{i}" for i in range(10))
PROX_LETTERS = LETTERS[:len(PROX_OPTIONS)]
PROX_COLUMNS = ("question_id", "question", *PROX_OPTIONS, "answer", "answer_index", "category")
# src (e.g. 'ori_mmlu-business_ethics') is used as the topic when present, else category

# option cells that mean "no option here" in MMLU-ProX (the Arrow copy stores None)
_MISSING_OPTION = {"", "N/A"}


def load_mmlu_prox(lang: str, split: str = "test", source: str | Path = MMLU_PROX_HUB, *,
                   cache_dir=None, revision=None, source_split: str | None = None) -> list[dict]:
    """MMLU-ProX items of one language (up to 10 options) as MC_ITEM records.

    Missing options (None, '' or 'N/A' in some rows) are dropped and the answer index is moved to
    the kept options. Also reads a ``save_to_disk`` folder and the flattened two-column TSV
    (:func:`parse_flattened_prox_tsv`), detected by its lack of a header. Local sources must be
    identifiable as ``lang`` and ``split`` as for
    :func:`compass.data.sets.global_mmlu.load_global_mmlu` (``source_split`` states the split
    of one whose path names none, e.g. a saved Dataset without a split).
    """
    check_choice(split, MMLU_PROX_SPLITS, "MMLU-ProX split")
    check_source_split(source_split, split)
    tag = normalize(lang)
    if is_local(source):
        kind, found = locate(Path(source), tag, split, "MMLU-ProX", source_split)
        if kind == "files" and len(found) == 1 and found[0].suffix.lower() == ".tsv" \
                and not _has_header(found[0], "question_id"):
            return parse_flattened_prox_tsv(found[0], tag)
    rows = source_rows(source, tag, split, PROX_COLUMNS, "MMLU-ProX", cache_dir, revision,
                       config=tag, source_split=source_split)
    items = [_prox_item(row_name(where, i, location, "question_id", row["question_id"]), row, tag)
             for where, i, location, row in rows]
    if not items:
        raise SchemaError(f"{source}: no MMLU-ProX rows for {tag!r} split {split!r}")
    return items


def load_mmlu_prox_lite(lang: str, split: str = "test", source: str | Path = MMLU_PROX_LITE_HUB,
                        *, cache_dir=None, revision=None,
                        source_split: str | None = None) -> list[dict]:
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
    letter = cell_text(row["answer"])
    letter_index = answer_index(letter, len(PROX_LETTERS), at)
    try:
        index = int(row["answer_index"])
    except (TypeError, ValueError):
        raise SchemaError(f"{at}: answer_index {row['answer_index']!r} is not an integer") from None
    if index != letter_index:
        raise SchemaError(f"{at}: answer {letter!r} disagrees with answer_index {index}")
    choices, answer = [], None
    for k, column in enumerate(PROX_OPTIONS):
        text = cell_text(row[column])
        if text in _MISSING_OPTION:
            continue
        if k == index:
            answer = len(choices)
        choices.append(text)
    if answer is None:
        raise SchemaError(f"{at}: the correct option {PROX_OPTIONS[index]} is missing "
                          f"({row[PROX_OPTIONS[index]]!r})")
    question = cell_text(row["question"])
    if not question:
        raise SchemaError(f"{at}: empty question")
    category = cell_text(row["category"])
    return {
        "id": str(row["question_id"]),
        "language": tag,
        "topic": cell_text(row.get("src")) or category,
        # the worked answer of a few-shot example (lm-eval's mmlu_prox prints it after the shot's
        # question): kept when the source has it, '' otherwise (the flattened TSVs have none)
        "cot_content": cell_text(row.get("cot_content")),
        "category": category,
        "question": question,
        "choices": choices,
        "answer": answer,
        "row": hub_row(row),
    }
