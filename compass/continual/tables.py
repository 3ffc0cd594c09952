"""The continual chapter's summary: forgetting, plasticity and final accuracy per method, with
bootstrap intervals over test items, and the compute each method spent."""
from __future__ import annotations

import numpy as np
import pandas as pd

from compass.evaluation import stats


def continual_tables(cfg, stream, out) -> dict:
    """Forgetting (final - best, pp), plasticity and final accuracy per method, with bootstrap
    CIs over test items, and the compute each method spent."""
    acc, per_item = out["accuracy"], out["per_item"]
    last = len(stream) - 1
    rows = []
    for method, group in acc.groupby("method", sort=False):
        diffs, plastic, final = [], [], []
        for j in range(len(stream)):
            at_j = group[group["eval_step"] == j].sort_values("t")
            final_version = at_j[at_j["t"] == last]["version"].iloc[0]
            final_items = per_item[(final_version, f"test{j}")]
            final.append(final_items)
            plastic.append(per_item[(at_j[at_j["t"] == j]["version"].iloc[0], f"test{j}")])
            if j < last:
                best = at_j.loc[at_j["accuracy"].idxmax(), "version"]
                diffs.append(final_items - per_item[(best, f"test{j}")])
        d = np.concatenate(diffs) if diffs else np.zeros(1)
        f = np.concatenate(final)
        p = np.concatenate(plastic[1:]) if len(plastic) > 1 else plastic[0]
        kw = dict(n_resamples=cfg.evaluation.n_bootstrap, seed=cfg.seed)
        f_lo, f_hi = stats.bootstrap_ci(d * 100, **kw)
        a_lo, a_hi = stats.bootstrap_ci(f, **kw)
        p_lo, p_hi = stats.bootstrap_ci(p, **kw)
        state = out["states"][method]
        rows.append({"method": method, "forgetting_pp": float(d.mean() * 100),
                     "forgetting_ci_low": f_lo, "forgetting_ci_high": f_hi,
                     "plasticity": float(p.mean()), "plasticity_ci_low": p_lo, "plasticity_ci_high": p_hi,
                     "final_accuracy": float(f.mean()), "final_ci_low": a_lo, "final_ci_high": a_hi,
                     **state.compute})
    return {"summary": pd.DataFrame(rows)}
