"""Selectors of auxiliary training data, one interface: ``select(method, pool, cfg, seed)``."""
from __future__ import annotations

from functools import partial

from compass.selection.base import Selection, SelectionError


def _registry():
    from compass.selection import baselines
    from compass.selection.compass_method import select_compass

    return {
        "random": baselines.select_random,
        "all": baselines.select_all,
        "langsim": baselines.select_langsim,
        "dsir": baselines.select_dsir,
        "compass": partial(select_compass, gap="coverage_gap", method="compass"),
        "compass_inverse": partial(select_compass, gap="inverse_count", method="compass_inverse"),
        "compass_fill": partial(select_compass, gap="fill_to_target", method="compass_fill"),
    }


METHODS = ("random", "all", "langsim", "dsir", "compass", "compass_inverse", "compass_fill")


def select(method: str, pool, cfg, seed: int | None = None) -> Selection:
    """Run one selector on a TargetPool with the config's budget."""
    registry = _registry()
    if method not in registry:
        raise SelectionError(f"selection method {method!r} does not exist; choose from {list(METHODS)}")
    return registry[method](pool, cfg, cfg.seed if seed is None else seed)


__all__ = ["METHODS", "Selection", "SelectionError", "select"]
