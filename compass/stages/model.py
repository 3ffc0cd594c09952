"""Stage `model`: the offline base model, converted once from its PyPI GGUF."""
from __future__ import annotations

from compass import io, paths


def convert_model(cfg) -> dict:
    from compass.training import models

    if cfg.train.model != models.OFFLINE_MODEL:
        return {"model": cfg.train.model, "note": "hub model: nothing to convert"}
    report = models.convert_offline_model()
    io.write_json(paths.models_dir() / "conversion_check.json", report)
    return report
