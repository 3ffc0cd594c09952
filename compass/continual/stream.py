"""A simulated production stream for one target language, from the tiny data.

Time steps T0..Tn: each has a window of production inputs and held-out multiple-choice items
(validation for rollback, test for scoring), both drawn with the step's topic mixture.

- **Windows** come from the target's usage sample E_t (the caller passes its dev pairs): with no
  shift a window is usage like the sample the adapter was built for, so a drift monitor whose
  reference is usage at deployment sees no drift from the population itself (windows drawn from
  all non-test pairs, whose train split covers only half the topics by design, differed from E_t
  before any shift). Windows are never trained on; the updates select auxiliary data near them.
- **Items** are partitioned once: a validation pool and a test pool (disjoint), and every step
  draws its items from what is left of its pool, so no item is scored at two steps or is both a
  validation and a test item.

``ecda.shift: topic``: the mixture moves from the language's own topic distribution toward a few
"shift" topics, gradually or abruptly, by a schedule in params. ``ecda.shift: language``: the
windows bring in a growing share (same schedule) of another language's chat pairs. ``ecda.shift:
book``: a growing share of another language's literary prose, passages of its OneRuler book
(:func:`book_pairs`): another language and another domain. In the last two the items stay the
target language's with its own topic mixture. Which of them makes an update that trains on the
window forget the target's chat was measured from the tiny Persian COMPASS adapter (36 Persian
test items, 3 updates): English chat lowered the Persian NLL (-0.09 nats/token after 12 steps:
any chat teaches the format), Persian prose too (-0.09: more Persian), English prose raised it
(+0.05, +0.08, +0.09 after each of three 8-step updates). With the tiny stream's two 4-step
updates on English prose (12 T0 items, answer NLL): -0.12 at lr 2e-3, -0.06 at 4e-3, +1.25
[+0.77, +1.70] at 1e-2, the tiny profile's planted positive control. Deterministic by seed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from compass.data.splits import rng_for


@dataclass
class StreamStep:
    """Step ``t`` of the stream: the topic mixture it was drawn from, the production window, and
    the validation and test items of the same mixture."""
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


def _draw(frame_topics: pd.Series, mixture: dict[str, float], n: int, rng,
          available: np.ndarray | None = None) -> np.ndarray:
    """Row positions drawn without replacement with per-topic weights from ``mixture``, among
    the ``available`` rows (a boolean mask; default all)."""
    counts = frame_topics.value_counts()
    weights = frame_topics.map(lambda t: mixture.get(t, 0.0) / counts[t]).to_numpy()
    if available is not None:
        weights = np.where(available, weights, 0.0)
    n = min(n, int((weights > 0).sum()))
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    return rng.choice(len(frame_topics), size=n, replace=False, p=weights / weights.sum())


class _ItemPools:
    """The test items split once into a validation and a test pool, in proportion to the items a
    step asks for of each; each step's items are drawn from what is left of its pool, so every
    item is used at most once in the stream."""

    def __init__(self, items: list[dict], n_val: int, n_test: int, rng):
        self.items = items
        self.topics = pd.Series([it["topic"] for it in items], dtype=object)
        order = rng.permutation(len(items))
        self.is_val = np.zeros(len(items), bool)
        self.is_val[order[: round(len(items) * n_val / max(1, n_val + n_test))]] = True
        self.left = np.ones(len(items), bool)

    def draw(self, mixture: dict, n: int, validation: bool, rng) -> list[dict]:
        picked = _draw(self.topics, mixture, n, rng,
                       available=self.left & (self.is_val == validation))
        self.left[picked] = False
        return [self.items[i] for i in picked]


def simulate(pairs: pd.DataFrame, items: list[dict], cfg, seed: int,
             other: pd.DataFrame | None = None) -> list[StreamStep]:
    """The stream for ``cfg.language`` (EcdaConfig ``cfg``): ``pairs`` are the population the
    windows come from (the language's E_t pairs), ``items`` its multiple-choice test items;
    ``other`` another language's pairs, which ``cfg.shift == "language"`` needs."""
    if getattr(cfg, "shift", "topic") in ("language", "book"):
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
    pools = _ItemPools(items, cfg.val_items_per_step, cfg.test_items_per_step, rng)
    steps = []
    for t in range(cfg.steps):
        s = shift_share(t, cfg.steps, cfg.schedule, cfg.shift_strength, cfg.abrupt_at)
        mixture = {topic: (1 - s) * share for topic, share in base.items()}
        for topic in focus:
            mixture[topic] = mixture.get(topic, 0.0) + s / len(focus)
        window = pairs.iloc[_draw(pairs["topic"], mixture, cfg.window, rng)].reset_index(drop=True)
        steps.append(StreamStep(t, mixture, window,
                                pools.draw(mixture, cfg.val_items_per_step, True, rng),
                                pools.draw(mixture, cfg.test_items_per_step, False, rng)))
    return steps


def _language_shift(pairs: pd.DataFrame, items: list[dict], cfg, seed: int,
                    other: pd.DataFrame | None) -> list[StreamStep]:
    """Windows of ``cfg.window`` inputs of which a share s(t) (:func:`shift_share`) are drawn
    uniformly from ``other`` (another language's pairs), the rest from ``pairs`` with the
    language's own topic mixture; the items keep the own mixture. ``mixture`` records the
    own topics' shares and ``language:<code>`` the other language's."""
    if other is None or not len(other):
        raise ValueError(f"ecda.shift = {cfg.shift!r} needs other pairs (another language's or "
                         "domain's) to mix in")
    rng = rng_for(seed, cfg.language, "stream", "language")
    base = pairs["topic"].value_counts(normalize=True).to_dict()
    other_name = (f"{cfg.shift}:{other['language'].iloc[0]}" if "language" in other
                  else f"{cfg.shift}:other")
    pools = _ItemPools(items, cfg.val_items_per_step, cfg.test_items_per_step, rng)
    steps = []
    for t in range(cfg.steps):
        s = shift_share(t, cfg.steps, cfg.schedule, cfg.shift_strength, cfg.abrupt_at)
        n_other = min(len(other), int(round(s * cfg.window)))
        own = pairs.iloc[_draw(pairs["topic"], base, cfg.window - n_other, rng)]
        mixed = other.iloc[rng.choice(len(other), size=n_other, replace=False)]
        window = pd.concat([own, mixed[[c for c in own.columns if c in mixed.columns]]],
                           ignore_index=True)
        mixture = {**{topic: (1 - s) * share for topic, share in base.items()}, other_name: s}
        steps.append(StreamStep(t, mixture, window,
                                pools.draw(base, cfg.val_items_per_step, True, rng),
                                pools.draw(base, cfg.test_items_per_step, False, rng)))
    return steps


def book_pairs(lang: str, books="bundled", chars: int = 120) -> pd.DataFrame:
    """Literary prose: ``lang``'s OneRuler book cut at word
    boundaries into passages of about ``chars`` characters, each consecutive two a (prompt,
    response) pair, "continue the text", in reading order (ids ``<lang>/book/<n>``, topic
    ``book``). Passages, not sentences: some books' excerpts hold few sentence ends (Persian:
    38 in 16 KB)."""
    from compass.evaluation import longcontext

    words = [w[i:i + chars] for w in longcontext.book_text(lang, books).split()
             for i in range(0, len(w), chars)]  # scripts without spaces: cut every chars
    passages, current = [], []
    for word in words:
        current.append(word)
        if sum(len(w) + 1 for w in current) >= chars:
            passages.append(" ".join(current))
            current = []
    rows = [{"id": f"{lang}/book/{i:04d}", "language": lang, "topic": "book", "prompt": a,
             "response": b, "source": "oneruler_book"}
            for i, (a, b) in enumerate(zip(passages, passages[1:]))]
    return pd.DataFrame(rows)


def for_scoring(stream: list[StreamStep], scoring: str) -> list[StreamStep]:
    """The stream as ``ecda.scoring`` scores it: ``choices`` keeps the multiple-choice items;
    ``answer`` reduces every validation and test item to its correct answer
    (:func:`compass.evaluation.likelihood.answer_only`), whose NLL is the same number at a quarter
    of the cost and whose "accuracy" means nothing (one choice), so the tables leave it out."""
    if scoring == "choices":
        return stream
    if scoring != "answer":
        raise ValueError(f"ecda.scoring = {scoring!r}: 'answer' or 'choices'")
    from dataclasses import replace

    from compass.evaluation.likelihood import answer_only

    return [replace(step, validation=[answer_only(it) for it in step.validation],
                    test=[answer_only(it) for it in step.test]) for step in stream]
