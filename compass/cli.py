"""Entry points of the non-notebook pipeline stages: `python -m compass.cli
{precision,pool,check,model,book}`, and `profile NAME`, which makes a preset of profiles/ the active
params.yaml.

`check --dry` validates params and every target (against the pool when it exists, else against the
raw pairs) without writing results: `make repro` runs it before `dvc repro`, so a bad value or an
infeasible target stops everything with one line each. It also re-decides this machine's float type
and updates data/machine/precision.json where the recorded decision no longer holds (a workspace
moved to another CPU), so DVC reruns exactly the stages that load a model."""
from __future__ import annotations

import argparse
import json
import sys

from compass import config


def main(argv=None) -> int:
    """Run one command (see ``--help``); returns the exit status: 0 done, 2 bad params or model."""
    parser = argparse.ArgumentParser(prog="python -m compass.cli")
    parser.add_argument("command",
                        choices=["precision", "pool", "check", "model", "book", "profile"])
    parser.add_argument("name", nargs="?",
                        help="profile: the preset to activate (profiles/NAME.yaml)")
    parser.add_argument("--force", action="store_true",
                        help="profile: overwrite an edited params.yaml")
    parser.add_argument("--params", default=None, help="params.yaml to read (default: the repo's)")
    parser.add_argument("--dry", action="store_true",
                        help="check: validate before DVC runs (no results written)")
    parser.add_argument("--model", help="model: which of train.models to prepare")
    args = parser.parse_args(argv)
    try:
        if args.command == "profile":
            from compass import profiles

            if not args.name:
                print(f"active: {profiles.active() or 'edited params.yaml'}; presets: "
                      f"{', '.join(profiles.available())}")
                return 0
            print(profiles.use(args.name, force=args.force))
            return 0
        if args.command == "precision":
            from compass.training import precision

            chosen, _ = precision.record()
            print(f"float type for train.dtype auto on this CPU: {chosen.dtype} ({chosen.reason})")
            return 0
        cfg = config.load(args.params)
        if args.command == "check":
            from compass.stages import check

            if args.dry:
                _refresh_precision()
            verdict = check.check_params(cfg, hub=True, dry=True) if args.dry else check.run(cfg)
            if verdict["coverage"] is not None:
                from compass import coverage

                print(coverage.describe(verdict["coverage"]).to_string(index=False))
            if verdict["targets"] is not None:
                print(verdict["targets"].to_string(index=False))
            for line in [*verdict.get("memory", []), *verdict.get("long_context", [])]:
                print(line)
            print(f"params: {verdict['params']}")
            return 0
    except config.ConfigError as err:
        print(f"error in params: {err}", file=sys.stderr)
        return 2
    import time

    from compass import timings

    start = time.perf_counter()
    if args.command == "pool":
        from compass.stages.pool import build_pool

        summary = build_pool(cfg)
        print(json.dumps({k: v for k, v in summary.items() if k != "languages"}))
    elif args.command == "model":
        from compass.stages.model import prepare_model

        try:
            config.require_model(cfg, args.model)
        except config.ConfigError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(json.dumps(prepare_model(cfg, args.model)))
    else:
        from compass.book import build

        print(f"book: {build(cfg)}")
    timings.record(args.command, time.perf_counter() - start, kind="stage")
    return 0


def _refresh_precision() -> None:
    """Re-decide the float type where a decision is recorded; say so when it changed."""
    from compass.training import precision

    before = precision.recorded()
    if before is None:
        return  # the `precision` stage decides on the first run
    chosen, changed = precision.record()
    if changed:
        print(f"float type on this CPU: {chosen.dtype}, was {before.dtype} ({chosen.reason}); "
              "DVC reruns the stages that load a model")


if __name__ == "__main__":
    sys.exit(main())
