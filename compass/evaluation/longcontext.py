"""OneRuler-style long-context tests: needle in a haystack and common-word extraction, 26 languages.

OneRuler (Kim et al., 2025; github.com/mungg/OneRuler, MIT) extends NVIDIA's RULER to 26
languages with translated templates. This module rebuilds its prompts from the templates, nouns
and books carried in ``oneruler/`` (see ``oneruler/NOTICE.md``), at any length measured by the
evaluated model's tokenizer:

- ``make_samples`` builds prompts deterministically from a seed;
- ``score`` scores one answer, by OneRuler's rules (``eval/evaluate.py``) or the ``answer_tag``
  variant;
- ``generate`` / ``evaluate`` decode greedily and score; ``summary`` averages per task and length.

Tasks (``synthetic.yaml`` of OneRuler; needles are "the special magic number for <noun> is:
<7-digit number>", keys are the language's translated nouns):

- ``niah_single``: one needle, asked for its key.
- ``niah_multikey``: four needles with different keys, asked for one of them (OneRuler's
  ``num_needle_k: 4, num_needle_q: 1``: the other three are distractors).
- ``niah_multiquery``: two needles, asked for both keys at once (``question_multi_numbers``; gold =
  both values). Not in the default task list.
- ``niah_none``: four needles, asked for a key that has no needle; gold = the language's "none".
- ``cwe``: a numbered list of the language's nouns in which 10 words are frequent; asked for the
  10 most common. Frequencies as RULER's cwe / OneRuler's ``cwe_easy`` (30 vs 3 repeats, which
  OneRuler scales to 10 vs 1 up to 8,000 tokens); see ``_cwe_sample`` for fitting short lengths.

Haystack (NIAH tasks): the language's OneRuler book read in order from its start, as OneRuler's
``synthetic/niah.py`` (``type_haystack: book``): whitespace collapsed, split into sentences, the
first n sentences that fit; when the context needs more than the book holds, the book restarts
from its beginning (OneRuler's ``expand_haystack``) and the sample records its ``repetition``
(haystack text used / the book's length: 0.3 is the first 30% of the book, 2.5 the book two and
a half times). The book is not in any adapter's training data (pairs and selected multilingual
data). ``books="bundled"`` (the default) reads the excerpts the package carries (the first ~16 KB
of each book, enough for contexts of a few thousand tokens); a folder of OneRuler's full books
(``<folder>/<lang>/*.txt`` as in its repository, or ``<folder>/<lang>.txt``) serves long
contexts.

Prompt assembly follows OneRuler's ``synthetic/niah.py``: ``task`` (with the context) + question +
``please_list`` + ``if_no_numbers`` + ``answer_prefix`` + ``answer_numbers``, the pieces joined by
one space (none for zh / ja); needles are the ``needle_numbers`` sentence with a period added
(。 for zh / ja, ۔ for fa) and go between haystack sentences at depths drawn from 40 evenly
spaced percentages. Differences: ``length`` counts the whole prompt (OneRuler counts only the
haystack sentences), so at short lengths one long sentence can leave the prompt up to that
sentence short of ``length`` (``context_tokens`` says how long it is); sentences are split by
punctuation (OneRuler's fallback where stanza has no model, widened to the stops of hi, fa, zh,
ja), not by stanza; and empty haystack segments (a needle at depth 0 or two needles at one depth)
add no extra space.

Scoring (``score(..., scoring=...)``):

- ``"oneruler"`` (default), OneRuler's ``eval/evaluate.py`` on the whole answer. NIAH: the
  distinct numbers of two or more digits equal the gold values (as a set, and as many), and the
  answer fails if it contains a "none" word as a case-sensitive substring (the word as written,
  or lower-cased without spaces). niah_none: a "none" word occurs as a substring of the answer
  lower-cased without spaces or ZWNJ (so "NONE" and "nonetheless" pass; numbers beside it are
  not checked: OneRuler has that check commented out). cwe: every gold word is a substring of the
  lower-cased answer.
- ``"answer_tag"``: the text inside <Answer>...</Answer> (or the language's tag) first, when
  present (OneRuler does this for DeepSeek models only); "none" matched case-insensitively as a
  whole word (substring in zh, ja, ko) in NIAH and niah_none alike; niah_none also fails on any
  number of two or more digits; cwe on NFKC, case-folded text.
"""
from __future__ import annotations

