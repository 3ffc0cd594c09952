"""Loaders of the paper profile (compass.data.sets) on real-format rows, offline.

The real rows live outside the repository in ``shared/fixtures`` beside it (or wherever
``COMPASS_FIXTURES`` points); the tests that need them are skipped when it is absent. The Aya
loader and the error paths are tested on small files written into ``tmp_path``, and on copies
of real rows edited there (an emptied option, an unknown label).
"""
from __future__ import annotations

import csv
import json
from collections import Counter

import pytest

from compass.data import errors
from compass.data.sets import aya, global_mmlu, mmlu_prox, prox_flattened
from compass.languages import UnknownLanguageError
from compass.schemas import MC_FIELDS, PAIR_FIELDS, SchemaError

from tests.conftest import SHARED_FIXTURES as FIXTURES
# missing fixtures fail these tests (COMPASS_FIXTURES=none skips them): conftest.fixture_path
needs_fixtures = pytest.mark.usefixtures("fixtures_dir")
GMMLU = FIXTURES / "global_mmlu"
PROX = FIXTURES / "mmlu_prox_lite"


@pytest.fixture(scope="session")
def hf_cache(tmp_path_factory):
    """A private `datasets` cache, so the tests leave nothing in ~/.cache."""
    return str(tmp_path_factory.mktemp("hf_cache"))


def _check_mc(items, n_choices_max, lang):
    for item in items:
        assert set(MC_FIELDS) <= set(item)
        assert item["language"] == lang
        assert isinstance(item["answer"], int)
        assert 0 <= item["answer"] < len(item["choices"]) <= n_choices_max
        assert item["question"] and item["choices"][item["answer"]]
    assert len({item["id"] for item in items}) == len(items)


# --------------------------------------------------------------------------------------------
# Global-MMLU


@needs_fixtures
@pytest.mark.parametrize("lang", ["en", "de", "ja", "zh", "ar", "es", "fr"])
def test_global_mmlu_lite_each_language(lang, hf_cache):
    items = global_mmlu.load_global_mmlu_lite(lang, source=GMMLU / "lite_test", cache_dir=hf_cache)
    assert len(items) == 400
    _check_mc(items, 4, lang)
    assert all(len(item["choices"]) == 4 for item in items)
    assert Counter(item["cs_label"] for item in items) == {"CS": 200, "CA": 200}
    first = items[0]
    assert first["id"] == "astronomy/test/58"
    assert (first["topic"], first["category"], first["answer"]) == ("astronomy", "STEM", 2)


@needs_fixtures
def test_global_mmlu_lite_single_file_equals_folder(hf_cache):
    via_folder = global_mmlu.load_global_mmlu_lite("de", source=GMMLU / "lite_test",
                                                   cache_dir=hf_cache)
    via_file = global_mmlu.load_global_mmlu_lite("de", source=GMMLU / "lite_test" / "de.csv",
                                                 cache_dir=hf_cache)
    assert via_file == via_folder


@needs_fixtures
@pytest.mark.parametrize("lang", ["en", "es", "fr"])
def test_global_mmlu_dev_each_language(lang, hf_cache):
    # the fixture root holds dev/<lang>.jsonl: the <split>/<lang> layout
    items = global_mmlu.load_global_mmlu(lang, "dev", source=GMMLU, cache_dir=hf_cache)
    assert len(items) == 285
    _check_mc(items, 4, lang)
    per_subject = Counter(item["topic"] for item in items)
    assert len(per_subject) == 57 and set(per_subject.values()) == {5}
    assert items[0]["id"] == "abstract_algebra/dev/0" and items[0]["answer"] == 1  # 'B'


@needs_fixtures
def test_global_mmlu_dev_answers_agree_across_languages(hf_cache):
    en = global_mmlu.load_global_mmlu("en", "dev", source=GMMLU / "dev", cache_dir=hf_cache)
    fr = global_mmlu.load_global_mmlu("fr", "dev", source=GMMLU / "dev", cache_dir=hf_cache)
    assert [i["id"] for i in en] == [i["id"] for i in fr]
    assert [i["answer"] for i in en] == [i["answer"] for i in fr]
    assert en[0]["question"] != fr[0]["question"]


@needs_fixtures
def test_global_mmlu_subject_files(hf_cache):
    folder = GMMLU / "full_test_en"
    items = global_mmlu.load_global_mmlu("en", "test", source=folder, cache_dir=hf_cache)
    assert Counter(item["topic"] for item in items) == {"astronomy": 152, "anatomy": 135,
                                                         "marketing": 234}
    _check_mc(items, 4, "en")
    # the full test split marks items nobody annotated with '-'
    assert Counter(item["cs_label"] for item in items)["-"] == 85 + 102 + 184
    only = global_mmlu.load_global_mmlu("en", "test", source=folder, subjects=["anatomy"],
                                        cache_dir=hf_cache)
    assert len(only) == 135 and {item["topic"] for item in only} == {"anatomy"}
    single = global_mmlu.load_global_mmlu("en", "test", source=folder / "marketing.csv",
                                          cache_dir=hf_cache)
    assert len(single) == 234
    with pytest.raises(ValueError, match=r"unknown subject\(s\) \['virology'\].*anatomy"):
        global_mmlu.load_global_mmlu("en", "test", source=folder, subjects=["virology"],
                                     cache_dir=hf_cache)


@needs_fixtures
def test_global_mmlu_dev_as_pairs(hf_cache):
    items = global_mmlu.load_global_mmlu("es", "dev", source=GMMLU / "dev", cache_dir=hf_cache)
    pairs = global_mmlu.global_mmlu_dev_as_pairs(items)
    assert len(pairs) == 285 and len({p["id"] for p in pairs}) == 285
    for pair, item in zip(pairs, items):
        assert set(PAIR_FIELDS) <= set(pair)
        assert pair["response"] == item["choices"][item["answer"]]
        assert pair["prompt"].startswith(item["question"] + "\nA. ")
        assert f"\nD. {item['choices'][3]}" in pair["prompt"]
    assert pairs[0]["id"] == "es/global_mmlu/abstract_algebra/dev/0"
    assert pairs[0]["language"] == "es" and pairs[0]["source"] == "global_mmlu"


