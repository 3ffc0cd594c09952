"""Executed notebooks as book pages: titled by the language (and model) they ran on,
without progress-bar widgets."""
from __future__ import annotations

from pathlib import Path

from compass.languages import display_name


def page_title(heading: str, stem: str, cfg) -> str:
    """A notebook page's title with what it ran on: every language runs the same notebook, and
    the sidebar would otherwise list identical titles ("Training the adapters of one language"
    three times). ``stem`` is the executed copy's name, e.g. 03_evaluate_fa or 04_ecda."""
    lang = next((t for t in cfg.targets if stem.endswith(f"_{t}")), None)
    if lang is None and stem.startswith("04_ecda"):
        lang = cfg.ecda.language
    if lang is None:
        return heading
    name = display_name(lang)
    model = next((m for m in cfg.train.models if f"_{m}_" in stem), None)
    if model is not None and len(cfg.train.models) > 1:
        name = f"{name} ({model})"
    if "one language" in heading:
        return heading.replace("one language", name)
    head, colon, rest = heading.partition(":")
    return f"{head} for {name}:{rest}" if colon else f"{heading}: {name}"


WIDGET = "application/vnd.jupyter.widget-view+json"


def copy_titled(source: Path, target: Path, cfg) -> None:
    """Copy an executed notebook into the book, its first heading naming the language, without
    progress-bar widgets (live feedback for whoever runs it; in the book only their frozen text,
    e.g. "Loading weights: 0%", would show)."""
    import json

    notebook = json.loads(source.read_text(encoding="utf-8"))
    for cell in notebook.get("cells", []):
        if "outputs" in cell:
            cell["outputs"] = [o for o in cell["outputs"] if WIDGET not in o.get("data", {})]
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") != "markdown":
            continue
        text = "".join(cell.get("source", []))
        if text.startswith("# "):
            first, _, rest = text.partition("\n")
            cell["source"] = "# " + page_title(first[2:].strip(), source.stem, cfg) + "\n" + rest
        break
    target.write_text(json.dumps(notebook, ensure_ascii=False, indent=1), encoding="utf-8")