import json
import random
import re
import unicodedata
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path

import pandas as pd

from compass import paths

DATA = paths.ONERULER
BOOKS = DATA / "books"  # the first ~16 KB of OneRuler's books, <lang>.txt (oneruler/NOTICE.md)
BUNDLED = "bundled"  # ``books`` value: read BOOKS
SCORINGS = ("oneruler", "answer_tag")
LANGUAGES = ("cs", "da", "de", "en", "es", "fa", "fi", "fr", "hi", "hu", "it", "ja", "ko", "nl",
             "no", "pl", "pt", "ru", "sr", "st", "sv", "sw", "ta", "uk", "vi", "zh")
# task -> (needles, queried keys, whether a queried key has a needle): OneRuler's synthetic.yaml
NIAH_TASKS = {"niah_single": (1, 1, True), "niah_multikey": (4, 1, True),
              "niah_multiquery": (2, 2, True), "niah_none": (4, 1, False)}
TASKS = (*NIAH_TASKS, "cwe")
DEFAULT_TASKS = ("niah_single", "niah_multikey", "niah_none", "cwe")
DEPTHS = tuple(round(100 * i / 39) for i in range(40))  # np.linspace(0, 100, 40), rounded
VALUE_DIGITS = 7
CWE_COMMON = 10
# Extra accepted spellings of "none", from OneRuler's eval/evaluate.py none_dict (MIT); the
# template's own "none" is always accepted (together they are none_dict, for every language).
NONE_WORDS = {"ja": ("なし", "数字はありません"), "uk": ("немає", "Нема"), "cs": ("žádné", "žádná")}
NO_SPACE = ("zh", "ja")  # pieces and sentences joined without spaces
# scoring="answer_tag": "none" matched as a substring, not a word (no spaces / attached
# particles); OneRuler's rules match it as a substring in every language
SUBSTRING_NONE = ("zh", "ja", "ko")


def _check_lang(lang: str) -> None:
    if lang not in LANGUAGES:
        raise ValueError(f"unknown OneRuler language {lang!r}; allowed: {', '.join(LANGUAGES)}")


@lru_cache(maxsize=None)
def niah_template(lang: str) -> dict:
    """The language's ``prompt/<lang>/niah.txt``: a dict of template pieces (task, needle_numbers,
    question_single_numbers, ..., none)."""
    _check_lang(lang)
    return json.loads((DATA / "prompt" / lang / "niah.txt").read_text(encoding="utf-8"))


@lru_cache(maxsize=None)
def cwe_template(lang: str) -> str:
    """The language's ``prompt/<lang>/cwe.txt`` with one ``{context}`` slot. Upstream's vi file
    starts with a stray draft line (literal ``\\n{context}\\nCâu hỏi: ...``) that would print
    the list twice; that line is cut at the literal ``\\n``."""
    _check_lang(lang)
    text = (DATA / "prompt" / lang / "cwe.txt").read_text(encoding="utf-8")
    first, sep, rest = text.partition("\n")
    if "\\n{context}" in first:
        text = first.split("\\n{context}")[0] + sep + rest
    if text.count("{context}") != 1:
        raise ValueError(f"prompt/{lang}/cwe.txt must have one {{context}} slot")
    return text


