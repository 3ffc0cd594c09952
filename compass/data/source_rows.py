"""The rows of one language and split of a source, hub or local, each with where it came from.

Every row comes as ``(where, row_index, location, row)`` so that any later refusal can name the
file (or hub split), the row and, for text files, the line.
"""
from __future__ import annotations

from pathlib import Path

from compass.data.locate import is_local, locate
from compass.data.path_claims import check_split
from compass.data.readers import load_file, load_hub, load_saved


def source_rows(source, tag: str, split: str, required, what: str, cache_dir=None,
                revision=None, config: str | None = None, source_split: str | None = None):
    """``[(where, row_index, location, row), ...]`` from a hub name or a local path.

    ``location`` is 'line N' for rows of text files, None where there are no lines to name.
    """
    if not is_local(source):
        rows = load_hub(source, config, split, required, what, cache_dir, revision)
        where = f"{source}[{config or 'default'}/{split}]"
        return [(where, i, None, row) for i, row in enumerate(rows)]
    kind, found = locate(Path(source), tag, split, what, source_split)
    return local_rows(kind, found, split, required, what, cache_dir, source_split)


def local_rows(kind: str, found, split: str, required, what: str, cache_dir=None,
               source_split: str | None = None, check_split_name: bool = True):
    """The rows of what :func:`compass.data.locate.locate` found (a saved dataset or files)."""
    if kind == "saved":
        rows, recorded = load_saved(found, split, required, what)
        if not recorded and check_split_name:
            check_split(found, split, source_split)
        return [(str(found), i, None, row) for i, row in enumerate(rows)]
    out = []
    for path in found:
        rows = load_file(path, required, what, cache_dir)
        out.extend((str(path), i, location, row) for i, (location, row) in enumerate(rows))
    return out
