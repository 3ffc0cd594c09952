"""The paper's lm-eval benchmarks run on local rows, with lm-eval's own task semantics.

The paper profile scores Global-MMLU through lm-eval's ``global_mmlu_{lang}`` (Lite) and
``global_mmlu_full_{lang}`` (full), and MMLU-ProX-Lite through ``mmlu_prox_lite_{lang}``. Those
tasks read the Hugging Face hub, which is out of reach offline. So each task is rebuilt here from
lm-eval's own configuration and only its data source is replaced:

* the group (``global_mmlu_es``) is looked up in lm-eval's task index (a ``TaskManager`` over
  lm-eval's folder of that benchmark; 1 s instead of 13 s for the whole library) and expanded
  to its leaf tasks (per subject category, subject or ProX category), as lm-eval would;
* each leaf's YAML is loaded with lm-eval's own loader (``include:`` resolved) and written again
  with dataset_path ``json``, no dataset_name, and dataset_kwargs pointing the test split and
  the few-shot split (``dev`` / ``validation``) at local JSON-lines files;
* everything else is kept: doc_to_text (a Jinja template or a ``!function``), doc_to_choice,
  doc_to_target, description, ``process_docs`` (the per-category filter, which lm-eval applies
  to the few-shot rows too), fewshot_config (sampler, few-shot doc_to_text), delimiters,
  generation kwargs (except ``max_gen_toks``, a parameter), filters and metrics;
* a ``!function`` reference becomes the dotted module path of the same file in lm_eval.tasks
  (``!function lm_eval.tasks.mmlu_prox.en.utils.doc_to_text``), which lm-eval's loader imports,
  so the very same Python functions run; the language-specific ProX utils find their language
  from their own folder name as before.

The written tasks are named ``compass_<lm-eval name>`` (group and leaves) and live in
``<folder>/compass_<group>/``, so they can never be mistaken for, or shadow, the hub tasks.

Rows: lm-eval's configs read the hub's columns. Both writers accept either hub rows (dicts with
those columns, e.g. read from the fixtures' CSV / Arrow; written unchanged: exact) or the MC items
of the loaders in :mod:`compass.data.sets`, converted back (see :func:`global_mmlu_rows` and
:func:`prox_rows` for what such a conversion cannot restore).

Offline: data comes from local files through the packaged ``json`` builder, the model is the
in-memory one (``lmeval.run``), and the runs set the hub's offline switches, so nothing reaches
for the network.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd

from compass import io
from compass.data.mc_items import LETTERS
from compass.data.sets.global_mmlu import GLOBAL_MMLU_OPTIONS
from compass.data.sets.mmlu_prox import PROX_OPTIONS
from compass.evaluation import lmeval, scoring

PREFIX = "compass_"
GLOBAL_MMLU_LITE = "global_mmlu_{lang}"
GLOBAL_MMLU_FULL = "global_mmlu_full_{lang}"
PROX_LITE = "mmlu_prox_lite_{lang}"
# the folder of lm_eval/tasks that holds each benchmark's YAMLs
LM_EVAL_FOLDERS = {GLOBAL_MMLU_LITE: "global_mmlu", GLOBAL_MMLU_FULL: "global_mmlu",
                   PROX_LITE: "mmlu_prox"}
MANIFEST = "manifest.json"


# --------------------------------------------------------------------------------------------
# lm-eval's own configuration


def _tasks_root() -> Path:
    import lm_eval.tasks

    return Path(lm_eval.tasks.__file__).resolve().parent


@functools.lru_cache(maxsize=None)
def _index(folder: str) -> dict:
    """lm-eval's task index (name -> Entry) over its own folder of one benchmark."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(_tasks_root() / folder), include_defaults=False).task_index


class FunctionRef(str):
    """A ``!function`` reference (dotted module path + name) as it is written to a task YAML."""


def _function_ref(raw: str) -> FunctionRef:
    """lm-eval's unresolved ``!function`` value (``<yaml folder>/<module>.<name>``) as a dotted
    path into lm_eval.tasks that lm-eval's loader can import from any folder."""
    path = Path(raw)
    module, _, name = path.name.rpartition(".")
    source = path.parent / f"{module.replace('.', '/')}.py"
    try:
        relative = source.resolve().relative_to(_tasks_root())
    except ValueError:
        raise ValueError(f"{raw}: a !function outside lm_eval.tasks cannot be referenced") from None
    return FunctionRef(".".join(["lm_eval", "tasks", *relative.with_suffix("").parts, name]))


