"""Stage `evaluate`: zero-shot and every adapter of one target language on the same test items,
with intervals, paired permutation tests and an lm-eval cross-check, scored as the run's protocol
prescribes (compass.evaluation.tiny_protocol, compass.evaluation.paper_protocol)."""
from __future__ import annotations

from compass.protocols.evaluation import evaluate_language

__all__ = ["evaluate_language"]
