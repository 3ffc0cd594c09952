"""The tiny protocol: chatterbot-corpus pairs, seeded splits and multiple-choice items built from
each target's own held-out responses; everything offline."""
from __future__ import annotations

from dataclasses import dataclass

from compass.protocols.base import Protocol


@dataclass(frozen=True)
class TinyProtocol(Protocol):
    """The offline protocol: chatterbot-corpus pairs, multiple-choice items built from each target's
    own pairs (each answer also an NLL pair), every seed and step scored; nothing it finds describes
    the paper."""
    name: str = "tiny"
    describes_paper: bool = False
    hub_benchmarks: bool = False
    mc_items_are_nll_pairs: bool = True
    scores_one_seed: bool = False