def test_global_mmlu_dev_as_pairs_rejects_bad_index():
    item = {"id": "x/dev/0", "language": "en", "topic": "x", "category": "", "question": "q",
            "choices": ["a", "b"], "answer": 2}
    with pytest.raises(SchemaError, match=r"'x/dev/0'.*answer 2"):
        global_mmlu.global_mmlu_dev_as_pairs([item])


@needs_fixtures
def test_global_mmlu_unknown_language_lists_available(hf_cache):
    # the fixture folder grows over time (es, fr arrived later): the expected list is what is there
    present = sorted(p.stem for p in (GMMLU / "lite_test").glob("*.csv"))
    assert "ko" not in present
    with pytest.raises(UnknownLanguageError, match=rf"'ko'.*available: {', '.join(present)}"):
        global_mmlu.load_global_mmlu_lite("ko", source=GMMLU / "lite_test", cache_dir=hf_cache)
    with pytest.raises(UnknownLanguageError, match="xx-not-a-language|not a known language"):
        global_mmlu.load_global_mmlu_lite("xx-not-a-language", source=GMMLU / "lite_test")


def test_bad_split_and_source():
    with pytest.raises(ValueError, match=r"split 'train' is not allowed; allowed: dev, test"):
        global_mmlu.load_global_mmlu("en", "train")
    with pytest.raises(ValueError, match=r"split 'dev' is not allowed; allowed: test, validation"):
        mmlu_prox.load_mmlu_prox("en", "dev")
    with pytest.raises(FileNotFoundError, match="neither an existing file/folder nor a hub"):
        global_mmlu.load_global_mmlu("en", "dev", source="no such folder")


GMMLU_HEADER = ["sample_id", "subject", "subject_category", "question", "option_a", "option_b",
                "option_c", "option_d", "answer", "cultural_sensitivity_label"]


def _write_csv(path, header, rows):
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


GOOD_ROW = ["s/test/0", "s", "STEM", "q0?", "a", "b", "c", "d", "A", "CA"]


def _test_dir(tmp_path):
    folder = tmp_path / "test"  # a folder named after the split the rows belong to
    folder.mkdir(exist_ok=True)
    return folder


def test_global_mmlu_missing_column_names_it_and_the_file(tmp_path, hf_cache):
    header = [c for c in GMMLU_HEADER if c != "option_c"]
    _write_csv(_test_dir(tmp_path) / "en.csv", header,
               [["s/test/0", "s", "STEM", "q?", "a", "b", "d", "A", "CA"]])
    with pytest.raises(SchemaError, match=r"en\.csv.*missing column\(s\) \['option_c'\]"):
        global_mmlu.load_global_mmlu("en", "test", source=tmp_path, cache_dir=hf_cache)


def test_global_mmlu_bad_answer_letter_names_the_row(tmp_path, hf_cache):
    rows = [["s/test/0", "s", "STEM", "q0", "a", "b", "c", "d", "D", "CA"],
            ["s/test/1", "s", "STEM", "q1", "a", "b", "c", "d", "E", "CS"]]
    path = _write_csv(_test_dir(tmp_path) / "de.csv", GMMLU_HEADER, rows)
    with pytest.raises(SchemaError, match=r"de\.csv row 1 \(sample_id 's/test/1'\).*'E'.*A, B, C, D"):
        global_mmlu.load_global_mmlu("de", "test", source=path, cache_dir=hf_cache)


def test_global_mmlu_csv_keeps_na_like_and_numeric_text(tmp_path, hf_cache):
    # pandas' defaults would read 'None'/'N/A' as missing and '1.50' as 1.5
    rows = [["s/dev/0", "s", "Other", "Which?", "None", "N/A", "1.50", "007", "C", "-"]]
    (tmp_path / "dev").mkdir()  # the split must be named by the path (pytest's folder says 'test')
    path = _write_csv(tmp_path / "dev" / "fr.csv", GMMLU_HEADER, rows)
    [item] = global_mmlu.load_global_mmlu("fr", "dev", source=path, cache_dir=hf_cache)
    assert item["choices"] == ["None", "N/A", "1.50", "007"]
    assert item["answer"] == 2 and item["cs_label"] == "-" and item["language"] == "fr"


# --------------------------------------------------------------------------------------------
# a local source must be what was asked for: language and split are read from its path


@needs_fixtures
def test_language_named_by_the_path_must_match(hf_cache):
    with pytest.raises(errors.SourceMismatchError,
                       match=r"lite_test/fr\.csv: the path names language 'fr' \(in 'fr'\) but "
                             r"language 'es' was asked for; refusing to load 'fr' rows as 'es'"):
        global_mmlu.load_global_mmlu_lite("es", source=GMMLU / "lite_test" / "fr.csv",
                                          cache_dir=hf_cache)
    with pytest.raises(errors.SourceMismatchError,
                       match=r"de/test\.tsv: the path names language 'de' \(in 'de'\) but "
                             r"language 'en' was asked for"):
        mmlu_prox.load_mmlu_prox_lite("en", source=PROX / "flattened_tsv" / "de")
    with pytest.raises(errors.SourceMismatchError, match=r"names language 'ja' \(in 'ja'\)"):
        prox_flattened.parse_flattened_prox_tsv(PROX / "flattened_tsv" / "ja" / "test.tsv", "zh")
    # a 639-3 code of the same language is the same language
    assert len(global_mmlu.load_global_mmlu_lite("fra",
                                                 source=GMMLU / "lite_test" / "fr.csv")) == 400


