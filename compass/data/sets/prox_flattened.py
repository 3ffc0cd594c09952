"""MMLU-ProX's flattened two-column TSV: question and options in one cell, the answer letter.

The flattening writes a line break as a literal backslash-n and leaves LaTeX's backslashes
unescaped, so decoding it back means telling a break from a LaTeX word such as ``\\nu``.
"""
from __future__ import annotations

import re
from pathlib import Path

from compass.data.errors import OptionMarkerError
from compass.data.mc_items import LETTERS, answer_index
from compass.data.path_claims import check_language
from compass.data.textrows import iter_records
from compass.languages import normalize
from compass.schemas import SchemaError

# the flattened TSV's option markers: a literal backslash-n, the letter, '. '
_FLAT_MARK = "\\n{letter}. "
# LaTeX control words (LaTeX, amsmath, amssymb) that begin with 'n'. The flattened TSV writes a
# line break as backslash-n and leaves backslashes unescaped, so '\nu' is either the Greek
# letter or a break before 'u': it is read as LaTeX exactly when the letters after the backslash
# form one of these words ('\nabla', '\neq'); '\nWhich', '\ncone', '\ny^{...}' are breaks.
_LATEX_N_WORDS = frozenset("""
    nabla natural ncong ne nearrow neg negthickspace neq newcommand newline nexists ngeq ngeqslant
    ngtr ni nleftarrow nLeftarrow nleftrightarrow nLeftrightarrow nleq nleqslant nless nmid
    nobreak noindent nolimits nonumber normalsize not notag notin nparallel nprec npreceq
    nrightarrow nRightarrow nshortmid nsim nsubseteq nsucc nsucceq nsupseteq ntriangleleft
    ntriangleright nu nvdash nvDash nVdash nwarrow
""".split())
_BACKSLASH_N = re.compile(r"\\(n[A-Za-z]*)")
# Of those, the ones that also read as a break before a common word: '\ne' is LaTeX's 'not
# equal' or a new line starting with Italian 'e'; '\ni' is LaTeX's 'contains' or a new line
# starting with 'i' or a list item 'i)'. They are LaTeX only inside math ($...$, $$...$$,
# \(...\), \[...\]), where they are operators; in running text they are breaks.
_PROSE_N_WORDS = frozenset({"ne", "ni"})
_MATH_DELIMITERS = re.compile(r"\\\$|\$\$|\$|\\[()\[\]]")
_MATH_CLOSE = {"$": "$", "$$": "$$", "\\(": "\\)", "\\[": "\\]"}
# any option marker of the flattened TSV: a literal backslash-n, a capital letter, '. '
_ANY_FLAT_MARK = re.compile(r"\\n([A-Z])\. ")


def parse_flattened_prox_tsv(path: str | Path, lang: str) -> list[dict]:
    """MC items from the flattened MMLU-ProX TSV (no header; question+options, answer letter).

    Column 1 is the question followed by ``\\nA. ...\\nB. ...`` (up to J) where ``\\n`` is a
    literal backslash-n; column 2 is the answer letter. Fields holding quotes are CSV-quoted. The
    literal ``\\n`` is the flattening's escape for a newline and is decoded back to one (this
    reproduces the original questions: the English rows equal the Arrow copy's), except where
    it begins a LaTeX control word such as ``\\nu``, ``\\neq`` or ``\\nabla`` (see
    :data:`_LATEX_N_WORDS`; ``\\ne`` and ``\\ni`` count as LaTeX only inside math, see
    :data:`_PROSE_N_WORDS`); other backslash sequences are LaTeX and are kept. Option letters
    must run A, B, C, ... without a gap, at most to J (:class:`OptionMarkerError`).
    The layout has no ids, subjects or categories: ids are '<file stem>/<row>' (the row order is
    the original's, so rows can be zipped with it) and topic / category are ''.
    """
    path = Path(path)
    tag = normalize(lang)
    if not path.is_file():
        raise FileNotFoundError(f"flattened MMLU-ProX TSV {str(path)!r} does not exist")
    check_language(path, tag)
    items = []
    for i, (location, row) in enumerate(iter_records(path, "\t")):
        at = f"{path} row {i}"
        if len(row) != 2:
            raise SchemaError(f"{at}: expected 2 tab-separated columns (question+options, answer "
                              f"letter), got {len(row)}; is this the flattened MMLU-ProX layout?")
        question, choices = _split_flattened(row[0], at, location)
        answer = answer_index(row[1], len(choices), at)
        items.append({
            "id": f"{path.stem}/{i}",
            "language": tag,
            "topic": "",
            "category": "",
            "question": question,
            "choices": choices,
            "answer": answer,
        })
    if not items:
        raise SchemaError(f"{path}: no rows")
    return items


