"""Bad inputs that the paper loaders refuse, built from copies of real fixture files.

Each case copies a real file into ``tmp_path``, breaks it the way a held-out file was found
broken (content in another language than its name or the asked code says, duplicated rows,
flattened MMLU-ProX options with a letter skipped or past J, a Lite test file without its
labels), and checks the error type and that the message names the file, the row and the
problem. The negative controls load every real fixture file, also under neutral names, so a
check that refused a correct file would fail here.
"""
from __future__ import annotations

import csv
import json
import re
import shutil

import pytest

from compass.data import errors
from compass.data.sets import aya, global_mmlu, mmlu_prox, prox_flattened

from tests.conftest import SHARED_FIXTURES as FIXTURES

pytestmark = pytest.mark.usefixtures("fixtures_dir")  # absent: fail, or skip where declared
GMMLU = FIXTURES / "global_mmlu"
LITE = GMMLU / "lite_test"
FLAT = FIXTURES / "mmlu_prox_lite" / "flattened_tsv"
LITE_LANGS = ("en", "de", "ja", "zh", "ar", "es", "fr")
DEV_LANGS = ("en", "es", "fr")


@pytest.fixture(scope="module")
def hf_cache(tmp_path_factory):
    """A private `datasets` cache, so the tests leave nothing in ~/.cache."""
    return str(tmp_path_factory.mktemp("hf_cache"))