def test_language_split_folder_must_match(tmp_path, hf_cache):
    datasets = pytest.importorskip("datasets")
    folder = tmp_path / "fr" / "dev"  # the <lang>/<split> layout, with per-subject files
    folder.mkdir(parents=True)
    _write_csv(folder / "anatomy.csv", GMMLU_HEADER,
               [["anatomy/dev/0", "anatomy", "STEM", "q?", "a", "b", "c", "d", "A", "-"]])
    with pytest.raises(errors.SourceMismatchError,
                       match=r"fr/dev/anatomy\.csv: the path names language 'fr' \(in 'fr'\) but "
                             r"language 'es' was asked for"):
        global_mmlu.load_global_mmlu("es", "dev", source=folder, cache_dir=hf_cache)
    assert len(global_mmlu.load_global_mmlu("fr", "dev", source=folder, cache_dir=hf_cache)) == 1
    saved = tmp_path / "saved" / "fr" / "test"  # a saved Dataset in <lang>/<split>
    datasets.Dataset.from_list([_prox_row(1, 0, ["a", "b"])]).save_to_disk(saved)
    with pytest.raises(errors.SourceMismatchError, match=r"names language 'fr' \(in 'fr'\) but "
                                                       r"language 'es' was asked for"):
        mmlu_prox.load_mmlu_prox("es", source=saved)
    assert len(mmlu_prox.load_mmlu_prox("fr", source=saved)) == 1  # and its folder names the split


@needs_fixtures
def test_split_named_by_the_path_must_match(hf_cache):
    # test items must never load as dev rows: they would leak into the usage sample E_t
    with pytest.raises(errors.SourceMismatchError,
                       match=r"lite_test/en\.csv: the path names split 'test' \(in 'lite_test'\) "
                             r"but split 'dev' was asked for; refusing to load 'test' rows as 'dev'"):
        global_mmlu.load_global_mmlu("en", "dev", source=GMMLU / "lite_test", cache_dir=hf_cache)
    with pytest.raises(errors.SourceMismatchError,
                       match=r"full_test_en/anatomy\.csv: the path names split 'test' "
                             r"\(in 'full_test_en'\) but split 'dev' was asked for"):
        global_mmlu.load_global_mmlu("en", "dev", source=GMMLU / "full_test_en", cache_dir=hf_cache)
    with pytest.raises(errors.SourceMismatchError,
                       match=r"dev/es\.jsonl: the path names split 'dev' \(in 'dev'\) but split "
                             r"'test' was asked for"):
        global_mmlu.load_global_mmlu("es", "test", source=GMMLU / "dev" / "es.jsonl",
                                     cache_dir=hf_cache)
    with pytest.raises(errors.SourceMismatchError,
                       match=r"en/test\.tsv: the path names split 'test' \(in 'test'\) but split "
                             r"'validation' was asked for"):
        mmlu_prox.load_mmlu_prox_lite("en", "validation",
                                      source=PROX / "flattened_tsv" / "en" / "test.tsv")


@needs_fixtures
def test_split_of_a_saved_dataset_without_one_must_be_stated(hf_cache):
    with pytest.raises(errors.SourceMismatchError,
                       match=r"en_arrow: cannot tell which split this holds: neither its name nor "
                             r"its folder's names one of train, dev, validation, test; .*"
                             r"source_split='test'"):
        mmlu_prox.load_mmlu_prox_lite("en", source=PROX / "en_arrow", cache_dir=hf_cache)
    with pytest.raises(errors.SourceMismatchError,
                       match=r"source_split 'test' \(what the local source holds\) differs from "
                             r"the requested split 'validation'"):
        mmlu_prox.load_mmlu_prox_lite("en", "validation", source=PROX / "en_arrow",
                                      source_split="test", cache_dir=hf_cache)


def test_split_of_an_unnamed_file_must_be_stated(tmp_path, hf_cache):
    folder = tmp_path / "rows"  # names neither a language nor a split
    folder.mkdir()
    path = _write_csv(folder / "es.csv", GMMLU_HEADER,
                      [["s/dev/0", "s", "STEM", "q?", "a", "b", "c", "d", "B", "-"]])
    with pytest.raises(errors.SourceMismatchError,
                       match=r"rows/es\.csv: cannot tell which split this holds.*put it under a "
                             r"folder named 'dev' \(or name it 'dev\.csv'\), or state it with "
                             r"source_split='dev'"):
        global_mmlu.load_global_mmlu("es", "dev", source=folder, cache_dir=hf_cache)
    [item] = global_mmlu.load_global_mmlu("es", "dev", source=folder, source_split="dev",
                                          cache_dir=hf_cache)
    assert item["id"] == "s/dev/0"
    with pytest.raises(errors.SourceMismatchError,
                       match=r"source_split 'test'.*requested split 'dev'"):
        global_mmlu.load_global_mmlu("es", "dev", source=path, source_split="test",
                                     cache_dir=hf_cache)
    # a stated split does not override a path that names another one
    test_dir = _test_dir(tmp_path)
    _write_csv(test_dir / "es.csv", GMMLU_HEADER, [GOOD_ROW])
    with pytest.raises(errors.SourceMismatchError, match=r"names split 'test' \(in 'test'\)"):
        global_mmlu.load_global_mmlu("es", "dev", source=test_dir, source_split="dev",
                                     cache_dir=hf_cache)


# --------------------------------------------------------------------------------------------
# malformed text files: every problem names the file and the line


