"""Serial `dvc repro` against `python -m compass.cluster --workers 2`, side by side, on the subset
of the real pipeline that tests/test_cluster_pipeline.py runs (two languages' data, sampling,
train and evaluate, the model and the params check, from a small pool; tests/cluster_project.py).

    python benchmarks/cluster_subset.py [--workers 2] [--folder DIR] [--embedding-cache DIR]
        [--prepared DIR]

Both runs start from the same copy of one prepared clone, so they do the same stages on the same
inputs; the table gives each run's wall time and the load average before and after it (on a
shared machine the ratio says more than the seconds), and whether their outputs agree byte for
byte. ``--embedding-cache``: a folder of embedding stores (e.g. data/cache/embeddings) that
makes preparing the small pool quicker; it is not part of what is timed. ``--prepared``: a clone
an earlier run prepared (FOLDER/prepared), used as it is.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from compass import cluster  # noqa: E402
from tests import cluster_project  # noqa: E402


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _timed(label: str, workers: int, run) -> dict:
    before = _load()
    start = time.perf_counter()
    stages = run()
    return {"run": label, "workers": workers, "stages": stages,
            "seconds": time.perf_counter() - start, "load before": before, "load after": _load()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--folder", type=Path, help="where the clones go (default: a temp dir)")
    parser.add_argument("--embedding-cache", type=Path)
    parser.add_argument("--prepared", type=Path)
    args = parser.parse_args(argv)
    folder = args.folder or Path(tempfile.mkdtemp(prefix="cluster-subset-"))
    prepared = args.prepared or cluster_project.subset_project(
        folder / "prepared", embedding_cache=args.embedding_cache)
    serial, parallel = folder / "serial", folder / "parallel"
    for copy in (serial, parallel):
        shutil.copytree(prepared, copy, symlinks=True)
    targets = cluster_project.TARGETS

    def run_serial():
        out = cluster_project.dvc(serial, "repro", *targets).stdout
        return out.count("Running stage")

    def run_parallel():
        outcome = cluster.fan_out(parallel, workers=args.workers, targets=targets,
                                  progress=lambda line: None)
        if outcome.failed:
            raise SystemExit(f"failed: {outcome.failed}")
        return len(outcome.done)

    rows = [_timed("dvc repro (serial)", 1, run_serial),
            _timed(f"compass.cluster --workers {args.workers}", args.workers, run_parallel)]
    same = cluster_project.outputs(serial) == cluster_project.outputs(parallel)
    print(f"{'run':<32} {'workers':>7} {'stages':>6} {'wall s':>8} {'load before':>16} "
          f"{'load after':>16}")
    for row in rows:
        print(f"{row['run']:<32} {row['workers']:>7} {row['stages']:>6} {row['seconds']:>8.1f} "
              f"{row['load before']:>16} {row['load after']:>16}")
    print(f"speed-up {rows[0]['seconds'] / rows[1]['seconds']:.2f}x on {os.cpu_count()} CPUs; "
          f"outputs byte-identical: {same}; clones in {folder}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
