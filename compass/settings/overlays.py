"""Params files as overlays: a file holds only what differs, and ``include: other.yaml`` (a path
relative to the file) names the file it adds to. What no file sets keeps the schema's default."""
from __future__ import annotations

from pathlib import Path

import yaml

from compass.settings.checks import ConfigError

INCLUDE = "include"


def read(path: str | Path, _seen: tuple = ()) -> dict:
    """The mapping of ``path`` with every included file beneath it (later files win)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"params file {path} does not exist")
    if path.resolve() in _seen:
        raise ConfigError(f"params file {path} includes itself (through {list(map(str, _seen))})")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"params file {path} is not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"params must be a mapping, got {type(raw).__name__}")
    base = raw.pop(INCLUDE, None)
    if base is None:
        return raw
    return merge(read(path.parent / str(base), (*_seen, path.resolve())), raw)


def merge(base: dict, overlay: dict) -> dict:
    """``overlay`` over ``base``: mappings merge key by key, anything else replaces."""
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and value:
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged
