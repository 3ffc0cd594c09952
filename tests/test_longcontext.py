"""OneRuler-style long-context samples, scoring and runner (fast: tiny tokenizer and model)."""
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from compass.evaluation import longcontext as lc

FIXTURES = Path("/work/shared/fixtures/oneruler/generated_niah_single")
LENGTH = 1024  # the tiny BPE tokenizer (400 tokens) needs ~300-800 for the templates alone


@pytest.fixture(scope="module")
def tok():
    from tests.tiny_lm import tiny_tokenizer

    return tiny_tokenizer()


@pytest.fixture(scope="module")
def texts():
    from compass.data.tiny import load_pairs

    pairs = load_pairs()
    return {lang: [t for p in pairs if p["language"] == lang for t in (p["prompt"], p["response"])]
            for lang in ("en", "uk")}


@pytest.fixture(scope="module")
def samples(tok, texts):
    return lc.make_samples(tok, texts["en"], "en", tasks=lc.TASKS, lengths=(LENGTH,),
                           samples_per_task=2, seed=0)


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

def test_same_seed_same_samples_other_seed_differs(tok, texts, samples):
    again = lc.make_samples(tok, texts["en"], "en", tasks=lc.TASKS, lengths=(LENGTH,),
                            samples_per_task=2, seed=0)
    assert again == samples
    other = lc.make_samples(tok, texts["en"], "en", tasks=lc.TASKS, lengths=(LENGTH,),
                            samples_per_task=2, seed=1)
    assert [s["id"] for s in other] == [s["id"] for s in samples]
    assert all(a["input"] != b["input"] for a, b in zip(other, samples))
    # a sample does not depend on which other tasks were asked for
    alone = lc.make_samples(tok, texts["en"], "en", tasks=("niah_none",), lengths=(LENGTH,),
                            samples_per_task=2, seed=0)
    assert alone == _task(samples, "niah_none")


def test_sample_fields_and_ids(samples):
    assert [s["id"] for s in samples] == [f"{t}-{LENGTH}-{i}" for t in lc.TASKS for i in (0, 1)]
    for s in samples:
        assert {"id", "task", "length", "lang", "input", "outputs", "depth",
                "context_tokens"} <= set(s)
        assert s["lang"] == "en" and s["length"] == LENGTH and s["outputs"]


def test_context_tokens_measured_and_close_to_length(tok, texts, samples):
    uk = lc.make_samples(tok, texts["uk"], "uk", lengths=(1536,), samples_per_task=1)
    for s in samples + uk:
        assert s["context_tokens"] == lc.count_tokens(tok, s["input"])
        assert 0.97 * s["length"] <= s["context_tokens"] <= s["length"], s["id"]


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