def test_csv_row_truncated_after_answer_names_the_line(tmp_path, hf_cache):
    cut = ["s/test/1", "s", "STEM", "q1?", "a", "b", "c", "d", "B"]  # no label field
    path = _write_csv(_test_dir(tmp_path) / "en.csv", GMMLU_HEADER, [GOOD_ROW, cut])
    with pytest.raises(SchemaError, match=r"en\.csv line 3: 9 field\(s\) where the header has 10; "
                                          r"the row ends after column 'answer' and lacks "
                                          r"\['cultural_sensitivity_label'\]"):
        global_mmlu.load_global_mmlu("en", "test", source=path, cache_dir=hf_cache)


def test_csv_extra_field_names_the_line(tmp_path, hf_cache):
    path = _write_csv(_test_dir(tmp_path) / "en.csv", GMMLU_HEADER, [GOOD_ROW + ["stray"]])
    with pytest.raises(SchemaError, match=r"en\.csv line 2: 11 fields where the header has 10.*"
                                          r"\['stray'\]"):
        global_mmlu.load_global_mmlu("en", "test", source=path, cache_dir=hf_cache)


def test_csv_cut_inside_a_quoted_field_names_the_line(tmp_path, hf_cache):
    path = _write_csv(_test_dir(tmp_path) / "en.csv", GMMLU_HEADER, [GOOD_ROW])
    with open(path, "a", encoding="utf-8", newline="") as handle:
        handle.write('s/test/1,s,STEM,"Which of these\nis tru')  # the download stopped here
    with pytest.raises(SchemaError, match=r"en\.csv line 3: the file ends inside a quoted field "
                                          r"that opens in the record starting on this line"):
        global_mmlu.load_global_mmlu("en", "test", source=path, cache_dir=hf_cache)


@pytest.mark.parametrize("name,text,message", [
    ("en.csv", ",".join(GMMLU_HEADER) + "\r\n", r"en\.csv: has a header row but no data rows"),
    ("en.csv", "", r"en\.csv: empty file \(no header row\)"),
    ("en.jsonl", "", r"en\.jsonl: empty file \(no JSON rows\)"),
    ("en.jsonl", "\n\n", r"en\.jsonl: empty file \(no JSON rows\)"),
])
def test_empty_files_are_named(tmp_path, hf_cache, name, text, message):
    path = _test_dir(tmp_path) / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SchemaError, match=message):
        global_mmlu.load_global_mmlu("en", "test", source=path, cache_dir=hf_cache)


def test_jsonl_truncated_row_names_the_line(tmp_path, hf_cache):
    good = dict(zip(GMMLU_HEADER, GOOD_ROW))
    path = _test_dir(tmp_path) / "en.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(good)[:40] + "\n", encoding="utf-8")
    with pytest.raises(SchemaError, match=r"en\.jsonl line 2: not valid JSON \(.*\); a truncated row"):
        global_mmlu.load_global_mmlu("en", "test", source=path, cache_dir=hf_cache)
    path.write_text(json.dumps(good) + "\n" + json.dumps([GOOD_ROW]) + "\n", encoding="utf-8")
    with pytest.raises(SchemaError, match=r"en\.jsonl line 2: a JSON list where a row object"):
        global_mmlu.load_global_mmlu("en", "test", source=path, cache_dir=hf_cache)


def test_utf8_bom_header_is_accepted(tmp_path, hf_cache):
    plain = _write_csv(_test_dir(tmp_path) / "en.csv", GMMLU_HEADER, [GOOD_ROW])
    expected = global_mmlu.load_global_mmlu("en", "test", source=plain, cache_dir=hf_cache)
    bom = tmp_path / "bom" / "test"
    bom.mkdir(parents=True)
    (bom / "en.csv").write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    assert global_mmlu.load_global_mmlu("en", "test", source=bom / "en.csv",
                                        cache_dir=hf_cache) == expected
    row = dict(zip(GMMLU_HEADER, GOOD_ROW))
    (bom / "en.jsonl").write_bytes(b"\xef\xbb\xbf" + json.dumps(row).encode() + b"\n")
    assert global_mmlu.load_global_mmlu("en", "test", source=bom / "en.jsonl",
                                        cache_dir=hf_cache) == expected


def test_not_utf8_is_named(tmp_path, hf_cache):
    path = _test_dir(tmp_path) / "en.csv"
    path.write_bytes(",".join(GMMLU_HEADER).encode() + b"\n" + "é".encode("latin-1") + b",x\n")
    with pytest.raises(SchemaError, match=r"en\.csv: not UTF-8 text \(byte \d+"):
        global_mmlu.load_global_mmlu("en", "test", source=path, cache_dir=hf_cache)


# --------------------------------------------------------------------------------------------
# incomplete rows are dropped and counted; cultural-sensitivity labels are checked


