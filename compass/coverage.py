"""Which benchmarks and data cover a target language in the paper protocol.

The paper's benchmarks cover different languages: Global-MMLU full 42 (its dev split is E_t),
Global-MMLU-Lite 15, MMLU-ProX-Lite 29, OneRuler 26; Aya 65. The sets are read from what this
installation holds (lm-eval's task folders, the OneRuler templates the package carries), not from a
list kept here, so a newer lm-eval with more languages is covered without an edit.

What a gap means (the check and the book say so, and ``make cost`` counts only what runs):

- no Global-MMLU (full) dev split: no E_t, so nothing to select for; the target is refused;
- no Global-MMLU-Lite test with ``data.test_set: lite``: refused, with ``data.test_set: full`` as
  the remedy (mixing Lite and full test sets across languages would make the tables incomparable);
- no Aya rows: no existing training data in the protocol; refused once the pool shows it;
- no MMLU-ProX-Lite or no OneRuler templates: the target runs without that benchmark.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

COLUMNS = ("global_mmlu_full", "global_mmlu_lite", "mmlu_prox_lite", "oneruler", "aya_rows")


def _lm_eval_tasks() -> Path:
    """lm-eval's task folder, found without importing lm-eval (the params check stays light)."""
    import importlib.util

    spec = importlib.util.find_spec("lm_eval")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the paper profile needs lm-eval (pip install lm-eval==0.4.13)")
    return Path(list(spec.submodule_search_locations)[0]) / "tasks"


def _folders_with(root: Path, pattern: str) -> frozenset[str]:
    """Names of the sub-folders of ``root`` that hold a file matching ``pattern`` ({lang})."""
    if not root.is_dir():
        return frozenset()
    return frozenset(d.name for d in root.iterdir()
                     if d.is_dir() and (d / pattern.format(lang=d.name)).is_file())


@lru_cache(maxsize=None)
def global_mmlu_full() -> frozenset[str]:
    """Languages of lm-eval's ``global_mmlu_full_<lang>`` tasks (Global-MMLU: dev = E_t, test)."""
    return _folders_with(_lm_eval_tasks() / "global_mmlu" / "full", "_global_mmlu_full_{lang}.yaml")


@lru_cache(maxsize=None)
def global_mmlu_lite() -> frozenset[str]:
    """Languages of lm-eval's ``global_mmlu_<lang>`` tasks (Global-MMLU-Lite test)."""
    return _folders_with(_lm_eval_tasks() / "global_mmlu" / "default", "_global_mmlu_{lang}.yaml")


@lru_cache(maxsize=None)
def mmlu_prox_lite() -> frozenset[str]:
    """Languages of lm-eval's ``mmlu_prox_lite_<lang>`` tasks."""
    return _folders_with(_lm_eval_tasks() / "mmlu_prox", "_mmlu_prox_lite_{lang}.yaml")


@lru_cache(maxsize=None)
def oneruler() -> frozenset[str]:
    """Languages the carried OneRuler templates cover (compass/evaluation/oneruler/prompt)."""
    from compass import paths

    return _folders_with(paths.ONERULER / "prompt", "niah.txt")


def test_set_languages(test_set: str) -> frozenset[str]:
    """The target languages the configured Global-MMLU test set (``lite`` or ``full``) covers."""
    return global_mmlu_lite() if test_set == "lite" else global_mmlu_full()


def table(cfg, aya_rows: dict[str, int] | None = None) -> pd.DataFrame:
    """One row per target of ``cfg``: whether each benchmark covers it, its Aya rows (None:
    unknown until the pool is built), and ``runs``: the evaluations it gets with these params
    (the covered ones that evaluation.prox.languages and long_context.languages ask for)."""
    test_set = cfg.data.test_set
    prox, long_context = set(cfg.prox_languages()), set(cfg.long_context_scored())
    rows = []
    for lang in cfg.targets:
        row = {"language": lang, "global_mmlu_full": lang in global_mmlu_full(),
               "global_mmlu_lite": lang in global_mmlu_lite(),
               "mmlu_prox_lite": lang in mmlu_prox_lite(), "oneruler": lang in oneruler(),
               "aya_rows": None if aya_rows is None else int(aya_rows.get(lang, 0))}
        runs = []
        if row["global_mmlu_full"] and lang in test_set_languages(test_set):
            runs.append(f"Global-MMLU {'Lite' if test_set == 'lite' else 'full'}")
        runs += [name for name, asked in (("MMLU-ProX-Lite", prox), ("OneRuler", long_context))
                 if lang in asked]
        row["runs"] = ", ".join(runs)
        rows.append(row)
    return pd.DataFrame(rows, columns=["language", *COLUMNS, "runs"])


def refusals(targets, test_set: str, aya_rows: dict[str, int] | None = None) -> list[str]:
    """One line per target the paper protocol cannot run, with the remedy."""
    out = []
    full, lite = sorted(global_mmlu_full()), global_mmlu_lite()
    for lang in targets:
        if lang not in global_mmlu_full():
            out.append(f"target {lang!r}: Global-MMLU has no {lang!r} (its dev split is E_t); "
                       f"remove it from languages.targets (Global-MMLU covers {', '.join(full)})")
        elif test_set == "lite" and lang not in lite:
            out.append(f"target {lang!r}: Global-MMLU-Lite has no {lang!r} (data.test_set = lite "
                       f"covers {', '.join(sorted(lite))}); set data.test_set: full, or remove it "
                       "from languages.targets")
        elif aya_rows is not None and not aya_rows.get(lang):
            out.append(f"target {lang!r}: data.aux_dataset has no {lang!r} rows, which the paper "
                       "protocol uses as the existing training data; remove it from "
                       "languages.targets")
    return out


def describe(frame: pd.DataFrame) -> pd.DataFrame:
    """:func:`table` for people: yes / no, and Aya rows 'after the pool stage' while unknown."""
    shown = frame.copy()
    for column in COLUMNS[:-1]:
        shown[column] = shown[column].map({True: "yes", False: "no"})
    shown["aya_rows"] = shown["aya_rows"].map(lambda n: "after the pool stage"
                                              if n is None or n != n else f"{int(n):,}")
    return shown
