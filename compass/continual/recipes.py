"""Which parts of the ECDA update rule each continual method uses, by name: the one list that
params validation and the continual runner share (no imports, so config can read it)."""
from __future__ import annotations

RECIPES: dict[str, dict] = {
    "no_update": dict(update=False),
    "naive": dict(update=True, ewc=False, replay=None, on_trigger=False, retrain=False),
    "ewc": dict(update=True, ewc=True, replay=None, on_trigger=False, retrain=False),
    "random_rehearsal": dict(update=True, ewc=False, replay="random", on_trigger=False, retrain=False),
    "ecda": dict(update=True, ewc=True, replay="stratified", on_trigger=True, retrain=False),
    "full_retrain": dict(update=True, ewc=False, replay=None, on_trigger=False, retrain=True),
}
METHODS = tuple(RECIPES)
