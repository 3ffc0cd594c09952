"""The Jupyter Book of a run: its pages made from the stages' outputs, assembled, built to HTML
and checked to read offline.

The static chapters live in the top-level folder book/ (Jupyter Book sources, not this package);
:func:`assemble` copies them into book/_src with the generated tables (computed here from the
metrics files the stages wrote, their prose filled into templates from book/templates/) and the
executed notebooks, and writes the table of contents for the configured target languages.
:func:`build` runs Jupyter Book 1.x and refuses a book that would load anything from the internet
or reference a file it does not contain (:func:`offline_problems`).

One job per module: ``runs`` and ``cells`` (what was evaluated; table cells), ``prose`` (the
templates), one module per generated page (``run_facts``, ``headline``, ``data_tables``,
``likelihood``, ``accuracy``, ``long_context``, ``claims``, ``trust``, ``continual``), the paper
protocol's pages (``paper_rule``, ``paper_runs``, ``paper_claims``, ``paper_tables``,
``paper_pages``), ``notebook_pages``, ``assembly``, ``offline_check`` and ``html_build``.
"""
from __future__ import annotations

from compass import paths
from compass.book.assembly import STATIC, assemble, toc
from compass.book.continual import calibration_table
from compass.book.html_build import build
from compass.book.notebook_pages import copy_titled, page_title
from compass.book.offline_check import offline_problems
from compass.book.run_facts import built_on_fixtures, data_sources_line, training_line

SRC = paths.BOOK / "_src"  # the assembled sources; tests point it at a temporary folder

__all__ = ["SRC", "STATIC", "assemble", "build", "built_on_fixtures", "calibration_table",
           "copy_titled", "data_sources_line", "offline_problems", "page_title", "paths", "toc",
           "training_line"]
