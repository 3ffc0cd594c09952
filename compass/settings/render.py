"""params.yaml written out in full from the schema and a resolved mapping: every setting in the
schema's order, each with its help (and what it allows) as a comment above it."""
from __future__ import annotations

import textwrap
from dataclasses import MISSING, fields, is_dataclass

import yaml

from compass.settings import schema

WIDTH = 100


def text(raw: dict, header: str = "") -> str:
    """The params.yaml text of ``raw`` (a parsed params mapping; what it lacks is the default)."""
    raw = dict(raw)
    grouped = {}
    for name, group in schema.GROUPED.items():
        grouped[name] = (raw.get(group) or {}).get(name, MISSING)
    lines = [header.rstrip("\n"), ""] if header else []
    opened = set()
    for f in fields(schema.Config):
        if f.name in schema.GROUPED:
            group = schema.GROUPED[f.name]
            if group not in opened:
                opened.add(group)
                lines += ["", f"{group}:"]
            lines += _field(f, grouped[f.name], 1)
            continue
        if _is_section(f):
            lines.append("")
        lines += _field(f, raw.get(f.name, MISSING), 0)
    return "\n".join(lines).lstrip("\n") + "\n"


def _is_section(f) -> bool:
    return f.default_factory is not MISSING and is_dataclass(f.default_factory)


def _field(f, value, depth: int) -> list[str]:
    indent = "  " * depth
    if _is_section(f):
        cls = f.default_factory
        node = value if isinstance(value, dict) else {}
        out = _comment(" ".join((cls.__doc__ or "").split()), indent) + [f"{indent}{f.name}:"]
        for sub in fields(cls):
            out += _field(sub, node.get(sub.name, MISSING), depth + 1)
        return out
    if value is MISSING:
        value = f.default_factory() if f.default_factory is not MISSING else f.default
    note = f.metadata.get("help", "")
    allowed = _allowed(f.metadata).replace(" ", "\0")  # kept on one line by the wrapping
    if allowed:
        note = f"{note}. Allowed: {allowed}" if note else f"Allowed: {allowed}"
    return _comment(note, indent) + [f"{indent}{f.name}: {_scalar(value)}"]


def _comment(note: str, indent: str) -> list[str]:
    if not note:
        return []
    lines = textwrap.wrap(note, WIDTH, initial_indent=f"{indent}# ",
                          subsequent_indent=f"{indent}#   ", break_on_hyphens=False)
    return [line.replace("\0", " ") for line in lines]


def _allowed(meta) -> str:
    words = [repr(word) for word in meta.get("also", ())]
    if meta.get("optional"):
        words.append("null")
    choices = meta.get("choices")
    if choices is not None:
        shown = " | ".join(_scalar(c) for c in choices)
        described = f"each one of {shown}" if meta.get("each") else shown
    elif meta.get("kind") == "int":
        plural = "integers" if meta.get("each") else "an integer"
        described = f"{plural} >= {meta.get('low', 1)}"
    elif meta.get("kind") == "number":
        low, high = meta.get("low", 0.0), meta.get("high", 1.0)
        described = f"({low}, {high})" if meta.get("open") else f"[{low}, {high}]"
    elif meta.get("kind") == "bool":
        described = "true | false"
    else:
        return ""
    return " or ".join([described, *words])


def _scalar(value) -> str:
    """One value in YAML flow style, on one line."""
    if isinstance(value, tuple):
        value = list(value)
    dumped = yaml.safe_dump(value, default_flow_style=True, width=float("inf"),
                            allow_unicode=True)
    return dumped.removesuffix("\n...\n").rstrip("\n")
