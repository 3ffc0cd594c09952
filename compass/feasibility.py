"""Which target languages can run, decided before any stage writes results.

DVC deletes a stage's outputs before it runs the stage, and a stage that stops on its data stops in
a papermill traceback minutes in. So for every target this module runs the very functions the data
and sampling stages will run (splits, test items, the K range, every selection at the budget) and
refuses a target in one line: which language, which number is short and why, and a remedy that
works (the largest budget that every method can select, or the setting to change).

Two depths: without embeddings (``check --dry`` on a fresh clone, before the pool stage has run)
it checks pairs, topics, splits, distractors and the K range, and the budget against the auxiliary
pairs; with the pool's embeddings (the ``check`` stage, and ``check --dry`` once a pool exists) it
also builds each target's pool and runs every selection.
"""
from __future__ import annotations

import pandas as pd

from compass.config import ConfigError


class Infeasible(ConfigError):
    """One or more targets cannot run; the message has one line per target."""


class Refused(ValueError):
    """One target cannot run (the one-line reason and remedy). ``settings``: the dotted params
    that would make it run (empty where only another target would)."""

    def __init__(self, message: str, settings: dict | None = None):
        super().__init__(message)
        self.settings = dict(settings or {})


def _name(lang: str) -> str:
    from compass.languages import display_name

    return f"{lang!r} ({display_name(lang)})"


def _remove(lang: str) -> str:
    return f"remove {lang!r} from languages.targets"


def _with(node, keys: list[str], value):
    """A copy of the frozen config ``node`` with the field at ``keys`` set to ``value``."""
    from dataclasses import replace

    head = keys[0]
    return replace(node, **{head: value if len(keys) == 1
                            else _with(getattr(node, head), keys[1:], value)})


class _Problems:
    """What is short for one target, and the settings that fix each part (applied as found, so
    the checks after a fix run with it and the remedy given is one that works as a whole)."""

    def __init__(self, cfg, lang: str):
        self.cfg, self.lang, self.why, self.fixes, self.settings = cfg, lang, [], [], {}

    def fix(self, why: str, remedy: str, setting: str, value) -> None:
        """Record a problem and the remedy, and go on with ``setting`` (dotted) set to ``value``."""
        self.why.append(why)
        self.fixes.append(remedy)
        self.settings[setting] = value
        self.cfg = _with(self.cfg, setting.split("."), value)

    def refuse(self, why: str) -> Refused:
        """A problem no setting fixes: only another target does."""
        return Refused(f"target {_name(self.lang)}: {'; '.join([*self.why, why])}; "
                       f"{_remove(self.lang)}")

    def raise_if_any(self) -> None:
        if self.why:
            raise Refused(f"target {_name(self.lang)}: {'; '.join(self.why)}; "
                          f"{' and '.join(self.fixes)}, or {_remove(self.lang)}", self.settings)


def _splits(problems: _Problems, own: list[dict]):
    """The data stage's splits and test items (with the distractor fix applied if one is needed)."""
    from compass.data.splits import SplitError, distractor_capacity, split_language
    from compass.protocols.data import data_of

    cfg, lang = problems.cfg, problems.lang
    try:
        return data_of(cfg).split_target(cfg, lang, own)[:2]
    except ConfigError as err:  # paper profile: no Aya rows for the target
        raise problems.refuse(str(err)) from None
    except SplitError as err:
        topics = sorted({p["topic"] for p in own})
        if len(topics) < 2:
            raise problems.refuse(
                f"its {len(own)} pairs all have one topic ({topics[0]!r}), and a multiple-choice "
                "item takes its distractors from other topics, so a target needs at least 2"
            ) from None
        if "distractors" not in str(err):
            raise problems.refuse(f"{err} with data.split {_split_text(cfg)}") from None
        most = distractor_capacity(own, split_language(own, cfg.data.split, cfg.seed))
        why = (f"a test item of its {len(own)} pairs ({len(topics)} topics) has only {most} "
               f"responses from other topics, below data.split.n_distractors = "
               f"{cfg.data.split.n_distractors}")
        if most < 1:
            raise problems.refuse(why) from None
        problems.fix(why, f"lower data.split.n_distractors to {most} (every target's items then "
                          f"have {most + 1} choices)", "data.split.n_distractors", most)
        return data_of(problems.cfg).split_target(problems.cfg, lang, own)[:2]


def _split_text(cfg) -> str:
    s = cfg.data.split
    return f"dev {s.dev:g} / train {s.train:g} / test {s.test:g}"


