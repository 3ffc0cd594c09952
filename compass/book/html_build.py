"""Build the HTML with Jupyter Book 1.x into a staging folder and replace book/_build/html
only with a book that built and reads offline."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from compass import paths
from compass.book.assembly import assemble
from compass.book.offline_check import offline_problems


def build(cfg) -> Path:
    """Assemble book/_src and build HTML into book/_build/html (replaced only on success)."""
    src = assemble(cfg)
    staging = paths.BOOK / "_staging"
    if staging.exists():
        shutil.rmtree(staging)
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build",
           str(src), "--path-output", str(staging)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"jupyter-book build failed:\n{done.stdout[-4000:]}\n"
                           f"{done.stderr[-4000:]}")
    problems = offline_problems(staging / "_build" / "html")
    if problems:
        raise RuntimeError("the built book would not read offline (see book/_config.yml):\n"
                           + "\n".join(problems[:40]))
    html = paths.BOOK_BUILD / "html"
    if html.exists():
        shutil.rmtree(html)
    html.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(staging / "_build" / "html"), str(html))
    shutil.rmtree(staging)
    return html / "index.html"
