"""OneRuler-style long-context samples, scoring and runner (fast: tiny tokenizer and model)."""
import json
import re
from collections import Counter
from fnmatch import fnmatch
from pathlib import Path
from types import SimpleNamespace

import pytest

from compass import paths
from compass.evaluation import longcontext as lc
from tests.conftest import fixture_path

LENGTH = 1024  # the tiny BPE tokenizer (400 tokens) needs ~300-800 for the templates alone


def write_book(folder: Path, lang: str, text: str, layout: str = "oneruler") -> Path:
    """A book for ``lang`` under ``folder``: ``<lang>/book.txt`` (OneRuler's layout) or
    ``<lang>.txt``."""
    path = folder / lang / "book.txt" if layout == "oneruler" else folder / f"{lang}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def tok():
    from tests.tiny_lm import tiny_tokenizer

    return tiny_tokenizer()


@pytest.fixture(scope="module")
def samples(tok):
    return lc.make_samples(tok, "en", tasks=lc.TASKS, lengths=(LENGTH,), samples_per_task=2,
                           seed=0)


def _task(samples, task):
    return [s for s in samples if s["task"] == task]


# --- templates ---------------------------------------------------------------------------------

def test_templates_load_for_all_26_languages():
    assert len(lc.LANGUAGES) == 26
    assert sorted(p.name for p in (lc.DATA / "prompt").iterdir()) == list(lc.LANGUAGES)
    assert (lc.DATA / "NOTICE.md").read_text(encoding="utf-8").count("MIT License") == 1
    for lang in lc.LANGUAGES:
        t = lc.niah_template(lang)
        assert {"task", "needle_numbers", "question_single_numbers", "question_multi_numbers",
                "please_list", "if_no_numbers", "answer_prefix", "answer_numbers", "none"} <= set(t)
        one = lc.niah_prompt_template(lang, 1).format(context="CTX", query1="Q1")
        two = lc.niah_prompt_template(lang, 2).format(context="CTX", query1="Q1", query2="Q2")
        assert one.count("CTX") == two.count("CTX") == 1 and "Q1" in one and "Q2" in two
        text = lc.needle(lang, "KEY", "1234567")
        assert "KEY" in text and "1234567" in text and text[-1] in ".。۔"
        assert lc.cwe_template(lang).count("{context}") == 1
        words = lc.nouns(lang)
        assert 95 <= len(words) <= 100 and len(set(words)) == len(words)
        assert all(w == w.strip() and w for w in words)
        assert lc.none_words(lang)[0] == t["none"]
        own = re.match(r"<([^<>]+)>", t["answer_numbers"]).group(1).strip()
        assert {"Answer", own} <= set(lc._answer_tags(lang))


def test_vi_cwe_template_stray_line_is_cut():
    text = lc.cwe_template("vi")
    assert "\\n" not in text and text.startswith("Dưới đây là một danh sách các từ.")
    assert "<Danh sách> {context} </Danh sách>" in text


# --- generation --------------------------------------------------------------------------------

def test_same_seed_same_samples_other_seed_differs(tok, samples):
    again = lc.make_samples(tok, "en", tasks=lc.TASKS, lengths=(LENGTH,), samples_per_task=2,
                            seed=0)
    assert again == samples
    other = lc.make_samples(tok, "en", tasks=lc.TASKS, lengths=(LENGTH,), samples_per_task=2,
                            seed=1)
    assert [s["id"] for s in other] == [s["id"] for s in samples]
    assert all(a["input"] != b["input"] for a, b in zip(other, samples))
    # a sample does not depend on which other tasks were asked for
    alone = lc.make_samples(tok, "en", tasks=("niah_none",), lengths=(LENGTH,),
                            samples_per_task=2, seed=0)
    assert alone == _task(samples, "niah_none")


def test_sample_fields_and_ids(samples):
    assert [s["id"] for s in samples] == [f"{t}-{LENGTH}-{i}" for t in lc.TASKS for i in (0, 1)]
    for s in samples:
        assert {"id", "task", "length", "lang", "input", "outputs", "depth",
                "context_tokens", "repetition"} <= set(s)
        assert s["lang"] == "en" and s["length"] == LENGTH and s["outputs"]
        assert (s["repetition"] is None) == (s["task"] == "cwe")


