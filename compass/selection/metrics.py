"""How far each selection's cluster mix is from the target usage: the numbers the sampling
chapter reports."""
from __future__ import annotations

import numpy as np

from compass.selection.allocation import shares


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """Total variation distance between two distributions over the same clusters (0 to 1)."""
    return float(0.5 * np.abs(p - q).sum())


def sampling_metrics(pool, selections: dict) -> dict:
    """Per target language: the pool's sizes and, per method, the total variation distance of the
    selection (and of existing train + selection) from the target's cluster mix."""
    p_target = pool.p_target()
    out = {"language": pool.target, "k": pool.k, "k_note": pool.clusters.k_note,
           "radius_floor": round(float(pool.clusters.global_radius), 6), "dev_items": len(pool.dev),
           "train_items": len(pool.train), "aux_candidates": len(pool.aux),
           "aux_eligible": int(pool.aux["eligible"].sum()),
           "decontaminated": int(pool.decontamination["dropped"].sum()),
           "coverage_gap_of_train": total_variation(p_target, pool.p_train()),
           "methods": {}}
    for method, sel in selections.items():
        chosen = sel.manifest["cluster"].to_numpy(dtype=np.int64)
        combined = shares(np.concatenate([pool.train_labels, chosen]), pool.k)
        out["methods"][method] = {
            "selected": sel.size, "n_languages": int(sel.manifest["language"].nunique()),
            "tv_to_target": total_variation(shares(chosen, pool.k), p_target),
            # existing train + selection together: the mix the adapter will see
            "tv_train_plus_selection_to_target": total_variation(combined, p_target),
            **{k: v for k, v in sel.info.items()
               if k in ("languages", "gap", "duplicates_skipped", "placed")},
        }
    return out