@lru_cache(maxsize=None)
def nouns(lang: str) -> tuple[str, ...]:
    """The language's translations of OneRuler's 100 nouns, stripped, duplicates dropped."""
    _check_lang(lang)
    frame = pd.read_csv(DATA / "vocab" / "100_noun_list_translated.tsv", sep="\t")
    return tuple(dict.fromkeys(str(w).strip() for w in frame[lang].dropna() if str(w).strip()))


def none_words(lang: str) -> tuple[str, ...]:
    """The answers that mean "none" in ``lang``: the template's word and OneRuler's variants."""
    return tuple(dict.fromkeys((niah_template(lang)["none"], *NONE_WORDS.get(lang, ()))))


def _join(lang: str) -> str:
    return "" if lang in NO_SPACE else " "


def _add_period(sentence: str, lang: str) -> str:
    sentence = sentence.rstrip()
    return sentence + {"zh": "。", "ja": "。", "fa": "۔"}.get(lang, ".")


def needle(lang: str, key: str, value: str) -> str:
    """One needle sentence, as OneRuler writes it (``needle_numbers`` + the language's period)."""
    return _add_period(niah_template(lang)["needle_numbers"].format(key=key, value=value), lang)


def niah_prompt_template(lang: str, queries: int = 1) -> str:
    """The NIAH prompt with ``{context}``, ``{query1}`` (and ``{query2}`` when ``queries`` is 2)."""
    t, sep = niah_template(lang), _join(lang)
    question = t["question_single_numbers" if queries == 1 else "question_multi_numbers"]
    return (t["task"] + question + sep + t["please_list"] + sep + t["if_no_numbers"]
            + t["answer_prefix"] + sep + t["answer_numbers"])


def niah_prompt(lang: str, sentences: Sequence[str], needles: Sequence[tuple[str, str, float]],
                queries: Sequence[str]) -> str:
    """A NIAH prompt as OneRuler assembles it: ``needles`` ((key, value, depth fraction), in
    order of increasing depth) go between ``sentences`` at index int(len(sentences) * depth), the
    pieces joined by a space (nothing for zh / ja), into ``niah_prompt_template`` asking for
    ``queries`` (one or two keys)."""
    join, parts, last = _join(lang), [], 0
    for key, value, depth in needles:
        pos = int(len(sentences) * depth)
        parts += [join.join(sentences[last:pos]), needle(lang, key, value)]
        last = pos
    parts.append(join.join(sentences[last:]))
    query_kw = {f"query{i + 1}": q for i, q in enumerate(queries)}
    return niah_prompt_template(lang, len(queries)).format(
        context=join.join(p for p in parts if p), **query_kw)


_SENTENCE_END = re.compile(r"(?<=[.!?؟۔।])\s+|(?<=[。！？])")


def bundled_books() -> tuple[str, ...]:
    """The languages whose book excerpt the package carries."""
    return tuple(sorted(p.stem for p in BOOKS.glob("*.txt")))


def book_files(lang: str, books: str | Path = BUNDLED) -> list[Path]:
    """The file(s) of ``lang``'s OneRuler book: the carried excerpt (``books="bundled"``), or from
    a folder of full books laid out as OneRuler's ``data/books`` (``<folder>/<lang>/*.txt``, in
    name order, which OneRuler concatenates) or as ``<folder>/<lang>.txt``.

    Raises FileNotFoundError naming the language and the folder when there is no book."""
    _check_lang(lang)
    if str(books) == BUNDLED:
        path = BOOKS / f"{lang}.txt"
        if not path.is_file():
            raise FileNotFoundError(
                f"no bundled OneRuler book excerpt for {lang!r} in {BOOKS} (bundled: "
                f"{', '.join(bundled_books())}); point books at a folder of OneRuler's books")
        return [path]
    folder = Path(books)
    files = sorted((folder / lang).glob("*.txt")) or [
        p for p in [folder / f"{lang}.txt"] if p.is_file()]
    if not files:
        missing = "" if folder.is_dir() else " (the folder does not exist)"
        raise FileNotFoundError(f"no OneRuler book for {lang!r} in {folder}{missing}: expected "
                                f"{folder / lang}/*.txt or {folder / lang}.txt")
    return files


