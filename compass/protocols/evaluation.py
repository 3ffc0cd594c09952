"""How each protocol evaluates one (target language, base model): kept apart from the protocol
classes because DVC reruns a stage when any module it imports changes, and the pool, data and
check stages, which ask the protocols for data, must not rerun on an edit to the scoring code."""
from __future__ import annotations

from compass.protocols import protocol_of


def evaluate_language(cfg, lang: str, model_name: str, show_progress_bar: bool = True) -> dict:
    """Score zero-shot and every adapter of ``lang`` as the config's protocol prescribes, write
    the tables and metrics, and return them."""
    from compass.evaluation import paper_protocol, tiny_protocol

    by_protocol = {"tiny": tiny_protocol.evaluate_language,
                   "paper": paper_protocol.evaluate_language}
    return by_protocol[protocol_of(cfg).name](cfg, lang, model_name, show_progress_bar)