def _mark_functions(raw, resolved):
    """``raw`` (functions unresolved) with every value that lm-eval resolves to a function as a
    FunctionRef: the two loads of the same YAML differ exactly there."""
    if isinstance(raw, dict):
        return {k: _mark_functions(v, resolved.get(k)) for k, v in raw.items()}
    if isinstance(raw, list):
        return [_mark_functions(r, s) for r, s in zip(raw, resolved)]
    if isinstance(raw, str) and callable(resolved):
        return _function_ref(raw)
    return raw


def lm_eval_config(template: str, lang: str) -> tuple[dict, list[tuple[dict, dict]]]:
    """lm-eval's own configuration of one benchmark and language: the group's config and, per
    leaf task, ``(config, resolved)``: the leaf's YAML with its include resolved and function
    references as FunctionRef, and the same with functions resolved (lm-eval's load_yaml).

    Raises ValueError naming the language and those lm-eval has when it has no such task."""
    from lm_eval.tasks._index import Kind
    from lm_eval.tasks._yaml_loader import load_yaml

    index = _index(LM_EVAL_FOLDERS[template])
    group = template.format(lang=lang)
    if group not in index or index[group].kind is not Kind.GROUP:
        prefix = template.format(lang="")
        languages = sorted(name[len(prefix):] for name, entry in index.items()
                           if entry.kind is Kind.GROUP and name.startswith(prefix)
                           and "_" not in name[len(prefix):])
        raise ValueError(f"lm-eval {_lm_eval_version()} has no task {group!r}: language {lang!r} "
                         f"is not one of its {template} languages: {', '.join(languages)}")
    leaves = []
    for entry, overrides in _leaves(group, index):
        raw = load_yaml(entry.yaml_path, resolve_func=False)
        resolved = load_yaml(entry.yaml_path, resolve_func=True)
        leaves.append(({**_mark_functions(raw, resolved), **overrides},
                       {**resolved, **overrides}))
    return dict(index[group].cfg), leaves


def _leaves(name: str, index: dict, overrides: dict | None = None) -> list:
    """The leaf tasks of a group, recursively through subgroups and tags, with the task-level
    keys a group passes down to its members (as lm-eval's TaskFactory does)."""
    from lm_eval.config.group import GroupConfig
    from lm_eval.tasks._index import Kind

    entry = index[name]
    overrides = overrides or {}
    if entry.kind is Kind.TAG:
        return [leaf for task in sorted(entry.tags) for leaf in _leaves(task, index, overrides)]
    if entry.kind is not Kind.GROUP:
        return [(entry, overrides)]
    group_fields = {f.name for f in fields(GroupConfig)}
    passed = {**{k: v for k, v in entry.cfg.items() if k not in group_fields}, **overrides}
    out = []
    for member in entry.cfg["task"]:
        if not isinstance(member, str):
            raise NotImplementedError(f"{name}: inline member {member!r} (only named members)")
        out += _leaves(member, index, passed)
    return out


def _lm_eval_version() -> str:
    from importlib.metadata import version

    return version("lm_eval")


# --------------------------------------------------------------------------------------------
# rows in the hub's columns


def global_mmlu_rows(items) -> list[dict]:
    """Rows in the hub's Global-MMLU columns, what lm-eval's global_mmlu configs read.

    A hub row (it has ``option_a``), or the one a loader item carries (``row``,
    compass.data.mc_items.hub_row), passes unchanged: lm-eval reads what ``lm_eval --tasks`` would.
    An item without its row is converted back:
    sample_id = id, subject = topic, subject_category = category, cultural_sensitivity_label =
    cs_label ('' when absent), option_a..option_d = choices, answer = the letter. The loader
    strips whitespace from question and options; lm-eval strips the question too but prints the
    options as they are, so an option with surrounding whitespace on the hub (1 of the 400
    Spanish Lite test rows) renders without it from an item."""
    rows = []
    for item in items:
        if "option_a" in item or "row" in item:  # a hub row, or an item that carries its own
            rows.append(dict(item.get("row") or item))
            continue
        if len(item["choices"]) != 4:
            raise ValueError(f"Global-MMLU item {item['id']!r}: {len(item['choices'])} choices, "
                             "not 4")
        rows.append({"sample_id": item["id"], "subject": item["topic"],
                     "subject_category": item["category"], "question": item["question"],
                     **dict(zip(GLOBAL_MMLU_OPTIONS, item["choices"])),
                     "answer": LETTERS[item["answer"]],
                     "cultural_sensitivity_label": item.get("cs_label", "")})
    return rows


