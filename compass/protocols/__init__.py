"""Protocols: what data a run adapts on and how it is scored. Two exist: ``tiny`` (the offline
chatterbot-corpus protocol) and ``paper`` (Aya pool, Global-MMLU and MMLU-ProX-Lite). Code outside
this package asks ``protocol_of(cfg)`` instead of testing ``cfg.profile``: a third protocol is one
more module here, not a branch in every stage."""
from __future__ import annotations

from compass.protocols.base import Protocol, protocol_of

__all__ = ["Protocol", "protocol_of"]
