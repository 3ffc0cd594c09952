"""The protocol interface: what a stage asks of the protocol its params name (``profile``)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Protocol:
    """What differs between protocols. ``name`` is the ``profile`` param's value;
    ``describes_paper`` says whether the book opens on the paper's claims and tables (only the paper protocol
    measures what the paper measured); ``hub_benchmarks`` says whether targets are scored on hub
    benchmarks (Global-MMLU, MMLU-ProX-Lite), whose assets, coverage and prompt lengths are
    checked and costed before a run. ``mc_items_are_nll_pairs``: every multiple-choice item's
    answer is also a held-out pair whose NLL is measured (so nll_items >= max_items);
    ``scores_one_seed``: the evaluation scores one seed's final adapters (no step curve)."""

    name: str
    describes_paper: bool
    hub_benchmarks: bool = False
    mc_items_are_nll_pairs: bool = False
    scores_one_seed: bool = False

    def pool_pairs(self, cfg) -> list[dict]:
        """Every pair the pool stage embeds (it may write the benchmark files it drew them from)."""
        raise NotImplementedError

    def split_target(self, cfg, lang: str, own: list[dict]):
        """(splits, test items, benchmark rows the loaders dropped or None) of one target from its
        own pairs; the check stage runs it too, so what it refuses is what would fail there."""
        raise NotImplementedError

    def prox_languages(self, cfg) -> tuple[str, ...]:
        """The targets scored on MMLU-ProX-Lite (none unless the protocol has the benchmark)."""
        return ()

    def languages_to_check(self, cfg) -> tuple[str, ...]:
        """The targets whose data a built pool holds."""
        return tuple(cfg.targets)

    def dry_check_pairs(self, cfg) -> list[dict] | None:
        """Pairs a dry check can read on a fresh clone, before the pool exists (None: none)."""
        return None