def prox_rows(items) -> list[dict]:
    """Rows in the hub's MMLU-ProX columns, what lm-eval's mmlu_prox configs read.

    A hub row (it has ``option_0``), or the one a loader item carries (``row``), passes
    unchanged: exact. An item without its row is converted back:
    question_id = id, option_k = choices[k] and None after the last, answer / answer_index from
    the index, category, src = topic, cot_content = the item's ``cot_content`` or ''. It cannot
    restore what the loader changed: it strips question and options (lm-eval prints them as they
    are: 36 of the 588 English Lite test prompts differ in that whitespace), drops 'N/A' / ''
    options that lm-eval would print, and keeps no chain of thought, so few-shot rows need their
    hub row (cot_content) for a real CoT prompt. Pass hub rows where you have them."""
    rows = []
    for item in items:
        if "option_0" in item or "row" in item:  # a hub row, or an item that carries its own
            rows.append(dict(item.get("row") or item))
            continue
        choices = item["choices"]
        if len(choices) > len(PROX_OPTIONS):
            raise ValueError(f"MMLU-ProX item {item['id']!r}: {len(choices)} choices, at most 10")
        rows.append({"question_id": item["id"], "question": item["question"],
                     **{opt: (choices[k] if k < len(choices) else None)
                        for k, opt in enumerate(PROX_OPTIONS)},
                     "answer": LETTERS[item["answer"]], "answer_index": item["answer"],
                     "cot_content": item.get("cot_content", ""), "category": item["category"],
                     "src": item["topic"]})
    return rows


# --------------------------------------------------------------------------------------------
# writing a local copy of lm-eval's task


def _yaml_text(config: dict) -> str:
    """YAML that lm-eval's loader reads back, FunctionRef values as ``!function`` tags."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    Dumper.add_representer(FunctionRef, lambda d, v: d.represent_scalar("!function", str(v)))
    return yaml.dump(config, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=100)


def _write_rows(folder: Path, split: str, rows: list[dict]) -> str:
    """JSON lines named by their content: a rewrite never meets a stale `datasets` cache."""
    text = "".join(json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in rows)
    path = folder / f"{split}-{hashlib.sha256(text.encode()).hexdigest()[:12]}.jsonl"
    io.write_text(path, text)
    return str(path)


@contextmanager
def _quiet_datasets():
    import datasets

    was = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not was:
            datasets.enable_progress_bars()


def _count_docs(resolved: dict, rows: list[dict]) -> list[int]:
    """Row positions that the leaf's own process_docs keeps (all when it has none)."""
    process = resolved.get("process_docs")
    if not rows:
        return []
    if process is None:
        return list(range(len(rows)))
    import datasets

    marked = datasets.Dataset.from_list([{**row, "__compass_row": i} for i, row in enumerate(rows)])
    with _quiet_datasets():
        return list(process(marked)["__compass_row"])