def test_needle_sits_at_its_depth(tok, texts):
    for s in lc.make_samples(tok, texts["en"], "en", tasks=("niah_single",), lengths=(LENGTH,),
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
    short, long = (lc.make_samples(tok, [], "en", tasks=("cwe",), lengths=(n,),
                                   samples_per_task=1)[0] for n in (600, 2400))
    assert short["repeats"]["common"] < 10 and short["context_tokens"] <= 600
    assert long["repeats"] == {"common": 20, "other": 2}  # the 90 other words ran out at 10 / 1
    assert 0.97 * 2400 <= long["context_tokens"] <= 2400


def test_all_languages_generate(tok):
    for lang in lc.LANGUAGES:
        hay = [f"{lc.nouns(lang)[i]} {lc.nouns(lang)[i + 1]}." for i in range(0, 40, 2)]
        (s,) = lc.make_samples(tok, hay, lang, tasks=("niah_multikey",), lengths=(3000,),
                               samples_per_task=1)
        assert s["context_tokens"] <= 3000
        for n in s["needles"]:
            assert s["input"].count(lc.needle(lang, n["key"], n["value"])) == 1


def test_reproduces_the_real_oneruler_instance_format():
    """A real generated niah_single instance (en, de): our assembly of its haystack, key and
    value gives its input, up to the generating fork's two changes (no period after the needle;
    one instruction line appended)."""
    if not FIXTURES.exists():
        pytest.skip("OneRuler fixtures not available")
    appended = "\n\nReturn only the answer in the requested format."
    for lang in ("en", "de"):
        for line in (FIXTURES / f"{lang}.jsonl").read_text(encoding="utf-8").splitlines():
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

def test_errors_name_the_value_and_what_is_allowed(tok, texts):
    with pytest.raises(ValueError, match=r"unknown OneRuler language 'xx'; allowed: cs, da, .*zh"):
        lc.make_samples(tok, texts["en"], "xx")
    with pytest.raises(ValueError, match=r"unknown task\(s\) \['niah_multi'\]; allowed: niah_"):
        lc.make_samples(tok, texts["en"], "en", tasks=("niah_single", "niah_multi"))
    with pytest.raises(ValueError, match=r"length 100 is too small for niah_single in 'en': .* "
                                         r"take \d+ tokens"):
        lc.make_samples(tok, texts["en"], "en", tasks=("niah_single",), lengths=(100,))
    with pytest.raises(ValueError, match=r"length 100 is too small for cwe"):
        lc.make_samples(tok, texts["en"], "en", tasks=("cwe",), lengths=(100,))
    with pytest.raises(ValueError, match=r"positive integers .* \[0, '512'\]"):
        lc.make_samples(tok, texts["en"], "en", lengths=(0, "512"))
    with pytest.raises(ValueError, match=r"no sentences"):
        lc.make_samples(tok, ["", " "], "en", tasks=("niah_single",))
    with pytest.raises(ValueError, match="unknown task 'qa'"):
        lc.score({"task": "qa", "lang": "en", "outputs": []}, "x")


# --- scoring -----------------------------------------------------------------------------------

def _s(task, outputs, lang="en"):
    return {"task": task, "lang": lang, "outputs": outputs}


@pytest.mark.parametrize("prediction, expected", [
    ("<Answer> 1234567 </Answer>", 1.0),
    ("1234567", 1.0),
    ("The number is 1234567, found in 1 place.", 1.0),  # single digits are not needle numbers
    ("<Answer> 1234567", 1.0),  # unclosed tag: to the end
    ("<Answer> 1234567 </Answer> and also 7654321", 1.0),  # only the tagged answer counts
    ("1234567 7654321", 0.0),  # an extra number fails
    ("123456", 0.0),
    ("none", 0.0),
    ("1234567, or none", 0.0),  # the none word fails NIAH
    ("", 0.0),
])
def test_score_niah_single(prediction, expected):
    assert lc.score(_s("niah_single", ["1234567"]), prediction) == expected


def test_score_niah_multi_is_an_exact_set():
    sample = _s("niah_multiquery", ["1234567", "7654321"])
    assert lc.score(sample, "7654321, 1234567") == 1.0
    assert lc.score(sample, "1234567 1234567 7654321") == 1.0  # repeats do not matter
    assert lc.score(sample, "1234567") == 0.0
    assert lc.score(sample, "1234567 7654321 1111111") == 0.0
    assert lc.score(_s("niah_multikey", ["1234567"]), "<Answer>1234567</Answer>") == 1.0


@pytest.mark.parametrize("lang, prediction, expected", [
    ("en", "none", 1.0), ("en", "<Answer> None. </Answer>", 1.0), ("en", "NONE", 1.0),
    ("en", "nonetheless", 0.0), ("en", "none 1234567", 0.0), ("en", "1234567", 0.0),
    ("en", "", 0.0),
    ("de", "<Antwort> Keine vorhanden </Antwort>", 1.0), ("de", "keine  vorhanden", 1.0),
    ("de", "Keine", 0.0),
    ("fa", "هیچ‌کدام", 1.0), ("fa", "هیچ کدام", 1.0),
    ("ru", "Нет.", 1.0), ("ru", "монета", 0.0),
    ("ja", "数字はありません", 1.0), ("ja", "答えはなしです", 1.0),
    ("uk", "Нема", 1.0), ("cs", "žádná", 1.0),
    ("vi", "<Câu trả lời> Không có </Câu trả lời>", 1.0),
])
def test_score_niah_none(lang, prediction, expected):
    sample = _s("niah_none", [lc.niah_template(lang)["none"]], lang)
    assert lc.score(sample, prediction) == expected


def test_score_cwe_needs_every_word():
    words = list(lc.nouns("en")[:10])
    sample = _s("cwe", words)
    assert lc.score(sample, "<Answer> " + ", ".join(reversed(words)).upper() + " </Answer>") == 1.0
    assert lc.score(sample, ", ".join(words[1:])) == 0.0
    assert lc.score(sample, " ".join(words) + " and more words") == 1.0


# --- runner ------------------------------------------------------------------------------------

def test_evaluate_smoke_with_tiny_model(tok, texts):
    from tests.tiny_lm import tiny_gemma

    model = tiny_gemma(len(tok))
    samples = lc.make_samples(tok, texts["en"], "en", lengths=(768,), samples_per_task=1)
    frame = lc.evaluate(model, tok, samples, max_new_tokens=4, show_progress_bar=False)
    assert list(frame.columns) == ["id", "lang", "task", "length", "context_tokens", "depth",
                                   "prediction", "score"]
    assert list(frame["id"]) == [s["id"] for s in samples] and len(frame) == 4
    assert frame["score"].isin([0.0, 1.0]).all()
    assert all(isinstance(p, str) for p in frame["prediction"])
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
    assert list(table.columns) == ["task", "length", "score", "n"]
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
