"""Typological similarity of languages, from URIEL via ``lang2vec`` (Littell et al. 2017).

The ``langsim`` baseline draws auxiliary data from the languages most similar to the target;
"similar" is the cosine of URIEL feature vectors (by default the kNN-imputed syntax, phonology and
phoneme-inventory features, which have no missing values).

Notes on lang2vec 1.1.2 that this module works around:

* it does ``import pkg_resources`` at import time, and setuptools >= 81 no longer ships
  ``pkg_resources``. When the import fails, :func:`_lang2vec` puts a minimal shim (only
  ``resource_filename``) into ``sys.modules`` for the duration of the import; lang2vec keeps its
  reference to it, and ``sys.modules`` is restored afterwards so that other libraries' own
  ``try: import pkg_resources`` fallbacks are not fooled by the shim.
* the wheel also installs a plain ``lang2vec.py`` script into ``bin/``, which shadows the package
  whenever a console script from that ``bin/`` (``pytest``, ...) runs; the import skips it.
* importing it takes ~2-3 s (it reads its data files), so it is imported lazily, once.
* ``lang2vec.available_languages()`` is not a reliable membership test: it indexes the language
  list by *feature* number and so omits many languages that have data (e.g. ``fas``, ``zho``). This
  module checks the feature databases themselves.
* missing values are ``-1`` in lang2vec; here they are NaN, and similarities use the features
  observed for both languages.
* the ``learned`` feature set cannot be loaded with current numpy (it is a pickled object array),
  so it is refused with a clear error.
"""
from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import os
import sys
import types
import warnings

import langcodes
import numpy as np
import pandas as pd

from compass import languages

DEFAULT_FEATURES = "syntax_knn+phonology_knn+inventory_knn"

# ISO 639-3 macrolanguage (what langcodes gives for a 2-letter tag) -> the individual language that
# URIEL may list the data under instead. Tried, in order, only when the macrolanguage code has no
# usable entry for the requested features.
MACRO_FALLBACKS: dict[str, tuple[str, ...]] = {
    "fas": ("pes", "prs"),  # Persian -> Iranian Persian, Dari
    "zho": ("cmn", "yue"),  # Chinese -> Mandarin, Cantonese
    "msa": ("zsm", "ind"),  # Malay -> Standard Malay, Indonesian
    "ara": ("arb",),  # Arabic -> Standard Arabic
    "swa": ("swh",),  # Swahili -> Swahili (individual language)
    "est": ("ekk",),  # Estonian -> Standard Estonian
    "lav": ("lvs",),  # Latvian -> Standard Latvian
    "mon": ("khk",),  # Mongolian -> Halh Mongolian
    "uzb": ("uzn",),  # Uzbek -> Northern Uzbek
    "nep": ("npi",),  # Nepali (macro) -> Nepali (individual)
    "ori": ("ory",),  # Oriya (macro) -> Odia (individual)
    "yid": ("ydd",),  # Yiddish -> Eastern Yiddish
    "mlg": ("plt",),  # Malagasy -> Plateau Malagasy
    "orm": ("gaz",),  # Oromo -> West Central Oromo
    "que": ("quy", "quz"),  # Quechua -> Ayacucho, Cusco Quechua
    "aze": ("azj", "azb"),  # Azerbaijani -> North, South Azerbaijani
    "pus": ("pbu", "pst"),  # Pashto -> Northern, Central Pashto
    "kur": ("kmr", "ckb"),  # Kurdish -> Northern (Kurmanji), Central (Sorani)
    "sqi": ("als",),  # Albanian -> Tosk Albanian
    "hbs": ("hrv", "srp", "bos"),  # Serbo-Croatian
    "nor": ("nob", "nno"),  # Norwegian -> Bokmål, Nynorsk
    "grn": ("gug",),  # Guarani -> Paraguayan Guaraní
    "ful": ("fuv", "fuf"),  # Fulah
    "aka": ("twi", "fat"),  # Akan -> Twi, Fanti
    "kau": ("knc",),  # Kanuri -> Central Kanuri
    "kom": ("kpv",),  # Komi -> Komi-Zyrian
    "kon": ("kng",),  # Kongo -> Koongo
    "iku": ("ike",),  # Inuktitut -> Eastern Canadian Inuktitut
    "ipk": ("esk",),  # Inupiaq -> Northwest Alaska Inupiatun
    "srd": ("src",),  # Sardinian -> Logudorese Sardinian
    "zha": ("zch",),  # Zhuang
    "lah": ("pnb",),  # Lahnda -> Western Panjabi
    "bal": ("bcc",),  # Baluchi -> Southern Balochi
}


class NoURIELDataError(languages.UnknownLanguageError):
    """A language (code) for which URIEL has no usable entry for the requested features."""


# --------------------------------------------------------------------------- lang2vec loading