def _write_task(template: str, lang: str, folder, rows: list[dict], fewshot: list[dict],
                generation: dict | None = None) -> str:
    """Write lm-eval's task for ``template``/``lang`` over local rows; returns the group name.

    ``<folder>/compass_<group>/`` is replaced: the leaf YAMLs, the group YAML, the rows as JSON
    lines, a manifest (rows per leaf) and the `datasets` cache. Leaves that keep no test row are
    left out (lm-eval cannot evaluate an empty task); a test row that no leaf keeps raises,
    since lm-eval would silently skip it."""
    if not rows:
        raise ValueError(f"{template.format(lang=lang)}: no rows to evaluate")
    group_cfg, leaves = lm_eval_config(template, lang)
    name = PREFIX + group_cfg["group"]
    out = Path(folder).resolve() / name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    written, kept, manifest = [], set(), {"task": name, "lm_eval_group": group_cfg["group"],
                                          "lm_eval_version": _lm_eval_version(), "leaves": {}}
    files = {}
    for config, resolved in leaves:
        test_split, fewshot_split = config["test_split"], config.get("fewshot_split")
        test_docs = _count_docs(resolved, rows)
        if not test_docs:
            continue
        kept.update(test_docs)
        if "test" not in files:
            files["test"] = _write_rows(out, test_split, rows)
            files["fewshot"] = _write_rows(out, fewshot_split or "fewshot", fewshot) \
                if fewshot else None
        data_files = {test_split: files["test"]}
        if fewshot_split and files["fewshot"]:
            data_files[fewshot_split] = files["fewshot"]
        config = {k: v for k, v in config.items() if k not in ("dataset_name", "tag", "group")}
        for key in ("training_split", "validation_split", "fewshot_split"):
            if key in config and config[key] not in data_files:  # no local rows for that split
                del config[key]
        leaf = PREFIX + config["task"]
        config.update(task=leaf, dataset_path="json",
                      dataset_kwargs={"data_files": data_files, "cache_dir": str(out / "hf_cache")})
        if generation:
            config["generation_kwargs"] = {**config.get("generation_kwargs", {}), **generation}
        config["metadata"] = {**(config.get("metadata") or {}), "compass_from": resolved["task"]}
        io.write_text(out / f"{leaf}.yaml", _yaml_text(config))
        written.append(leaf)
        manifest["leaves"][leaf] = {
            "lm_eval_task": resolved["task"], "test": len(test_docs),
            "fewshot": len(_count_docs(resolved, fewshot)) if fewshot_split in data_files else 0}
    missed = sorted(set(range(len(rows))) - kept)
    if missed:
        raise ValueError(f"{group_cfg['group']}: {len(missed)} of {len(rows)} rows fall in none of "
                         f"lm-eval's subtasks (their process_docs filters; e.g. row {missed[0]}: "
                         f"{ {k: v for k, v in rows[missed[0]].items() if 'categ' in k} }); "
                         f"lm-eval would skip them silently")
    group = {k: v for k, v in group_cfg.items() if k not in ("group", "task", "tag")}
    group = {"group": name, "task": written, **group,
             "metadata": {**(group_cfg.get("metadata") or {}), "compass_from": group_cfg["group"]}}
    io.write_text(out / f"_{name}.yaml", _yaml_text(group))
    io.write_json(out / MANIFEST, manifest, digits=None)
    return name


def write_global_mmlu_task(items, lang: str, folder, lite: bool = True,
                           fewshot_items=None) -> str:
    """lm-eval's ``global_mmlu_{lang}`` (Lite) or ``global_mmlu_full_{lang}`` over local rows.

    ``items`` are the test rows, ``fewshot_items`` the dev rows lm-eval takes few-shot examples
    from (per subject category / subject, as its process_docs filters them); hub rows or loader
    items (:func:`global_mmlu_rows`). Returns the task name, ``compass_global_mmlu[_full]_{lang}``,
    to run with ``include_path=<folder>/<name>``."""
    template = GLOBAL_MMLU_LITE if lite else GLOBAL_MMLU_FULL
    return _write_task(template, lang, folder, global_mmlu_rows(items),
                       global_mmlu_rows(fewshot_items or []))


def write_prox_lite_task(items, fewshot_items, lang: str, folder, max_gen_toks: int = 2048) -> str:
    """lm-eval's ``mmlu_prox_lite_{lang}`` over local rows: generate_until, chain-of-thought
    few-shot from ``fewshot_items`` (the validation split, first 5 of the same category), its
    localized 'the answer is (X)' regex filter and exact_match. Only max_gen_toks is changed.
    Rows: hub rows or loader items (:func:`prox_rows`). Returns
    ``compass_mmlu_prox_lite_{lang}``."""
    return _write_task(PROX_LITE, lang, folder, prox_rows(items), prox_rows(fewshot_items or []),
                       generation={"max_gen_toks": int(max_gen_toks)})


def task_folder(folder, name: str) -> Path:
    """Where a written task lives (the include_path to give lm-eval)."""
    return Path(folder).resolve() / name


# --------------------------------------------------------------------------------------------
# running


@contextmanager
def _offline():
    """The hub's offline switches on for the run (env for new imports, datasets' config now)."""
    import datasets.config

    keys = ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE")
    env = {k: os.environ.get(k) for k in keys}
    conf = {k: getattr(datasets.config, k) for k in keys if hasattr(datasets.config, k)}
    os.environ.update({k: "1" for k in keys})
    for k in conf:
        setattr(datasets.config, k, True)
    try:
        yield
    finally:
        for k, v in env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        for k, v in conf.items():
            setattr(datasets.config, k, v)