def book_text(lang: str, books: str | Path = BUNDLED) -> str:
    """``lang``'s book as OneRuler reads it: its files concatenated, read as text (CRLF as LF)."""
    return "".join(p.read_text(encoding="utf-8") for p in book_files(lang, books))


def book_sentences(text: str) -> list[str]:
    """The sentences of ``text`` in reading order, repeats kept: whitespace collapsed (as
    OneRuler), a sentence ending at . ! ? ؟ ۔ । before a space, or after 。！？."""
    text = re.sub(r"\s+", " ", text).strip()
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def haystack(sentences: Sequence[str], n: int) -> list[str]:
    """The first ``n`` sentences of the book read in order, restarting at its start when it runs
    out (OneRuler's ``expand_haystack``)."""
    full, rest = divmod(n, len(sentences))
    return list(sentences) * full + list(sentences[:rest])


def repetition(sentences: Sequence[str], n: int) -> float:
    """Haystack text of ``n`` sentences over the book's text (characters of sentences): below 1
    the haystack is a prefix of the book; above 1 the book was repeated."""
    return sum(map(len, haystack(sentences, n))) / sum(map(len, sentences))


def count_tokens(tokenizer, text: str) -> int:
    """Tokens of ``text`` as the model receives it (with the special tokens the tokenizer adds)."""
    return len(tokenizer(text)["input_ids"])


def _longest_fitting(measure, length: int, upper: int | None = None) -> int:
    """The largest n in [0, upper] with measure(n) <= length, given measure(0) <= length and
    measure growing with n: doubling, then bisection (about 2 log2 n calls)."""
    lo, hi = 0, 1
    while True:
        if upper is not None and hi >= upper:
            hi = upper
            if measure(hi) <= length:
                return hi
            break
        if measure(hi) > length:
            break
        lo, hi = hi, 2 * hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if measure(mid) <= length:
            lo = mid
        else:
            hi = mid
    return lo


def _too_small(length: int, task: str, lang: str, needed: int) -> ValueError:
    return ValueError(f"length {length} is too small for {task} in {lang!r}: the template and "
                      f"needles alone take {needed} tokens; use a length of at least {needed}")


def _niah_sample(tokenizer, sentences, lang, task, length, rng: random.Random,
                 book: str) -> dict:
    """Needles and queries drawn from ``rng``; the haystack is the longest run of the book's
    sentences from its start (repeated if need be) that fits ``length`` with them."""
    n_keys, n_queries, relevant = NIAH_TASKS[task]
    words = list(nouns(lang))
    keys = rng.sample(words, n_keys)
    values = []
    while len(values) < n_keys:  # distinct, and not already somewhere in the book
        value = str(rng.randint(10 ** (VALUE_DIGITS - 1), 10 ** VALUE_DIGITS - 1))
        if value not in values and value not in book:
            values.append(value)
    pairs = list(zip(keys, values))
    rng.shuffle(pairs)  # needles in random order at sorted depths, as OneRuler
    depths = sorted(rng.sample(DEPTHS, n_keys))
    needles = [{"key": k, "value": v, "depth": d / 100} for (k, v), d in zip(pairs, depths)]
    if relevant:
        asked = [needles[i] for i in sorted(rng.sample(range(n_keys), n_queries))]
        queries, outputs = [n["key"] for n in asked], [n["value"] for n in asked]
        depth = asked[0]["depth"]
    else:
        queries = [rng.choice([w for w in words if w not in keys])]
        outputs, depth = [niah_template(lang)["none"]], None
    placed = [(n["key"], n["value"], n["depth"]) for n in needles]

    def build(sents: list[str]) -> str:
        return niah_prompt(lang, sents, placed, queries)

    def measure(sents: list[str]) -> int:
        return count_tokens(tokenizer, build(sents))

    if (needed := measure([])) > length:
        raise _too_small(length, task, lang, needed)
    n = _longest_fitting(lambda k: measure(haystack(sentences, k)), length)
    sents = haystack(sentences, n)
    return {"input": build(sents), "outputs": outputs, "depth": depth,
            "context_tokens": measure(sents), "repetition": round(repetition(sentences, n), 4),
            "needles": needles, "queries": queries, "haystack_sentences": n}


