"""The protocol interface and the lookup from params (``profile`` names the protocol)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Protocol:
    """What differs between protocols. ``name`` is the ``profile`` param's value; ``describes_paper``
    says whether the book opens on the paper's claims and tables (only the paper protocol
    measures what the paper measured). ``mc_items_are_nll_pairs``: every multiple-choice
    item's answer is also a held-out pair whose NLL is measured (so nll_items >= max_items);
    ``scores_one_seed``: the evaluation scores one seed's final adapters (no step curve)."""

    name: str
    describes_paper: bool
    mc_items_are_nll_pairs: bool = False
    scores_one_seed: bool = False


_PROTOCOLS = {"tiny": Protocol(name="tiny", describes_paper=False, mc_items_are_nll_pairs=True),
              "paper": Protocol(name="paper", describes_paper=True, scores_one_seed=True)}


def protocol_of(cfg) -> Protocol:
    """The protocol a config runs under; an unknown ``profile`` is refused by name."""
    try:
        return _PROTOCOLS[cfg.profile]
    except KeyError:
        raise ValueError(f"profile = {cfg.profile!r}: allowed {sorted(_PROTOCOLS)}") from None
