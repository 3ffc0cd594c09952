"""The tiny protocol: chatterbot-corpus pairs, seeded splits and multiple-choice items built from
each target's own held-out responses; everything offline."""
from __future__ import annotations

from dataclasses import dataclass

from compass.protocols.base import Protocol


@dataclass(frozen=True)
class TinyProtocol(Protocol):
    name: str = "tiny"
    describes_paper: bool = False
    hub_benchmarks: bool = False
    mc_items_are_nll_pairs: bool = True
    scores_one_seed: bool = False

    def pool_pairs(self, cfg) -> list[dict]:
        from compass.data.tiny import load_pairs

        return load_pairs()

    def split_target(self, cfg, lang: str, own: list[dict]):
        from compass.data.splits import make_test_items, split_language

        splits = split_language(own, cfg.data.split, cfg.seed)
        return splits, make_test_items(own, splits, cfg.data.split, cfg.seed), None

    def dry_check_pairs(self, cfg) -> list[dict] | None:
        return self.pool_pairs(cfg)  # the corpus ships with its package: no pool needed
