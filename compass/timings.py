"""Wall times and machine facts of each run, kept OUT of the DVC-tracked outputs.

A tracked output's bytes should depend on the inputs alone: a timing inside one would make every
rerun look like a changed result and rerun everything downstream. So stages append what they
measured (seconds, throughput, the precision chosen and why) to one log, data/timings.jsonl, that
DVC does not track; benchmarks/bench_pipeline.py and the book's build page read it.
"""
from __future__ import annotations

import json
import time

import pandas as pd

from compass import paths


def record(stage: str, seconds: float | None = None, kind: str = "detail", **details) -> None:
    """Append one line: the stage (e.g. '02_train_fa_compass'), its wall seconds and any details.
    ``kind`` is 'stage' for a whole stage's wall time (what bench_pipeline sums), else 'detail'."""
    path = paths.stage_timings()
    path.parent.mkdir(parents=True, exist_ok=True)
    line = {"stage": stage, "kind": kind, "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if seconds is not None:
        line["seconds"] = round(float(seconds), 2)
    line.update(details)
    with open(path, "a", encoding="utf-8") as handle:  # one short line: appends do not interleave
        handle.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")


def read() -> pd.DataFrame:
    """Every recorded line (empty frame when nothing ran on this machine, e.g. after a pull)."""
    path = paths.stage_timings()
    if not path.exists():
        return pd.DataFrame(columns=["stage", "kind", "finished", "seconds"])
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]
    frame = pd.DataFrame(rows)
    if "kind" not in frame:
        frame["kind"] = "stage"
    frame["kind"] = frame["kind"].fillna("stage")  # lines written before kinds existed
    return frame
