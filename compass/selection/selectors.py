"""Every selector behind one call: ``select(method, pool, cfg, seed)``."""
from __future__ import annotations

from functools import partial

from compass.selection import baselines, compass_method
from compass.selection.base import Selection, SelectionError
from compass.selection_methods import METHODS, SELECTORS

_MODULES = {"baselines": baselines, "compass_method": compass_method}


def selector(method: str):
    """The selection function registered under ``method``."""
    if method not in SELECTORS:
        raise SelectionError(f"selection method {method!r} does not exist; choose from "
                             f"{list(METHODS)}")
    module, name, fixed = SELECTORS[method]
    return partial(getattr(_MODULES[module], name), **fixed)


def select(method: str, pool, cfg, seed: int | None = None) -> Selection:
    """Run one selector on a TargetPool with the config's budget."""
    return selector(method)(pool, cfg, cfg.seed if seed is None else seed)