def _resource_filename(module_name: str, relative_path: str) -> str:
    """``pkg_resources.resource_filename`` for a plain installed package: the file next to the
    module (or inside the package) ``module_name``."""
    module = sys.modules.get(module_name)
    origin = getattr(module, "__file__", None)
    if origin is None:
        spec = importlib.util.find_spec(module_name)
        if spec is None or spec.origin is None:
            raise ModuleNotFoundError(f"cannot locate module {module_name!r} for its resources")
        origin = spec.origin
    return os.path.join(os.path.dirname(os.path.abspath(origin)), *relative_path.split("/"))


def _pkg_resources_shim() -> types.ModuleType:
    shim = types.ModuleType("pkg_resources")
    shim.__doc__ = ("compass.selection.typology's minimal stand-in for setuptools' removed "
                    "pkg_resources.")
    shim.resource_filename = _resource_filename
    shim.__compass_shim__ = True
    return shim


def _import_lang2vec() -> types.ModuleType:
    """``import lang2vec.lang2vec``, skipping the plain ``lang2vec.py`` script that the wheel also
    installs into the environment's ``bin/``: under any console script (``pytest``, ...) ``bin/`` is
    ``sys.path[0]`` and that script would shadow the package (and fail to find its data)."""
    stray = sys.modules.get("lang2vec")
    if stray is not None and not hasattr(stray, "__path__"):
        del sys.modules["lang2vec"]
    saved = list(sys.path)
    sys.path[:] = [
        p for p in saved if not os.path.isfile(os.path.join(p or os.curdir, "lang2vec.py"))
    ]
    try:
        import lang2vec.lang2vec as l2v
    finally:
        sys.path[:] = saved
    return l2v


@functools.lru_cache(maxsize=None)
def _lang2vec() -> types.ModuleType:
    """Import ``lang2vec.lang2vec`` once, with a ``pkg_resources`` shim when setuptools lacks it."""
    with warnings.catch_warnings():
        # setuptools 67-80 warn that pkg_resources is deprecated on every import
        warnings.filterwarnings(
            "ignore", message="pkg_resources is deprecated", category=UserWarning
        )
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="pkg_resources")
        try:
            import pkg_resources  # noqa: F401
        except ImportError:
            missing = object()
            previous = sys.modules.get("pkg_resources", missing)
            sys.modules["pkg_resources"] = _pkg_resources_shim()
            try:
                l2v = _import_lang2vec()
            finally:
                if previous is missing:
                    sys.modules.pop("pkg_resources", None)
                else:
                    sys.modules["pkg_resources"] = previous
            return l2v
        return _import_lang2vec()


def available_feature_sets() -> list[str]:
    """lang2vec's atomic feature sets; combine with '+' (concatenate) or '|' (element-wise max)."""
    return list(_lang2vec().available_feature_sets())


def _check_features(features: str) -> tuple[str, ...]:
    """Validate a lang2vec feature-set expression; return the data files it reads."""
    l2v = _lang2vec()
    available = l2v.available_feature_sets()
    if not isinstance(features, str) or not features.strip():
        raise ValueError(
            f"features = {features!r} is not a feature-set expression; available feature sets "
            f"(join with '+' or '|'): {', '.join(available)}"
        )
    files = []
    for part in features.split("+"):
        for name in part.split("|"):
            if name not in available:
                raise ValueError(
                    f"features = {features!r}: {name!r} is not a lang2vec feature set; available "
                    f"(join with '+' or '|'): {', '.join(available)}"
                )
            if name == "learned":
                raise ValueError(
                    f"features = {features!r}: lang2vec's 'learned' set is stored as a pickled "
                    "object array that lang2vec 1.1.2 cannot load with current numpy; use another "
                    f"set: {', '.join(a for a in available if a != 'learned')}"
                )
            files.append(l2v.FEATURE_SETS_DICT[name][0])
    return tuple(dict.fromkeys(files))


@functools.lru_cache(maxsize=None)
def _database_languages(filename: str) -> frozenset[str]:
    l2v = _lang2vec()
    path = os.path.join(os.path.dirname(os.path.abspath(l2v.__file__)), "data", filename)
    with np.load(path) as db:
        return frozenset(str(code) for code in db["langs"])


# (features, iso3) -> vector with NaN for missing values, or None when URIEL has no usable entry
_VECTORS: dict[tuple[str, str], np.ndarray | None] = {}


def _fetch(codes: list[str], features: str) -> None:
    """Fill ``_VECTORS`` for ``codes`` (ISO 639-3) with one lang2vec call for all new ones."""
    files = _check_features(features)
    todo = [c for c in dict.fromkeys(codes) if (features, c) not in _VECTORS]
    present = [c for c in todo if all(c in _database_languages(f) for f in files)]
    for code in set(todo) - set(present):
        _VECTORS[(features, code)] = None
    if not present:
        return
    with contextlib.redirect_stdout(io.StringIO()):  # lang2vec prints notes
        _, values = _lang2vec().get_concatenated_sets(present, features)
    values = np.asarray(values, dtype=float)
    values[values == -1.0] = np.nan
    for code, row in zip(present, values):
        row.setflags(write=False)
        _VECTORS[(features, code)] = row if np.isfinite(row).any() else None