def _placed(s):
    return [(n["key"], n["value"], n["depth"]) for n in s["needles"]]


def test_context_tokens_measured_and_the_most_whole_sentences_that_fit(tok, samples):
    """NIAH: the prompt holds the most book sentences that fit (one more would overflow), as
    OneRuler fills by whole sentences; cwe fills to within 3%."""
    uk = lc.make_samples(tok, "uk", lengths=(1536,), samples_per_task=1)
    for s in samples + uk:
        assert s["context_tokens"] == lc.count_tokens(tok, s["input"]) <= s["length"], s["id"]
        if s["task"] == "cwe":
            assert 0.97 * s["length"] <= s["context_tokens"], s["id"]
            continue
        sentences = lc.book_sentences(lc.book_text(s["lang"]))
        more = lc.haystack(sentences, s["haystack_sentences"] + 1)
        longer = lc.niah_prompt(s["lang"], more, _placed(s), s["queries"])
        assert lc.count_tokens(tok, longer) > s["length"], s["id"]


def test_haystack_is_the_book_read_in_order_from_its_start(samples):
    """Without its needles, a sample's context is the book's first sentences, in order."""
    sentences = lc.book_sentences(lc.book_text("en"))
    assert sentences[0].startswith("PART 1 CHAPTER ONE PLAYING PILGRIMS")
    for s in samples:
        if s["task"] == "cwe":
            continue
        context = s["input"].split("<text>\n")[1].split("\n</text>")[0]
        for key, value, _ in _placed(s):
            context = context.replace(lc.needle("en", key, value), "")
        n = s["haystack_sentences"]
        assert 0 < n < len(sentences) and s["repetition"] < 1
        assert re.sub(r"\s+", " ", context).strip() == " ".join(sentences[:n])
        assert s["repetition"] == round(sum(map(len, sentences[:n])) / sum(map(len, sentences)), 4)


def test_a_context_longer_than_the_book_repeats_it_and_says_how_often(tok, tmp_path):
    """A four-sentence book fills a 1,500-token prompt by starting over; the repetition factor is
    the haystack text over the book's text."""
    book = ["Alpha beta gamma.", "Delta epsilon zeta eta!", "Theta iota?", "Kappa lambda mu nu xi."]
    folder = write_book(tmp_path, "en", "\n".join(book) + "\n")
    (s,) = lc.make_samples(tok, "en", tasks=("niah_single",), lengths=(1500,),
                           samples_per_task=1, books=folder)
    n = s["haystack_sentences"]
    assert n > 3 * len(book)
    ((key, value, _),) = _placed(s)
    context = s["input"].split("<text>\n")[1].split("\n</text>")[0]
    context = " ".join(context.replace(lc.needle("en", key, value), "").split())
    assert context == " ".join((book * n)[:n])  # the book, then the book again, in order
    full, rest = divmod(n, len(book))
    expected = full + sum(map(len, book[:rest])) / sum(map(len, book))
    assert s["repetition"] == round(expected, 4) and s["repetition"] > 3
    assert lc.repetition(book, n) == pytest.approx(expected)


def test_bundled_excerpt_repeats_at_a_long_context(tok):
    (s,) = lc.make_samples(tok, "en", tasks=("niah_single",), lengths=(20000,),
                           samples_per_task=1)  # the en excerpt is ~10,300 tiny tokens
    assert 1.5 < s["repetition"] < 2.0 and s["context_tokens"] <= 20000


