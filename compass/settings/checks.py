"""The checks a setting's metadata asks for (choice, type, range): one function per kind, each
raising a ConfigError that names the setting, the value and what is allowed."""
from __future__ import annotations

from dataclasses import fields, is_dataclass


class ConfigError(ValueError):
    """A value in params.yaml that is not allowed; the message names it and what is."""


def one_of(value, allowed, where) -> None:
    """ConfigError unless ``value`` is one of ``allowed``; ``where`` is the setting's dotted
    name."""
    if value not in allowed:
        raise ConfigError(f"{where} = {value!r} is not allowed; choose one of {list(allowed)}")


def integer(value, where, minimum=1) -> None:
    """ConfigError unless ``value`` is an int >= ``minimum`` (a bool is refused, though Python
    counts it as an int)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{where} = {value!r} must be an integer >= {minimum}")


def number(value, where, low=0.0, high=1.0, open_range=False) -> None:
    """ConfigError unless ``value`` is a number (not a bool) in [low, high], or in (low, high) with
    ``open_range``."""
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    inside = is_number and ((low < value < high) if open_range else (low <= value <= high))
    if not inside:
        bounds = f"({low}, {high})" if open_range else f"[{low}, {high}]"
        raise ConfigError(f"{where} = {value!r} must be a number in {bounds}")


def boolean(value, where) -> None:
    """ConfigError unless ``value`` is a YAML boolean (true or false; 0 and 1 are refused)."""
    if not isinstance(value, bool):
        raise ConfigError(f"{where} = {value!r}: true or false")


def hub_source(value, where) -> None:
    """A hub id, ``id@revision`` (a pinned commit, tag or branch) or a local path."""
    from compass import hub_ids

    try:
        hub_ids.split(str(value))
    except hub_ids.HubIdError as err:
        raise ConfigError(f"{where}: {err}") from None


def non_empty_text(value, where) -> None:
    """ConfigError unless ``value`` is a non-empty string."""
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} = {value!r}: a non-empty text")


NAMED = {"hub_source": hub_source, "non_empty_text": non_empty_text}


def _is_word(value, words) -> bool:
    return isinstance(value, str) and value in words


def leaf(value, meta, where: str) -> None:
    """Check one value against its field's metadata."""
    if value is None and meta.get("optional"):
        return
    also = meta.get("also", ())
    if _is_word(value, also):
        return
    try:
        _kind(value, meta, where)
    except ConfigError:
        if not also:
            raise
        words = " or ".join(repr(word) for word in also)
        raise ConfigError(f"{where} = {value!r} is not allowed; use {_describe(meta)} or "
                          f"{words}") from None
    if "choices" in meta:
        one_of(value, meta["choices"], where)
    if "check" in meta:
        NAMED[meta["check"]](value, where)


def _kind(value, meta, where) -> None:
    kind = meta.get("kind")
    if kind == "int":
        integer(value, where, meta.get("low", 1))
    elif kind == "number":
        number(value, where, meta.get("low", 0.0), meta.get("high", 1.0), meta.get("open", False))
    elif kind == "bool":
        boolean(value, where)


def _describe(meta) -> str:
    if meta.get("kind") == "int":
        return f"an integer >= {meta.get('low', 1)}"
    low, high = meta.get("low", 0.0), meta.get("high", 1.0)
    return f"a number in ({low}, {high})" if meta.get("open") else f"a number in [{low}, {high}]"


def section(obj, prefix: str, key_of) -> None:
    """Check every field of a config section (and its subsections) against its metadata."""
    for f in fields(obj):
        value = getattr(obj, f.name)
        where = key_of(prefix, f.name)
        if is_dataclass(value):
            section(value, f"{prefix}{f.name}.", key_of)
            continue
        meta = f.metadata
        if "nonempty" in meta and not value:
            raise ConfigError(f"{where} is empty; {meta['nonempty']}")
        if not meta.get("each"):
            leaf(value, meta, where)
            continue
        for entry in value if isinstance(value, (tuple, list, str)) else [value]:
            leaf(entry, meta, f"{where} entry")