def _copy(source, target):
    """``source`` copied to ``target`` (folders made as needed)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


def _read_csv(path):
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _write_csv(path, rows, columns=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = columns or list(rows[0])
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _write_flat(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _flat_lines(lang="en", split="test"):
    # split at '\n' only: rows hold form feeds ('\f' of a LaTeX word that lost its backslash)
    return (FLAT / lang / f"{split}.tsv").read_text(encoding="utf-8").rstrip("\n").split("\n")


# --------------------------------------------------------------------------------------------
# 1. the language of a Global-MMLU file is checked by its content, not its name


def test_misnamed_folder_of_spanish_rows_is_refused_as_english(tmp_path, hf_cache):
    # a folder 'es_final/' names no language the loader knows: only the text can tell
    path = _copy(GMMLU / "dev" / "es.jsonl", tmp_path / "es_final" / "dev.jsonl")
    with pytest.raises(errors.ContentLanguageError) as err:
        global_mmlu.load_global_mmlu("en", "dev", source=path.parent, cache_dir=hf_cache)
    message = str(err.value)
    assert str(path) in message
    assert re.search(r"not in 'en': it reads as 'es': \d+\.\d% of its \d+ words are common 'es' "
                     r"words against 0\.\d% common 'en' words; expected 'en' text", message)


def test_japanese_rows_under_an_edited_name_are_refused_as_chinese(tmp_path, hf_cache):
    path = _copy(LITE / "ja.csv", tmp_path / "ja_test_edited.csv")
    with pytest.raises(errors.ContentLanguageError,
                       match=rf"{re.escape(str(path))}: the questions and options are not in "
                             r"'zh': its \d+ letters are Hrkt 5\d\.\d%, Hani 3\d\.\d%, "
                             r"Latn \d\.\d%; "
                             r"expected 'zh' text, written in Hani \(at least 80% of the "
                             r"non-Latin letters\)"):
        global_mmlu.load_global_mmlu_lite("zh", source=path, cache_dir=hf_cache)


@pytest.mark.parametrize("real,asked,problem", [
    ("en", "es", r"it reads as 'en'"),  # Latin vs Latin: common words
    ("es", "en", r"it reads as 'es'"),
    ("fr", "de", r"it reads as 'fr'"),
    ("de", "fr", r"it reads as 'de'"),
    ("zh", "ja", r"letters are Hani 9\d\.\d%.*'ja' text, written in Hrkt\+Hani \(at least 80% "
                 r"of the non-Latin letters, Hrkt at least 10% of those\)"),
    ("ar", "en", r"letters are Arab 99\.\d%.*'en' text, written in Latn \(at least 80% of the "
                 r"letters\)"),
    ("en", "ar", r"letters are Latn 100\.0%.*'ar' text, written in Arab"),
    ("de", "ja", r"letters are Latn 100\.0%.*'ja' text, written in Hrkt\+Hani"),
])
def test_neutral_file_name_in_another_language_is_refused(tmp_path, hf_cache, real, asked,
                                                          problem):
    path = _copy(LITE / f"{real}.csv", tmp_path / "test.csv")
    with pytest.raises(errors.ContentLanguageError,
                       match=rf"{re.escape(str(path))}: the questions and options are not in "
                             rf"'{asked}': .*{problem}"):
        global_mmlu.load_global_mmlu_lite(asked, source=path, cache_dir=hf_cache)


def test_a_language_column_naming_another_language_names_the_row(tmp_path, hf_cache):
    rows = _read_csv(LITE / "fr.csv")
    for row in rows:
        row["language"] = "fr"
    rows[5]["language"] = "es"
    path = _write_csv(tmp_path / "lite_test" / "fr.csv", rows)
    with pytest.raises(errors.ContentLanguageError,
                       match=rf"{re.escape(str(path))} row 5 \(sample_id '[^']+'\), line 7: "
                             r"column 'language' says 'es', but language 'fr' was asked for; "
                             r"expected 'fr' in every row"):
        global_mmlu.load_global_mmlu_lite("fr", source=path, cache_dir=hf_cache)
    rows[5]["language"] = "French"  # a name or a regional code is as good as the code
    rows[6]["language"] = "fr-CA"
    assert len(global_mmlu.load_global_mmlu_lite("fr", source=_write_csv(path, rows))) == 400


def test_scripts_shared_or_unknown_are_loaded_unchecked(tmp_path, hf_cache):
    # Arabic and Persian share a script, and no common-word list tells them apart; a code
    # whose script is not in the tables ('iu', Inuktitut) is not checked at all
    ar = _copy(LITE / "ar.csv", tmp_path / "a" / "test.csv")
    assert len(global_mmlu.load_global_mmlu_lite("fa", source=ar, cache_dir=hf_cache)) == 400
    en = _copy(LITE / "en.csv", tmp_path / "b" / "test.csv")
    assert len(global_mmlu.load_global_mmlu_lite("iu", source=en, cache_dir=hf_cache)) == 400


# --------------------------------------------------------------------------------------------
# 2. duplicated rows


def test_exact_duplicate_row_names_both_rows(tmp_path, hf_cache):
    rows = _read_csv(LITE / "de.csv")
    path = _write_csv(tmp_path / "lite_test" / "de.csv", [*rows, rows[7]])
    with pytest.raises(errors.DuplicateRowError,
                       match=rf"{re.escape(str(path))} row 400 \(sample_id "
                             r"'business_ethics/test/52'\), line \d+: an exact duplicate of "
                             rf"{re.escape(str(path))} row 7 \(sample_id "
                             r"'business_ethics/test/52'\), line 9; expected each sample_id once"):
        global_mmlu.load_global_mmlu_lite("de", source=path, cache_dir=hf_cache)


def test_duplicated_sample_id_names_both_rows(tmp_path, hf_cache):
    target = tmp_path / "dev" / "en.jsonl"
    target.parent.mkdir()
    rows = [json.loads(line) for line in (GMMLU / "dev" / "en.jsonl").read_text().splitlines()]
    rows[12]["sample_id"] = rows[3]["sample_id"]
    target.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(errors.DuplicateRowError,
                       match=rf"{re.escape(str(target))} row 12 \(sample_id "
                             r"'abstract_algebra/dev/3'\), line 13: sample_id "
                             r"'abstract_algebra/dev/3' again, first in .*en\.jsonl row 3 "
                             r"\(sample_id 'abstract_algebra/dev/3'\), line 4"):
        global_mmlu.load_global_mmlu("en", "dev", source=target, cache_dir=hf_cache)


# --------------------------------------------------------------------------------------------
# 3. flattened MMLU-ProX: option letters must run A, B, C, ... without a gap, at most to J


def test_flattened_row_with_an_option_removed_is_refused(tmp_path):
    lines = _flat_lines()
    assert "\\nC. 99 men\\nD. 132 men\\nE. 45 men" in lines[2]
    lines[2] = lines[2].replace("\\nD. 132 men", "")
    path = _write_flat(tmp_path / "en" / "test.tsv", lines)
    with pytest.raises(errors.OptionMarkerError,
                       match=rf"{re.escape(str(path))} row 2, line 3: option letters run "
                             r"A, B, C, E, F, G, H, I, J: after 'C' comes 'E', expected 'D'"):
        prox_flattened.parse_flattened_prox_tsv(path, "en")


def test_flattened_row_with_an_eleventh_option_is_refused(tmp_path):
    lines = _flat_lines("de", "validation")
    question, answer = lines[0].split("\t")
    lines[0] = f"{question}\\nK. 7\t{answer}"
    path = _write_flat(tmp_path / "de" / "validation.tsv", lines)
    with pytest.raises(errors.OptionMarkerError,
                       match=rf"{re.escape(str(path))} row 0, line 1: option letters run "
                             r"A, B, C, D, E, F, G, H, I, J, K: option 11 \('K'\) is past J; "
                             r"expected at most 10 options"):
        mmlu_prox.load_mmlu_prox_lite("de", "validation", source=path.parent)


def test_flattened_rows_with_fewer_options_keep_loading():
    # real rows have 4 to 10 options, lettered without gaps: all accepted (count per row)
    counts = {}
    for lang in ("en", "de", "ja", "zh"):
        for split in ("test", "validation"):
            for item in prox_flattened.parse_flattened_prox_tsv(FLAT / lang / f"{split}.tsv", lang):
                counts[len(item["choices"])] = counts.get(len(item["choices"]), 0) + 1
    assert counts == {4: 108, 5: 4, 6: 28, 7: 20, 8: 76, 9: 176, 10: 4 * (485 + 70)}


# --------------------------------------------------------------------------------------------
# 4. a Lite test file without its cultural-sensitivity labels


def test_lite_test_without_label_column_is_refused(tmp_path, hf_cache):
    rows = _read_csv(LITE / "es.csv")
    columns = [c for c in rows[0] if c != "cultural_sensitivity_label"]
    path = _write_csv(tmp_path / "lite_test" / "es.csv", rows, columns)
    with pytest.raises(errors.MissingColumnError,
                       match=rf"{re.escape(str(path))}: not a Global-MMLU-Lite file/source: "
                             r"missing column\(s\) \['cultural_sensitivity_label'\] "
                             r"\(Global-MMLU-Lite's test split is annotated throughout: every "
                             r"row needs its CS/CA label\)"):
        global_mmlu.load_global_mmlu_lite("es", source=path, cache_dir=hf_cache)
    # the full data set's test split is annotated only in part: there the column is optional
    items = global_mmlu.load_global_mmlu("es", "test", source=path, cache_dir=hf_cache)
    assert len(items) == 400 and "cs_label" not in items[0]


# --------------------------------------------------------------------------------------------
# 5. flattened MMLU-ProX: '\ne', '\ni' are line breaks in text, LaTeX only inside math


def test_break_before_italian_words_is_decoded_and_math_kept(tmp_path):
    line = _flat_lines()[2]
    question, rest = line.split("\\nA. ", 1)
    added = (r"\ni) una barca costa $5.\ne poi $x \ne y$, $A \ni x$, \(a \ne b\)"
             r"\nil resto\ne $\nu \neq 0$")
    path = _write_flat(tmp_path / "en" / "test.tsv", [f"{question}{added}\\nA. {rest}"])
    [item] = prox_flattened.parse_flattened_prox_tsv(path, "en")
    assert item["question"] == (
        question + "\ni) una barca costa $5.\ne poi $x \\ne y$, $A \\ni x$, \\(a \\ne b\\)"
        "\nil resto\ne $\\nu \\neq 0$")
    assert item["choices"][:3] == ["84 men", "36 men", "99 men"]


def test_flattened_fixture_text_keeps_no_literal_backslash_n():
    # in all four languages every backslash-n of the real rows is a line break (no LaTeX word
    # that begins with n occurs there): none may survive the decoding
    for lang in ("en", "de", "ja", "zh"):
        for split in ("test", "validation"):
            for item in prox_flattened.parse_flattened_prox_tsv(FLAT / lang / f"{split}.tsv", lang):
                assert not any("\\n" in text for text in [item["question"], *item["choices"]])


# --------------------------------------------------------------------------------------------
# negative control: every real fixture file loads, also under a name that says nothing


def test_every_global_mmlu_fixture_file_loads_under_its_code(hf_cache):
    for lang in LITE_LANGS:
        assert len(global_mmlu.load_global_mmlu_lite(lang, source=LITE, cache_dir=hf_cache)) == 400
    for lang in DEV_LANGS:
        assert len(global_mmlu.load_global_mmlu(lang, "dev", source=GMMLU,
                                                cache_dir=hf_cache)) == 285
    full = global_mmlu.load_global_mmlu("en", "test", source=GMMLU / "full_test_en",
                                        cache_dir=hf_cache)
    assert len(full) == 152 + 135 + 234


@pytest.mark.parametrize("source,lang,split", [
    *[(f"lite_test/{lang}.csv", lang, "test") for lang in LITE_LANGS],
    *[(f"dev/{lang}.jsonl", lang, "dev") for lang in DEV_LANGS],
    *[(f"full_test_en/{subject}.csv", "en", "test")
      for subject in ("anatomy", "astronomy", "marketing")],
])
def test_fixture_files_under_neutral_names_pass_the_content_check(tmp_path, hf_cache, source,
                                                                  lang, split):
    real = GMMLU / source
    path = _copy(real, tmp_path / "rows" / f"questions{real.suffix}")
    items = global_mmlu.load_global_mmlu(lang, split, source=path, source_split=split,
                                         cache_dir=hf_cache)
    expected = {"test": 400, "dev": 285, "anatomy": 135, "astronomy": 152, "marketing": 234}
    assert len(items) == expected.get(real.stem, expected[split])


def test_every_prox_and_aya_fixture_loads(hf_cache):
    for lang in ("en", "de", "ja", "zh"):
        for split, n in (("test", 588), ("validation", 70)):
            assert len(mmlu_prox.load_mmlu_prox_lite(lang, split, source=FLAT)) == n
    arrow = mmlu_prox.load_mmlu_prox_lite("en", source=FIXTURES / "mmlu_prox_lite" / "en_arrow",
                                          source_split="test", cache_dir=hf_cache)
    assert len(arrow) == 588
    pairs = aya.load_aya(FIXTURES / "aya" / "aya_collection_aya_dataset_sample_5k.parquet",
                         cache_dir=hf_cache)
    assert len(pairs) > 4900


def test_each_lite_file_is_refused_under_every_other_fixture_code(tmp_path, hf_cache):
    # the 7 x 7 matrix of the Lite files and codes: accepted exactly on the diagonal
    for real in LITE_LANGS:
        folder = tmp_path / f"copy{LITE_LANGS.index(real)}"  # a name that says nothing
        path = _copy(LITE / f"{real}.csv", folder / "test.csv")
        for asked in LITE_LANGS:
            if asked == real:
                assert len(global_mmlu.load_global_mmlu_lite(asked, source=path)) == 400
                continue
            with pytest.raises(errors.ContentLanguageError, match=re.escape(str(path))):
                global_mmlu.load_global_mmlu_lite(asked, source=path, cache_dir=hf_cache)