def _cwe_sample(tokenizer, lang, length, rng: random.Random) -> dict:
    """10 frequent words among the others, fitted to ``length``: OneRuler's cwe_easy repeats
    (10 vs 1 up to 8,000 tokens, else 30 vs 3). When the 10 frequent words alone overflow, their
    repeats drop (to 2 at least, still twice the others'); when the other words run out below
    ``length``, both repeats grow by whole multiples."""
    template = cwe_template(lang)
    words = list(nouns(lang))
    rng.shuffle(words)
    common, others = words[:CWE_COMMON], words[CWE_COMMON:]
    order_seed = rng.random()

    def build(n_other: int, rep_common: int, rep_other: int) -> str:
        entries = common * rep_common + others[:n_other] * rep_other
        random.Random(order_seed).shuffle(entries)
        return template.format(context=" ".join(f"{i + 1}. {w}" for i, w in enumerate(entries)))

    def measure(n_other, rep_common, rep_other):
        return count_tokens(tokenizer, build(n_other, rep_common, rep_other))

    base_common, base_other = (10, 1) if length <= 8000 else (30, 3)
    rep_common = base_common
    while rep_common > 2 and measure(0, rep_common, base_other) > length:
        rep_common -= 1
    if (needed := measure(0, rep_common, base_other)) > length:
        raise _too_small(length, "cwe", lang, needed)
    best, scale = None, 1
    while True:
        reps = (rep_common * scale, base_other * scale)
        if scale > 1 and measure(0, *reps) > length:
            break
        n = _longest_fitting(lambda k: measure(k, *reps), length, upper=len(others))
        config = (measure(n, *reps), n, *reps)
        best = max(best, config) if best else config
        if n < len(others) or rep_common < base_common:
            break
        scale += 1
    tokens, n, reps = best[0], best[1], best[2:]
    return {"input": build(n, *reps), "outputs": list(common), "depth": None,
            "context_tokens": tokens, "repetition": None,
            "repeats": {"common": reps[0], "other": reps[1]},
            "other_words": n}


def make_samples(tokenizer, lang: str, tasks: Sequence[str] = DEFAULT_TASKS,
                 lengths: Sequence[int] = (512,), samples_per_task: int = 2, seed: int = 0,
                 books: str | Path = BUNDLED) -> list[dict]:
    """OneRuler-style prompts for ``lang``, ``samples_per_task`` per task and length.

    Each NIAH prompt is filled up to ``length`` tokens of ``tokenizer`` (the whole prompt, special
    tokens included; the most sentences that do not exceed it) with ``lang``'s OneRuler book read
    from its start, repeated when it runs out (``book_files`` says where ``books`` points; cwe does
    not read the book). Deterministic: a sample depends only on (seed, lang, task, length, i) and
    the book, not on the other tasks or lengths asked for.

    Each sample: id (``f"{task}-{length}-{i}"``), task, length, lang, input (the prompt), outputs
    (gold answers: needle values; [the language's none word] for niah_none; the 10 common words
    for cwe), depth (the first queried needle's depth fraction; None for niah_none and cwe),
    context_tokens (the prompt's measured tokens), repetition (haystack text / book length;
    None for cwe), and details: needles (key, value, depth), queries and haystack_sentences for
    NIAH, repeats for cwe.

    Raises ValueError for an unknown language or task, a length that cannot hold the template
    and needles, or a book without text; FileNotFoundError when a NIAH task has no book."""
    _check_lang(lang)
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; allowed: {', '.join(TASKS)}")
    bad = [n for n in lengths if not isinstance(n, int) or isinstance(n, bool) or n < 1]
    if bad:
        raise ValueError(f"lengths must be positive integers (tokens), got {bad}")
    sentences, book = [], ""
    if any(t in NIAH_TASKS for t in tasks):
        sentences = book_sentences(book_text(lang, books))
        if not sentences:
            where = ", ".join(str(p) for p in book_files(lang, books))
            raise ValueError(f"the OneRuler book for {lang!r} ({where}) has no text")
        book = _join(lang).join(sentences)
    samples = []
    for task in tasks:
        for length in lengths:
            for i in range(samples_per_task):
                rng = random.Random(f"oneruler|{seed}|{lang}|{task}|{length}|{i}")
                if task == "cwe":
                    body = _cwe_sample(tokenizer, lang, length, rng)
                else:
                    body = _niah_sample(tokenizer, sentences, lang, task, length, rng, book)
                samples.append({"id": f"{task}-{length}-{i}", "task": task, "length": length,
                                "lang": lang, **body})
    return samples