def test_book_folders_in_both_layouts(tok, tmp_path):
    """``<folder>/<lang>/*.txt`` (OneRuler's repository: its files joined in name order) or
    ``<folder>/<lang>.txt``; CRLF reads as LF, whitespace collapses."""
    write_book(tmp_path / "a", "de", "Erster Satz.\r\nZweiter\r\n Satz.")
    (tmp_path / "a" / "de" / "zweites.txt").write_text(" Dritter Satz.", encoding="utf-8")
    (tmp_path / "a" / "de" / ".DS_Store").write_text("x", encoding="utf-8")
    assert [f.name for f in lc.book_files("de", tmp_path / "a")] == ["book.txt", "zweites.txt"]
    assert lc.book_sentences(lc.book_text("de", tmp_path / "a")) == [
        "Erster Satz.", "Zweiter Satz.", "Dritter Satz."]
    write_book(tmp_path / "b", "de", "Nur ein Satz.", layout="flat")
    assert lc.book_files("de", str(tmp_path / "b")) == [tmp_path / "b" / "de.txt"]
    (s,) = lc.make_samples(tok, "de", tasks=("niah_none",), lengths=(LENGTH,),
                           samples_per_task=1, books=tmp_path / "b")
    assert "Nur ein Satz." in s["input"] and s["repetition"] > 1


def test_a_missing_book_is_named(tok, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no bundled OneRuler book excerpt for 'sr' in "
                                                r".*oneruler/books \(bundled: cs, da, .*zh\)"):
        lc.make_samples(tok, "sr", tasks=("niah_single",))
    write_book(tmp_path, "de", "Ein Satz.")
    with pytest.raises(FileNotFoundError, match=rf"no OneRuler book for 'fr' in {tmp_path}: "
                                                rf"expected {tmp_path}/fr/\*\.txt or "
                                                rf"{tmp_path}/fr\.txt"):
        lc.make_samples(tok, "fr", tasks=("niah_single",), books=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"no OneRuler book for 'de' in .*nowhere "
                                                r"\(the folder does not exist\)"):
        lc.book_files("de", tmp_path / "nowhere")
    # cwe reads no book: sr still gets it
    (cwe,) = lc.make_samples(tok, "sr", tasks=("cwe",), lengths=(LENGTH,), samples_per_task=1)
    assert cwe["repetition"] is None


def test_needles_present_exactly_once(samples):
    shape = {"niah_single": (1, 1), "niah_multikey": (4, 1), "niah_multiquery": (2, 2),
             "niah_none": (4, 1)}
    for s in samples:
        if s["task"] == "cwe":
            continue
        n_needles, n_queries = shape[s["task"]]
        assert len(s["needles"]) == n_needles and len(s["queries"]) == n_queries
        assert len({n["key"] for n in s["needles"]}) == n_needles
        for n in s["needles"]:
            assert re.fullmatch(r"[1-9]\d{6}", n["value"])
            assert s["input"].count(lc.needle("en", n["key"], n["value"])) == 1
            assert s["input"].count(n["value"]) == 1
        for q in s["queries"]:
            assert s["input"].count(f'"{q}"') >= 1
        if s["task"] != "niah_none":
            by_key = {n["key"]: n for n in s["needles"]}
            assert s["outputs"] == [by_key[q]["value"] for q in s["queries"]]
            assert s["depth"] == by_key[s["queries"][0]]["depth"]
            assert s["depth"] * 100 in lc.DEPTHS


def test_niah_none_has_no_needle_for_the_queried_key(samples):
    prefix = lc.niah_template("en")["needle_numbers"].split("{value}")[0]
    for s in _task(samples, "niah_none"):
        (query,) = s["queries"]
        assert query not in {n["key"] for n in s["needles"]}
        assert prefix.format(key=query) not in s["input"]
        assert s["outputs"] == ["none"] and s["depth"] is None


def test_needle_sits_at_its_depth(tok):
    for s in lc.make_samples(tok, "en", tasks=("niah_single",), lengths=(4096,),
                             samples_per_task=6, seed=3):
        (n,) = s["needles"]
        context = s["input"].split("<text>\n")[1].split("\n</text>")[0]
        where = context.index(lc.needle("en", n["key"], n["value"])) / len(context)
        assert abs(where - n["depth"]) < 0.2, (where, n["depth"])


