"""The tiny `dvc repro`, stage by stage: prints a table of wall times.

    python benchmarks/bench_pipeline.py          # table from the last run's stage-timing log
    python benchmarks/bench_pipeline.py --run    # force a full `dvc repro -f` first, then the table

Each stage appends its wall time to data/timings.jsonl (compass.timings, via compass.notebook_run /
compass.cli);
DVC's own overhead between stages is the difference to the total wall time printed with --run.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time


from compass import paths, timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="store_true", help="run `dvc repro -f` first")
    args = parser.parse_args()
    total = None
    if args.run:
        if paths.stage_timings().exists():
            paths.stage_timings().unlink()
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "dvc", "repro", "-f"], check=True, cwd=paths.ROOT)
        total = time.perf_counter() - start
    if not paths.stage_timings().exists():
        sys.exit("no stage timings yet: run `dvc repro` (or this script with --run)")
    frame = timings.read()
    frame = frame[frame["kind"] == "stage"].drop_duplicates("stage", keep="last")
    frame["group"] = frame["stage"].str.extract(r"^(\d\d_[a-z]+|[a-z]+)")[0]
    print(frame[["stage", "seconds", "finished"]].to_markdown(index=False))
    print()
    print(frame.groupby("group", sort=False)["seconds"].agg(["count", "sum"]).to_markdown())
    print(f"\nsum of stages: {frame['seconds'].sum():.0f} s"
          + (f"; `dvc repro -f` wall time: {total:.0f} s" if total else ""))


if __name__ == "__main__":
    main()
