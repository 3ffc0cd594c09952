"""Is a text in the language asked for? Judged by what it holds, never by a file's name.

A file's name is no evidence of its language ('es_final/', 'ja_dev_edited.jsonl', 'test.csv'),
so evaluation rows are checked by their letters: the share per Unicode script across the whole
file (question and options), compared with the scripts the asked language is written in; for a
few Latin-script languages also the share of their common words, which tells apart languages that
share a script. A language whose script is not in the tables is left unchecked: guessing its
script could refuse a correct file. Same-script languages without a word list (ar / fa, ru / uk,
most Latin-script languages) are told apart by script alone, that is not at all.
"""
from __future__ import annotations

import bisect
import re
from collections import Counter
from typing import Iterable

# Unicode ranges of letters by script (ISO 15924 code); 'Hrkt' is Japanese kana (both syllabaries)
_SCRIPT_RANGES = sorted([
    (0x0041, 0x005A, "Latn"), (0x0061, 0x007A, "Latn"), (0x00AA, 0x00AA, "Latn"),
    (0x00BA, 0x00BA, "Latn"), (0x00C0, 0x02AF, "Latn"), (0x1D00, 0x1DBF, "Latn"),
    (0x1E00, 0x1EFF, "Latn"), (0x2C60, 0x2C7F, "Latn"), (0xA720, 0xA7FF, "Latn"),
    (0xFF21, 0xFF3A, "Latn"), (0xFF41, 0xFF5A, "Latn"),
    (0x0370, 0x03FF, "Grek"), (0x1F00, 0x1FFF, "Grek"),
    (0x0400, 0x052F, "Cyrl"), (0x1C80, 0x1C8F, "Cyrl"), (0xA640, 0xA69F, "Cyrl"),
    (0x0530, 0x058F, "Armn"), (0x0590, 0x05FF, "Hebr"), (0xFB1D, 0xFB4F, "Hebr"),
    (0x0600, 0x06FF, "Arab"), (0x0750, 0x077F, "Arab"), (0x08A0, 0x08FF, "Arab"),
    (0xFB50, 0xFDFF, "Arab"), (0xFE70, 0xFEFF, "Arab"), (0x0700, 0x074F, "Syrc"),
    (0x0780, 0x07BF, "Thaa"), (0x0900, 0x097F, "Deva"), (0x0980, 0x09FF, "Beng"),
    (0x0A00, 0x0A7F, "Guru"), (0x0A80, 0x0AFF, "Gujr"), (0x0B00, 0x0B7F, "Orya"),
    (0x0B80, 0x0BFF, "Taml"), (0x0C00, 0x0C7F, "Telu"), (0x0C80, 0x0CFF, "Knda"),
    (0x0D00, 0x0D7F, "Mlym"), (0x0D80, 0x0DFF, "Sinh"), (0x0E00, 0x0E7F, "Thai"),
    (0x0E80, 0x0EFF, "Laoo"), (0x0F00, 0x0FFF, "Tibt"), (0x1000, 0x109F, "Mymr"),
    (0x10A0, 0x10FF, "Geor"), (0x1100, 0x11FF, "Hang"), (0x1200, 0x139F, "Ethi"),
    (0x1780, 0x17FF, "Khmr"), (0x1800, 0x18AF, "Mong"),
    (0x3005, 0x3007, "Hani"), (0x3021, 0x3029, "Hani"), (0x3038, 0x303B, "Hani"),
    (0x3040, 0x30FF, "Hrkt"), (0x3130, 0x318F, "Hang"), (0x31F0, 0x31FF, "Hrkt"),
    (0x3400, 0x4DBF, "Hani"), (0x4E00, 0x9FFF, "Hani"), (0xA960, 0xA97F, "Hang"),
    (0xAC00, 0xD7FF, "Hang"), (0xF900, 0xFAFF, "Hani"), (0xFF66, 0xFF9F, "Hrkt"),
    (0xFFA0, 0xFFDC, "Hang"), (0x20000, 0x3134F, "Hani"),
])
_SCRIPT_STARTS = [start for start, _, _ in _SCRIPT_RANGES]

