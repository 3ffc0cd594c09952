"""The paper's published figures (constants, never computed) and the stated rule by which a
claim reproduces, with the pooled estimate it is applied to."""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import pandas as pd

from compass.book.prose import sentence

SOURCE = "the design brief (COMPASS, Flynn, arXiv 2604.20720, TMLR 2026)"

# The paper's published figures, as the design brief gives them (never computed here).
# Gain of COMPASS over zero-shot on Global-MMLU, pp, per base model (catalog names that are it).
PAPER_GAINS = {"Phi-4-Mini": (("phi-4-mini",), 8.9),
               "Llama-3.1-8B": (("llama-3.1-8b", "llama-3.1-8b-instruct"), 6.1),
               "Qwen2.5-7B": (("qwen2.5-7b", "qwen2.5-7b-instruct"), 6.7)}
PAPER_LANGSIM_D = (0.52, 0.64)  # Cohen's d of COMPASS against LangSim / LangRank (variant unnamed)
PAPER_FORGETTING = {"naive": -10.9, "ecda": -1.6}  # backward transfer on the stream, pp
PAPER_FINAL = {"ecda": 0.592, "full_retrain": 0.590}  # final accuracy on the stream

RULE = sentence("paper_rule.md")  # when a claim reproduces: the rule :func:`verdict` applies


@dataclass(frozen=True)
class Estimate:
    """A value of this run with its 95% interval (what the rule compares with the paper)."""

    value: float
    low: float
    high: float

    def cell(self, fmt: str = "+.1f", unit: str = " pp") -> str:
        """The estimate as ``value [low, high]`` with ``unit`` (pp by default, signed)."""
        return f"{self.value:{fmt}}{unit} [{self.low:{fmt}}, {self.high:{fmt}}]"


def verdict(est: Estimate | None, figure: float | None = None, direction: int = 0,
            change: bool = True) -> tuple[str, str]:
    """("yes" / "no" / "inconclusive", why) for one claim by the rule in :data:`RULE`:
    ``figure`` a number the interval should hold, or ``direction`` (-1 / +1) the side of 0."""
    if est is None or math.isnan(est.low) or math.isnan(est.high):
        return "not measured here", "no interval in this run's outputs"
    if direction:
        if (direction < 0 and est.high < 0) or (direction > 0 and est.low > 0):
            return "yes", "the whole interval lies on the paper's side of 0"
        if (direction < 0 and est.low > 0) or (direction > 0 and est.high < 0):
            return "no", "the whole interval lies on the other side of 0"
        return "inconclusive", "the interval includes 0"
    shown = f"{figure:+.1f}" if change else f"{figure:.3f}"
    if not est.low <= figure <= est.high:
        side = "below" if est.high < figure else "above"
        return "no", f"the interval lies {side} the paper's {shown}"
    if change and est.low <= 0 <= est.high:
        return "inconclusive", f"the interval holds the paper's {shown} and 0 alike"
    return "yes", f"the interval contains the paper's {shown}" + (
        " and excludes 0" if change else "")


def pooled(frame: pd.DataFrame, value: str, low: str, high: str,
           confidence: float = 0.95) -> Estimate | None:
    """The equal-weight mean over languages (one row each) with the interval of a mean of
    independent estimates: each row's half-width read as z standard errors (normal)."""
    frame = frame.dropna(subset=[value, low, high])
    if frame.empty:
        return None
    if len(frame) == 1:
        r = frame.iloc[0]
        return Estimate(float(r[value]), float(r[low]), float(r[high]))
    z = NormalDist().inv_cdf((1 + confidence) / 2)
    se = ((frame[high] - frame[low]) / (2 * z)).pow(2).sum() ** 0.5 / len(frame)
    mean = float(frame[value].mean())
    return Estimate(mean, mean - z * se, mean + z * se)
