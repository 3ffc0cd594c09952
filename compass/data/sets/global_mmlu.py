"""Global-MMLU (full and Lite): four-option questions in many languages, with cultural labels.

The dev split (5 per subject) is the target usage sample E_t (:func:`global_mmlu_dev_as_pairs`);
test is the evaluation. A local file is checked by its path (:mod:`compass.data.path_claims`)
and by what it holds (:mod:`compass.data.row_checks`): a test file read as dev would leak test
items into E_t.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Iterable

from compass.data.cells import cell_text, check_choice, row_name
from compass.data.locate import is_local
from compass.data.mc_items import LETTERS, MCItems, answer_index, hub_row
from compass.data.path_claims import check_source_split
from compass.data.row_checks import check_duplicates, check_language_column, check_text_language
from compass.data.source_rows import source_rows
from compass.languages import normalize
from compass.schemas import MC_FIELDS, SchemaError, check_record

GLOBAL_MMLU_HUB = "CohereLabs/Global-MMLU"
GLOBAL_MMLU_LITE_HUB = "CohereLabs/Global-MMLU-Lite"
GLOBAL_MMLU_SPLITS = ("dev", "test")
GLOBAL_MMLU_OPTIONS = ("option_a", "option_b", "option_c", "option_d")
GLOBAL_MMLU_LETTERS = LETTERS[:len(GLOBAL_MMLU_OPTIONS)]
GLOBAL_MMLU_COLUMNS = ("sample_id", "subject", "subject_category", "question",
                       *GLOBAL_MMLU_OPTIONS, "answer")
CS_LABELS = ("CS", "CA", "-")  # '-': not annotated (the dev split, most of the full test split)
CS_LABELS_LITE_TEST = ("CS", "CA")  # Global-MMLU-Lite's test split is annotated throughout


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
    caller states what it holds with ``source_split`` (see
    :func:`compass.data.path_claims.path_claims` for the names read). Hub sources and saved
    datasets that record their split are checked by that record.
    """
    return _load_global_mmlu(lang, split, source, subjects, cache_dir, revision, source_split,
                             CS_LABELS, "Global-MMLU")


def load_global_mmlu_lite(lang: str, split: str = "test",
                          source: str | Path = GLOBAL_MMLU_LITE_HUB,
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
    check_choice(split, GLOBAL_MMLU_SPLITS, f"{what} split")
    check_source_split(source_split, split)
    tag = normalize(lang)
    required = GLOBAL_MMLU_COLUMNS
    if "-" not in labels:  # an annotated split: every row needs its label
        required = (*required, "cultural_sensitivity_label")
    rows = source_rows(source, tag, split, required, what, cache_dir, revision,
                       config=tag, source_split=source_split)
    if is_local(source):
        _check_rows_language(rows, tag)
    check_duplicates(rows, "sample_id")
    items = MCItems()
    for where, i, location, row in rows:
        at = row_name(where, i, location, "sample_id", cell_text(row["sample_id"]))
        check_language_column(row, tag, at)
        item, empty = _gmmlu_item(row, tag, at, labels)
        if empty:
            reason = "empty question" if "question" in empty else "empty option"
            items.dropped.append({"id": item["id"], "topic": item["topic"], "where": at,
                                  "reason": reason, "fields": empty})
        else:
            items.append(item)
    if not items:
        dropped = (f": all {len(items.dropped)} dropped ({dict(items.drops)})"
                   if items.dropped else "")
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
        texts.extend(cell_text(row[c]) for c in ("question", *GLOBAL_MMLU_OPTIONS))
    for where, texts in by_file.items():
        check_text_language(where, texts, tag)


def _gmmlu_item(row: dict, tag: str, at: str, labels: tuple[str, ...]) -> tuple[dict, list[str]]:
    """The MC item of one row, and the names of its empty fields (non-empty: drop the row)."""
    answer = answer_index(row["answer"], len(GLOBAL_MMLU_LETTERS), at)
    question = cell_text(row["question"])
    choices = [cell_text(row[c]) for c in GLOBAL_MMLU_OPTIONS]
    item = {
        "id": cell_text(row["sample_id"]),
        "language": tag,
        "topic": cell_text(row["subject"]),
        "category": cell_text(row["subject_category"]),
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
    label = cell_text(value)
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
