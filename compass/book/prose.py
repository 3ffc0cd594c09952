"""The book's prose as Jinja2 templates (book/templates/), filled from values the page modules
compute from the stages' outputs: wording is edited in one text file, the numbers stay computed
in Python."""
from __future__ import annotations

from functools import cache

import jinja2

from compass import paths

TEMPLATES = paths.BOOK / "templates"


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=False,
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              trim_blocks=True, lstrip_blocks=True)


def render(name: str, **values) -> str:
    """Template ``name`` filled with ``values``; a value the template names but is not given is
    an error, not a blank."""
    return _environment().get_template(name).render(**values)


def sentence(name: str, **values) -> str:
    """A template meant to sit inside a line: rendered without its file's final newline."""
    return render(name, **values).removesuffix("\n")


def seeds_sentence(cfg) -> str:
    """What the intervals cover: items, and training seeds where there are several."""
    return sentence("seeds.md", seeds=cfg.train.seeds)