def test_cwe_common_words_are_the_most_frequent(samples):
    for s in _task(samples, "cwe"):
        listed = s["input"].split("<List> ")[1].split(" </List>")[0]
        entries = re.findall(r"(\d+)\. (\S+)", listed)
        assert [int(i) for i, _ in entries] == list(range(1, len(entries) + 1))
        counts = Counter(w for _, w in entries)
        common = s["outputs"]
        assert len(common) == len(set(common)) == 10 and s["depth"] is None
        assert min(counts[w] for w in common) > max(c for w, c in counts.items() if w not in common)
        assert all(w in lc.nouns("en") for w in counts)


def test_cwe_scales_repeats_to_the_length(tok):
    short, long = (lc.make_samples(tok, "en", tasks=("cwe",), lengths=(n,),
                                   samples_per_task=1)[0] for n in (600, 2400))
    assert short["repeats"]["common"] < 10 and short["context_tokens"] <= 600
    assert long["repeats"] == {"common": 20, "other": 2}  # the 90 other words ran out at 10 / 1
    assert 0.97 * 2400 <= long["context_tokens"] <= 2400


def test_all_languages_generate_from_their_bundled_book(tok):
    assert lc.bundled_books() == tuple(lang for lang in lc.LANGUAGES if lang != "sr")
    for lang in lc.bundled_books():
        (s,) = lc.make_samples(tok, lang, tasks=("niah_multikey",), lengths=(3000,),
                               samples_per_task=1)
        assert s["context_tokens"] <= 3000 and 0 < s["repetition"] < 1, lang
        for n in s["needles"]:
            assert s["input"].count(lc.needle(lang, n["key"], n["value"])) == 1
        first = lc.book_sentences(lc.book_text(lang))[0]
        assert first in s["input"], lang


# --- the carried books -------------------------------------------------------------------------

def test_bundled_books_are_small_line_cut_prefixes_with_their_license():
    notice = (lc.DATA / "NOTICE.md").read_text(encoding="utf-8")
    for lang in lc.bundled_books():
        data = (lc.BOOKS / f"{lang}.txt").read_bytes()
        assert 12_000 < len(data) <= 16_384 and data.endswith(b"\n"), lang
        assert f"| `books/{lang}.txt` | `OneRuler/data/books/{lang}/" in notice
        assert f"first {len(data):,} of " in notice
    assert "NEED_CLEANING" in notice and (lc.BOOKS / "LICENSE").read_text().startswith("MIT")
    pyproject = (paths.ROOT / "pyproject.toml").read_text(encoding="utf-8")  # no tomllib in 3.10
    flags = re.MULTILINE | re.DOTALL
    listed = re.search(r'^"compass\.evaluation" = \[(.*?)\]', pyproject, flags).group(1)
    patterns = re.findall(r'"([^"]+)"', listed)
    for path in [*lc.BOOKS.iterdir(), *lc.DATA.glob("prompt/*/*.txt")]:
        rel = path.relative_to(lc.DATA.parent).as_posix()
        assert any(fnmatch(rel, pattern) for pattern in patterns), rel


def test_bundled_books_are_byte_exact_prefixes_of_oneruler_books():
    books = fixture_path("oneruler", "books")
    assert (lc.BOOKS / "LICENSE").read_bytes() == (books / "LICENSE").read_bytes()
    for lang in lc.bundled_books():
        (source,) = sorted((books / lang).glob("*.txt"))
        data, full = (lc.BOOKS / f"{lang}.txt").read_bytes(), source.read_bytes()
        assert full.startswith(data), lang
        assert b"\n" not in full[len(data):16_384], lang  # cut at the last line end within 16 KB
        assert f"`OneRuler/data/books/{lang}/{source.name}` | first {len(data):,} of " \
               f"{len(full):,} |" in (lc.DATA / "NOTICE.md").read_text(encoding="utf-8")


