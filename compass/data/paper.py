"""The paper profile's loaders under one name: Aya Dataset, Global-MMLU, MMLU-ProX (full, Lite).

Each data set lives in its own module under :mod:`compass.data.sets` (hub id, splits, columns,
labels, loader); what they share lives in compass.data: finding a language's rows in a local
folder layout (:mod:`~compass.data.locate`), what a path claims about language and split
(:mod:`~compass.data.path_claims`), reading files, saved datasets and the hub
(:mod:`~compass.data.readers`, :mod:`~compass.data.source_rows`), checks of what rows hold
(:mod:`~compass.data.row_checks`), MC items (:mod:`~compass.data.mc_items`) and the refusals
(:mod:`~compass.data.errors`). This module re-exports them, so ``paper.load_global_mmlu`` and
the rest keep working for every caller.

Each loader takes either the real Hugging Face hub name (read with ``datasets.load_dataset``; the
config name is the language code) or a local path, so the same code runs offline on saved copies
and on the test fixtures. Every loader checks the columns it needs before mapping a single row
and raises :class:`~compass.schemas.SchemaError` naming the missing columns and the file or
source; a bad answer label raises naming the row. Rows map to the PAIR and MC_ITEM schemas of
:mod:`compass.schemas`.
"""
from __future__ import annotations

from compass.data.errors import (
    ContentLanguageError,
    DuplicateRowError,
    MissingColumnError,
    OptionMarkerError,
    SourceMismatchError,
)
from compass.data.mc_items import LETTERS, MCItems, hub_row
from compass.data.path_claims import ALL_SPLITS
from compass.data.readers import DATA_EXTENSIONS
from compass.data.sets.aya import AYA_COLLECTION_MARK, AYA_COLUMNS, AYA_HUB, AYA_SPLITS, load_aya
from compass.data.sets.global_mmlu import (
    CS_LABELS,
    CS_LABELS_LITE_TEST,
    GLOBAL_MMLU_COLUMNS,
    GLOBAL_MMLU_HUB,
    GLOBAL_MMLU_LITE_HUB,
    GLOBAL_MMLU_OPTIONS,
    GLOBAL_MMLU_SPLITS,
    global_mmlu_dev_as_pairs,
    load_global_mmlu,
    load_global_mmlu_lite,
)
from compass.data.sets.mmlu_prox import (
    MMLU_PROX_HUB,
    MMLU_PROX_LITE_HUB,
    MMLU_PROX_SPLITS,
    PROX_COLUMNS,
    PROX_OPTIONS,
    load_mmlu_prox,
    load_mmlu_prox_lite,
)
from compass.data.sets.prox_flattened import parse_flattened_prox_tsv

__all__ = [
    "ALL_SPLITS", "AYA_COLLECTION_MARK", "AYA_COLUMNS", "AYA_HUB", "AYA_SPLITS", "CS_LABELS",
    "CS_LABELS_LITE_TEST", "ContentLanguageError", "DATA_EXTENSIONS", "DuplicateRowError",
    "GLOBAL_MMLU_COLUMNS", "GLOBAL_MMLU_HUB", "GLOBAL_MMLU_LITE_HUB", "GLOBAL_MMLU_OPTIONS",
    "GLOBAL_MMLU_SPLITS", "LETTERS", "MCItems", "MMLU_PROX_HUB", "MMLU_PROX_LITE_HUB",
    "MMLU_PROX_SPLITS", "MissingColumnError", "OptionMarkerError", "PROX_COLUMNS",
    "PROX_OPTIONS", "SourceMismatchError", "global_mmlu_dev_as_pairs", "hub_row", "load_aya",
    "load_global_mmlu", "load_global_mmlu_lite", "load_mmlu_prox", "load_mmlu_prox_lite",
    "parse_flattened_prox_tsv",
]
