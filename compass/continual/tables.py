"""The continual chapter's summary: forgetting, plasticity and final accuracy per method, the
same forgetting and final score in NLL, with bootstrap intervals over test items, and the compute
each method spent.

Forgetting is backward transfer: on each earlier window's test items, the final adapter's score
minus the score of the adapter served right after that window was learned. It is not final minus
the *best* score any served version reached on the window: on a dozen noisy items the best of
several versions is biased upward, so that definition reports forgetting for a method that
updates often even when nothing changed (a null simulation: -6.2 pp when updating at every step,
-2.5 pp when updating once, 0 exactly for no update: the scale of the paper's -10.9 vs -1.6).
Backward transfer compares two single measurements, so under no change its expectation is 0
whatever the number of updates (:func:`forgetting_null` measures it).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from compass.evaluation import stats


def continual_tables(cfg, stream, out) -> dict:
    """Per method, with bootstrap CIs over test items:

    - ``forgetting_pp``: backward transfer in accuracy (pp): final minus the accuracy of the
      version served right after step j, on window j's test items, over the windows j before the
      last (negative = forgot);
    - ``plasticity``: accuracy on window j's items of the adapter served right after step j;
    - ``final_accuracy``: accuracy over all windows' items at the end;
    - ``forgetting_nll``: the same backward transfer in mean NLL (nats/token of the correct
      answer; positive = forgot), and ``final_nll`` over all windows' items at the end; present
      when ``out`` has ``per_item_nll`` (the same scoring pass), with ``plasticity_nll``;
    - the compute each method spent (real updates only; a planted update is not charged).

    Where the stream scores each item's answer alone (``ecda.scoring: answer``) every item is
    "correct" (one choice), so the accuracy columns are left out and only the NLL ones remain.

    Planted updates never become a served version, so they never enter these tables."""
    acc, per_item = out["accuracy"], out["per_item"]
    per_nll = out.get("per_item_nll")
    with_accuracy = getattr(getattr(cfg, "ecda", None), "scoring", "choices") == "choices"
    if not with_accuracy and per_nll is None:
        raise ValueError("ecda.scoring = 'answer' measures NLL only, and the run has no "
                         "per-item NLL")
    last = len(stream) - 1
    kw = dict(n_resamples=cfg.evaluation.n_bootstrap, seed=cfg.seed)
    rows, by_window, nll_forgetting = [], [], {}
    for method, group in acc.groupby("method", sort=False):
        diffs, plastic, final, nll_diffs, nll_final, nll_plastic = [], [], [], [], [], []
        for j in range(len(stream)):
            at_j = group[group["eval_step"] == j]
            final_version = at_j[at_j["t"] == last]["version"].iloc[0]
            learned = at_j[at_j["t"] == j]["version"].iloc[0]  # served right after window j
            final_items = per_item[(final_version, f"test{j}")]
            final.append(final_items)
            plastic.append(per_item[(learned, f"test{j}")])
            if per_nll is not None:
                nll_final.append(per_nll[(final_version, f"test{j}")])
                nll_plastic.append(per_nll[(learned, f"test{j}")])
            if j < last:
                diffs.append(final_items - per_item[(learned, f"test{j}")])
                if per_nll is not None:
                    nll_diffs.append(per_nll[(final_version, f"test{j}")]
                                     - per_nll[(learned, f"test{j}")])
                by_window.append(_window_row(method, j, diffs[-1],
                                             nll_diffs[-1] if per_nll is not None else None,
                                             kw, with_accuracy))
        d = np.concatenate(diffs) if diffs else np.zeros(1)
        f = np.concatenate(final)
        p = np.concatenate(plastic[1:]) if len(plastic) > 1 else plastic[0]
        row = {"method": method}
        if with_accuracy:
            f_lo, f_hi = stats.bootstrap_ci(d * 100, **kw)
            a_lo, a_hi = stats.bootstrap_ci(f, **kw)
            p_lo, p_hi = stats.bootstrap_ci(p, **kw)
            row.update({"forgetting_pp": float(d.mean() * 100),
                        "forgetting_ci_low": f_lo, "forgetting_ci_high": f_hi,
                        "plasticity": float(p.mean()), "plasticity_ci_low": p_lo,
                        "plasticity_ci_high": p_hi,
                        "final_accuracy": float(f.mean()), "final_ci_low": a_lo,
                        "final_ci_high": a_hi})
        if per_nll is not None:
            nll_forgetting[method] = np.concatenate(nll_diffs) if nll_diffs else np.zeros(1)
            nd = _finite(nll_forgetting[method])
            nf = _finite(np.concatenate(nll_final))
            npl = _finite(np.concatenate(nll_plastic[1:]) if len(nll_plastic) > 1
                          else nll_plastic[0])
            row.update({"forgetting_nll": _mean(nd), **_ci("forgetting_nll", nd, kw),
                        "plasticity_nll": _mean(npl), **_ci("plasticity_nll", npl, kw),
                        "final_nll": _mean(nf), **_ci("final_nll", nf, kw)})
        rows.append({**row, **out["states"][method].compute})
    if "naive" in nll_forgetting:
        for row in rows:
            row.update(_versus_naive(nll_forgetting[row["method"]], nll_forgetting["naive"], kw))
    return {"summary": pd.DataFrame(rows), "forgetting_by_window": pd.DataFrame(by_window)}


def _versus_naive(mine: np.ndarray, naive: np.ndarray, kw: dict) -> dict:
    """A method's NLL forgetting minus naive fine-tuning's on the same items (paired: both score
    every window's test items), with a bootstrap CI over items: whether a method forgets less
    than naive updates (negative: less), the question the paper's forgetting table asks."""
    paired = mine - naive
    paired = paired[np.isfinite(paired)]
    return {"forgetting_nll_vs_naive": _mean(paired), **_ci("forgetting_nll_vs_naive", paired, kw)}


def _window_row(method: str, window: int, diff: np.ndarray, nll_diff: np.ndarray | None,
                kw: dict, with_accuracy: bool = True) -> dict:
    """Backward transfer on one earlier window's items: where a shift starts, the window before
    it is the usage the adapter was built for, and its row is the forgetting that matters most
    (later windows were learned by an adapter the shift had already changed)."""
    row = {"method": method, "window": window, "items": len(diff)}
    if with_accuracy:
        low, high = stats.bootstrap_ci(diff * 100, **kw)
        row.update({"forgetting_pp": float(diff.mean() * 100), "forgetting_ci_low": low,
                    "forgetting_ci_high": high})
    if nll_diff is not None:
        finite = _finite(nll_diff)
        row.update({"forgetting_nll": _mean(finite), **_ci("forgetting_nll", finite, kw)})
    return row


def _finite(values: np.ndarray) -> np.ndarray:
    """An item without answer tokens has no NLL (NaN): left out of NLL means and intervals."""
    return values[np.isfinite(values)]


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else float("nan")


def _ci(name: str, values: np.ndarray, kw: dict) -> dict:
    low, high = stats.bootstrap_ci(values, **kw) if len(values) else (float("nan"), float("nan"))
    return {f"{name}_ci_low": low, f"{name}_ci_high": high}
