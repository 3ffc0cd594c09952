"""Stage `train`: the LoRA adapters of one target language, one per selection method, trained one
after another on one loaded base model (loading it and starting a kernel once per language, not
once per adapter, saves about 12 s per adapter on 2 cores)."""
from __future__ import annotations

import json
import os
from pathlib import Path

from compass import data as data_mod
from compass import io, paths
from compass.stages.data import read_language


def training_examples(cfg, lang: str, method: str, pairs: dict | None = None) -> list[dict]:
    """The selected auxiliary pairs of ``method``, plus the existing target train split."""
    pairs = {p["id"]: p for p in data_mod.read_pool()} if pairs is None else pairs
    manifest = io.read_csv(paths.manifest_file(lang, method), required=("id",))
    chosen = [pairs[i] for i in manifest["id"]]
    if cfg.train.mix_target_train:
        splits, _ = read_language(lang)
        chosen += [pairs[i] for i in splits.loc[splits["split"] == "train", "id"]]
    return [{"prompt": p["prompt"], "response": p["response"], "id": p["id"]} for p in chosen]


REUSE_ENV = "COMPASS_REUSE_ADAPTERS"  # =1: keep adapters a run across machines finished (README)


def train_language(cfg, lang: str, model_name: str, methods=None, show_progress_bar: bool = True) -> dict:
    """Every method's adapters of ``lang`` on base model ``model_name`` (default methods:
    train.methods), one per training seed (seed, seed + 1, ... for train.seeds). Each starts from
    the same plain base model, so each equals an adapter trained in a process of its own. The
    first seed's adapter is also kept after each of train.curve_steps steps."""
    from compass.training import distributed, models
    from compass.training.adapters import train_adapter

    if cfg.train.processes > 1 and distributed.world()[1] == 1:
        return train_in_processes(cfg, lang, model_name, methods, show_progress_bar)
    size = distributed.world()[1]
    if cfg.train.batch_size % size:
        raise ValueError(f"train.batch_size {cfg.train.batch_size} is not a multiple of the "
                         f"{size} launched processes: each takes an equal share of a micro-batch")
    pairs = {p["id"]: p for p in data_mod.read_pool()}
    model, tokenizer = models.load(model_name, trust_remote_code=cfg.train.trust_remote_code,
                                   dtype=cfg.train.dtype, model_sources=cfg.train.model_sources,
                                   device=distributed.local_device())
    if methods is None and distributed.is_main():  # the configured set: adapters of methods no
        remove_stale(cfg, lang, model_name)  # longer trained go
    summaries, examples = {}, {}
    for method in methods or cfg.train.methods:
        chosen = training_examples(cfg, lang, method, pairs)
        for replicate in range(cfg.train.seeds):
            out = paths.adapter_dir(lang, model_name, method, replicate)
            summaries[(method, replicate)] = train_adapter(
                model, tokenizer, chosen, cfg.train, out, seed=cfg.seed + replicate,
                base_name=model_name, show_progress_bar=show_progress_bar,
                snapshot_steps=cfg.train.curve_steps if replicate == 0 else (),
                reuse_finished=os.environ.get(REUSE_ENV) == "1")
        examples[method] = len(chosen)
    return _result(cfg, lang, model_name, summaries, examples)


def _result(cfg, lang: str, model_name: str, summaries: dict, examples: dict) -> dict:
    """What :func:`train_language` returns, from each adapter's summary and the training logs
    the adapters' folders hold (one code path for one process and for several)."""
    import pandas as pd

    logs: dict = {}
    for method, replicate in summaries:
        out = paths.adapter_dir(lang, model_name, method, replicate)
        logs.setdefault(method, []).append(
            io.read_csv(out / "train_log.csv").assign(seed=cfg.seed + replicate))
    logs = {method: pd.concat(frames, ignore_index=True) for method, frames in logs.items()}
    table = pd.DataFrame([{"method": m, "seed": cfg.seed + r, "examples": examples[m],
                           "steps": s["steps"], "tokens": s["tokens"], "first loss": s["first_loss"],
                           "final loss": s["final_loss"], "seconds": s["seconds"],
                           "tokens/s": s["tokens_per_second"]} for (m, r), s in summaries.items()])
    return {"summaries": summaries, "logs": logs, "table": table}


def train_in_processes(cfg, lang: str, model_name: str, methods=None,
                       show_progress_bar: bool = True) -> dict:
    """:func:`train_language` in train.processes data-parallel processes on this machine
    (``accelerate launch``; compass.training.distributed), returning what the first process
    returns. The processes get this process's float type (one decision, not one per process).
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
        command = distributed.launch_command("compass.stages.train", ["--job", str(job),
                                             "--result", str(result)], cfg.train.processes,
                                             port=distributed.free_port())
        run = subprocess.run(command, env=env, stderr=subprocess.PIPE, text=True)
        if run.returncode != 0 or not result.exists():
            raise RuntimeError(f"training {lang}/{model_name} in {cfg.train.processes} processes "
                               f"failed (exit {run.returncode}):\n{run.stderr[-3000:]}")
        done = json.loads(result.read_text(encoding="utf-8"))
    summaries = {(m, r): summary for m, r, summary in done["summaries"]}
    return _result(cfg, lang, model_name, summaries, done["examples"])


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


def _main(argv=None) -> None:
    """One process of a data-parallel run: ``--lang L --model M`` trains that language's adapters
    with params.yaml (a run across machines, README), ``--job`` the JSON job of
    :func:`train_in_processes`; the first process writes ``--result`` (each adapter's summary
    and each method's example count, as JSON)."""
    import argparse

    from compass import config
    from compass.training import distributed

    parser = argparse.ArgumentParser(prog="python -m compass.stages.train", description=_main.__doc__)
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


def remove_stale(cfg, lang: str, model_name: str) -> None:
    """Adapters the params no longer ask for (methods, seeds beyond train.seeds, step snapshots
    not in train.curve_steps) leave the stage's output, which DVC keeps between runs (persist)."""
    import shutil

    keep = set(cfg.train.methods)
    for folder in sorted(paths.adapters_dir(lang, model_name).glob("*/")):
        if not folder.is_dir():
            continue
        if folder.name not in keep:
            shutil.rmtree(folder)
            continue
        for kind, wanted in (("seeds", {str(r) for r in range(1, cfg.train.seeds)}),
                             ("steps", {str(s) for s in cfg.train.curve_steps})):
            for sub in sorted((folder / kind).glob("*/")):
                if sub.name not in wanted:
                    shutil.rmtree(sub)


if __name__ == "__main__":
    _main()
