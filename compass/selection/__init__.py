"""Selectors of auxiliary training data, one interface: ``select(method, pool, cfg, seed)``."""
from __future__ import annotations

import importlib
from functools import partial

from compass.selection.base import Selection, SelectionError
from compass.selection.registry import METHODS, SELECTORS


def selector(method: str):
    """The selection function registered under ``method``."""
    if method not in SELECTORS:
        raise SelectionError(f"selection method {method!r} does not exist; choose from {list(METHODS)}")
    module, name, fixed = SELECTORS[method]
    return partial(getattr(importlib.import_module(module), name), **fixed)


def select(method: str, pool, cfg, seed: int | None = None) -> Selection:
    """Run one selector on a TargetPool with the config's budget."""
    return selector(method)(pool, cfg, cfg.seed if seed is None else seed)


__all__ = ["METHODS", "Selection", "SelectionError", "select", "selector"]