# ---------------------------------------------------------------------------------------------
# scoring

def _answer_tags(lang: str) -> list[str]:
    tags = ["Answer"]
    for text in (niah_template(lang)["answer_numbers"], cwe_template(lang)):
        tags += re.findall(r"<([^<>/]+)>", text)[-1:]
    return list(dict.fromkeys(t.strip() for t in tags))


def extract_answer(prediction: str, lang: str) -> str:
    """The text inside the first <Answer>...</Answer> (or the language's tag, e.g. <Antwort>;
    case-insensitive; an unclosed tag runs to the end), else the whole prediction."""
    for tag in _answer_tags(lang):
        match = re.search(rf"<\s*{re.escape(tag)}\s*>(.*?)(?:<\s*/\s*{re.escape(tag)}\s*>|$)",
                          prediction, flags=re.DOTALL | re.IGNORECASE)
        if match:
            return match.group(1)
    return prediction


def _normal(text: str) -> str:
    """NFKC, case-folded, zero-width (non-)joiners as spaces (fa writes هیچ‌کدام and هیچ کدام)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return text.replace("\u200c", " ").replace("\u200d", " ")


def numbers(text: str) -> set[int]:
    """The numbers of two or more digits in ``text`` (NFKC-normalised; any script's digits), as
    OneRuler extracts them (single digits are dropped)."""
    return {int(n) for n in re.findall(r"\d+", unicodedata.normalize("NFKC", text)) if len(n) > 1}


def says_none(text: str, lang: str) -> bool:
    """Whether ``text`` contains the language's "none" (any spelling in ``none_words``),
    case-insensitively, as a whole word (spaces inside it may vary or be missing); zh, ja, ko: as
    a substring. The ``answer_tag`` rule; OneRuler's is ``_oneruler_none``."""
    text = _normal(text)
    for word in none_words(lang):
        parts = _normal(word).split()
        if lang in SUBSTRING_NONE:
            if "".join(parts) in re.sub(r"\s+", "", text):
                return True
        elif re.search(r"(?<!\w)" + r"\s*".join(map(re.escape, parts)) + r"(?!\w)", text):
            return True
    return False


def _clean(text: str) -> str:
    """OneRuler's ``clean_text``: stripped, lower-cased, without spaces and ZWNJ."""
    return text.strip().lower().replace("\u200c", "").replace(" ", "")


def _oneruler_none(answer: str, lang: str) -> bool:
    """niah_none by OneRuler's ``compare_none``: a "none" word is a substring of the cleaned
    answer (single digits dropped first; other numbers not checked, as upstream)."""
    text = re.sub(r"\b\d\b", "", _clean(unicodedata.normalize("NFKC", answer)))
    return any(_clean(word) in text for word in none_words(lang))


def _oneruler_numbers(answer: str, lang: str, outputs: Sequence[str]) -> bool:
    """NIAH by OneRuler's ``compare_numbers``: no "none" word (as written or cleaned) in the
    NFKC answer, case-sensitively; its distinct numbers of two or more digits are as many as
    the gold values and the same set."""
    text = unicodedata.normalize("NFKC", answer)
    if not answer or any(w in text or _clean(w) in text for w in none_words(lang)):
        return False
    found = list(dict.fromkeys(n for n in re.findall(r"\d+", text) if len(n) > 1))
    gold = [int(v) for v in outputs]
    return len(found) == len(gold) and {int(n) for n in found} == set(gold)


def _oneruler_score(task: str, lang: str, outputs: Sequence[str], answer: str) -> bool:
    if task == "cwe":  # OneRuler's is_correct_order
        text = answer.strip().lower()
        return all(w.strip().lower() in text for w in outputs)
    if task == "niah_none":
        return _oneruler_none(answer, lang)
    return _oneruler_numbers(answer, lang, outputs)


def _answer_tag_score(task: str, lang: str, outputs: Sequence[str], prediction: str) -> bool:
    answer = unicodedata.normalize("NFKC", extract_answer(prediction, lang))
    if task == "cwe":
        text = _normal(answer)
        return all(_normal(w.strip()) in text for w in outputs)
    if task == "niah_none":
        return says_none(answer, lang) and not numbers(answer)
    return not says_none(answer, lang) and numbers(answer) == {int(v) for v in outputs}


def score(sample: dict, prediction: str, scoring: str = "oneruler") -> float:
    """1.0 when ``prediction`` answers ``sample``, else 0.0.

    scoring="oneruler" (default): OneRuler's ``eval/evaluate.py`` on the whole prediction.
    - niah_single, niah_multikey, niah_multiquery: the distinct numbers of two or more digits
      (NFKC) are the gold needle values (as many, same set; order and repeats do not matter),
      and the prediction has no "none" word as a case-sensitive substring ("1234567, none"
      fails, "1234567, None" passes).
    - niah_none: a "none" word is a substring of the prediction lower-cased without spaces and
      ZWNJ ("NONE", "nonetheless" and "none, 1234567" pass).
    - cwe: every gold word is a substring of the lower-cased prediction.

    scoring="answer_tag": the text inside <Answer>...</Answer> (or the language's tag) when
    present (``extract_answer``), NFKC; "none" as ``says_none`` finds it (case-insensitive, a
    whole word; zh, ja, ko a substring) both to fail NIAH and to pass niah_none, which also
    fails on a number of two or more digits; cwe on case-folded text.
    """
    if scoring not in SCORINGS:
        raise ValueError(f"unknown scoring {scoring!r}; allowed: {', '.join(SCORINGS)}")
    task = sample["task"]
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; allowed: {', '.join(TASKS)}")
    rule = _oneruler_score if scoring == "oneruler" else _answer_tag_score
    return float(rule(task, sample["lang"], sample["outputs"], str(prediction)))


# ---------------------------------------------------------------------------------------------
# running

def generate(model, tokenizer, samples: Sequence[dict],
             max_new_tokens: int | Mapping[str, int] = 32, batch_size: int = 1,
             show_progress_bar: bool = True) -> list[str]:
    """Greedy continuations of each sample's ``input`` (transformers' ``generate``, do_sample=False)
    on the model's device: the new tokens only, decoded without special tokens. Batches are
    left-padded (the pad token, else EOS).

    max_new_tokens: one limit, or one per task (e.g. {"cwe": 64, ...}: ten listed words need
    more tokens than one needle value); a batch runs to its samples' largest limit and each
    answer is cut to its own."""
    import torch
    from tqdm.auto import tqdm

    if isinstance(max_new_tokens, Mapping):
        missing = sorted({s["task"] for s in samples} - set(max_new_tokens))
        if missing:
            raise ValueError(f"max_new_tokens has no limit for task(s) {missing}")
        limits = [int(max_new_tokens[s["task"]]) for s in samples]
    else:
        limits = [int(max_new_tokens)] * len(samples)
    device = next(model.parameters()).device
    was_training, side, pad = model.training, tokenizer.padding_side, tokenizer.pad_token
    model.eval()
    tokenizer.padding_side = "left"
    if pad is None:
        tokenizer.pad_token = tokenizer.eos_token
    out: list[str] = []
    try:
        with tqdm(total=len(samples), desc="long context", disable=not show_progress_bar) as bar:
            for start in range(0, len(samples), batch_size):
                batch = [s["input"] for s in samples[start:start + batch_size]]
                cut = limits[start:start + batch_size]
                enc = tokenizer(batch, return_tensors="pt", padding=True)
                with torch.inference_mode():
                    ids = model.generate(input_ids=enc["input_ids"].to(device),
                                         attention_mask=enc["attention_mask"].to(device),
                                         max_new_tokens=max(cut), do_sample=False,
                                         pad_token_id=tokenizer.pad_token_id)
                new = ids[:, enc["input_ids"].shape[1]:]
                out += [tokenizer.decode(row[:n], skip_special_tokens=True)
                        for row, n in zip(new, cut)]
                bar.update(len(batch))
    finally:
        tokenizer.padding_side = side
        if pad is None:
            tokenizer.pad_token = None
        if was_training:
            model.train()
    return out


EVALUATE_COLUMNS = ["id", "lang", "task", "length", "context_tokens", "repetition", "depth",
                    "prediction", "score"]


def evaluate(model, tokenizer, samples: Sequence[dict], scoring: str = "oneruler",
             **kw) -> pd.DataFrame:
    """One row per sample: ``EVALUATE_COLUMNS`` (``generate``'s greedy answer scored by
    ``score`` with ``scoring``; repetition NaN for cwe). ``kw`` goes to ``generate``."""
    if scoring not in SCORINGS:  # before generating, not after
        raise ValueError(f"unknown scoring {scoring!r}; allowed: {', '.join(SCORINGS)}")
    predictions = generate(model, tokenizer, samples, **kw)
    frame = pd.DataFrame([{"id": s["id"], "lang": s["lang"], "task": s["task"],
                           "length": s["length"], "context_tokens": s["context_tokens"],
                           "repetition": s.get("repetition"), "depth": s["depth"],
                           "prediction": p, "score": score(s, p, scoring)}
                          for s, p in zip(samples, predictions)], columns=EVALUATE_COLUMNS)
    return frame.astype({"repetition": float})


def summary(frame: pd.DataFrame, by: Sequence[str] = ("task", "length")) -> pd.DataFrame:
    """Mean score and n per (task, length), or per the columns ``by`` (e.g. ("method", "task",
    "length")), and the largest book repetition of the group's samples when ``frame`` has a
    repetition column (NaN for cwe). Rows sorted by those columns: tasks in ``TASKS`` order,
    numbers ascending, other values (methods, languages) in order of first appearance."""
    by = list(by)
    stats = {"score": ("score", "mean"), "n": ("score", "size")}
    if "repetition" in frame.columns:
        stats["repetition"] = ("repetition", "max")
    out = frame.groupby(by, sort=False).agg(**stats).reset_index()
    rank = {t: i for i, t in enumerate(TASKS)}

    def order(column: pd.Series) -> pd.Series:
        if column.name == "task":
            return column.map(rank).fillna(len(rank))
        if pd.api.types.is_numeric_dtype(column):
            return column
        return column.map({v: i for i, v in enumerate(pd.unique(frame[column.name]))})

    out = out.sort_values(by, key=order, kind="stable")
    return out.reset_index(drop=True)
