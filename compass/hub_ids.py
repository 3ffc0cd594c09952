"""Hub ids as params write them: ``org/name`` or ``org/name@revision``, and organisations that
were renamed.

A revision pinned in the id travels wherever the id does (params, the preflight, the book's build
page), so a rerun reads the same rows and weights: Global-MMLU-Lite, for one, has been uploaded
again many times. Cohere's research organisation is now ``CohereLabs``; the hub still answers the
old ``CohereForAI`` ids, and a local cache prepared under either name serves both.
"""
from __future__ import annotations

import re
from pathlib import Path

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
REVISION = re.compile(r"^[\w./-]+$")  # a commit, tag or branch
RENAMED_ORGS = {"CohereForAI": "CohereLabs"}  # old -> current


class HubIdError(ValueError):
    """A hub id with a malformed ``@revision``."""


def split(source: str) -> tuple[str, str | None]:
    """``(id, revision)`` of ``org/name@revision`` (revision None when not pinned). A local path
    is returned whole: only a hub id carries a revision."""
    source = str(source)
    if "@" not in source or Path(source).expanduser().exists():
        return source, None
    repo_id, revision = source.rsplit("@", 1)
    if not HUB_ID.match(repo_id):
        return source, None
    if not REVISION.match(revision):
        raise HubIdError(f"{source!r}: the revision after '@' must be a commit, tag or branch "
                         f"(letters, digits, '.', '_', '-', '/'), got {revision!r}")
    return repo_id, revision


def aliases(repo_id: str) -> tuple[str, ...]:
    """``repo_id`` and the same repository under its organisation's other name, current first."""
    if "/" not in repo_id:
        return (repo_id,)
    org, name = repo_id.split("/", 1)
    current = RENAMED_ORGS.get(org, org)
    old = [o for o, new in RENAMED_ORGS.items() if new == current and o != current]
    return tuple(dict.fromkeys([f"{current}/{name}", *(f"{o}/{name}" for o in old)]))
