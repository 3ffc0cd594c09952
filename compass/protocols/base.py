"""The protocol interface: the facts a stage, the config and the book ask of the protocol its
params name (``profile``). What it reads is in :mod:`compass.protocols.data`, how it scores in
:mod:`compass.protocols.evaluation`: config.py imports this package, and DVC reruns a stage when
any module it imports changes, so nothing here imports the data or scoring code."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Protocol:
    """What differs between protocols. ``name`` is the ``profile`` param's value;
    ``describes_paper`` says whether the book opens on the paper's claims and tables (only the
    paper protocol measures what the paper measured); ``hub_benchmarks`` says whether targets are
    scored on hub benchmarks (Global-MMLU, MMLU-ProX-Lite), whose assets, coverage and prompt
    lengths are checked and costed before a run. ``mc_items_are_nll_pairs``: every
    multiple-choice item's
    answer is also a held-out pair whose NLL is measured (so nll_items >= max_items);
    ``scores_one_seed``: the evaluation scores one seed's final adapters (no step curve)."""

    name: str
    describes_paper: bool
    hub_benchmarks: bool = False
    mc_items_are_nll_pairs: bool = False
    scores_one_seed: bool = False

    def prox_languages(self, cfg) -> tuple[str, ...]:
        """The targets scored on MMLU-ProX-Lite (none unless the protocol has the benchmark)."""
        return ()
