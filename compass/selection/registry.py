"""The selection methods by name: the one list that params validation, the selectors and the
notebooks share. Entries name their function lazily (module, function, fixed arguments), so
importing the names costs nothing and imports nothing (config validates against them)."""
from __future__ import annotations

SELECTORS: dict[str, tuple[str, str, dict]] = {
    "random": ("compass.selection.baselines", "select_random", {}),
    "all": ("compass.selection.baselines", "select_all", {}),
    "langsim": ("compass.selection.baselines", "select_langsim", {}),
    "dsir": ("compass.selection.baselines", "select_dsir", {}),
    "compass": ("compass.selection.compass_method", "select_compass",
                {"gap": "coverage_gap", "method": "compass"}),
    "compass_inverse": ("compass.selection.compass_method", "select_compass",
                        {"gap": "inverse_count", "method": "compass_inverse"}),
    "compass_fill": ("compass.selection.compass_method", "select_compass",
                     {"gap": "fill_to_target", "method": "compass_fill"}),
}
METHODS = tuple(SELECTORS)
