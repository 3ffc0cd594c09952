"""Which parts of the ECDA update rule each continual method uses, by name: the one list that
params validation and the continual runner share (no imports, so config can read it).

``guard``: the rollback check on validation items (compass.continual.update.guarded_update) is
part of ECDA only. The baselines are the paper's: plain sequential fine-tuning, EWC alone, random
rehearsal and full retraining serve every update they train. Guarding them too would discard the
very updates that make them forget and hide what forgetting the instrument should find."""
from __future__ import annotations

RECIPES: dict[str, dict] = {
    "no_update": dict(update=False, guard=False),
    "naive": dict(update=True, ewc=False, replay=None, on_trigger=False, retrain=False,
                  guard=False),
    "ewc": dict(update=True, ewc=True, replay=None, on_trigger=False, retrain=False, guard=False),
    "random_rehearsal": dict(update=True, ewc=False, replay="random", on_trigger=False,
                             retrain=False, guard=False),
    "ecda": dict(update=True, ewc=True, replay="stratified", on_trigger=True, retrain=False,
                 guard=True),
    "full_retrain": dict(update=True, ewc=False, replay=None, on_trigger=False, retrain=True,
                         guard=False),
}
METHODS = tuple(RECIPES)
