"""Whether a built book reads offline: every asset a page or stylesheet would load from the
network, or references without containing it."""
from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

# Attributes through which a page makes the browser load something (links such as <a href> are not
# loads: a reader may follow them or not).
_ASSET_ATTRS = {"script": ("src",), "link": ("href",), "img": ("src", "srcset"),
                "source": ("src", "srcset"), "video": ("src", "poster"), "audio": ("src",),
                "track": ("src",), "iframe": ("src",), "embed": ("src",), "object": ("data",),
                "input": ("src",)}
_CSS_URL = re.compile(r"""url\(\s*(['"]?)(.*?)\1\s*\)|@import\s+(['"])(.*?)\3""", re.I)


class _AssetParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.refs: list[tuple[str, str]] = []   # (what, reference)
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in _ASSET_ATTRS.get(tag, ()):
            value = attrs.get(name)
            if not value:
                continue
            if name == "srcset":  # "a.png 1x, b.png 2x"
                self.refs += [(f"<{tag} srcset>", part.split()[0])
                              for part in value.split(",") if part.strip()]
            else:
                self.refs.append((f"<{tag} {name}>", value.strip()))
        if attrs.get("style"):
            self.refs += [("style url()", ref) for ref in _css_refs(attrs["style"])]
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.refs += [("<style> url()", ref) for ref in _css_refs(data)]


def _css_refs(css: str) -> list[str]:
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    return [(m.group(2) if m.group(2) is not None else m.group(4)).strip()
            for m in _CSS_URL.finditer(css)]


def _check_ref(ref: str, source: Path, root: Path) -> str | None:
    """Why ``ref`` (found in ``source``) would not load offline, or None when it would."""
    parts = urlsplit(ref)
    if ref.startswith("//") or parts.scheme in ("http", "https", "ftp", "ws", "wss"):
        return "loads from the network"
    if parts.scheme == "data" or (not parts.path and not parts.netloc):  # data: URI, "#fragment"
        return None
    if parts.scheme:
        return f"unsupported scheme {parts.scheme}:"
    if parts.path.startswith("/"):
        return "absolute path (breaks when the book is served from a sub-path or a file)"
    target = (source.parent / unquote(parts.path)).resolve()
    if not target.is_relative_to(root.resolve()):
        return "points outside the built book"
    if not target.exists():
        return "missing from the built book"
    return None


def offline_problems(html_dir: Path) -> list[str]:
    """Every asset the built book would fetch from the network, or references but does not contain.

    Looks at each page's ``<script src>``, ``<link href>``, ``<img src>`` (and the other loading
    tags), inline ``style``/``<style>`` ``url()`` and every stylesheet's ``url()`` and ``@import``.
    ``data:`` URIs and plain links (``<a href>``) are fine. One line per problem; empty when the
    book reads fully offline.
    """
    root = Path(html_dir)
    problems = []
    for page in sorted(root.rglob("*.html")):
        if page.relative_to(root).parts[0] == "_static":  # theme templates shipped as files
            continue
        parser = _AssetParser()
        parser.feed(page.read_text(encoding="utf-8", errors="replace"))
        for what, ref in parser.refs:
            why = _check_ref(ref, page, root)
            if why:
                problems.append(f"{page.relative_to(root)}: {what} {ref!r} {why}")
    for sheet in sorted(root.rglob("*.css")):
        for ref in _css_refs(sheet.read_text(encoding="utf-8", errors="replace")):
            why = _check_ref(ref, sheet, root)
            if why:
                problems.append(f"{sheet.relative_to(root)}: url() {ref!r} {why}")
    return problems
