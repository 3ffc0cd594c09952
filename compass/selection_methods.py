"""The selection methods by name: the one list that params validation, the selectors and the
notebooks share. Each entry names its function (module in compass.selection, function, fixed
arguments); importing this module imports nothing, so config can validate against it."""
from __future__ import annotations

SELECTORS: dict[str, tuple[str, str, dict]] = {
    "random": ("baselines", "select_random", {}),
    "all": ("baselines", "select_all", {}),
    "langsim": ("baselines", "select_langsim", {}),
    "dsir": ("baselines", "select_dsir", {}),
    "oracle": ("baselines", "select_oracle", {}),  # a positive control (E_t's gap pairs), no method
    "compass": ("compass_method", "select_compass", {"gap": "coverage_gap", "method": "compass"}),
    "compass_inverse": ("compass_method", "select_compass",
                        {"gap": "inverse_count", "method": "compass_inverse"}),
    "compass_fill": ("compass_method", "select_compass",
                     {"gap": "fill_to_target", "method": "compass_fill"}),
}
METHODS = tuple(SELECTORS)
CONTROLS = ("oracle",)  # selections that are controls: exempt from the full-budget contract
