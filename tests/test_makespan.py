"""compass.makespan: the GPU stages of a full run scheduled on G GPUs."""
from __future__ import annotations

from pathlib import Path

import pytest

from compass import config, cost, makespan
from compass.makespan import Job

ROOT = Path(__file__).resolve().parents[1]


def test_schedule_follows_the_critical_path_and_the_gpu_count():
    dag = [Job("a", 3.0), Job("b", 1.0, ("a",)), Job("c", 1.0), Job("d", 1.0, ("c",))]
    assert makespan.schedule(dag, 1) == pytest.approx(6.0)  # one GPU: all the work
    assert makespan.schedule(dag, 2) == pytest.approx(4.0)  # the chain a -> b bounds it
    assert makespan.critical_path(dag) == (pytest.approx(4.0), ["a", "b"])
    flat = [Job(f"j{i}", 2.0) for i in range(8)]  # no dependencies: work / GPUs
    assert [makespan.schedule(flat, g) for g in (1, 4, 8, 16)] == [16.0, 4.0, 2.0, 2.0]
    with pytest.raises(ValueError, match="gpus must be >= 1"):
        makespan.schedule(dag, 0)


def test_the_paper_runs_jobs_hold_exactly_the_cost_tables_hours():
    cfg = config.load(ROOT / "profiles" / "paper.yaml")
    jobs = makespan.jobs(cfg)
    total = cost.cost_table(cfg).loc["total", "gpu_h"]
    assert sum(j.hours for j in jobs) == pytest.approx(total, rel=1e-9)
    names = {j.name for j in jobs}
    assert all(d in names for j in jobs for d in j.after)
    assert makespan.schedule(jobs, 1) == pytest.approx(total)
    lines = makespan.table_lines(cfg)
    assert lines[0].startswith("| GPUs |") and any(line.startswith("| 8 |") for line in lines)
