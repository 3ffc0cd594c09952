"""Stage `check`: every param checked against the data before any stage that writes results runs.

DVC deletes a stage's previous outputs before running it, so a bad value caught inside a stage
(e.g. a budget larger than the pool) used to cost the user their results and come wrapped in a
papermill traceback. This stage runs right after `pool`, before everything else, and fails with
one line. Its output's bytes never change, so passing it reruns nothing downstream.
"""
from __future__ import annotations

from compass import config as config_mod
from compass import io, paths


def check_params(cfg, hub: bool = False) -> dict:
    """Raise ConfigError (one line, naming the value and what is allowed) or return the verdict.
    ``hub``: also confirm every hub asset the paper profile needs is available offline (`make
    repro` runs this before DVC, so a missing model is named at once, not minutes in)."""
    config_mod.validate_pipeline(cfg)
    if hub and cfg.profile == "paper":
        from compass import hub_assets

        hub_assets.check(cfg)
    summary_path = paths.pool_summary()
    if summary_path.exists():  # data-dependent checks need the pool's language counts
        config_mod.validate_against_data(cfg, io.read_json(summary_path)["languages"])
    return {"params": "valid"}


def run(cfg) -> dict:
    verdict = check_params(cfg)
    io.write_json(paths.params_check(), verdict)
    return verdict