# the languages written in each script (primary subtags as compass.languages.normalize gives
# them); a language listed under two scripts may be written in either (sr, uz, kk, ku, pa, ...)
_WRITTEN_IN = {
    "Latn": """af ay az bs ca ceb cs cy da de en eo es et eu fi fil fj fo fr fy ga gd gl gn gv ha
               haw hr ht hu id ig is it jv kk kl ku kw la lb lg ln lt lv mg mi ms mt nb nd nl nn no
               nr nso ny oc om pl pt qu rm rn ro rw se sk sl sm sn so sq sr ss st su sv sw tk tn
               to tr ts uz ve vi wa wo xh yo za zu""",
    "Cyrl": "ba be bg ce cv kk ky mk mn os ru sr tg tt uk uz",
    "Grek": "el", "Armn": "hy", "Hebr": "he yi", "Geor": "ka", "Ethi": "am ti",
    "Arab": "acq ajp apc ar arz ars ary ckb fa ks ku pa pbt ps sd ug ur",
    "Syrc": "syr", "Thaa": "dv", "Deva": "hi mai mr ne sa", "Beng": "as bn", "Guru": "pa",
    "Gujr": "gu", "Orya": "or", "Taml": "ta", "Telu": "te", "Knda": "kn", "Mlym": "ml",
    "Sinh": "si", "Thai": "th", "Laoo": "lo", "Tibt": "bo dz", "Mymr": "my", "Khmr": "km",
    "Mong": "mn", "Hani": "zh yue wuu",
}
# writing systems that mix scripts; the first must make up a share of the letters (kana in
# Japanese, Hangul in Korean), which is what tells them from Chinese
_MIXED_SCRIPTS = {"ja": ("Hrkt", "Hani"), "ko": ("Hang", "Hani")}
# a script subtag in the asked tag ('zh-Hant', 'sr-Latn') names the writing system itself
_SUBTAG_SCRIPTS = {"Hans": ("Hani",), "Hant": ("Hani",), "Hani": ("Hani",),
                   "Jpan": _MIXED_SCRIPTS["ja"], "Kore": _MIXED_SCRIPTS["ko"]}
_MIN_LETTERS = 200  # fewer letters than this are too little evidence: no script check
_MIN_OWN_SHARE = 0.8  # of the letters outside Latin (all letters for a Latin-script language)
_MIN_OWN_OF_ALL = 0.05  # a non-Latin language's own letters, of all letters (Latin included)
_MIN_MAIN_SHARE = 0.1  # kana of a Japanese text's CJK letters, Hangul of a Korean text's

# common words of some Latin-script languages; a word in two lists is dropped from both (see
# _STOPWORDS), so only words that point to one language count
_COMMON_WORDS = {
    "en": """the of and to is in that which what for are with as by this be was it from an or on
             following not has have were his their would can will these does""",
    "es": """el la los las de del y que en es un una por para con se lo al su sus cuál qué como
             más pero son está siguiente siguientes no da entre a o""",
    "fr": """le la les de des du et est un une que qui en dans pour par sur au aux ce cette il
             pas sont quel quelle suivant suivante suivantes avec plus ne""",
    "de": """der die das und ist nicht ein eine einer den dem des zu mit von für auf sich auch es
             im welche welcher folgenden sind wird wenn oder dass bei""",
    "it": """il lo la i gli le di del della e è che un una per con non sono quale seguenti nel
             alla dei delle si come anche più da tra a o""",
    "pt": """o a os as de do da dos das e é que um uma para com não em no na por se qual
             seguinte seguintes ao mais são como entre""",
    "nl": """de het een en van is dat die in op te voor niet met zijn er welke wordt ook aan bij
             als volgende worden""",
}
_WORD = re.compile(r"[^\W\d_]+")
_MIN_WORDS = 150  # fewer words than this: no common-word check
_MIN_WORD_RATE = 0.05  # another language's common words must make at least this share ...
_WORD_RATE_RATIO = 3.0  # ... and this many times the asked language's share, to refuse


def _stopwords() -> dict[str, frozenset]:
    """:data:`_COMMON_WORDS` less the words of more than one list (they point to no language)."""
    lists = {lang: set(words.split()) for lang, words in _COMMON_WORDS.items()}
    seen = Counter(word for words in lists.values() for word in words)
    return {lang: frozenset(w for w in words if seen[w] == 1) for lang, words in lists.items()}


