"""How COMPASS spends a sampling budget over target clusters: gap weights and their rounding.

Two readings of "under-represented", both offered by name (the paper, arXiv 2604.20720, publishes
no code; the book's sampling chapter says which reading each method uses):

- ``coverage_gap``: w(c) = max(0, p_target(c) - p_train(c)), the share of target usage a cluster
  has beyond what the existing training data already covers. Clean and scale-free; the default.
- ``inverse_count``: w(c) = 1 / (|c ∩ D_aux| + eps) · 1[|c ∩ D_aux| < tau], the weight one
  secondary source reconstructs from the paper. It favours clusters the auxiliary pool covers
  thinly, regardless of how much target usage they carry.

- ``fill_to_target``: w(c) = max(0, p_target(c) · (N_train + B) - n_train(c)), the number of
  items cluster c lacks for existing train plus selection (size N_train + B) to have the target's
  mix. ``coverage_gap`` spends the budget in the *shape* of the gap, which overshoots the gap
  clusters whenever B is larger than the existing train data; this reading fills it.

Seats are proportional to the weights with largest-remainder (Hamilton) rounding; what a cluster
cannot fill spills to its nearest clusters (``compass_method.py`` places them and says by which
rule).
"""
from __future__ import annotations

import numpy as np

GAPS = ("coverage_gap", "inverse_count", "fill_to_target")


def shares(labels: np.ndarray, k: int) -> np.ndarray:
    """Fraction of items in each of ``k`` clusters (zeros for an empty set)."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=k).astype(float)
    total = counts.sum()
    return counts / total if total else counts


def coverage_gap_weights(p_target: np.ndarray, p_train: np.ndarray) -> np.ndarray:
    """max(0, p_target - p_train); when nothing is missing, fall back to p_target."""
    w = np.maximum(0.0, np.asarray(p_target, float) - np.asarray(p_train, float))
    return w if w.sum() > 0 else np.asarray(p_target, float).copy()


def fill_to_target_weights(p_target: np.ndarray, train_counts: np.ndarray,
                           budget: int) -> np.ndarray:
    """Items each cluster lacks so that train + selection matches p_target; p_target if none."""
    n = np.asarray(train_counts, float)
    w = np.maximum(0.0, np.asarray(p_target, float) * (n.sum() + budget) - n)
    return w if w.sum() > 0 else np.asarray(p_target, float).copy()


def inverse_count_weights(aux_counts: np.ndarray, tau: int, eps: float = 1.0) -> np.ndarray:
    """1 / (n_aux + eps) for clusters with fewer than ``tau`` auxiliary items, else 0."""
    n = np.asarray(aux_counts, float)
    return np.where(n < tau, 1.0 / (n + eps), 0.0)


def largest_remainder(weights: np.ndarray, seats: int) -> np.ndarray:
    """Integer split of ``seats`` proportional to ``weights`` (Hamilton; ties to lower index)."""
    w = np.asarray(weights, float)
    if seats == 0 or w.sum() <= 0:
        return np.zeros(len(w), dtype=np.int64)
    quotas = seats * w / w.sum()
    base = np.floor(quotas).astype(np.int64)
    left = seats - int(base.sum())
    order = sorted(range(len(w)), key=lambda i: (-(quotas[i] - base[i]), i))
    for i in order[:left]:
        base[i] += 1
    return base
