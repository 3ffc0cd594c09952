"""Table cells and marks shared by every generated page: a value with its interval,
significance stars, the seeds in which COMPASS led."""
from __future__ import annotations

import pandas as pd


def markdown_table(frame: pd.DataFrame, floatfmt: str = ".3f") -> str:
    """A frame as a GitHub-flavoured markdown table, floats at ``floatfmt``, ending in a newline
    so that generated pages can concatenate tables."""
    return frame.to_markdown(index=False, floatfmt=floatfmt) + "\n"


def interval(mean: float, low: float, high: float, digits: int = 3) -> str:
    """One table cell: "value [low, high]"."""
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def signed(value: float, low: float, high: float, fmt: str = "+.3f") -> str:
    """One table cell of a change: "+0.012 [-0.004, +0.030]" (signs shown: 0 means no change)."""
    return f"{value:{fmt}} [{low:{fmt}}, {high:{fmt}}]"


def stars(p: float) -> str:
    """Significance marks, escaped: two in one table cell would otherwise become bold text."""
    return "" if pd.isna(p) else (" \\*\\*" if p < 0.01 else " \\*" if p < 0.05 else "")


def change_cells(frame: pd.DataFrame, value: str, low: str, high: str, fmt: str = "+.3f") -> str:
    """ "fa -0.045 [-0.07, -0.02]*; ja ..." for the rows of ``frame`` (one per language)."""
    return "; ".join(f"{r['language']} {r[value]:{fmt}} [{r[low]:{fmt}}, {r[high]:{fmt}}]"
                     + stars(r.get("p_holm", r.get("p_value"))).replace(" ", "") + seed_wins(r)
                     for _, r in frame.iterrows()) or "not run"


def seed_wins(r) -> str:
    """" (2/3)": the seeds in which COMPASS is ahead, where several seeds were trained."""
    wins = r.get("seeds_better")
    return f" ({wins})" if isinstance(wins, str) and wins else ""


def rate(value, low, high) -> str:
    """A rate with its interval, ``value [low, high]`` at three decimals (a trust table cell)."""
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"
