"""The paper protocol: the Aya Dataset as the pool, each target's Global-MMLU dev items as E_t and
its Global-MMLU (or -Lite) test items as the test split, MMLU-ProX-Lite where asked; the data
comes from the hub (compass.data.paper_profile)."""
from __future__ import annotations

from dataclasses import dataclass

from compass.protocols.base import Protocol


@dataclass(frozen=True)
class PaperProtocol(Protocol):
    """The paper's protocol: hub benchmarks (Global-MMLU, MMLU-ProX-Lite) scored through lm-eval,
    one seed's final adapters: it measures what the paper measured."""
    name: str = "paper"
    describes_paper: bool = True
    hub_benchmarks: bool = True
    mc_items_are_nll_pairs: bool = False
    scores_one_seed: bool = True

    def prox_languages(self, cfg) -> tuple[str, ...]:
        """The targets MMLU-ProX-Lite scores, as the params name them."""
        return tuple(cfg.prox_languages())
