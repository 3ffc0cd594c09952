"""Checks of what local rows hold, not what their path says: language and repeated ids.

A name is not proof of content: a file's letters, common words and language column must fit
the language asked for (compass.data.text_language), and each id may occur once, or the item
would count twice in every score and every sample.
"""
from __future__ import annotations

import langcodes

from compass.data import text_language
from compass.data.cells import cell_text, row_name
from compass.data.errors import ContentLanguageError, DuplicateRowError
from compass.languages import UnknownLanguageError, normalize

# columns that state a row's language, where a file has one
_LANGUAGE_COLUMNS = ("language", "lang", "language_code")


def check_text_language(where: str, texts: list[str], tag: str) -> None:
    """Refuse rows whose text is in another language than ``tag`` (compass.data.text_language)."""
    problem = text_language.problem(texts, tag)
    if problem:
        raise ContentLanguageError(
            f"{where}: the questions and options are not in {tag!r}: {problem}; refusing to load "
            f"them as {tag!r} (a file's name does not say what it holds)"
        )


def check_language_column(row: dict, tag: str, at: str) -> None:
    """Refuse a row whose own language column names another language than ``tag``.

    The column may hold a code ('es', 'spa', 'es-ES') or a name ('Spanish', 'Español'); a
    regional variant counts as its language. A value that names no language is no evidence
    either way and is let through (the content check still applies).
    """
    for column in _LANGUAGE_COLUMNS:
        value = cell_text(row.get(column))
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


def check_duplicates(rows, key: str) -> None:
    """Refuse two rows with one ``key`` (an id): naming both, and saying if they are identical."""
    seen: dict[str, tuple] = {}
    for where, i, location, row in rows:
        value = cell_text(row[key])
        if value not in seen:
            seen[value] = (where, i, location, row)
            continue
        first = seen[value]
        other = row_name(first[0], first[1], first[2], key, value)
        what = "an exact duplicate of" if first[3] == row else f"{key} {value!r} again, first in"
        raise DuplicateRowError(f"{row_name(where, i, location, key, value)}: {what} {other}; "
                                f"expected each {key} once")
