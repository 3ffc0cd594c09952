"""Entry points of the non-notebook pipeline stages: `python -m compass.cli {pool,check,model,book}`,
and `profile NAME`, which makes a preset of profiles/ the active params.yaml.

`check --dry` validates params (against the pool when it exists) without writing anything: `make
repro` runs it before `dvc repro`, so a bad value stops everything with one line."""
from __future__ import annotations

import argparse
import json
import sys

from compass import config


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compass.cli")
    parser.add_argument("command", choices=["pool", "check", "model", "book", "profile"])
    parser.add_argument("name", nargs="?", help="profile: the preset to activate (profiles/NAME.yaml)")
    parser.add_argument("--force", action="store_true", help="profile: overwrite an edited params.yaml")
    parser.add_argument("--params", default=None, help="params.yaml to read (default: the repo's)")
    parser.add_argument("--dry", action="store_true", help="check: validate only, write nothing")
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
        cfg = config.load(args.params)
        if args.command == "check":
            from compass.stages import check

            verdict = check.check_params(cfg, hub=args.dry) if args.dry else check.run(cfg)
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


if __name__ == "__main__":
    sys.exit(main())
