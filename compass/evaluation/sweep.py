"""Zero-shot and every adapter of one language on one loaded base model: the order every
evaluation scores in (the evaluate stage under both protocols, long context).

The base model is scored bare first; then every method's adapter is attached at once to one
PeftModel and activated in turn, in ``train.methods`` order, so a method's scores never depend
on which adapters were loaded before it, and the model loads once."""
from __future__ import annotations

from collections.abc import Iterator

ZERO_SHOT = "zero_shot"


class AdapterSweep:
    """``for method, model in sweep`` yields ("zero_shot", the base model), then (method, the
    model with that method's adapter active) for each method. ``attached`` is the PeftModel
    holding every adapter once the sweep has passed zero-shot (None before), for what a caller
    scores after the sweep (further seeds, curve steps)."""

    def __init__(self, model, registry, lang: str, methods: list[str]):
        self.model, self.registry, self.lang = model, registry, lang
        self.methods = list(methods)
        self.attached = None

    def __iter__(self) -> Iterator[tuple[str, object]]:
        yield ZERO_SHOT, self.model
        if not self.methods:
            return
        self.attached = self.registry.attach(self.model, [(self.lang, m) for m in self.methods])
        for method in self.methods:
            self.registry.activate(self.attached, self.lang, method)
            yield method, self.attached
