"""Training in several data-parallel processes on this machine (``accelerate launch``,
compass.training.distributed), and the entry point each launched process runs: ``python -m
compass.training.launch``. The job and its result travel as JSON, never as pickles: a file
another process or machine wrote is data, not code."""
from __future__ import annotations

import json
import os
from pathlib import Path

from compass import io
from compass.training.language import result_of, train_here


def train_language(cfg, lang: str, model_name: str, methods=None,
                   show_progress_bar: bool = True) -> dict:
    """Every method's adapters of ``lang`` on base model ``model_name`` (default methods:
    train.methods), one per training seed: in train.processes launched processes when more than
    one is asked and this is not one of them already, else here
    (:func:`compass.training.language.train_here`)."""
    from compass.training import distributed

    if cfg.train.processes > 1 and distributed.world()[1] == 1:
        return train_in_processes(cfg, lang, model_name, methods, show_progress_bar)
    return train_here(cfg, lang, model_name, methods, show_progress_bar)


def train_in_processes(cfg, lang: str, model_name: str, methods=None,
                       show_progress_bar: bool = True) -> dict:
    """:func:`compass.training.language.train_here` in train.processes data-parallel processes
    on this machine (``accelerate launch``; compass.training.distributed), returning what the
    first process returns. The processes get this process's float type (one decision, not one
    per process).
    The job and its result travel as JSON, never as pickles: a file another process or machine
    wrote is data, not code."""
    import subprocess
    import tempfile

    from compass.training import distributed, precision

    chosen = precision.choose(cfg.train.dtype)
    env = dict(os.environ)
    if chosen.device == "cpu":
        env[precision.ENV_OVERRIDE] = "1" if chosen.dtype == "bfloat16" else "0"
    with tempfile.TemporaryDirectory(prefix="compass-train-") as folder:
        job, result = Path(folder) / "job.json", Path(folder) / "result.json"
        io.write_json(job, job_of(cfg, lang, model_name, methods, show_progress_bar), digits=None)
        command = distributed.launch_command("compass.training.launch", ["--job", str(job),
                                             "--result", str(result)], cfg.train.processes,
                                             port=distributed.free_port())
        run = subprocess.run(command, env=env, stderr=subprocess.PIPE, text=True)
        if run.returncode != 0 or not result.exists():
            raise RuntimeError(f"training {lang}/{model_name} in {cfg.train.processes} processes "
                               f"failed (exit {run.returncode}):\n{run.stderr[-3000:]}")
        done = json.loads(result.read_text(encoding="utf-8"))
    summaries = {(m, r): summary for m, r, summary in done["summaries"]}
    return result_of(cfg, lang, model_name, summaries, done["examples"])


def job_of(cfg, lang: str, model_name: str, methods=None, show_progress_bar: bool = True) -> dict:
    """One training job as plain JSON data: the params as params.yaml would hold them."""
    import dataclasses

    return {"params": dataclasses.asdict(cfg), "lang": lang, "model": model_name,
            "methods": list(methods) if methods is not None else None,
            "show_progress_bar": show_progress_bar}


def read_job(path: Path) -> dict:
    """A job :func:`job_of` wrote, its params validated as params.yaml's are."""
    from compass import config

    job = json.loads(Path(path).read_text(encoding="utf-8"))
    return {**job, "cfg": config.from_dict(job["params"])}


def main(argv=None) -> None:
    """One process of a data-parallel run: ``--lang L --model M`` trains that language's adapters
    with params.yaml (a run across machines, README), ``--job`` the JSON job of
    :func:`train_in_processes`; the first process writes ``--result`` (each adapter's summary
    and each method's example count, as JSON)."""
    import argparse

    from compass import config
    from compass.training import distributed

    parser = argparse.ArgumentParser(prog="python -m compass.training.launch",
                                     description=main.__doc__)
    parser.add_argument("--lang")
    parser.add_argument("--model")
    parser.add_argument("--job")
    parser.add_argument("--result")
    args = parser.parse_args(argv)
    if args.job:
        job = read_job(Path(args.job))
    elif args.lang and args.model:
        cfg = config.load()
        config.require_model(cfg, args.model)
        job = {"cfg": cfg, "lang": args.lang, "model": args.model, "methods": None,
               "show_progress_bar": True}
    else:
        parser.error("give --lang and --model (or --job)")
    rank, size = distributed.world()
    out = train_language(job["cfg"], job["lang"], job["model"], job["methods"],
                         show_progress_bar=job["show_progress_bar"] and rank == 0)
    if rank == 0 and args.result:
        examples = out["table"].groupby("method")["examples"].first()
        io.write_json(Path(args.result), {
            "summaries": [[m, r, summary] for (m, r), summary in out["summaries"].items()],
            "examples": {m: int(n) for m, n in examples.items()}}, digits=None)
    distributed.barrier()
    distributed.finish()


if __name__ == "__main__":
    main()
