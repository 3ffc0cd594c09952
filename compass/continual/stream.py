"""A simulated production stream for one target language, from the tiny data.

Time steps T0..Tn: each has a window of production inputs (target-language prompts from the
non-test splits) and held-out multiple-choice items (validation for rollback, test for scoring)
from the test split, both drawn with the step's topic mixture. ``ecda.shift: topic`` (default):
the mixture moves from the language's own topic distribution toward a few "shift" topics,
gradually or abruptly, by a schedule in params. ``ecda.shift: language``: the windows bring in a
growing share (same schedule) of another language's pairs, the items stay the target language's
with its own topic mixture (a stream where forgetting the target language can happen).
Deterministic by seed.
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


def simulate(pairs: pd.DataFrame, items: list[dict], cfg, seed: int,
             other: pd.DataFrame | None = None) -> list[StreamStep]:
    """The stream for ``cfg.language`` (EcdaConfig ``cfg``): ``pairs`` are that language's
    non-test pairs, ``items`` its multiple-choice test items; ``other`` another language's
    pairs, which ``cfg.shift == "language"`` needs."""
    if getattr(cfg, "shift", "topic") == "language":
        return _language_shift(pairs, items, cfg, seed, other)
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


def _language_shift(pairs: pd.DataFrame, items: list[dict], cfg, seed: int,
                    other: pd.DataFrame | None) -> list[StreamStep]:
    """Windows of ``cfg.window`` inputs of which a share s(t) (:func:`shift_share`) are drawn
    uniformly from ``other`` (another language's pairs), the rest from ``pairs`` with the
    language's own topic mixture; the items keep the own mixture. ``mixture`` records the
    own topics' shares and ``language:<code>`` the other language's."""
    if other is None or not len(other):
        raise ValueError("ecda.shift = 'language' needs another language's pairs to mix in")
    rng = rng_for(seed, cfg.language, "stream", "language")
    base = pairs["topic"].value_counts(normalize=True).to_dict()
    item_topics = pd.Series([it["topic"] for it in items])
    other_name = f"language:{other['language'].iloc[0]}" if "language" in other else "language:other"
    steps = []
    for t in range(cfg.steps):
        s = shift_share(t, cfg.steps, cfg.schedule, cfg.shift_strength, cfg.abrupt_at)
        n_other = min(len(other), int(round(s * cfg.window)))
        own = pairs.iloc[_draw(pairs["topic"], base, cfg.window - n_other, rng)]
        mixed = other.iloc[rng.choice(len(other), size=n_other, replace=False)]
        window = pd.concat([own, mixed[[c for c in own.columns if c in mixed.columns]]],
                           ignore_index=True)
        mixture = {**{topic: (1 - s) * share for topic, share in base.items()}, other_name: s}
        picked = _draw(item_topics, base, cfg.val_items_per_step + cfg.test_items_per_step, rng)
        chosen = [items[i] for i in picked]
        steps.append(StreamStep(t, mixture, window, chosen[:cfg.val_items_per_step],
                                chosen[cfg.val_items_per_step:]))
    return steps