def test_reproduces_the_real_oneruler_instance_format():
    """A real generated niah_single instance (en, de): our assembly of its haystack, key and
    value gives its input, up to the generating fork's two changes (no period after the needle;
    one instruction line appended)."""
    generated = fixture_path("oneruler", "generated_niah_single")
    appended = "\n\nReturn only the answer in the requested format."
    for lang in ("en", "de"):
        for line in (generated / f"{lang}.jsonl").read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            text, (value,) = record["input"], record["outputs"]
            head, tail = lc.niah_prompt_template(lang).split("{context}")
            assert text.startswith(head) and text.endswith(appended)
            question = re.escape(tail).replace(re.escape("{query1}"), "(.+?)")
            key = re.search(question + re.escape(appended) + "$", text).group(1)
            bare = lc.needle(lang, key, value)[:-1]  # the fork's needle has no period
            context = text[len(head):text.index(tail.format(query1=key))]
            before, after = context.split(bare)
            ours = lc.niah_prompt(lang, [before.strip(), after.strip()], [(key, value, 0.5)], [key])
            assert ours == text.replace(bare, bare + ".")[:-len(appended)]


# --- errors ------------------------------------------------------------------------------------

def test_errors_name_the_value_and_what_is_allowed(tok, tmp_path):
    with pytest.raises(ValueError, match=r"unknown OneRuler language 'xx'; allowed: cs, da, .*zh"):
        lc.make_samples(tok, "xx")
    with pytest.raises(ValueError, match=r"unknown task\(s\) \['niah_multi'\]; allowed: niah_"):
        lc.make_samples(tok, "en", tasks=("niah_single", "niah_multi"))
    with pytest.raises(ValueError, match=r"length 100 is too small for niah_single in 'en': .* "
                                         r"take \d+ tokens"):
        lc.make_samples(tok, "en", tasks=("niah_single",), lengths=(100,))
    with pytest.raises(ValueError, match=r"length 100 is too small for cwe"):
        lc.make_samples(tok, "en", tasks=("cwe",), lengths=(100,))
    with pytest.raises(ValueError, match=r"positive integers .* \[0, '512'\]"):
        lc.make_samples(tok, "en", lengths=(0, "512"))
    write_book(tmp_path, "en", " \n\t ")
    with pytest.raises(ValueError, match=r"OneRuler book for 'en' \(.*en/book.txt\) has no text"):
        lc.make_samples(tok, "en", tasks=("niah_single",), books=tmp_path)
    with pytest.raises(ValueError, match="unknown task 'qa'"):
        lc.score({"task": "qa", "lang": "en", "outputs": []}, "x")
    with pytest.raises(ValueError, match=r"unknown scoring 'tag'; allowed: oneruler, answer_tag"):
        lc.score({"task": "cwe", "lang": "en", "outputs": []}, "x", scoring="tag")


# --- scoring -----------------------------------------------------------------------------------

def _s(task, outputs, lang="en"):
    return {"task": task, "lang": lang, "outputs": outputs}


def _both(sample, prediction):
    return lc.score(sample, prediction), lc.score(sample, prediction, scoring="answer_tag")


@pytest.mark.parametrize("prediction, oneruler, answer_tag", [
    ("<Answer> 1234567 </Answer>", 1.0, 1.0),
    ("1234567", 1.0, 1.0),
    ("The number is 1234567, found in 1 place.", 1.0, 1.0),  # single digits are not needles
    ("<Answer> 1234567", 1.0, 1.0),  # unclosed tag: to the end
    # OneRuler reads the whole answer: numbers outside the tags count
    ("<Answer> see below </Answer> The number is 1234567.", 1.0, 0.0),
    ("<Answer> 1234567 </Answer> and also 7654321", 0.0, 1.0),
    ("1234567 7654321", 0.0, 0.0),  # an extra number fails
    ("01234567 1234567", 0.0, 1.0),  # OneRuler: two distinct number strings for one value
    ("123456", 0.0, 0.0),
    ("none", 0.0, 0.0),
    ("1234567, or none", 0.0, 0.0),  # the none word fails NIAH
    ("1234567 (None of the others)", 1.0, 0.0),  # OneRuler: the none word case-sensitively
    ("1234567, nonetheless", 0.0, 1.0),  # OneRuler: the none word as a substring
    ("", 0.0, 0.0),
])
def test_score_niah_single(prediction, oneruler, answer_tag):
    assert _both(_s("niah_single", ["1234567"]), prediction) == (oneruler, answer_tag)


