"""Rows as the loaders see them: a cell as text, the columns a row must have, a row's name.

Every loader reads cells, checks columns and names rows the same way, so that an error message
points at the same file, row and line whichever data set it came from.
"""
from __future__ import annotations

from typing import Iterable

from compass.data.errors import MissingColumnError

# why a column is required where that is not obvious from the schema (appended to the error)
_WHY_REQUIRED = {
    "cultural_sensitivity_label": "Global-MMLU-Lite's test split is annotated throughout: every "
                                  "row needs its CS/CA label",
}


def cell_text(value) -> str:
    """A cell as stripped text; None (a null cell) becomes ''."""
    if value is None:
        return ""
    if isinstance(value, float) and value != value:  # NaN
        return ""
    return str(value).strip()


def require_columns(columns: Iterable[str], required: Iterable[str], where: str,
                    what: str) -> None:
    """Refuse a file or source that lacks a required column, before a single row is mapped."""
    columns = list(columns)
    missing = [c for c in required if c not in columns]
    if missing:
        why = "".join(f" ({_WHY_REQUIRED[c]})" for c in missing if c in _WHY_REQUIRED)
        raise MissingColumnError(
            f"{where}: not a {what} file/source: missing column(s) {missing}{why}; has {columns}"
        )


def check_choice(value: str, allowed: tuple[str, ...], what: str) -> str:
    """Refuse a split (or other setting) the data set does not have."""
    if value not in allowed:
        raise ValueError(f"{what} {value!r} is not allowed; allowed: {', '.join(allowed)}")
    return value


def row_name(where: str, i: int, location, key: str, value) -> str:
    """How an error names a row: file, row index, its id and, for text files, its line."""
    line = f", {location}" if location else ""
    return f"{where} row {i} ({key} {value!r}){line}"
