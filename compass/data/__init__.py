"""Data of both profiles in the project's schemas (compass.schemas)."""
from __future__ import annotations

from collections import Counter

from compass import io, paths
from compass.schemas import PAIR_FIELDS


def read_pool() -> list[dict]:
    """The pool written by the `pool` stage (checked against the PAIR schema)."""
    return io.read_jsonl(paths.pool_file(), required=PAIR_FIELDS)


def language_counts(pairs: list[dict]) -> dict[str, int]:
    """Pairs per language, languages in sorted order (the pool summary's ``languages``)."""
    return dict(sorted(Counter(p["language"] for p in pairs).items()))
