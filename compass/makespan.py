"""How long a full run takes on G GPUs: the GPU stages of ``make cost`` as jobs of the DAG
(train, then evaluate and long context, per base model and target language), one per GPU at a
time, scheduled critical path first, as ``compass.cluster`` would run them.

A stage's hours come from compass.cost's table, split over languages: training equally, Global-
MMLU scoring by each language's measured tokens per item, MMLU-ProX-Lite and long context equally
over the languages they cover. The CPU stages (pool, sampling) and model loading are not
counted, so the wall time is a lower bound, like the GPU-hours it comes from.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass

from compass.config import Config
from compass.protocols import protocol_of

GOAL_HOURS = 24.0  # the paper preset on one 8-GPU node in at most a day (issue's goal)


@dataclass(frozen=True)
class Job:
    """One GPU stage: its hours on one GPU and the stages it must wait for."""
    name: str  # a DVC stage address, e.g. train@phi-4-mini-ja
    hours: float
    after: tuple[str, ...] = ()


def jobs(cfg: Config, gpu=None, lengths=None) -> list[Job]:
    """The GPU stages of a full run and their hours (see the module notes)."""
    from compass import cost

    table = cost.cost_table(cfg, gpu, lengths)
    measured, _ = cost.prompt_lengths(lengths)
    prox = set(protocol_of(cfg).prox_languages(cfg))
    long_context = set(cfg.long_context_scored())
    out = []
    for name in cfg.train.models:
        row = table.loc[name]
        chat = cost._reads_chat(cfg, name)
        tokens = {lang: cost.mc_item_tokens(cfg, lang, chat, measured) for lang in cfg.targets}
        for lang in cfg.targets:
            train = f"train@{name}-{lang}"
            evaluate = (row["mc_gpu_h"] * tokens[lang] / sum(tokens.values())
                        + (row["prox_gpu_h"] / len(prox) if lang in prox else 0.0))
            out += [Job(train, row["train_gpu_h"] / len(cfg.targets)),
                    Job(f"evaluate@{name}-{lang}", evaluate, (train,))]
            if lang in long_context:
                out.append(Job(f"long_context@{name}-{lang}",
                               row["lc_gpu_h"] / len(long_context), (train,)))
    return out


def critical_path(all_jobs: list[Job]) -> tuple[float, list[str]]:
    """The longest chain of dependent jobs: no number of GPUs finishes sooner."""
    by_name = {j.name: j for j in all_jobs}
    memo: dict[str, tuple[float, list[str]]] = {}

    def longest(name):
        if name not in memo:
            job = by_name[name]
            before = max((longest(d) for d in job.after), default=(0.0, []))
            memo[name] = (before[0] + job.hours, before[1] + [name])
        return memo[name]

    return max((longest(j.name) for j in all_jobs), default=(0.0, []))


def schedule(all_jobs: list[Job], gpus: int) -> float:
    """Hours until the last job ends with ``gpus`` GPUs: whenever one is free it takes the ready
    job with the longest chain still behind it (list scheduling, critical path first)."""
    if gpus < 1:
        raise ValueError(f"gpus must be >= 1, got {gpus}")
    by_name = {j.name: j for j in all_jobs}
    children: dict[str, list[str]] = {j.name: [] for j in all_jobs}
    for j in all_jobs:
        for d in j.after:
            children[d].append(j.name)
    tail: dict[str, float] = {}

    def rank(name):  # the job's hours plus the longest chain after it
        if name not in tail:
            tail[name] = by_name[name].hours + max((rank(c) for c in children[name]), default=0.0)
        return tail[name]

    waiting = {j.name: len(j.after) for j in all_jobs}
    ready = [(-rank(n), n) for n, k in waiting.items() if k == 0]
    heapq.heapify(ready)
    running: list[tuple[float, str]] = []  # (end time, job)
    now = 0.0
    while ready or running:
        while ready and len(running) < gpus:
            _, name = heapq.heappop(ready)
            heapq.heappush(running, (now + by_name[name].hours, name))
        now, done = heapq.heappop(running)
        for child in children[done]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, (-rank(child), child))
    return now


def table_lines(cfg: Config, gpu=None, lengths=None, gpu_counts=(1, 8, 32)) -> list[str]:
    """The wall-time table ``make cost`` prints, and what bounds each row."""
    all_jobs = jobs(cfg, gpu, lengths)
    if not all_jobs:
        return []
    path_hours, path = critical_path(all_jobs)
    work = sum(j.hours for j in all_jobs)
    lines = ["| GPUs | wall time (h) | bound | within 24 h |", "|---:|---:|:--|:--|"]
    for g in gpu_counts:
        hours = schedule(all_jobs, g)
        bound = ("the critical path" if hours <= path_hours * 1.05
                 else f"the GPUs ({work:.1f} GPU-h / {g} = {work / g:.1f} h)")
        lines.append(f"| {g} | {hours:.1f} | {bound} | {'yes' if hours <= GOAL_HOURS else 'no'} |")
    lines.append("")
    lines.append(f"Critical path {path_hours:.1f} h: {' -> '.join(path)} ({len(all_jobs)} GPU "
                 "stages; CPU stages, model loading and queueing not counted: a lower bound).")
    return lines
