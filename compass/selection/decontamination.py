"""Which auxiliary items are too close to a test item to train on: near-copies and translations.

Two rules, on raw (uncentred) embeddings, every auxiliary language against the target's test items:

- **near-copy**: cosine above ``sampling.decontam_threshold`` to any test item;
- **translation**: the auxiliary item and a test item are each other's nearest neighbour across
  that language pair (mutual nearest neighbours, the criterion of bitext mining) with a cosine
  above ``sampling.decontam_mutual_floor``.

Why two: multilingual e5 puts a translation at cosine 0.86-0.90 (measured on parallel text), while
short chat of one topic sits as close across languages, so a cosine threshold low enough to catch
translations would drop most of a chat pool. A translation is, more specifically, the test item's
nearest neighbour in its language and the other way round.

How well the rules catch translations is measured on the parallel text the package carries
(:func:`parallel_recall`): OneRuler's prompt templates (the same 14 instruction pieces in 26
languages) and its 100 nouns in 26 languages (harder: single words, 100 per language). The
sampling chapter reports both recalls next to what the rules drop from the pool.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable

import numpy as np
import pandas as pd

from compass import paths


def _mutual(aux: np.ndarray, test: np.ndarray, chunk: int = 16384) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``aux``: its largest cosine to ``test`` and whether it and its nearest test
    row are each other's nearest neighbours (chunked over ``aux``)."""
    n = len(aux)
    best = np.full(n, -1.0, np.float32)
    nearest = np.zeros(n, np.int64)
    col_best = np.full(len(test), -np.inf, np.float32)
    col_arg = np.zeros(len(test), np.int64)
    for start in range(0, n, chunk):
        sims = aux[start:start + chunk] @ test.T
        nearest[start:start + chunk] = sims.argmax(axis=1)
        best[start:start + chunk] = sims.max(axis=1)
        rows = sims.argmax(axis=0)
        better = sims[rows, np.arange(len(test))] > col_best
        col_best[better] = sims[rows[better], np.flatnonzero(better)]
        col_arg[better] = rows[better] + start
    return best, col_arg[nearest] == np.arange(n)


def contaminated(aux: pd.DataFrame, vectors_of: Callable, test_raw: np.ndarray, threshold: float,
                 mutual_floor: float) -> tuple[np.ndarray, pd.DataFrame]:
    """Mask of auxiliary items to drop, and per auxiliary language: candidates, dropped as
    near-copies, dropped as translations (mutual nearest neighbours not already near-copies),
    kept. ``vectors_of(ids)`` gives raw L2-normalised rows."""
    drop = np.zeros(len(aux), bool)
    rows = []
    languages = aux["language"].to_numpy()
    for lang in sorted(set(languages)):
        where = np.flatnonzero(languages == lang)
        if len(test_raw) == 0:
            rows.append({"language": lang, "candidates": len(where), "near_copies": 0,
                         "translations": 0})
            continue
        best, mutual = _mutual(vectors_of(aux["id"].to_numpy()[where].tolist()), test_raw)
        near = best > threshold
        translation = mutual & (best > mutual_floor) & ~near
        drop[where] = near | translation
        rows.append({"language": lang, "candidates": len(where), "near_copies": int(near.sum()),
                     "translations": int(translation.sum())})
    report = pd.DataFrame(rows, columns=["language", "candidates", "near_copies", "translations"])
    report["dropped"] = report["near_copies"] + report["translations"]
    report["kept"] = report["candidates"] - report["dropped"]
    return drop, report


def parallel_texts() -> dict[str, dict[str, list[str]]]:
    """The parallel text the package carries, per set and language, aligned by position:
    OneRuler's template pieces (placeholders and tags removed) and its nouns."""
    root = paths.ONERULER / "prompt"
    languages = sorted(d.name for d in root.iterdir() if (d / "niah.txt").is_file())
    pieces = {lang: json.loads((root / lang / "niah.txt").read_text(encoding="utf-8"))
              for lang in languages}
    keys = sorted(set.intersection(*(set(p) for p in pieces.values())) - {"none"})
    templates = {lang: [_plain(pieces[lang][k]) for k in keys] for lang in languages}
    nouns = pd.read_csv(paths.ONERULER / "vocab" / "100_noun_list_translated.tsv", sep="\t",
                        dtype=str)
    words = {lang: nouns[lang].fillna("").str.strip().tolist()
             for lang in ["en", *[c for c in nouns.columns if c not in ("en", "definition")]]}
    return {"templates": templates, "nouns": words}


def _plain(text: str) -> str:
    text = re.sub(r"\{[a-z0-9_]+\}", " ", text)
    text = re.sub(r"<[^>]*>", " ", text)
    return " ".join(text.replace("\\n", " ").split())


def parallel_recall(embed: Callable[[list[str]], np.ndarray], threshold: float,
                    mutual_floor: float) -> pd.DataFrame:
    """Per parallel set: over every ordered language pair (one side standing for the test items,
    the other for an auxiliary language), the share of true translations each rule catches, and
    both together. ``embed(texts)`` gives raw L2-normalised vectors (the pool's encoder)."""
    rows = []
    for name, by_lang in parallel_texts().items():
        langs = sorted(by_lang)
        vectors = embed([t for lang in langs for t in by_lang[lang]])
        sizes = np.cumsum([0, *(len(by_lang[lang]) for lang in langs)])
        block = {lang: vectors[sizes[i]:sizes[i + 1]] for i, lang in enumerate(langs)}
        near = mutual_hits = either = total = 0
        for test_lang in langs:
            for aux_lang in langs:
                if aux_lang == test_lang:
                    continue
                sims = block[aux_lang] @ block[test_lang].T
                own = np.diag(sims)
                best, mutual = _mutual(block[aux_lang], block[test_lang])
                is_own = sims.argmax(axis=1) == np.arange(len(own))
                hit_near = own > threshold
                hit_mutual = mutual & is_own & (own > mutual_floor)
                near += int(hit_near.sum())
                mutual_hits += int(hit_mutual.sum())
                either += int((hit_near | hit_mutual).sum())
                total += len(own)
        rows.append({"parallel_set": name, "languages": len(langs), "pairs": total,
                     "recall_near_copy": near / total, "recall_translation": mutual_hits / total,
                     "recall": either / total})
    return pd.DataFrame(rows)