def test_score_niah_multi_is_an_exact_set():
    sample = _s("niah_multiquery", ["1234567", "7654321"])
    for scoring in lc.SCORINGS:
        assert lc.score(sample, "7654321, 1234567", scoring) == 1.0
        assert lc.score(sample, "1234567 1234567 7654321", scoring) == 1.0  # repeats do not matter
        assert lc.score(sample, "1234567", scoring) == 0.0
        assert lc.score(sample, "1234567 7654321 1111111", scoring) == 0.0
        tagged = _s("niah_multikey", ["1234567"])
        assert lc.score(tagged, "<Answer>1234567</Answer>", scoring) == 1.0


@pytest.mark.parametrize("lang, prediction, oneruler, answer_tag", [
    ("en", "none", 1.0, 1.0), ("en", "<Answer> None. </Answer>", 1.0, 1.0),
    ("en", "NONE", 1.0, 1.0),  # OneRuler lower-cases niah_none answers (clean_text)
    ("en", "nonetheless", 1.0, 0.0),  # OneRuler: a substring
    ("en", "none 1234567", 1.0, 0.0),  # OneRuler: its number check is commented out
    ("en", "1234567", 0.0, 0.0), ("en", "", 0.0, 0.0),
    ("de", "<Antwort> Keine vorhanden </Antwort>", 1.0, 1.0), ("de", "keine  vorhanden", 1.0, 1.0),
    ("de", "Keine", 0.0, 0.0),
    ("fa", "هیچ‌کدام", 1.0, 1.0), ("fa", "هیچ کدام", 1.0, 1.0),
    ("ru", "Нет.", 1.0, 1.0), ("ru", "монета", 1.0, 0.0),  # монета holds нет
    ("ja", "数字はありません", 1.0, 1.0), ("ja", "答えはなしです", 1.0, 1.0),
    ("uk", "Нема", 1.0, 1.0), ("cs", "žádná", 1.0, 1.0),
    ("vi", "<Câu trả lời> Không có </Câu trả lời>", 1.0, 1.0),
])
def test_score_niah_none(lang, prediction, oneruler, answer_tag):
    sample = _s("niah_none", [lc.niah_template(lang)["none"]], lang)
    assert _both(sample, prediction) == (oneruler, answer_tag)


def test_a_case_variant_none_word_counts_differently_in_niah():
    """OneRuler looks for the none word in a NIAH answer case-sensitively (as written, or lower-
    cased without spaces), answer_tag case-insensitively: "None" beside the right number passes
    OneRuler's rule only; the word in the template's own case fails both."""
    assert _both(_s("niah_single", ["1234567"]), "1234567. None else.") == (1.0, 0.0)
    assert _both(_s("niah_single", ["1234567"], "de"), "1234567 KEINE VORHANDEN") == (1.0, 0.0)
    assert _both(_s("niah_single", ["1234567"], "de"), "1234567 keine vorhanden") == (1.0, 0.0)
    assert _both(_s("niah_single", ["1234567"], "de"), "1234567 keinevorhanden") == (0.0, 0.0)
    assert _both(_s("niah_single", ["1234567"], "de"), "1234567 Keine vorhanden") == (0.0, 0.0)


def test_score_cwe_needs_every_word():
    words = list(lc.nouns("en")[:10])
    sample = _s("cwe", words)
    for scoring in lc.SCORINGS:
        tagged = "<Answer> " + ", ".join(reversed(words)).upper() + " </Answer>"
        assert lc.score(sample, tagged, scoring) == 1.0
        assert lc.score(sample, ", ".join(words[1:]), scoring) == 0.0
        assert lc.score(sample, " ".join(words) + " and more words", scoring) == 1.0
    outside = "<Answer> " + ", ".join(words[:5]) + " </Answer> " + ", ".join(words[5:])
    assert _both(sample, outside) == (1.0, 0.0)


# --- runner ------------------------------------------------------------------------------------

