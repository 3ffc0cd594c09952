"""compass.selection.typology: URIEL similarity through lang2vec (fast: the kNN feature file is small)."""
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pandas as pd
import pytest

from compass.selection import typology

PAPER_LANGUAGES = (
    "bn zh nl en fr de he hi id it ja ko mr or fa pt ru es sv ta te th tr uk ur yo".split()
)


def test_russian_closer_to_ukrainian_than_japanese():
    assert typology.similarity("uk", "ru") > typology.similarity("uk", "ja")
    ranking = typology.rank_languages("uk", ["ja", "ru"])
    assert list(ranking["language"]) == ["ru", "ja"]
    assert list(ranking["rank"]) == [1, 2]


def test_vector_shape_and_self_similarity():
    vec = typology.language_vector("uk")
    assert vec.ndim == 1 and vec.size > 100 and np.isfinite(vec).all()
    assert typology.similarity("uk", "uk") == pytest.approx(1.0)
    vec[:] = -5  # a copy: the cache is not touched
    assert np.isfinite(typology.language_vector("uk")).all()
    assert (typology.language_vector("uk") >= 0).all()


@pytest.mark.parametrize("code", ["fa", "pes", "fas"])
def test_persian_resolves(code):
    vec = typology.language_vector(code)
    assert np.isfinite(vec).all()
    assert typology.similarity(code, "fa") > 0.95


def test_script_subtags_and_iso3_codes():
    assert typology.uriel_code("zh-Hant") == "zho"
    assert typology.uriel_code("hi-Latn") == "hin"
    assert typology.uriel_code("ukr") == "ukr"
    assert typology.uriel_code("cmn") == "cmn"  # not widened to its macrolanguage
    np.testing.assert_array_equal(
        typology.language_vector("hi-Latn"), typology.language_vector("hi")
    )


def test_macrolanguage_fallback(monkeypatch):
    """When the macro code has no usable entry, the individual language stands in."""
    monkeypatch.setitem(typology._VECTORS, (typology.DEFAULT_FEATURES, "fas"), None)
    assert typology.uriel_code("fa") == "pes"


def test_all_paper_languages_have_uriel_data():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ranking = typology.rank_languages("uk", PAPER_LANGUAGES)
    assert set(ranking["language"]) == set(PAPER_LANGUAGES)


def test_ranking_is_deterministic_and_sorted():
    first = typology.rank_languages("ja", PAPER_LANGUAGES)
    second = typology.rank_languages("ja", list(reversed(PAPER_LANGUAGES)))
    pd.testing.assert_frame_equal(first, second)
    assert list(first.columns) == ["language", "name", "similarity", "rank"]
    assert first["similarity"].is_monotonic_decreasing
    assert list(first["rank"]) == list(range(1, len(first) + 1))
    assert first.loc[first["language"] == "ru", "name"].item() == "Russian"


def test_ties_broken_by_code(monkeypatch):
    vec = typology.language_vector("ru")
    for code in ("ukr", "bel"):  # give Belarusian exactly Ukrainian's neighbour vector
        monkeypatch.setitem(typology._VECTORS, (typology.DEFAULT_FEATURES, code), vec)
    ranking = typology.rank_languages("ru", ["uk", "be"])
    assert list(ranking["language"]) == ["be", "uk"]
    assert ranking["similarity"].nunique() == 1


def test_unknown_language_error():
    with pytest.raises(ValueError, match=r"'cnp' has no URIEL entry"):  # Northern Ping Chinese
        typology.language_vector("cnp")
    with pytest.raises(ValueError, match=r"'xx' has no URIEL entry"):
        typology.similarity("uk", "xx")


def test_candidates_without_data_are_left_out_with_a_warning():
    with pytest.warns(UserWarning, match="cnp"):
        ranking = typology.rank_languages("uk", ["ru", "cnp", "ja"])
    assert list(ranking["language"]) == ["ru", "ja"]
    with pytest.raises(ValueError, match="no URIEL entry"):
        typology.rank_languages("cnp", ["ru"])


def test_invalid_feature_set_lists_the_available_ones():
    with pytest.raises(ValueError, match="syntax_knn.*inventory_knn"):
        typology.language_vector("uk", features="syntax_nonsense")
    with pytest.raises(ValueError, match="'learned'"):
        typology.language_vector("uk", features="learned")


def test_observed_features_have_missing_values():
    vec = typology.language_vector("uk", features="syntax_wals")
    assert np.isnan(vec).any() and np.isfinite(vec).any()
    assert -1.0 <= typology.similarity("uk", "ru", features="syntax_wals") <= 1.0


def test_pkg_resources_shim_when_setuptools_lacks_it(tmp_path):
    # lang2vec's wheel also installs a plain bin/lang2vec.py that shadows the package when bin/ is
    # sys.path[0] (any console script, e.g. pytest): a stray module first on the path stands in.
    (tmp_path / "lang2vec.py").write_text("raise ImportError('stray lang2vec.py was imported')\n")
    code = textwrap.dedent(
        f"""
        import sys, warnings
        warnings.simplefilter("error")
        sys.path.insert(0, {str(tmp_path)!r})
        sys.modules["pkg_resources"] = None  # as if setuptools >= 81
        from compass.selection import typology
        assert typology.similarity("uk", "ru") > typology.similarity("uk", "ja")
        l2v = typology._lang2vec()
        assert getattr(l2v.pkg_resources, "__compass_shim__", False)
        assert sys.modules["pkg_resources"] is None  # restored after the import
        print("shim ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "shim ok" in result.stdout