def _k_range(problems: _Problems, n_dev: int) -> tuple[int, int, str] | None:
    """The K range K-Means will search (with the min_cluster_size fix applied if one is needed)."""
    from compass.selection.clustering import k_range

    c = problems.cfg.clustering
    if c.algorithm != "kmeans":
        return None
    if n_dev // c.min_cluster_size < 2:
        why = (f"its E_t has {n_dev} items, fewer than two clusters of clustering.min_cluster_size "
               f"= {c.min_cluster_size}")
        if n_dev < 4:  # min_cluster_size is at least 2
            raise problems.refuse(why)
        problems.fix(why, f"lower clustering.min_cluster_size to at most {n_dev // 2}",
                     "clustering.min_cluster_size", n_dev // 2)
        c = problems.cfg.clustering
    return k_range(n_dev, c.k_min, c.k_max, c.min_cluster_size)


def largest_budget(method: str, pool, cfg, start: int) -> int:
    """The largest budget <= ``start`` that ``method`` selects in full on ``pool``."""
    from dataclasses import replace

    from compass.selection.base import SelectionError
    from compass.selection.selectors import select

    budget = start
    while budget > 0:
        try:
            select(method, pool, replace(cfg, sampling=replace(cfg.sampling, budget=budget)))
            return budget
        except SelectionError as err:
            budget = min(budget - 1, err.available if err.available is not None else budget - 1)
    return 0


def _selections(problems: _Problems, pool) -> tuple[dict, dict]:
    """Every method's selection size at the budget (with the budget fix applied if one is
    needed), and the placement rules of the methods that report them."""
    from compass.selection.base import SelectionError
    from compass.selection.selectors import select

    cfg, lang = problems.cfg, problems.lang
    sizes, placed, short = {}, {}, {}
    for method in cfg.sampling.methods:
        try:
            sel = select(method, pool, cfg)
        except SelectionError as err:
            short[method] = str(err).split(";")[0]
            continue
        sizes[method] = sel.size
        if "placed" in sel.info:
            placed[method] = sel.info["placed"]
    if not short:
        return sizes, placed
    most = min(largest_budget(m, pool, cfg, cfg.sampling.budget - 1) for m in short)
    method, why = next(iter(short.items()))
    why = f"{method} cannot select sampling.budget = {cfg.sampling.budget} ({why})"
    if most < 1:
        raise problems.refuse(why)
    problems.fix(why, f"lower sampling.budget to at most {most} (what every method selects for "
                      f"{lang!r})", "sampling.budget", most)
    return _selections(problems, pool)


def target_report(cfg, lang: str, pairs: list[dict], vectors=None) -> dict:
    """What one target runs with: sizes of its splits, its K range, and (with ``vectors``) its
    eligible items and each method's selection. Raises :class:`Refused` naming what is short and
    the settings that would make it run (or that only another target would)."""
    from compass.data.paper_profile import is_benchmark

    problems = _Problems(cfg, lang)
    own = [p for p in pairs if p["language"] == lang]
    splits, items = _splits(problems, own)
    counts = splits["split"].value_counts()
    report = {"language": lang, "pairs": len(own), "topics": int(splits["topic"].nunique()),
              "dev": int(counts.get("dev", 0)), "train": int(counts.get("train", 0)),
              "test_items": len(items)}
    k = _k_range(problems, report["dev"])
    if k is not None:
        report["k_range"] = f"{k[0]}-{k[1]}" + (" (clipped)" if k[2] else "")
    aux_langs = set(cfg.aux_languages(sorted({p["language"] for p in pairs}), lang))
    aux = sum(1 for p in pairs if p["language"] in aux_langs and not is_benchmark(p["source"]))
    report["aux_pairs"] = aux
    if vectors is None:
        budget = problems.cfg.sampling.budget
        if any(m != "all" for m in cfg.sampling.methods) and budget > aux:
            problems.fix(f"sampling.budget = {budget} is larger than its {aux} auxiliary pairs",
                         f"lower sampling.budget to at most {aux}", "sampling.budget", aux)
        problems.raise_if_any()
        return report
    from compass.selection.clustering import ClusteringError
    from compass.stages.sampling import target_pool

    try:
        pool = target_pool(problems.cfg, lang, pairs, vectors, splits, items)
    except ClusteringError as err:
        raise problems.refuse(str(err).split(";")[0]) from None
    report.update(k=pool.k, eligible=int(pool.aux["eligible"].sum()), candidates=len(pool.aux))
    sizes, placed = _selections(problems, pool)
    problems.raise_if_any()
    from compass.selection_methods import CONTROLS

    budgeted = [n for m, n in sizes.items() if m not in CONTROLS]
    report["selected"] = min(budgeted) if budgeted else 0
    for method, rules in placed.items():
        report[f"{method} own/spill/widened"] = "/".join(str(rules[r])
                                                         for r in ("own", "spill", "widened"))
    return report


def check_targets(cfg, pairs: list[dict], vectors=None, languages=None) -> pd.DataFrame:
    """:func:`target_report` for every target (or ``languages``); raises :class:`Infeasible` with
    one line per refused target, after trying them all."""
    rows, refused = [], []
    for lang in cfg.targets if languages is None else languages:
        try:
            rows.append(target_report(cfg, lang, pairs, vectors))
        except Refused as err:
            refused.append(str(err))
    if refused:
        raise Infeasible("\n".join(refused))
    return pd.DataFrame(rows)
