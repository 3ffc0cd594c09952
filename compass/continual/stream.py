"""A simulated production stream for one target language, from the tiny data.

Time steps T0..Tn: each has a window of production inputs (target-language prompts from the
non-test splits) and held-out multiple-choice items (validation for rollback, test for scoring)
from the test split, both drawn with the step's topic mixture. The mixture moves from the
language's own topic distribution toward a few "shift" topics, gradually or abruptly, by a
schedule in params. Deterministic by seed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from compass.data.splits import rng_for


@dataclass
class StreamStep:
    t: int
    mixture: dict[str, float]  # topic -> share
    window: pd.DataFrame  # PAIR rows (production inputs)
    validation: list[dict]  # MC items
    test: list[dict]  # MC items


def shift_share(t: int, steps: int, schedule: str, strength: float, abrupt_at: int) -> float:
    """Share of the shift topics' extra mass at step t (0 at T0)."""
    if schedule == "gradual":
        return strength * t / max(1, steps - 1)
    return strength if t >= abrupt_at else 0.0


def _draw(frame_topics: pd.Series, mixture: dict[str, float], n: int, rng) -> np.ndarray:
    """Row positions drawn without replacement with per-topic weights from ``mixture``."""
    counts = frame_topics.value_counts()
    weights = frame_topics.map(lambda t: mixture.get(t, 0.0) / counts[t]).to_numpy()
    weights = weights / weights.sum()
    n = min(n, int((weights > 0).sum()))
    return rng.choice(len(frame_topics), size=n, replace=False, p=weights)


def simulate(pairs: pd.DataFrame, items: list[dict], cfg, seed: int) -> list[StreamStep]:
    """The stream for ``cfg.language`` (EcdaConfig ``cfg``): ``pairs`` are that language's
    non-test pairs, ``items`` its multiple-choice test items."""
    lang = cfg.language
    rng = rng_for(seed, lang, "stream")
    base = pairs["topic"].value_counts(normalize=True).to_dict()
    item_topics = pd.Series([it["topic"] for it in items])
    usable = sorted(set(base) & set(item_topics))
    if len(usable) <= cfg.shift_topics:
        raise ValueError(f"{lang}: {len(usable)} topics with test items; need more than "
                         f"ecda.shift_topics = {cfg.shift_topics}")
    focus = rng.choice(usable, size=cfg.shift_topics, replace=False).tolist()
    steps = []
    for t in range(cfg.steps):
        s = shift_share(t, cfg.steps, cfg.schedule, cfg.shift_strength, cfg.abrupt_at)
        mixture = {topic: (1 - s) * share for topic, share in base.items()}
        for topic in focus:
            mixture[topic] = mixture.get(topic, 0.0) + s / len(focus)
        window = pairs.iloc[_draw(pairs["topic"], mixture, cfg.window, rng)].reset_index(drop=True)
        picked = _draw(item_topics, mixture, cfg.val_items_per_step + cfg.test_items_per_step, rng)
        chosen = [items[i] for i in picked]
        steps.append(StreamStep(t, mixture, window, chosen[:cfg.val_items_per_step],
                                chosen[cfg.val_items_per_step:]))
    return steps
