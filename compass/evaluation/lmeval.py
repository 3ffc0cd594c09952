"""lm-evaluation-harness bridge: a local task made from our items (cross-check of the scorer) and
the paper's tasks (global_mmlu_full_<lang>, mmlu_prox_lite_<lang>) through the same wrapper.

`HFLM(pretrained=<PeftModel>)` evaluates whatever adapter is active on the object; lm-eval's
`peft=` argument is ignored when `pretrained` is an object, so the adapter is set before the call.

Generative requests (``generate_until``) are answered by lm-eval's own HFLM by default
(``generator="lm-eval"``), or by :class:`compass.evaluation.generation.CompassGenerationLM`
(``generator="compass"``): the same outputs for greedy decoding, in batches of ``gen_batch_size``
that end as soon as every row has stopped.
"""
from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from compass import io

PAPER_TASKS = ("global_mmlu_full_{lang}", "mmlu_prox_lite_{lang}")
INVALID = "[invalid]"
GENERATORS = ("lm-eval", "compass")


def check_generator(generator: str, gen_batch_size: int = 16) -> None:
    """ValueError unless ``generator`` is one of GENERATORS and ``gen_batch_size`` >= 1."""
    if generator not in GENERATORS:
        raise ValueError(f"unknown generator {generator!r}; allowed: "
                         f"{', '.join(repr(g) for g in GENERATORS)}")
    if isinstance(gen_batch_size, bool) or not isinstance(gen_batch_size, int) \
            or gen_batch_size < 1:
        raise ValueError(f"gen_batch_size must be an integer >= 1, got {gen_batch_size!r}")


def write_local_task(items: list[dict], name: str, folder: str | Path) -> Path:
    """A multiple-choice task over ``items`` (MC_ITEM schema) that lm-eval can load offline."""
    folder = Path(folder).resolve()
    data = folder / f"{name}.jsonl"
    io.write_jsonl(data, items)
    spec = {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data)}},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": "{{question}}",
        "doc_to_choice": "{{choices}}",
        "doc_to_target": "{{answer}}",
        # same tokens as compass.evaluation.scoring (context + "\n" + choice)
        "target_delimiter": "\n",
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True},
                        {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True}],
    }
    path = folder / f"{name}.yaml"
    io.write_text(path, json.dumps(spec, indent=2))  # JSON is valid YAML
    return path


def run(model, tokenizer, tasks: list[str], include_path: str | Path | None = None,
        num_fewshot: int = 0, limit: int | None = None, batch_size: int | str = 1,
        include_defaults: bool | None = None, generator: str = "lm-eval",
        gen_batch_size: int = 16, chat: bool = False) -> dict:
    """simple_evaluate with samples logged; returns lm-eval's result dict.

    ``include_defaults`` (default: only when no ``include_path`` is given) indexes lm-eval's own
    task library, which takes about 13 s on 2 cores; local tasks do not need it.
    ``generator``: who answers generative requests, ``"lm-eval"`` (HFLM, ``batch_size`` at a
    time) or ``"compass"`` (CompassGenerationLM: greedy requests in batches of
    ``gen_batch_size``, same outputs; log-likelihood requests stay HFLM's either way).
    ``chat``: an instruct model reads each prompt in its chat template, few-shot examples as
    earlier turns (lm-eval's ``apply_chat_template`` and ``fewshot_as_multiturn``)."""
    check_generator(generator, gen_batch_size)
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    logging.getLogger("lm_eval").setLevel(logging.WARNING)
    device = str(next(model.parameters()).device)
    if generator == "compass":
        from compass.evaluation.generation import CompassGenerationLM

        lm = CompassGenerationLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size,
                                 device=device, gen_batch_size=gen_batch_size)
    else:
        lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, device=device)
    if include_defaults is None:
        include_defaults = include_path is None
    manager = TaskManager(include_path=str(include_path) if include_path else None,
                          include_defaults=include_defaults)
    return lm_eval.simple_evaluate(model=lm, tasks=tasks, task_manager=manager,
                                   num_fewshot=num_fewshot, limit=limit, log_samples=True,
                                   apply_chat_template=chat, fewshot_as_multiturn=chat)


def per_item_choices(result: dict, task: str) -> pd.DataFrame:
    """lm-eval's chosen option (acc and acc_norm) for each logged sample of a multiple-choice
    task."""
    rows = []
    for sample in result["samples"][task]:
        lls = np.array([float(r[0]) for r in sample["filtered_resps"]])
        choices = sample["doc"]["choices"]
        lengths = np.array([float(len(c)) for c in choices])
        rows.append({"id": sample["doc"]["id"], "lm_eval_pred": int(np.argmax(lls)),
                     "lm_eval_pred_norm": int(np.argmax(lls / lengths)),
                     "lm_eval_loglikelihoods": lls.tolist()})
    return pd.DataFrame(rows)


def cross_check(model, tokenizer, items: list[dict], predictions: pd.DataFrame,
                folder: str | Path, name: str = "compass_mc", batch_size: int | str = 1,
                chat: bool = False) -> dict:
    """Run ``items`` through lm-eval and compare its per-item choices with ``predictions``."""
    write_local_task(items, name, folder)
    result = run(model, tokenizer, [name], include_path=folder, batch_size=batch_size, chat=chat)
    theirs = per_item_choices(result, name)
    merged = predictions.merge(theirs, on="id", how="inner")
    max_ll_diff = max(float(np.abs(np.array(a) - np.array(b)).max())
                      for a, b in zip(merged["loglikelihoods"], merged["lm_eval_loglikelihoods"]))
    return {"items": len(merged),
            "same_choice_acc": int((merged["pred"] == merged["lm_eval_pred"]).sum()),
            "same_choice_acc_norm": int((merged["pred_norm"] == merged["lm_eval_pred_norm"]).sum()),
            "max_abs_loglikelihood_diff": max_ll_diff,
            "lm_eval_acc": float(result["results"][name]["acc,none"]),
            "lm_eval_acc_norm": float(result["results"][name]["acc_norm,none"])}


def extraction_failures(result: dict, task: str, warn_above: float = 0.1) -> float:
    """Share of generative samples whose answer could not be extracted; warns when high."""
    samples = result["samples"][task]
    if not samples:
        return 0.0
    failed = sum(1 for s in samples
                 if any(INVALID in str(r) for r in np.ravel(s.get("filtered_resps", []))))
    rate = failed / len(samples)
    if rate > warn_above:
        warnings.warn(f"{task}: answer extraction failed on {failed}/{len(samples)} samples "
                      f"({rate:.0%}); check the prompt format and the filter regex", stacklevel=2)
    return rate


def paper_tasks(lang: str) -> list[str]:
    """The paper's lm-eval task names for one language (data comes from the hub)."""
    return [t.format(lang=lang) for t in PAPER_TASKS]
