"""Protocols: what data a run adapts on and how it is scored. Two exist: ``tiny`` (the offline
chatterbot-corpus protocol) and ``paper`` (Aya pool, Global-MMLU and MMLU-ProX-Lite). Code outside
this package asks ``protocol_of(cfg)`` instead of testing ``cfg.profile``: a third protocol is one
more module here, not a branch in every stage. What a protocol reads is in
:mod:`compass.protocols.data` and how it scores one language in
:mod:`compass.protocols.evaluation`, apart: config.py imports this package, so only the stages that
read data or score depend on those loaders and scorers."""
from __future__ import annotations

from compass.protocols.base import Protocol
from compass.protocols.paper import PaperProtocol
from compass.protocols.tiny import TinyProtocol

_PROTOCOLS = {p.name: p for p in (TinyProtocol(), PaperProtocol())}


def protocol_of(cfg) -> Protocol:
    """The protocol a config runs under; an unknown ``profile`` is refused by name."""
    try:
        return _PROTOCOLS[cfg.profile]
    except KeyError:
        raise ValueError(f"profile = {cfg.profile!r}: allowed {sorted(_PROTOCOLS)}") from None


__all__ = ["Protocol", "protocol_of"]
