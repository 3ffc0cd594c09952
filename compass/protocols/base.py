"""The protocol interface and the lookup from params (``profile`` names the protocol)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Protocol:
    """What differs between protocols. ``name`` is the ``profile`` param's value; ``describes_paper``
    says whether the book opens on the paper's claims and tables (only the paper protocol
    measures what the paper measured)."""

    name: str
    describes_paper: bool


_PROTOCOLS = {"tiny": Protocol(name="tiny", describes_paper=False),
              "paper": Protocol(name="paper", describes_paper=True)}


def protocol_of(cfg) -> Protocol:
    """The protocol a config runs under; an unknown ``profile`` is refused by name."""
    try:
        return _PROTOCOLS[cfg.profile]
    except KeyError:
        raise ValueError(f"profile = {cfg.profile!r}: allowed {sorted(_PROTOCOLS)}") from None
