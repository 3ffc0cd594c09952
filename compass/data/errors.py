"""The refusals of the data-set loaders: each names a way a source can be wrong.

All are :class:`~compass.schemas.SchemaError`, so a caller that only asks "is this source
usable?" catches one type; a caller that must tell the reasons apart catches the subclass.
"""
from __future__ import annotations

from compass.schemas import SchemaError


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