def _candidates(code: str) -> list[str]:
    """ISO 639-3 codes to try for a project tag, most specific first."""
    try:
        tag = languages.normalize(code)
    except languages.UnknownLanguageError as err:
        raise NoURIELDataError(f"language {code!r} has no URIEL entry: {err}") from None
    out = []
    try:  # the code as written, before macrolanguage normalisation ('pes' stays 'pes')
        out.append(langcodes.Language.get(code.strip()).to_alpha3())
    except (ValueError, LookupError):
        pass
    out.append(languages.alpha3(tag))
    for iso3 in list(out):
        out.extend(MACRO_FALLBACKS.get(iso3, ()))
    return list(dict.fromkeys(out))


def _resolve(code: str, features: str) -> tuple[str, np.ndarray]:
    candidates = _candidates(code)
    _fetch(candidates, features)
    for iso3 in candidates:
        vec = _VECTORS[(features, iso3)]
        if vec is not None:
            return iso3, vec
    raise NoURIELDataError(
        f"language {code!r} has no URIEL entry with {features!r} features "
        f"(tried ISO 639-3 {', '.join(candidates)})"
    )


def uriel_code(code: str, features: str = DEFAULT_FEATURES) -> str:
    """The ISO 639-3 code whose URIEL entry stands for ``code``.

    'fa' -> 'fas', 'zh-Hant' -> 'zho', 'pes' -> 'pes'.
    """
    return _resolve(code, features)[0]


def language_vector(code: str, features: str = DEFAULT_FEATURES) -> np.ndarray:
    """URIEL feature vector of a language (NaN where the feature is not known).

    ``code`` is a project tag ('uk', 'fa', 'zh-Hant', 'hi-Latn'; script and region subtags do not
    matter) or an ISO 639-3 code. Macrolanguages fall back to their main individual language
    (``MACRO_FALLBACKS``) when URIEL has nothing under the macro code.

    Raises ValueError (:class:`NoURIELDataError`) naming the code when URIEL has no entry for it,
    and ValueError listing lang2vec's feature sets when ``features`` is not a valid expression.
    """
    return _resolve(code, features)[1].copy()


def _cosine(u: np.ndarray, v: np.ndarray, a: str, b: str) -> float:
    both = np.isfinite(u) & np.isfinite(v)
    if not both.any():
        raise NoURIELDataError(f"languages {a!r} and {b!r} share no observed URIEL features")
    u, v = u[both], v[both]
    norm = float(np.linalg.norm(u) * np.linalg.norm(v))
    if norm == 0.0:
        raise NoURIELDataError(
            f"cosine similarity of {a!r} and {b!r} is undefined: a feature vector is all zeros"
        )
    return float(np.clip(np.dot(u, v) / norm, -1.0, 1.0))


def similarity(a: str, b: str, features: str = DEFAULT_FEATURES) -> float:
    """Cosine similarity of the URIEL vectors of languages ``a`` and ``b`` (over the features
    observed for both; the default kNN sets have no missing values)."""
    _fetch(_candidates(a) + _candidates(b), features)
    return _cosine(language_vector(a, features), language_vector(b, features), a, b)


def rank_languages(target: str, candidates, features: str = DEFAULT_FEATURES) -> pd.DataFrame:
    """Rank ``candidates`` by typological similarity to ``target``.

    Returns a DataFrame with columns ``language`` (the normalised project tag), ``name``,
    ``similarity`` and ``rank`` (1 = most similar), sorted by similarity descending with ties
    broken by language code, so the order is deterministic. Candidates are normalised and
    de-duplicated; a candidate equal to the target is kept (similarity 1). Candidates without
    URIEL data are left out, with a warning naming them. The target must have data (ValueError).
    """
    if isinstance(candidates, str):
        candidates = [candidates]
    tags, unusable = [], []
    for code in candidates:
        try:
            tags.append(languages.normalize(code))
        except languages.UnknownLanguageError:
            unusable.append(str(code))
    tags = list(dict.fromkeys(tags))
    # one lang2vec call for everything (each call re-reads its data files)
    _fetch(_candidates(target) + [c for t in tags for c in _candidates(t)], features)
    target_vec = _resolve(target, features)[1]
    rows = []
    for tag in tags:
        try:
            vec = _resolve(tag, features)[1]
            sim = _cosine(target_vec, vec, target, tag)
        except NoURIELDataError:
            unusable.append(tag)
            continue
        rows.append((tag, languages.display_name(tag), sim))
    if unusable:
        warnings.warn(
            f"left out of the ranking for target {target!r}: {', '.join(unusable)} "
            f"(no URIEL entry with {features!r} features)",
            stacklevel=2,
        )
    frame = pd.DataFrame(rows, columns=["language", "name", "similarity"])
    frame = frame.sort_values(["similarity", "language"], ascending=[False, True], kind="mergesort")
    frame = frame.reset_index(drop=True)
    frame["rank"] = np.arange(1, len(frame) + 1)
    return frame
