"""The record schemas every profile maps its data to. One place, so loaders and notebooks agree.

PAIR  (one line of data/pool/pairs.jsonl; the auxiliary pool and the target splits)
    id        str   stable id, '<lang>/<source>/<topic>/<n>' (unique in the pool)
    language  str   ISO 639-1 tag where one exists (compass.languages.normalize)
    topic     str   the topic / subject / source file the pair comes from
    prompt    str   instruction or user turn
    response  str   the answer / assistant turn
    source    str   data set name ('chatterbot-corpus', 'aya_dataset', ...)

SPLIT  (data/languages/<lang>/data/splits.csv; one row per target-language pair)
    id, split ('dev' = target usage sample E_t, 'train' = existing target training data,
    'test' = source of the multiple-choice items), topic, group (prompt group: never straddles
    splits)

MC_ITEM  (data/languages/<lang>/data/test_items.jsonl; multiple-choice evaluation items)
    id        str   item id (the pair id for the tiny profile, sample_id / question_id for paper)
    language  str
    topic     str   tiny: topic file; paper: subject
    category  str   paper: subject_category / category ('' in the tiny profile)
    question  str
    choices   list[str]  the answer options, order fixed by the seed
    answer    int   index of the correct choice in ``choices``
"""
from __future__ import annotations

PAIR_FIELDS = ("id", "language", "topic", "prompt", "response", "source")
SPLIT_FIELDS = ("id", "split", "topic", "group")
MC_FIELDS = ("id", "language", "topic", "category", "question", "choices", "answer")
SPLITS = ("dev", "train", "test")


class SchemaError(ValueError):
    """A record that does not follow its schema (corrupt or foreign data file)."""


def check_record(record: dict, required: tuple[str, ...], where: str) -> dict:
    """``record`` unchanged when it has every ``required`` field; SchemaError at ``where`` names
    what is missing."""
    missing = [name for name in required if name not in record]
    if missing:
        raise SchemaError(f"{where}: record is missing field(s) {missing}; has {sorted(record)}")
    return record


def pair_text(pair: dict) -> str:
    """The text that represents a pair for embedding and n-gram features."""
    return f"{pair['prompt']}\n{pair['response']}"
