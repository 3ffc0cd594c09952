"""Rows of local text tables (CSV, TSV, JSON lines, JSON arrays) with the file and line in every
error.

The `datasets` builders report a cut or malformed file as a generic parser error with no file or
line, refuse a UTF-8 byte-order mark in the header and give header-only files no clear message.
These readers use the standard library instead: every cell is read as text (no NA guessing), a
BOM is accepted, and each problem raises :class:`~compass.schemas.SchemaError` naming the file,
the line, what was found and what was expected. Each row comes back with its location
('line 12' for text files, 'element 3' for a JSON array) so callers can name it too.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

from compass.schemas import SchemaError

ENCODING = "utf-8-sig"  # UTF-8, with or without a byte-order mark


def _not_utf8(path: Path, err: UnicodeDecodeError) -> SchemaError:
    return SchemaError(f"{path}: not UTF-8 text (byte {err.start}: {err.reason})")


def iter_records(path: str | Path, delimiter: str = ","):
    """``(line, fields)`` for each non-blank record of a delimited file; ``line`` is where it
    starts.

    Parsing is strict, so a file cut inside a quoted field raises (the lenient default would
    return the partial field as if it were whole).
    """
    path = Path(path)
    try:
        with open(path, encoding=ENCODING, newline="") as handle:
            reader = csv.reader(handle, delimiter=delimiter, strict=True)
            while True:
                start = reader.line_num + 1
                try:
                    fields = next(reader)
                except StopIteration:
                    return
                except csv.Error as err:
                    raise _bad_record(path, start, err) from None
                if fields:
                    yield start, fields
    except UnicodeDecodeError as err:
        raise _not_utf8(path, err) from None


def _bad_record(path: Path, start: int, err: csv.Error) -> SchemaError:
    if "unexpected end of data" in str(err):
        return SchemaError(f"{path} line {start}: the file ends inside a quoted field that opens "
                           f"in the record starting on this line (file cut short?)")
    return SchemaError(f"{path} line {start}: not a valid delimited record ({err})")


def read_table(path: str | Path, delimiter: str = ",", check_header=None):
    """``(header, [(location, row dict), ...])`` of a delimited file with a header row.

    Every record must have exactly as many fields as the header: a shorter one is a truncated
    row, a longer one a stray delimiter, and either would otherwise shift or drop cells silently.
    ``check_header(header)`` runs before any row is read, so a foreign file is named as such
    rather than by its first odd row.
    """
    path = Path(path)
    records = iter_records(path, delimiter)
    first = next(records, None)
    if first is None:
        raise SchemaError(f"{path}: empty file (no header row)")
    header = first[1]
    doubled = sorted({name for name in header if header.count(name) > 1})
    if doubled:
        raise SchemaError(f"{path} line {first[0]}: duplicate column(s) {doubled} in the header")
    if check_header is not None:
        check_header(header)
    rows = [(f"line {line}", _as_row(path, line, header, fields)) for line, fields in records]
    if not rows:
        raise SchemaError(f"{path}: has a header row but no data rows")
    return header, rows


def _as_row(path: Path, line: int, header: list[str], fields: list[str]) -> dict:
    if len(fields) < len(header):
        raise SchemaError(
            f"{path} line {line}: {len(fields)} field(s) where the header has {len(header)}; "
            f"the row ends after column {header[len(fields) - 1]!r} and lacks "
            f"{header[len(fields):]}"
        )
    if len(fields) > len(header):
        raise SchemaError(
            f"{path} line {line}: {len(fields)} fields where the header has {len(header)} "
            f"(an unquoted delimiter?); extra value(s) {fields[len(header):]}"
        )
    return dict(zip(header, fields))


def read_json_rows(path: str | Path):
    """``[(location, row dict), ...]`` from JSON lines or from one JSON array of objects."""
    path = Path(path)
    try:
        text = path.read_text(encoding=ENCODING)
    except UnicodeDecodeError as err:
        raise _not_utf8(path, err) from None
    if text.lstrip().startswith("["):
        rows = _json_array(path, text)
    else:
        # split on '\n' only: str.splitlines would also break at U+2028 and the like inside strings
        rows = [_json_line(path, n, line) for n, line in enumerate(text.split("\n"), 1)
                if line.strip()]
    if not rows:
        raise SchemaError(f"{path}: empty file (no JSON rows)")
    return rows


def _json_line(path: Path, n: int, line: str):
    try:
        value = json.loads(line)
    except json.JSONDecodeError as err:
        raise SchemaError(f"{path} line {n}: not valid JSON ({err.msg} at column {err.colno}); "
                          f"a truncated row?") from None
    return f"line {n}", _json_object(path, f"line {n}", value)


def _json_array(path: Path, text: str):
    try:
        values = json.loads(text)
    except json.JSONDecodeError as err:
        raise SchemaError(f"{path} line {err.lineno}: not valid JSON ({err.msg} at column "
                          f"{err.colno})") from None
    return [(f"element {i}", _json_object(path, f"element {i}", v)) for i, v in enumerate(values)]


def _json_object(path: Path, where: str, value):
    if not isinstance(value, dict):
        raise SchemaError(f"{path} {where}: a JSON {type(value).__name__} where a row object "
                          f"(key -> value) was expected")
    return value