def _run(model, tokenizer, folder, name: str, num_fewshot: int, batch_size: int,
         generator: str = "lm-eval", gen_batch_size: int = 16,
         chat: bool = False) -> tuple[dict, dict]:
    """lm-eval on a written task; checks first that each subtask has its few-shot rows.
    ``generator`` / ``gen_batch_size`` / ``chat``: see :func:`lmeval.run`."""
    lmeval.check_generator(generator, gen_batch_size)
    path = task_folder(folder, name)
    manifest = io.read_json(path / MANIFEST)
    short = {leaf: info["fewshot"] for leaf, info in manifest["leaves"].items()
             if info["fewshot"] < num_fewshot}
    if short:
        raise ValueError(f"{name}: {num_fewshot}-shot needs {num_fewshot} few-shot rows per "
                         f"subtask (lm-eval filters them with the subtask's process_docs); too "
                         f"few in "
                         f"{short}")
    with _offline():
        result = lmeval.run(model, tokenizer, [name], include_path=path, num_fewshot=num_fewshot,
                            batch_size=batch_size, generator=generator,
                            gen_batch_size=gen_batch_size, chat=chat)
    return result, manifest


def _samples(result: dict, manifest: dict) -> list[tuple[str, dict]]:
    return [(leaf, s) for leaf in manifest["leaves"] for s in result["samples"].get(leaf, [])]


def _limited(items, limit: int | None) -> list:
    items = list(items)
    return items if limit is None else items[:limit]


def run_global_mmlu(model, tokenizer, items, lang: str, folder, lite: bool = True,
                    num_fewshot: int = 0, limit: int | None = None, fewshot_items=None,
                    cross_check: bool = True, batch_size: int = 1,
                    chat: bool = False) -> pd.DataFrame:
    """lm-eval's Global-MMLU task on local rows; one row per sample.

    Columns: id (sample_id), subject, subject_category, cultural_sensitivity_label, lm_eval_task
    (the subtask), gold, pred (argmax of lm-eval's log-likelihoods), correct, acc (lm-eval's own
    per-sample acc), loglikelihoods, context and continuations (lm-eval's exact requests).
    ``limit`` keeps the first ``limit`` items (lm-eval's own limit counts per subtask).
    ``frame.attrs["lm_eval"]`` holds the task's acc; with ``cross_check`` the same requests are
    scored by our fast scorer too (:func:`cross_check_global_mmlu`): columns fast_pred,
    same_choice, ll_diff and ``frame.attrs["cross_check"]``."""
    items = _limited(items, limit)
    name = write_global_mmlu_task(items, lang, folder, lite=lite, fewshot_items=fewshot_items)
    result, manifest = _run(model, tokenizer, folder, name, num_fewshot, batch_size, chat=chat)
    order = {str(row["sample_id"]): i for i, row in enumerate(global_mmlu_rows(items))}
    rows = []
    for leaf, s in _samples(result, manifest):
        doc = s["doc"]
        lls = [float(r[0]) for r in s["filtered_resps"]]
        gold = s["target"] if isinstance(s["target"], int) else LETTERS.index(str(s["target"]))
        pred = int(np.argmax(lls))
        rows.append({"id": str(doc["sample_id"]), "subject": doc["subject"],
                     "subject_category": doc["subject_category"],
                     "cultural_sensitivity_label": doc.get("cultural_sensitivity_label", ""),
                     "lm_eval_task": leaf, "gold": gold, "pred": pred, "correct": int(pred == gold),
                     "acc": float(s["acc"]), "loglikelihoods": lls,
                     "context": s["arguments"][0][0],
                     "continuations": [arg[1] for arg in s["arguments"]]})
    frame = pd.DataFrame(rows)
    frame = frame.sort_values("id", key=lambda ids: ids.map(order)).reset_index(drop=True)
    if cross_check:
        check = cross_check_global_mmlu(model, tokenizer, frame)
        frame = pd.concat([frame, check.pop("per_item").drop(columns="id")], axis=1)
        frame.attrs["cross_check"] = check
    frame.attrs["lm_eval"] = {"task": name, "lm_eval_group": manifest["lm_eval_group"],
                              "acc": float(result["results"][name]["acc,none"]),
                              "n": len(frame), "num_fewshot": num_fewshot}
    return frame


@contextmanager
def _scorer_delimiter(delimiter: str):
    """Our scorer joins question and choice with scoring.TARGET_DELIMITER ("\\n", the project's
    own MC format); lm-eval's request is (context, " A") with the delimiter already in the
    continuation, so for its requests the scorer must add nothing."""
    saved = scoring.TARGET_DELIMITER
    scoring.TARGET_DELIMITER = delimiter
    try:
        yield
    finally:
        scoring.TARGET_DELIMITER = saved


