"""Which params a process reads: tests/test_pipeline_deps.py checks them against dvc.yaml.

With COMPASS_TRACE_PARAMS=<folder> in the environment (or inside ``tracing(file)``), every param a
process reads after loading is appended, once, to <folder>/<COMPASS_TRACE_STAGE or pid>.txt.
"""
from __future__ import annotations

import os
import sys
from dataclasses import is_dataclass
from pathlib import Path

TRACE: dict = {"file": None, "seen": set(), "paused": 0}
# section class -> function of a field name giving its dotted params key (filled by the schema)
SECTIONS: dict = {}
_NOT_READS = {"__eq__", "__repr__", "__hash__", "__init__", "__setattr__", "__delattr__",
              "__getstate__", "__reduce__", "__reduce_ex__", "__copy__", "__deepcopy__"}


class Params:
    """Base of the config dataclasses: records reads of leaf params while tracing is on."""

    __slots__ = ()

    def __getattribute__(self, name):
        value = object.__getattribute__(self, name)
        if TRACE["file"] is not None and not TRACE["paused"] and not name.startswith("_"):
            _record(type(self), name, value)
        return value


def _record(cls, name: str, value) -> None:
    if is_dataclass(value) or callable(value) or cls not in SECTIONS:
        return
    caller = sys._getframe(2)  # 0: _record, 1: __getattribute__, 2: the reader
    if (caller.f_globals.get("__name__") in ("dataclasses", "copy")
            or caller.f_code.co_name in _NOT_READS):
        return  # replace()/asdict()/repr copy every field: not a read by the stage's logic
    key = SECTIONS[cls](name)
    if key not in TRACE["seen"]:
        TRACE["seen"].add(key)
        with open(TRACE["file"], "a", encoding="utf-8") as handle:
            handle.write(key + "\n")


class paused:
    """Reads inside this block are not recorded (validation reads every param)."""

    def __enter__(self):
        TRACE["paused"] += 1

    def __exit__(self, *exc):
        TRACE["paused"] -= 1


def tracing(file: str | Path | None) -> None:
    """Start (or, with None, stop) recording the params this process reads into ``file``."""
    if file is not None:
        Path(file).parent.mkdir(parents=True, exist_ok=True)
    TRACE["file"] = None if file is None else str(file)
    TRACE["seen"] = set()


def trace_from_environment() -> None:
    """Start tracing when COMPASS_TRACE_PARAMS names a folder (run once, when compass.config is
    imported): each process writes the params it reads to a file of its own."""
    folder = os.environ.get("COMPASS_TRACE_PARAMS")
    if folder:
        tracing(Path(folder) / f"{os.environ.get('COMPASS_TRACE_STAGE') or os.getpid()}.txt")
