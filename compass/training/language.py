"""The LoRA adapters of one target language, one per selection method and training seed,
trained one after another on one loaded base model in this process (loading it and starting a
kernel once per language, not once per adapter, saves about 12 s per adapter on 2 cores)."""
from __future__ import annotations

import os

from compass import data as data_mod
from compass import io, paths
from compass.schemas import SPLIT_FIELDS


def training_examples(cfg, lang: str, method: str, pairs: dict | None = None) -> list[dict]:
    """The selected auxiliary pairs of ``method``, plus the existing target train split."""
    pairs = {p["id"]: p for p in data_mod.read_pool()} if pairs is None else pairs
    manifest = io.read_csv(paths.manifest_file(lang, method), required=("id",))
    chosen = [pairs[i] for i in manifest["id"]]
    if cfg.train.mix_target_train:
        splits = io.read_csv(paths.splits_file(lang), required=SPLIT_FIELDS)
        chosen += [pairs[i] for i in splits.loc[splits["split"] == "train", "id"]]
    return [{"prompt": p["prompt"], "response": p["response"], "id": p["id"]} for p in chosen]


REUSE_ENV = "COMPASS_REUSE_ADAPTERS"  # =1: keep adapters a run across machines finished (README)


def train_here(cfg, lang: str, model_name: str, methods=None,
               show_progress_bar: bool = True) -> dict:
    """Every method's adapters of ``lang`` on base model ``model_name`` (default methods:
    train.methods) in this process, one per training seed (seed, seed + 1, ... for
    train.seeds). Each starts from the same plain base model, so each equals an adapter trained
    in a process of its own. The first seed's adapter is also kept after each of
    train.curve_steps steps."""
    from compass.training import distributed, models
    from compass.training.adapters import train_adapter

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
    return result_of(cfg, lang, model_name, summaries, examples)


def result_of(cfg, lang: str, model_name: str, summaries: dict, examples: dict) -> dict:
    """What :func:`train_here` returns, from each adapter's summary and the training logs
    the adapters' folders hold (one code path for one process and for several)."""
    import pandas as pd

    logs: dict = {}
    for method, replicate in summaries:
        out = paths.adapter_dir(lang, model_name, method, replicate)
        logs.setdefault(method, []).append(
            io.read_csv(out / "train_log.csv").assign(seed=cfg.seed + replicate))
    logs = {method: pd.concat(frames, ignore_index=True) for method, frames in logs.items()}
    table = pd.DataFrame([{"method": m, "seed": cfg.seed + r, "examples": examples[m],
                           "steps": s["steps"], "tokens": s["tokens"],
                           "first loss": s["first_loss"],
                           "final loss": s["final_loss"], "seconds": s["seconds"],
                           "tokens/s": s["tokens_per_second"]} for (m, r), s in summaries.items()])
    return {"summaries": summaries, "logs": logs, "table": table}


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