_STOPWORDS = _stopwords()


def _script_of(char: str) -> str | None:
    """The ISO 15924 script of a letter, or None for one outside :data:`_SCRIPT_RANGES`."""
    code = ord(char)
    k = bisect.bisect_right(_SCRIPT_STARTS, code) - 1
    if k >= 0 and code <= _SCRIPT_RANGES[k][1]:
        return _SCRIPT_RANGES[k][2]
    return None


def _script_counts(texts: Iterable[str]) -> Counter:
    """Letters per script across ``texts``; letters of scripts not in the table are not counted."""
    chars = Counter()
    for text in texts:
        chars.update(text)
    counts = Counter()
    for char, n in chars.items():
        if char.isalpha():
            script = _script_of(char)
            if script:
                counts[script] += n
    return counts


def _writing_systems(tag: str) -> list[tuple[str, ...]] | None:
    """The writing systems ``tag`` may use, each a tuple of scripts; None if not known."""
    primary, *subtags = tag.split("-")
    for subtag in subtags:
        script = subtag.title()
        if script in _SUBTAG_SCRIPTS:
            return [_SUBTAG_SCRIPTS[script]]
        if len(script) == 4 and script in _WRITTEN_IN:
            return [(script,)]
    if primary in _MIXED_SCRIPTS:
        return [_MIXED_SCRIPTS[primary]]
    systems = [(script,) for script, langs in _WRITTEN_IN.items() if primary in langs.split()]
    return systems or None


def _fits(counts: Counter, scripts: tuple[str, ...]) -> bool:
    """Whether the letters are mostly in ``scripts``.

    Latin is set aside for a language not written in it: formulas, code, units and English
    names are Latin in every language's questions.
    """
    total = sum(counts.values())
    base = total if "Latn" in scripts else total - counts["Latn"]
    own = sum(counts[s] for s in scripts)
    return (own >= _MIN_OWN_SHARE * base and own >= _MIN_OWN_OF_ALL * total
            and counts[scripts[0]] >= _MIN_MAIN_SHARE * own)


def _shares(counts: Counter, total: int, top: int = 3) -> str:
    return ", ".join(f"{script} {n / total:.1%}" for script, n in counts.most_common(top))


def _script_problem(counts: Counter, tag: str) -> str | None:
    """What is wrong with the letters for ``tag``, or None where they fit or cannot be judged."""
    systems = _writing_systems(tag)
    total = sum(counts.values())
    if systems is None or total < _MIN_LETTERS or any(_fits(counts, s) for s in systems):
        return None
    expected = " or ".join(_describe(s) for s in systems)
    return (f"its {total} letters are {_shares(counts, total)}; expected {tag!r} text, "
            f"written in {expected}")


def _describe(scripts: tuple[str, ...]) -> str:
    """How a writing system is described in an error: its scripts and the shares they need."""
    of = "of the letters" if "Latn" in scripts else "of the non-Latin letters"
    main = f", {scripts[0]} at least {_MIN_MAIN_SHARE:.0%} of those" if len(scripts) > 1 else ""
    return f"{'+'.join(scripts)} (at least {_MIN_OWN_SHARE:.0%} {of}{main})"


def _word_problem(texts: list[str], tag: str) -> str | None:
    """Which other language's common words dominate, or None (also where it cannot be judged)."""
    if tag not in _STOPWORDS:
        return None
    words = Counter(w for text in texts for w in _WORD.findall(text.lower()))
    total = sum(words.values())
    if total < _MIN_WORDS:
        return None
    rates = {lang: sum(words[w] for w in common) / total for lang, common in _STOPWORDS.items()}
    best = max(rates, key=rates.get)
    if best == tag or rates[best] < _MIN_WORD_RATE or rates[best] < _WORD_RATE_RATIO * rates[tag]:
        return None
    return (f"it reads as {best!r}: {rates[best]:.1%} of its {total} words are common {best!r} "
            f"words against {rates[tag]:.1%} common {tag!r} words; expected {tag!r} text")


def problem(texts: list[str], tag: str) -> str | None:
    """Why ``texts`` are not in language ``tag`` (BCP 47, as compass.languages normalises it),
    or None where they are or cannot be judged."""
    return _script_problem(_script_counts(texts), tag) or _word_problem(texts, tag)
