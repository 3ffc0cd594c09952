"""Stage `train`: one LoRA adapter per (target language, selection method)."""
from __future__ import annotations

from compass import data as data_mod
from compass import io, paths
from compass.stages.data import read_language


def training_examples(cfg, lang: str, method: str) -> list[dict]:
    """The selected auxiliary pairs of ``method``, plus the existing target train split."""
    pairs = {p["id"]: p for p in data_mod.read_pool()}
    manifest = io.read_csv(paths.manifest_file(lang, method), required=("id",))
    chosen = [pairs[i] for i in manifest["id"]]
    if cfg.train.mix_target_train:
        splits, _ = read_language(lang)
        chosen += [pairs[i] for i in splits.loc[splits["split"] == "train", "id"]]
    return [{"prompt": p["prompt"], "response": p["response"], "id": p["id"]} for p in chosen]


def train_one(cfg, lang: str, method: str, show_progress_bar: bool = True) -> dict:
    from compass.training import models
    from compass.training.adapters import train_adapter

    examples = training_examples(cfg, lang, method)
    model, tokenizer = models.load(cfg.train.model, trust_remote_code=cfg.train.trust_remote_code,
                                   dtype=cfg.train.dtype)
    summary = train_adapter(model, tokenizer, examples, cfg.train, paths.adapter_dir(lang, method),
                            seed=cfg.seed, base_name=cfg.train.model,
                            show_progress_bar=show_progress_bar)
    log = io.read_csv(paths.adapter_dir(lang, method) / "train_log.csv")
    return {"summary": summary, "log": log, "examples": len(examples)}