def _edited_copy(source, target, edits):
    """A copy of a real CSV/JSONL fixture with ``edits`` ({row index: function(row)}) applied."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.suffix == ".jsonl":
        rows = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines()]
    else:
        with open(source, encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    for i, edit in edits.items():
        edit(rows[i])
    if source.suffix == ".jsonl":
        return _write_jsonl(target, rows)
    return _write_csv(target, list(rows[0]), [list(r.values()) for r in rows])


def _set(**values):
    return lambda row: row.update(values)


@needs_fixtures
def test_real_fixture_rows_drop_nothing(hf_cache):
    # the count a data chapter reports for these files: no row lacks a question or an option
    loaded = [global_mmlu.load_global_mmlu_lite(lang, source=GMMLU / "lite_test",
                                                cache_dir=hf_cache)
              for lang in ["en", "de", "ja", "zh", "ar", "es", "fr"]]
    loaded += [global_mmlu.load_global_mmlu(lang, "dev", source=GMMLU, cache_dir=hf_cache)
               for lang in ["en", "es", "fr"]]
    loaded.append(global_mmlu.load_global_mmlu("en", "test", source=GMMLU / "full_test_en",
                                               cache_dir=hf_cache))
    assert [items.drops for items in loaded] == [Counter()] * len(loaded)
    assert sum(len(items) for items in loaded) == 7 * 400 + 3 * 285 + 152 + 135 + 234


@needs_fixtures
def test_empty_options_in_real_rows_are_dropped_and_counted(tmp_path, hf_cache):
    path = _edited_copy(GMMLU / "lite_test" / "en.csv", tmp_path / "lite_test" / "en.csv",
                        {10: _set(option_c=""), 11: _set(option_a="  "), 12: _set(option_d=""),
                         20: _set(question="")})
    with pytest.warns(UserWarning, match=r"dropped 4 row\(s\) \{'empty option': 3, "
                                         r"'empty question': 1\}; the result's \.dropped lists them"):
        items = global_mmlu.load_global_mmlu_lite("en", source=path, cache_dir=hf_cache)
    assert len(items) == 396 and items.drops == {"empty option": 3, "empty question": 1}
    first = items.dropped[0]
    assert first["reason"] == "empty option" and first["fields"] == ["option_c"]
    assert first["where"].endswith("en.csv row 10 (sample_id 'business_ethics/test/65'), "
                                   "line 12")
    assert [d["fields"] for d in items.dropped[1:]] == [["option_a"], ["option_d"], ["question"]]
    assert not {d["id"] for d in items.dropped} & {item["id"] for item in items}
    # the subject filter keeps the drops of the subjects it keeps
    topic = first["topic"]
    with pytest.warns(UserWarning, match="dropped"):
        only = global_mmlu.load_global_mmlu_lite("en", source=path, subjects=[topic],
                                                 cache_dir=hf_cache)
    assert {d["topic"] for d in only.dropped} == {topic}


@needs_fixtures
def test_missing_option_key_is_refused_and_null_option_dropped(tmp_path, hf_cache):
    target = tmp_path / "dev" / "en.jsonl"
    _edited_copy(GMMLU / "dev" / "en.jsonl", target, {3: lambda row: row.pop("option_d")})
    with pytest.raises(SchemaError, match=r"dev/en\.jsonl line 4: not a Global-MMLU file/source: "
                                          r"missing column\(s\) \['option_d'\]"):
        global_mmlu.load_global_mmlu("en", "dev", source=target, cache_dir=hf_cache)
    _edited_copy(GMMLU / "dev" / "en.jsonl", target, {3: _set(option_d=None)})
    with pytest.warns(UserWarning, match=r"dropped 1 row"):
        items = global_mmlu.load_global_mmlu("en", "dev", source=target, cache_dir=hf_cache)
    assert len(items) == 284 and items.dropped[0]["id"] == "abstract_algebra/dev/3"


def test_all_rows_dropped_is_an_error(tmp_path, hf_cache):
    path = _write_csv(_test_dir(tmp_path) / "en.csv", GMMLU_HEADER,
                      [["s/test/0", "s", "STEM", "q?", "a", "", "c", "d", "A", "CA"]])
    with pytest.raises(SchemaError, match=r"no usable Global-MMLU rows for 'en' split 'test': all 1 "
                                          r"dropped \(\{'empty option': 1\}\)"):
        global_mmlu.load_global_mmlu("en", "test", source=path, cache_dir=hf_cache)


@needs_fixtures
@pytest.mark.parametrize("label", ["CX", "cs", "", "C S"])
def test_unknown_cultural_label_names_the_row(tmp_path, hf_cache, label):
    path = _edited_copy(GMMLU / "lite_test" / "de.csv", tmp_path / "lite_test" / "de.csv",
                        {7: _set(cultural_sensitivity_label=label)})
    message = (rf"de\.csv row 7 \(sample_id 'business_ethics/test/52'\), line 9: "
               rf"cultural_sensitivity_label '{label}' is not allowed; allowed: CS, CA$")
    with pytest.raises(SchemaError, match=message):
        global_mmlu.load_global_mmlu_lite("de", source=path, cache_dir=hf_cache)


@needs_fixtures
def test_unannotated_label_only_outside_lite_test(tmp_path, hf_cache):
    path = _edited_copy(GMMLU / "lite_test" / "de.csv", tmp_path / "lite_test" / "de.csv",
                        {7: _set(cultural_sensitivity_label="-")})
    with pytest.raises(SchemaError, match=r"row 7 .*label '-' is not allowed; allowed: CS, CA$"):
        global_mmlu.load_global_mmlu_lite("de", source=path, cache_dir=hf_cache)
    items = global_mmlu.load_global_mmlu("de", "test", source=path, cache_dir=hf_cache)
    assert items[7]["cs_label"] == "-"
    path = _edited_copy(GMMLU / "full_test_en" / "anatomy.csv", tmp_path / "full_test_en" / "anatomy.csv",
                        {5: _set(cultural_sensitivity_label="unknown")})
    with pytest.raises(SchemaError, match=r"anatomy\.csv row 5 \(sample_id 'anatomy/test/5'\), "
                                          r"line 7: .*'unknown' is not allowed; allowed: CS, CA, -$"):
        global_mmlu.load_global_mmlu("en", "test", source=path, cache_dir=hf_cache)


# --------------------------------------------------------------------------------------------
# MMLU-ProX


@needs_fixtures
def test_mmlu_prox_arrow(hf_cache):
    items = mmlu_prox.load_mmlu_prox_lite("en", source=PROX / "en_arrow", source_split="test",
                                          cache_dir=hf_cache)
    assert len(items) == 588
    _check_mc(items, 10, "en")
    counts = Counter(len(item["choices"]) for item in items)
    assert counts[10] == 485 and min(counts) == 4  # missing options are dropped
    first = items[0]
    assert first["id"] == "70" and first["topic"] == "ori_mmlu-business_ethics"
    assert first["category"] == "business" and first["answer"] == 8  # 'I' of 9 options
    assert len(first["choices"]) == 9


@needs_fixtures
@pytest.mark.parametrize("lang", ["en", "de", "ja", "zh"])
@pytest.mark.parametrize("split,rows", [("test", 588), ("validation", 70)])
def test_mmlu_prox_flattened_tsv(lang, split, rows):
    items = mmlu_prox.load_mmlu_prox_lite(lang, split, source=PROX / "flattened_tsv")
    assert len(items) == rows
    _check_mc(items, 10, lang)
    assert all("\\n" not in c for item in items for c in item["choices"])
    direct = prox_flattened.parse_flattened_prox_tsv(PROX / "flattened_tsv" / lang / f"{split}.tsv",
                                                     lang)
    assert direct == items


def _plain(text: str) -> str:
    # the Arrow copy holds '\r', '\t' where MMLU-Pro's LaTeX lost its backslash ('\rho',
    # '\textphi'); the flattened TSV writes those back as backslash sequences
    return text.replace("\r", "\\r").replace("\t", "\\t")


@needs_fixtures
def test_mmlu_prox_arrow_and_tsv_agree_row_by_row(hf_cache):
    arrow = mmlu_prox.load_mmlu_prox_lite("en", source=PROX / "en_arrow", source_split="test",
                                          cache_dir=hf_cache)
    tsv = mmlu_prox.load_mmlu_prox_lite("en", source=PROX / "flattened_tsv" / "en")
    assert len(arrow) == len(tsv) == 588
    for a, t in zip(arrow, tsv):
        assert a["answer"] == t["answer"]
        assert [_plain(c) for c in a["choices"]] == t["choices"]
        assert _plain(a["choices"][a["answer"]]) == t["choices"][t["answer"]]
        assert _plain(a["question"]) == t["question"]  # literal \n decoded back to newlines
    assert sum("\n" in t["question"] for t in tsv) > 0


@needs_fixtures
@pytest.mark.parametrize("lang", ["de", "ja", "zh"])
def test_mmlu_prox_translations_follow_english_order(lang, hf_cache):
    arrow = mmlu_prox.load_mmlu_prox_lite("en", source=PROX / "en_arrow", source_split="test",
                                          cache_dir=hf_cache)
    items = mmlu_prox.load_mmlu_prox_lite(lang, source=PROX / "flattened_tsv")
    assert [i["answer"] for i in items] == [a["answer"] for a in arrow]
    assert [len(i["choices"]) for i in items] == [len(a["choices"]) for a in arrow]


@needs_fixtures
def test_mmlu_prox_unknown_language_lists_available():
    present = sorted(p.name for p in (PROX / "flattened_tsv").iterdir() if p.is_dir())
    assert "ko" not in present
    with pytest.raises(UnknownLanguageError, match=rf"'ko'.*available: {', '.join(present)}"):
        mmlu_prox.load_mmlu_prox_lite("ko", source=PROX / "flattened_tsv")


def _prox_row(qid, answer_index, options, letter=None, **extra):
    row = {"question_id": qid, "question": f"question {qid}?",
           **{f"option_{k}": (options[k] if k < len(options) else None) for k in range(10)},
           "answer": letter or "ABCDEFGHIJ"[answer_index], "answer_index": answer_index,
           "cot_content": "", "category": "math", "src": "stemez-Math"}
    row.update(extra)
    return row


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_mmlu_prox_missing_options_keep_the_answer(tmp_path, hf_cache):
    rows = [_prox_row(1, 3, ["a", "N/A", "c", "right", "", "f"]),
            _prox_row(2, 0, ["right", "b", "c", "d"], src="")]
    path = _write_jsonl(tmp_path / "test.jsonl", rows)
    first, second = mmlu_prox.load_mmlu_prox("uk", "test", source=path, cache_dir=hf_cache)
    assert first["choices"] == ["a", "c", "right", "f"] and first["answer"] == 2
    assert first["id"] == "1" and first["topic"] == "stemez-Math" and first["language"] == "uk"
    assert second["choices"][second["answer"]] == "right"
    assert second["topic"] == "math"  # no src: the category is the topic


@pytest.mark.parametrize("row,message", [
    (_prox_row(7, 1, ["a", "N/A", "c", "d"]), r"row 1 \(question_id 7\).*option_1 is missing"),
    (_prox_row(7, 1, ["a", "b", "c", "d"], letter="C"), r"row 1 \(question_id 7\).*disagrees"),
    (_prox_row(7, 1, ["a", "b", "c", "d"], letter="K"), r"row 1 \(question_id 7\).*'K'"),
])
def test_mmlu_prox_bad_rows_name_the_row(tmp_path, hf_cache, row, message):
    _write_jsonl(tmp_path / "validation.jsonl", [_prox_row(6, 0, ["a", "b"]), row])
    with pytest.raises(SchemaError, match=message):
        mmlu_prox.load_mmlu_prox("en", "validation", source=tmp_path, cache_dir=hf_cache)


def test_mmlu_prox_missing_column(tmp_path, hf_cache):
    row = _prox_row(1, 0, ["a", "b"])
    del row["answer_index"]
    path = _write_jsonl(tmp_path / "test.jsonl", [row])
    with pytest.raises(SchemaError, match=r"test\.jsonl.*missing column\(s\) \['answer_index'\]"):
        mmlu_prox.load_mmlu_prox("en", source=path, cache_dir=hf_cache)


def test_flattened_tsv_errors(tmp_path):
    good = "What?\\nA. one\\nB. two\\nC. three"
    path = tmp_path / "test.tsv"
    path.write_text(f"{good}\tB\n{good}\tD\n", encoding="utf-8")  # D: only 3 options
    with pytest.raises(SchemaError, match=r"test\.tsv row 1: answer 'D' is not one of A, B, C"):
        prox_flattened.parse_flattened_prox_tsv(path, "en")
    path.write_text(f"{good}\tB\textra\n", encoding="utf-8")
    with pytest.raises(SchemaError, match=r"row 0: expected 2 tab-separated columns"):
        prox_flattened.parse_flattened_prox_tsv(path, "en")
    path.write_text("no options here\tA\n", encoding="utf-8")
    with pytest.raises(SchemaError, match=r"row 0: no option marker"):
        prox_flattened.parse_flattened_prox_tsv(path, "en")
    path.write_text("Line one\\nline two\\nA. x\\nB. y\tA\n", encoding="utf-8")
    [item] = prox_flattened.parse_flattened_prox_tsv(path, "eng")
    assert item == {"id": "test/0", "language": "en", "topic": "", "category": "",
                    "question": "Line one\nline two", "choices": ["x", "y"], "answer": 0}


def test_flattened_tsv_keeps_latex_that_begins_with_backslash_n(tmp_path):
    # the flattening writes line breaks as backslash-n and leaves backslashes alone: '\nu' is
    # LaTeX, '\nWhich' and '\nnull' are breaks before 'Which' and 'null'
    text = (r"Let $\nu$ be a measure, $\nu(A) \neq 0$, $\nabla f = 0$, $x \not\in A$, $\nexists y$."
            r"\nWhich holds?\nA. $\nu = 1$\nB. $\nabla \cdot E \neq 0$\nC. none\nD. the\nnull set")
    path = tmp_path / "test.tsv"
    path.write_text(f"{text}\tB\n", encoding="utf-8")
    [item] = prox_flattened.parse_flattened_prox_tsv(path, "en")
    assert item["question"] == ("Let $\\nu$ be a measure, $\\nu(A) \\neq 0$, $\\nabla f = 0$, "
                                "$x \\not\\in A$, $\\nexists y$.\nWhich holds?")
    assert item["choices"] == ["$\\nu = 1$", "$\\nabla \\cdot E \\neq 0$", "none", "the\nnull set"]


@needs_fixtures
def test_flattened_tsv_line_breaks_on_real_rows(tmp_path, hf_cache):
    tsv = mmlu_prox.load_mmlu_prox_lite("en", source=PROX / "flattened_tsv")
    arrow = mmlu_prox.load_mmlu_prox_lite("en", source=PROX / "en_arrow", source_split="test",
                                          cache_dir=hf_cache)
    # real breaks before lowercase text and inside display math decode as in the original
    assert "The\ncone’s height" in tsv[406]["question"]
    assert "problem\n$$\ny^{\\prime}+\\frac{2}{3}" in tsv[409]["question"]
    # row 403 lost the backslash-r of '\right' upstream: the original itself holds a break there
    assert "\\left\\{\\xi_n\night\\}$" in tsv[403]["question"] == arrow[403]["question"]
    german = mmlu_prox.load_mmlu_prox_lite("de", source=PROX / "flattened_tsv")[403]["question"]
    assert "\\xi_n\\right\\}" in german and "\\rightarrow" in german
    # the same real row with LaTeX that begins with backslash-n next to those breaks
    line = (PROX / "flattened_tsv" / "en" / "test.tsv").read_text(encoding="utf-8").splitlines()[403]
    edited = tmp_path / "en" / "test.tsv"
    edited.parent.mkdir()
    edited.write_text(line.replace(r"\xi_n", r"\nu_n").replace("Suppose", r"Suppose $\nabla \neq 0$,")
                      + "\n", encoding="utf-8")
    [item] = prox_flattened.parse_flattened_prox_tsv(edited, "en")
    expected = arrow[403]["question"].replace("\\xi_n", "\\nu_n").replace(
        "Suppose", "Suppose $\\nabla \\neq 0$,")
    assert item["question"] == expected and "\\nu_n\night" in expected
    assert item["choices"] == tsv[403]["choices"]


# --------------------------------------------------------------------------------------------
# Aya Dataset


AYA_ROWS = [
    {"inputs": "What is the capital of France?", "targets": "Paris.", "language": "English",
     "language_code": "eng", "annotation_type": "original-annotations", "user_id": "u1"},
    {"inputs": "Яка столиця України?", "targets": "Київ.", "language": "Ukrainian",
     "language_code": "ukr", "annotation_type": "re-annotations", "user_id": "u2"},
    {"inputs": "پایتخت ایران کجاست؟", "targets": "تهران", "language": "Western Persian",
     "language_code": "pes", "annotation_type": "original-annotations", "user_id": "u3"},
    {"inputs": "  ", "targets": "no prompt", "language": "English", "language_code": "eng",
     "annotation_type": "original-annotations", "user_id": "u4"},
    {"inputs": "Name a colour.", "targets": "Blue", "language": "English", "language_code": "eng",
     "annotation_type": "", "user_id": "u5"},
]


def test_aya_mapping(tmp_path, hf_cache):
    path = _write_jsonl(tmp_path / "aya.jsonl", AYA_ROWS)
    pairs = aya.load_aya(path, cache_dir=hf_cache)
    assert [p["id"] for p in pairs] == ["en/aya/0", "uk/aya/1", "fa/aya/2", "en/aya/4"]
    assert [p["language"] for p in pairs] == ["en", "uk", "fa", "en"]
    assert all(set(PAIR_FIELDS) == set(p) and p["source"] == "aya_dataset" for p in pairs)
    assert pairs[1]["prompt"] == "Яка столиця України?" and pairs[1]["response"] == "Київ."
    assert pairs[1]["topic"] == "re-annotations" and pairs[3]["topic"] == "aya"
    # the filter takes 639-3 or 639-1 codes; ids do not move
    subset = aya.load_aya(path, languages=["ukr", "fa"], cache_dir=hf_cache)
    assert [p["id"] for p in subset] == ["uk/aya/1", "fa/aya/2"]
    # a folder with a <split> file works too
    (tmp_path / "folder").mkdir()
    _write_jsonl(tmp_path / "folder" / "train.jsonl", AYA_ROWS)
    assert aya.load_aya(tmp_path / "folder", cache_dir=hf_cache) == pairs


def test_aya_errors(tmp_path, hf_cache):
    path = _write_jsonl(tmp_path / "aya.jsonl", AYA_ROWS)
    with pytest.raises(UnknownLanguageError, match=r"'deu'.*available: en, fa, uk"):
        aya.load_aya(path, languages=["deu"], cache_dir=hf_cache)
    broken = _write_jsonl(tmp_path / "broken.jsonl",
                          [{k: v for k, v in r.items() if k != "targets"} for r in AYA_ROWS])
    with pytest.raises(SchemaError, match=r"broken\.jsonl.*missing column\(s\) \['targets'\]"):
        aya.load_aya(broken, cache_dir=hf_cache)
    bad_code = _write_jsonl(tmp_path / "bad_code.jsonl", [{**AYA_ROWS[0], "language_code": "12"}])
    with pytest.raises(SchemaError, match=r"bad_code\.jsonl row 0: bad language_code '12'"):
        aya.load_aya(bad_code, cache_dir=hf_cache)
    with pytest.raises(ValueError, match=r"Aya split 'dev' is not allowed; allowed: train, test"):
        aya.load_aya(path, split="dev")


# --------------------------------------------------------------------------------------------
# hub names and config names (load_dataset replaced: no network)


def test_hub_calls_use_real_names(monkeypatch):
    datasets = pytest.importorskip("datasets")
    calls = []
    gm_row = dict(zip(GMMLU_HEADER, ["s/dev/0", "s", "STEM", "q", "a", "b", "c", "d", "B", "-"]))
    lite_row = {**gm_row, "cultural_sensitivity_label": "CS"}  # Lite test rows are all annotated
    prox_row = _prox_row(3, 2, ["a", "b", "c"])
    aya_row = AYA_ROWS[1]

    def fake_load_dataset(*args, split=None, **kwargs):
        calls.append((args, split))
        name = args[0]
        row = (aya_row if "aya" in name else prox_row if "ProX" in name
               else lite_row if "Lite" in name else gm_row)
        return datasets.Dataset.from_list([row])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    [item] = global_mmlu.load_global_mmlu("spa", "dev")
    assert item["language"] == "es" and item["answer"] == 1
    global_mmlu.load_global_mmlu_lite("ja")
    [prox] = mmlu_prox.load_mmlu_prox_lite("de", "validation")
    assert prox["answer"] == 2
    mmlu_prox.load_mmlu_prox("sw")
    [pair] = aya.load_aya(languages=["uk"])
    assert pair["id"] == "uk/aya/0"
    assert calls == [
        (("CohereLabs/Global-MMLU", "es"), "dev"),
        (("CohereLabs/Global-MMLU-Lite", "ja"), "test"),
        (("li-lab/MMLU-ProX-Lite", "de"), "validation"),
        (("li-lab/MMLU-ProX", "sw"), "test"),
        (("CohereLabs/aya_dataset",), "train"),
    ]
    monkeypatch.setattr(datasets, "load_dataset",
                        lambda *a, **k: datasets.Dataset.from_list([{"question": "q"}]))
    with pytest.raises(SchemaError, match=r"'CohereLabs/Global-MMLU' config 'en' split 'test'.*"
                                          r"missing column\(s\)"):
        global_mmlu.load_global_mmlu("en", "test")


def test_saved_to_disk_splits(tmp_path):
    datasets = pytest.importorskip("datasets")
    rows = [_prox_row(1, 1, ["a", "b", "c"]), _prox_row(2, 0, ["x", "y"])]
    test = datasets.Dataset.from_list(rows, split=datasets.NamedSplit("test"))
    datasets.DatasetDict({"test": test, "validation": test.select([1])}).save_to_disk(tmp_path / "dd")
    assert len(mmlu_prox.load_mmlu_prox("de", "validation", source=tmp_path / "dd")) == 1
    assert [i["id"] for i in mmlu_prox.load_mmlu_prox("de", "test",
                                                      source=tmp_path / "dd")] == ["1", "2"]
    test.save_to_disk(tmp_path / "ds")
    assert len(mmlu_prox.load_mmlu_prox("de", "test", source=tmp_path / "ds")) == 2
    with pytest.raises(SchemaError, match=r"holds split 'test', not the requested 'validation'"):
        mmlu_prox.load_mmlu_prox("de", "validation", source=tmp_path / "ds")


@needs_fixtures
def test_aya_collection_layout_loads_from_the_real_rows(hf_cache):
    """The fixture is real Aya train rows in the aya_collection layout: `language` holds the
    ISO 639-3 code there (aya_dataset's `language_code`)."""
    pairs = aya.load_aya(FIXTURES / "aya" / "aya_collection_aya_dataset_sample_5k.parquet",
                         cache_dir=hf_cache)
    counts = Counter(p["language"] for p in pairs)
    assert len(pairs) == 5000 and len(counts) == 69
    assert (counts["si"], counts["ta"], counts["es"], counts["en"], counts["uk"]) == (378, 340, 96, 85, 15)
    assert len({p["id"] for p in pairs}) == len(pairs)
    assert all(set(PAIR_FIELDS) <= set(p) for p in pairs)


def test_aya_row_without_a_language_code_is_named(tmp_path, hf_cache):
    rows = [{"inputs": "q", "targets": "a", "language": "English"}]  # no language_code, no dataset_name
    path = _write_jsonl(tmp_path / "aya.jsonl", rows)
    with pytest.raises(SchemaError, match=r"aya\.jsonl row 0: not an Aya row: no 'language_code'"):
        aya.load_aya(path, cache_dir=hf_cache)
