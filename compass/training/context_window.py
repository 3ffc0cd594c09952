"""How many tokens each base model reads in the long-context stage, and YaRN where a model needs
it to reach OneRuler's lengths.

Qwen2.5 is trained to 32,768 tokens; its model card extends it to 131,072 with YaRN (rope type
``yarn``, factor 4, original window 32,768), added to the config at load time and advised only
when long texts are processed, since a static factor also changes short-text behaviour. So YaRN
is applied in the long-context stage alone, and only when a scored length needs it: training and
the short benchmarks read the model as published.

The windows here are the models' published ``max_position_embeddings`` (Qwen2.5's native 32,768,
whatever its base config says), so the preflight and ``make cost`` know without loading a model
which lengths run; a model not listed is judged by its config once loaded.
"""
from __future__ import annotations

from dataclasses import dataclass

NATIVE = {"gemma-3-270m": 32_768, "phi-4-mini": 131_072, "llama-3.1-8b": 131_072,
          "llama-3.1-8b-instruct": 131_072, "qwen2.5-7b": 32_768, "qwen2.5-7b-instruct": 32_768}
YARN_FACTOR = {"qwen2.5-7b": 4.0, "qwen2.5-7b-instruct": 4.0}  # Qwen2.5 model cards


@dataclass(frozen=True)
class Plan:
    """The lengths one model scores, the window they must fit and whether YaRN extends it."""

    model: str
    native: int | None  # None: not listed; the loaded config decides
    window: int | None  # native, or native x the YaRN factor when a length needs it
    yarn_factor: float | None  # set when YaRN is applied
    scored: tuple[int, ...]
    skipped: tuple[int, ...]  # lengths whose prompt and answer do not fit even with YaRN

    def note(self) -> str:
        """What the book and the metrics say about this model's lengths ('' when all run)."""
        parts = []
        if self.yarn_factor:
            parts.append(f"{self.model} reads beyond its native {self.native:,} tokens with YaRN "
                         f"(factor {self.yarn_factor:g}, window {self.window:,})")
        if self.skipped:
            parts.append(f"lengths {list(self.skipped)} do not fit {self.model}'s "
                         f"{self.window}-token context with the answer: not scored")
        return "; ".join(parts)


def plan(model: str, lengths, answer_tokens: int, native: int | None = None) -> Plan:
    """Which of ``lengths`` (prompt tokens) ``model`` scores with an answer budget of
    ``answer_tokens``; ``native`` (the loaded config's window) for a model not listed."""
    native = NATIVE.get(model, native)
    if native is None:
        return Plan(model, None, None, None, tuple(lengths), ())
    factor = YARN_FACTOR.get(model)
    needs_yarn = bool(factor) and any(native < n + answer_tokens <= native * factor
                                      for n in lengths)
    window = int(native * factor) if needs_yarn else native
    scored = tuple(n for n in lengths if n + answer_tokens <= window)
    skipped = tuple(n for n in lengths if n not in scored)
    return Plan(model, native, window, factor if needs_yarn else None, scored, skipped)


def apply_yarn(config, factor: float, original: int) -> None:
    """Extend a loaded transformers config with YaRN (its rope base kept), as the Qwen2.5 cards
    write it: rope type yarn, ``factor``, the ``original`` pretraining window."""
    current = dict(getattr(config, "rope_parameters", None) or {})
    theta = current.get("rope_theta", getattr(config, "rope_theta", None))
    config.rope_parameters = {"rope_type": "yarn", "factor": float(factor),
                              "original_max_position_embeddings": int(original),
                              **({"rope_theta": theta} if theta is not None else {})}
    config.max_position_embeddings = int(original * factor)
