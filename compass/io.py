"""Atomic writes and checked reads: a crash never leaves a half-written output behind."""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pandas as pd

from compass.schemas import SchemaError, check_record


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}",
                               dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path, text: str) -> None:
    """Write UTF-8 text atomically: a reader never sees a half-written file."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


# Floats in tracked outputs are written to this many significant digits. DVC hashes bytes: the
# 16th digit of a float depends on the CPU's SIMD kernels, so full precision made equal results on
# two machines look like changed ones (and rerun everything downstream). Six digits is far below
# any difference the analysis reads and far above the noise of the last bits.
SIGNIFICANT_DIGITS = 6


def meaningful(value: float, digits: int = SIGNIFICANT_DIGITS) -> float:
    """``value`` rounded to ``digits`` significant digits (non-finite values unchanged)."""
    value = float(value)
    return float(f"{value:.{digits}g}") if np.isfinite(value) else value


def _rounded(obj, digits: int):
    if isinstance(obj, (float, np.floating)):
        return meaningful(obj, digits)
    if isinstance(obj, dict):
        return {k: _rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_rounded(v, digits) for v in obj]
    if isinstance(obj, np.ndarray):
        return _rounded(obj.tolist(), digits)
    return obj


def write_json(path, obj, digits: int | None = SIGNIFICANT_DIGITS) -> None:
    """JSON with sorted keys and floats to ``digits`` significant digits (None: as they are)."""
    if digits is not None:
        obj = _rounded(obj, digits)
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=True,
                                default=_plain) + "\n")


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def read_json(path):
    """Parse a JSON file; a missing file says which stage writes it, a corrupt one raises
    SchemaError."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; run the stage that writes it (dvc repro)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise SchemaError(f"{path} is not valid JSON (corrupt file?): {err}") from None


def write_jsonl(path, records: Iterable[dict]) -> None:
    """Write one JSON object per line (UTF-8, non-ASCII kept), atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def read_jsonl(path, required: tuple[str, ...] = ()) -> list[dict]:
    """The records of a JSON-lines file (blank lines skipped), each checked for the ``required``
    fields; errors name the file and line."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; run the stage that writes it (dvc repro)")
    records = []
    with open(path, encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise SchemaError(f"{path}:{lineno} is not valid JSON (corrupt file?): "
                                  f"{err}") from None
            records.append(check_record(record, required, f"{path}:{lineno}"))
    return records


def write_csv(path, frame: pd.DataFrame, digits: int | None = SIGNIFICANT_DIGITS) -> None:
    """CSV without the index; float columns to ``digits`` significant digits (None: as they are)."""
    if digits is not None:
        floats = frame.select_dtypes(include="floating").columns
        if len(floats):
            frame = frame.copy()
            for column in floats:
                frame[column] = [meaningful(v, digits) for v in frame[column]]
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def read_csv(path, required: tuple[str, ...] = (), numeric: bool = False) -> pd.DataFrame:
    """Read a CSV; text files keep empty strings as text, ``numeric`` ones read blanks as NaN."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; run the stage that writes it (dvc repro)")
    frame = pd.read_csv(path, keep_default_na=numeric)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise SchemaError(f"{path} lacks column(s) {missing}; has {list(frame.columns)}")
    return frame


def write_npz(path, **arrays) -> None:
    """Write arrays to an uncompressed .npz, atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)


def read_npz(path) -> dict[str, np.ndarray]:
    """The arrays of an .npz file, loaded eagerly and without pickle (a corrupt file raises
    SchemaError)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; run the stage that writes it (dvc repro)")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (ValueError, OSError) as err:
        raise SchemaError(f"{path} is not a readable .npz file (corrupt?): {err}") from None