def test_evaluate_smoke_with_tiny_model(tok):
    from tests.tiny_lm import tiny_gemma

    model = tiny_gemma(len(tok))
    samples = lc.make_samples(tok, "en", lengths=(768,), samples_per_task=1)
    frame = lc.evaluate(model, tok, samples, max_new_tokens=4, show_progress_bar=False)
    assert list(frame.columns) == ["id", "lang", "task", "length", "context_tokens", "repetition",
                                   "depth", "prediction", "score"]
    assert list(frame["id"]) == [s["id"] for s in samples] and len(frame) == 4
    assert frame["score"].isin([0.0, 1.0]).all()
    assert all(isinstance(p, str) for p in frame["prediction"])
    assert frame["repetition"].tolist()[:3] == [s["repetition"] for s in samples[:3]]
    assert frame["repetition"].isna().tolist() == [False, False, False, True]  # cwe: no book
    tagged = lc.evaluate(model, tok, samples, scoring="answer_tag", max_new_tokens=4,
                         show_progress_bar=False)
    assert tagged["score"].tolist() == [lc.score(s, p, "answer_tag")
                                        for s, p in zip(samples, tagged["prediction"])]
    with pytest.raises(ValueError, match="unknown scoring 'strict'"):
        lc.evaluate(model, tok, samples, scoring="strict")
    batched = lc.generate(model, tok, samples[:2], max_new_tokens=4, batch_size=2,
                          show_progress_bar=False)
    assert len(batched) == 2 and tok.padding_side == "right" and not model.training
    same = dict.fromkeys(lc.DEFAULT_TASKS, 3)
    assert (lc.generate(model, tok, samples, max_new_tokens=same, batch_size=4,
                        show_progress_bar=False)
            == lc.generate(model, tok, samples, max_new_tokens=3, batch_size=4,
                           show_progress_bar=False))
    limits = {"niah_single": 2, "niah_multikey": 5, "niah_none": 1, "cwe": 3}
    assert (lc.generate(model, tok, samples, max_new_tokens=limits, show_progress_bar=False)
            == [lc.generate(model, tok, [s], max_new_tokens=limits[s["task"]],
                            show_progress_bar=False)[0] for s in samples])
    with pytest.raises(ValueError, match=r"no limit for task\(s\) \['cwe'\]"):
        lc.generate(model, tok, samples, max_new_tokens={"niah_single": 2, "niah_multikey": 2,
                                                         "niah_none": 2})
    table = lc.summary(frame)
    assert list(table.columns) == ["task", "length", "score", "n", "repetition"]
    assert list(table["task"]) == list(lc.DEFAULT_TASKS) and (table["n"] == 1).all()


def test_summary_means_per_task_and_length():
    import pandas as pd

    frame = pd.DataFrame({"task": ["cwe", "niah_single", "niah_single", "niah_single"],
                          "length": [512, 512, 512, 1024], "score": [0.0, 1.0, 0.0, 1.0]})
    table = lc.summary(frame)
    assert table.to_dict("records") == [
        {"task": "niah_single", "length": 512, "score": 0.5, "n": 2},
        {"task": "niah_single", "length": 1024, "score": 1.0, "n": 1},
        {"task": "cwe", "length": 512, "score": 0.0, "n": 1}]
    two = pd.concat([frame.assign(method="zero_shot"), frame.assign(method="compass", score=1.0)])
    table = lc.summary(two, by=("method", "task", "length"))
    assert list(table["method"]) == ["zero_shot"] * 3 + ["compass"] * 3  # first appearance
    assert list(table["task"]) == ["niah_single", "niah_single", "cwe"] * 2
    assert list(table["score"]) == [0.5, 1.0, 0.0, 1.0, 1.0, 1.0]
    with_repetition = frame.assign(repetition=[None, 0.5, 0.7, 2.0])
    table = lc.summary(with_repetition)
    assert table["repetition"].tolist()[:2] == [0.7, 2.0] and table["repetition"].isna().tolist() \
        == [False, False, True]  # the largest of the group; cwe has no book


# --- the stage ---------------------------------------------------------------------------------

def _stage_cfg(**long_context):
    """A real config whose long_context carries the extra params the stage reads defensively."""
    from dataclasses import asdict, replace

    from compass import config

    cfg = config.from_dict({"languages": {"targets": ["en"]}})
    fields = {**asdict(cfg.long_context), "lengths": (768,), "samples_per_task": 1,
              "max_new_tokens": 3, "cwe_max_new_tokens": 3, **long_context}
    return replace(cfg, long_context=SimpleNamespace(**fields))