def cross_check_global_mmlu(model, tokenizer, frame: pd.DataFrame,
                            batch_tokens: int | None = None) -> dict:
    """Score lm-eval's own requests (its context string and continuations " A".." D", from the
    logged samples) with our fast batched scorer and compare: per item the choice and the
    largest log-likelihood difference (~1e-5 in fp32 when both tokenise and score alike)."""
    requests = [{"question": context, "choices": list(continuations)}
                for context, continuations in zip(frame["context"], frame["continuations"])]
    was_training = model.training
    model.eval()
    try:
        with _scorer_delimiter(""):
            fast = scoring.batched_loglikelihoods(model, tokenizer, requests,
                                                  batch_tokens=batch_tokens)
    finally:
        if was_training:
            model.train()
    per_item = pd.DataFrame({
        "id": frame["id"],
        "fast_loglikelihoods": [[float(x) for x in ll] for ll in fast],
        "fast_pred": [int(np.argmax(ll)) for ll in fast],
        "ll_diff": [float(np.abs(np.asarray(ll) - np.asarray(ref)).max())
                    for ll, ref in zip(fast, frame["loglikelihoods"])]})
    per_item["same_choice"] = per_item["fast_pred"].to_numpy() == frame["pred"].to_numpy()
    return {"items": len(per_item), "same_choice": int(per_item["same_choice"].sum()),
            "max_abs_loglikelihood_diff": (float(per_item["ll_diff"].max()) if len(per_item)
                                           else 0.0),
            "per_item": per_item}


def run_prox_lite(model, tokenizer, items, fewshot_items, lang: str, folder,
                  num_fewshot: int = 5, limit: int | None = None, max_gen_toks: int = 2048,
                  batch_size: int = 1, generator: str = "lm-eval",
                  gen_batch_size: int = 16, chat: bool = False) -> tuple[pd.DataFrame, dict]:
    """lm-eval's ``mmlu_prox_lite_{lang}`` on local rows (greedy generation, its answer filter).

    Returns one row per sample (id, category, lm_eval_task, gold, generated, extracted, correct,
    extraction_failed) and a summary: lm-eval's exact_match and the share of samples whose answer
    the filter could not extract ('[invalid]', as :func:`lmeval.extraction_failures`).
    ``limit`` keeps the first ``limit`` items. ``generator="compass"`` answers the generation
    with :class:`compass.evaluation.generation.CompassGenerationLM` (batches of
    ``gen_batch_size``; the same outputs as lm-eval's HFLM, whose ``batch_size`` is otherwise
    the generation batch)."""
    lmeval.check_generator(generator, gen_batch_size)
    items = _limited(items, limit)
    name = write_prox_lite_task(items, fewshot_items, lang, folder, max_gen_toks=max_gen_toks)
    result, manifest = _run(model, tokenizer, folder, name, num_fewshot, batch_size,
                            generator=generator, gen_batch_size=gen_batch_size, chat=chat)
    samples = _samples(result, manifest)
    order = {str(row["question_id"]): i for i, row in enumerate(prox_rows(items))}
    rows = []
    for leaf, s in samples:
        doc = s["doc"]
        extracted = s["filtered_resps"][0]
        rows.append({"id": str(doc["question_id"]), "category": doc["category"],
                     "lm_eval_task": leaf, "gold": doc["answer"],
                     "generated": s["resps"][0][0], "extracted": extracted,
                     "correct": int(float(s["exact_match"]) == 1.0),
                     "extraction_failed": lmeval.INVALID in str(extracted)})
    frame = pd.DataFrame(rows)
    frame = frame.sort_values("id", key=lambda ids: ids.map(order)).reset_index(drop=True)
    metrics = result["results"][name]
    key = next(k for k in metrics if k.startswith("exact_match,") and "stderr" not in k)
    summary = {"task": name, "lm_eval_group": manifest["lm_eval_group"], "n": len(frame),
               "exact_match": float(metrics[key]), "metric": key, "num_fewshot": num_fewshot,
               "max_gen_toks": int(max_gen_toks),
               "extraction_failures": int(frame["extraction_failed"].sum()) if len(frame) else 0,
               "extraction_failure_rate": lmeval.extraction_failures(
                   {"samples": {name: [s for _, s in samples]}}, name)}
    return frame, summary
