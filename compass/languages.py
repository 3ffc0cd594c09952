"""Language codes: ISO 639-1 where one exists, 639-3 accepted and normalised (via `langcodes`)."""
from __future__ import annotations

import langcodes


class UnknownLanguageError(ValueError):
    """A language code that is not a language, or not available in the current data."""


def normalize(code: str) -> str:
    """Return the canonical tag for ``code``: 'ukr' -> 'uk', 'pes' -> 'fa', 'UK' -> 'uk'.

    Raises UnknownLanguageError naming the code when it is not a valid language tag.
    """
    if not isinstance(code, str) or not code.strip():
        raise UnknownLanguageError(f"language code {code!r} is not a non-empty string")
    raw = code.strip()
    try:
        tag = langcodes.standardize_tag(raw, macro=True)
        valid = langcodes.Language.get(tag).is_valid()
    except (ValueError, LookupError) as err:
        raise UnknownLanguageError(f"{raw!r} is not a known language code ({err})") from None
    if not valid or langcodes.Language.get(tag).display_name().startswith("Unknown language"):
        raise UnknownLanguageError(f"{raw!r} is not a known language code")
    return tag


def require_available(code: str, available: list[str] | set[str], role: str = "language") -> str:
    """Normalise ``code`` and check it is in ``available``; the error lists what is."""
    tag = normalize(code)
    if tag not in available:
        listing = ", ".join(sorted(available))
        raise UnknownLanguageError(
            f"{role} {code!r} (normalised {tag!r}) is not available in this profile's data; "
            f"available: {listing}"
        )
    return tag


def display_name(code: str) -> str:
    """The English name of a language tag (e.g. ``de`` -> German), for table rows and prose."""
    return langcodes.Language.get(code).display_name()


def alpha3(code: str) -> str:
    """ISO 639-3 code (what URIEL / lang2vec use)."""
    return langcodes.Language.get(code).to_alpha3()