def test_stage_reads_books_and_the_scoring_param(tmp_path):
    from compass import config
    from compass.stages import long_context as stage

    assert stage.books_source(_stage_cfg()) == lc.BUNDLED  # no books param: the excerpts
    assert stage.books_source(_stage_cfg(books="shared/books")) == paths.ROOT / "shared/books"
    assert stage.books_source(_stage_cfg(books=str(tmp_path))) == tmp_path
    assert config.from_dict({}).long_context.scoring == "oneruler"
    assert config.from_dict({"long_context": {"scoring": "answer_tag"}}).long_context.scoring \
        == "answer_tag"
    with pytest.raises(ValueError, match=r"long_context.scoring.*'exact'.*oneruler"):
        config.from_dict({"long_context": {"scoring": "exact"}})
    assert stage.repetition_stats([{"repetition": None}]) is None
    assert stage.repetition_stats([{"repetition": 0.5}, {"repetition": 2.5}, {}]) == {
        "max": 2.5, "mean": 1.5}


def test_stage_without_a_book_notes_or_names_it_before_loading_a_model(tmp_path, monkeypatch):
    from compass.stages import long_context as stage
    from compass.training import models

    monkeypatch.setenv("COMPASS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(models, "load", lambda *a, **k: pytest.fail("loaded a model"))
    result = stage.run_long_context(_stage_cfg(), "sr", "tiny")  # sr: no bundled excerpt
    assert result["metrics"]["samples"] == 0
    assert "no OneRuler book excerpt for 'sr'" in result["metrics"]["note"]
    assert list(result["summary"].columns) == stage.SUMMARY_COLUMNS
    with pytest.raises(FileNotFoundError, match=rf"no OneRuler book for 'en' in {tmp_path}"):
        stage.run_long_context(_stage_cfg(books=str(tmp_path)), "en", "tiny")


def test_stage_scores_on_the_book_and_reports_its_repetition(tok, tmp_path, monkeypatch):
    """The whole stage with a tiny model (adapters faked by the base model): the haystack is the
    book, the repetition is in the samples, summary and metrics, and a note says it repeated."""
    from compass import io
    from compass.stages import long_context as stage
    from compass.training import adapters, models
    from tests.tiny_lm import tiny_gemma

    class NoAdapters:
        def __init__(self, model_name):
            pass

        def attach(self, model, entries):
            return model

        activate = staticmethod(lambda model, lang, method: None)

    monkeypatch.setenv("COMPASS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(models, "load", lambda *a, **k: (tiny_gemma(len(tok)), tok))
    monkeypatch.setattr(adapters, "AdapterRegistry", NoAdapters)
    write_book(tmp_path / "books", "en", "A short book. It has three sentences. The end.\n")
    cfg = _stage_cfg(books=str(tmp_path / "books"), scoring="answer_tag")
    result = stage.run_long_context(cfg, "en", "tiny", show_progress_bar=False)
    metrics = io.read_json(paths.long_context_metrics("en", "tiny"))
    assert metrics["scoring"] == "answer_tag" and metrics["samples"] == 4
    assert metrics["book"] == [str(tmp_path / "books" / "en" / "book.txt")]
    assert metrics["repetition"]["max"] > 10 and "repeats en's book up to" in metrics["note"]
    summary = io.read_csv(paths.long_context_dir("en", "tiny") / "summary.csv", numeric=True)
    assert list(summary.columns) == stage.SUMMARY_COLUMNS
    assert set(summary["method"]) == {"zero_shot", *cfg.train.methods}
    assert (summary.loc[summary["task"] != "cwe", "repetition"] > 10).all()
    assert summary.loc[summary["task"] == "cwe", "repetition"].isna().all()
    samples = io.read_jsonl(paths.long_context_dir("en", "tiny") / "samples.jsonl")
    assert "A short book. It has three sentences. The end. A short book." in samples[0]["input"]
    assert result["predictions"]["repetition"].notna().sum() == 3 * (1 + len(cfg.train.methods))