def _split_flattened(text: str, at: str, line: int | None = None) -> tuple[str, list[str]]:
    """Split 'question\\nA. a\\nB. b...' at its option markers A, B, C, ... (at most J).

    Every marker after the first 'A' must be the next letter: a skipped letter (an option
    removed) or one past J (an 11th option) is refused, not merged into the option before it.
    Rows with fewer than 10 options are normal (MMLU-ProX drops its N/A options and letters the
    rest A, B, ... without gaps); markers before 'A' belong to the question (a list 'I. ... II.').
    """
    start = text.find(_FLAT_MARK.format(letter="A"))
    if start < 0:
        raise SchemaError(f"{at}: no option marker '\\nA. ' in column 1")
    marks = list(_ANY_FLAT_MARK.finditer(text, start))
    letters = [m.group(1) for m in marks]
    for k, letter in enumerate(letters):
        if k >= len(LETTERS) or letter != LETTERS[k]:
            raise OptionMarkerError(_marker_problem(at, line, letters, k))
    bounds = [m.start() for m in marks] + [len(text)]
    mark = len(_FLAT_MARK.format(letter="A"))
    choices = [_unescape(text[a + mark:b]) for a, b in zip(bounds, bounds[1:])]
    question = _unescape(text[:start])
    if not question or any(not c for c in choices):
        raise SchemaError(f"{at}: empty question or option in column 1")
    return question, choices


def _marker_problem(at: str, line: int | None, letters: list[str], k: int) -> str:
    """The message for option marker ``k`` out of sequence: which letters, what was expected."""
    where = f"{at}, line {line}" if line else at
    run = ", ".join(letters)
    if k >= len(LETTERS):
        return (f"{where}: option letters run {run}: option {k + 1} ({letters[k]!r}) is past J; "
                f"expected at most 10 options, lettered A to J")
    return (f"{where}: option letters run {run}: after {letters[k - 1]!r} comes {letters[k]!r}, "
            f"expected {LETTERS[k]!r} (consecutive letters from A; an option was removed or "
            f"its marker damaged)")


def _unescape(text: str) -> str:
    """Decode the flattening's backslash-n line breaks; keep LaTeX words that begin with '\\n'."""
    math = _math_spans(text)

    def decode(match: re.Match) -> str:
        word = match.group(1)
        if word in _LATEX_N_WORDS and (word not in _PROSE_N_WORDS
                                       or _inside(math, match.start())):
            return match.group(0)
        return "\n" + word[1:]
    return _BACKSLASH_N.sub(decode, text).strip()


def _math_spans(text: str) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` of the math in ``text``: $...$, $$...$$, \\(...\\), \\[...\\].

    A single '$' follows Pandoc's rule, so prices are not math: it opens only before a
    non-space and closes only after a non-space and not before a digit ('$5 and $x$': the
    math is 'x'). An escaped dollar is text; an opening never closed is no math.
    """
    spans, opened = [], None
    for match in _MATH_DELIMITERS.finditer(text):
        token = match.group(0)
        if token == "\\$":
            continue
        if opened is not None and token == opened[1] and _may_close(text, match):
            spans.append((opened[0], match.start()))
            opened = None
        elif token in _MATH_CLOSE and (opened is None or opened[1] == "$") \
                and _may_open(text, match):  # a '$' left open may be a price: open anew
            opened = (match.end(), _MATH_CLOSE[token])
    return spans


def _may_open(text: str, match: re.Match) -> bool:
    after = text[match.end():match.end() + 1]
    return match.group(0) != "$" or (after != "" and not after.isspace())


def _may_close(text: str, match: re.Match) -> bool:
    before = text[match.start() - 1:match.start()]
    after = text[match.end():match.end() + 1]
    return match.group(0) != "$" or (before != "" and not before.isspace()
                                     and not after.isdigit())


def _inside(spans: list[tuple[int, int]], position: int) -> bool:
    return any(start <= position < end for start, end in spans)
