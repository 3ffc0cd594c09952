"""DSIR baseline: data selection with importance resampling (Xie et al., 2023).

The importance weights come from the authors' implementation (PyPI ``data-selection``,
``HashedNgramDSIR``): hashed unigram+bigram count features, a bag-of-ngrams model fitted on the
target texts and one on the candidate (raw) pool, and per candidate
``log w = sum_j counts_j * (log p_target_j - log p_raw_j)``.

Its API is file based, so :func:`log_importance_weights` writes the texts to jsonl files in a
temporary folder, lets the library fit and score them, and reads the per-candidate log weights back
from the library's cache folder, in input order.

The resampling step is ours (:func:`gumbel_top_k`) rather than ``DSIR.resample``, because the
library's draws use numpy's global, unseeded random state (``np.random.gumbel``), which would make
runs irreproducible, and it writes files and filters texts shorter than ``min_example_length``
(100 words by default, far longer than a chat turn). The sampling rule is the same: Gumbel top-k
on the log importance weights, i.e. sampling without replacement proportional to the weights.
"""
from __future__ import annotations

import contextlib
import functools
import json
import tempfile
from pathlib import Path

import numpy as np


def _quiet_tqdm(tqdm_cls):
    """``tqdm`` with the bars switched off (picklable, so it also reaches joblib workers)."""
    return functools.partial(tqdm_cls, disable=True)


@contextlib.contextmanager
def _library_progress(show: bool):
    """Switch off the library's per-shard tqdm bars unless ``show``.

    The library calls ``tqdm`` from closures that joblib ships to worker processes by value
    (cloudpickle), together with the module globals they use, so replacing the module-level name
    reaches the workers too.
    """
    from data_selection import base, hashed_ngram_dsir

    if show:
        yield
        return
    saved = {mod: mod.tqdm for mod in (base, hashed_ngram_dsir)}
    try:
        for mod, original in saved.items():
            mod.tqdm = _quiet_tqdm(original)
        yield
    finally:
        for mod, original in saved.items():
            mod.tqdm = original


@functools.lru_cache(maxsize=None)
def _wordpunct():
    from nltk.tokenize import WordPunctTokenizer

    return WordPunctTokenizer()


def wordpunct_tokenize(text: str) -> list[str]:
    """The library's default tokenizer (nltk ``WordPunctTokenizer``), as a module-level function.

    ``HashedNgramDSIR`` holds a module-level ``WordPunctTokenizer`` instance, and joblib ships it to
    worker processes (num_proc > 1) by pickling. With nltk >= 3.10 that breaks: the tokenizer's
    ``nltk.redos.TimedPattern`` keeps a module-private ``_UNSET = object()`` sentinel, which does
    not survive pickling, so every worker fails with ``ValueError: timeout not float or None``.
    This function pickles by reference and builds the tokenizer inside each process instead.
    """
    return _wordpunct().tokenize(text)


def _write_jsonl(path: Path, texts: list[str]) -> None:
    # ensure_ascii keeps every record on one line whatever characters the text holds (the
    # library reads the file with the platform's default encoding and universal newlines)
    with open(path, "w", encoding="ascii") as fh:
        for text in texts:
            fh.write(json.dumps({"text": text}, ensure_ascii=True) + "\n")


def _check_texts(texts, name: str) -> list[str]:
    if isinstance(texts, str):
        raise TypeError(f"{name} must be a list of strings, not a single string")
    texts = list(texts)
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise TypeError(
            f"{name} must hold strings; item {bad[0]} is {type(texts[bad[0]]).__name__}"
        )
    return texts


def log_importance_weights(
    target_texts: list[str],
    candidate_texts: list[str],
    ngrams: int = 2,
    num_buckets: int = 10000,
    work_dir: str | Path | None = None,
    num_proc: int = 1,
    *,
    progress: bool = False,
) -> np.ndarray:
    """DSIR log importance weight of each candidate text for the target distribution.

    Weights are computed by ``data_selection.HashedNgramDSIR`` (fitted on all tokens of both
    sides; the raw distribution is the candidate pool itself). Returns a float array with one
    value per candidate, aligned with ``candidate_texts``; larger means more target-like.

    ``work_dir``: where the temporary folder with the jsonl files and the library's cache goes
    (default: the system temp folder); it is removed afterwards. ``num_proc``: processes the
    library uses (it shards a file round-robin across them; the shards are put back in input
    order here). ``progress``: show the library's tqdm bars (off by default).
    """
    target_texts = _check_texts(target_texts, "target_texts")
    candidate_texts = _check_texts(candidate_texts, "candidate_texts")
    for value, name in ((ngrams, "ngrams"), (num_buckets, "num_buckets"), (num_proc, "num_proc")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} = {value!r} must be an integer >= 1")
    if not target_texts or not any(t.strip() for t in target_texts):
        raise ValueError(
            "target_texts is empty (or holds only blank texts): nothing to fit DSIR on"
        )
    if not candidate_texts:
        return np.empty(0, dtype=float)

    from data_selection import HashedNgramDSIR

    if work_dir is not None:
        Path(work_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dsir-", dir=work_dir) as tmp:
        tmp = Path(tmp)
        target_path, raw_path = tmp / "target.jsonl", tmp / "candidates.jsonl"
        _write_jsonl(target_path, target_texts)
        _write_jsonl(raw_path, candidate_texts)
        dsir = HashedNgramDSIR(
            raw_datasets=[str(raw_path)],
            target_datasets=[str(target_path)],
            cache_dir=str(tmp / "cache"),
            num_proc=num_proc,
            ngrams=ngrams,
            num_buckets=num_buckets,
            min_example_length=0,  # only used by the library's resample(), which we do not call
        )
        dsir.tokenizer = wordpunct_tokenize  # same tokens; picklable for num_proc > 1
        with _library_progress(progress):
            dsir.fit_importance_estimator(num_tokens_to_fit="all")
            dsir.compute_importance_weights()
        weights = _read_weights(dsir, len(candidate_texts))
        _spot_check(dsir, candidate_texts, weights)
    return weights


def _read_weights(dsir, n: int) -> np.ndarray:
    """Reassemble the library's per-shard ``log_importance_weights/{overall_idx}.npy`` files in
    input order: virtual shard ``shard_idx`` of ``num_shards`` holds items
    ``shard_idx, shard_idx + num_shards, ...`` of its file."""
    shards = dsir._get_virtually_sharded_datasets(dsir.raw_datasets)
    out = np.full(n, np.nan)
    seen = np.zeros(n, dtype=bool)
    for shard in shards:
        values = np.load(Path(dsir.log_importance_weights_dir) / f"{shard['overall_idx']}.npy")
        positions = np.arange(shard["shard_idx"], n, shard["num_shards"])
        if values.shape != positions.shape:
            raise RuntimeError(
                f"DSIR shard {shard['overall_idx']} holds {values.shape} weights where "
                f"{positions.size} were expected; the candidate file and the weights do not line up"
            )
        out[positions] = values
        seen[positions] = True
    if not seen.all():
        raise RuntimeError(f"DSIR returned weights for {int(seen.sum())} of {n} candidates")
    return out


def _spot_check(dsir, texts: list[str], weights: np.ndarray, n_checks: int = 8) -> None:
    """Recompute a few weights in-process to confirm the order we read back is the input order."""
    for i in np.unique(np.linspace(0, len(texts) - 1, num=min(n_checks, len(texts))).astype(int)):
        expected = float(dsir.importance_estimator(dsir.featurizer(texts[i])))
        if not np.isclose(expected, weights[i], rtol=1e-9, atol=1e-9):
            raise RuntimeError(
                f"DSIR weight read back for candidate {i} ({weights[i]!r}) differs from its "
                f"recomputed weight ({expected!r}): the cached shards are out of order"
            )


def gumbel_top_k(
    log_weights,
    k: int,
    rng: np.random.Generator,
    mask=None,
) -> np.ndarray:
    """Draw ``k`` distinct indices with probability proportional to ``exp(log_weights)``.

    Gumbel top-k trick (sampling without replacement, successive draws proportional to the
    remaining weights): add i.i.d. Gumbel(0, 1) noise to every log weight and take the ``k``
    largest. Noise is drawn for every item from ``rng`` (so a seed fixes the draw, and masking items
    out does not change the noise of the others). ``mask`` (boolean, same length) marks the
    eligible items; items with log weight -inf (weight 0) are never drawn.

    Returns the chosen indices (int64) in draw order. Raises ValueError naming both numbers when
    ``k`` exceeds the number of eligible items.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy.random.Generator (e.g. np.random.default_rng(seed)), "
            f"got {type(rng).__name__}"
        )
    log_weights = np.asarray(log_weights, dtype=float)
    if log_weights.ndim != 1:
        raise ValueError(f"log_weights must be one-dimensional, got shape {log_weights.shape}")
    if np.isnan(log_weights).any() or np.isposinf(log_weights).any():
        raise ValueError("log_weights holds NaN or +inf; cannot sample proportionally")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ValueError(f"k = {k!r} must be a non-negative integer")
    if mask is None:
        eligible = np.ones(log_weights.shape, dtype=bool)
    else:
        eligible = np.asarray(mask)
        if eligible.dtype != bool:
            raise TypeError(f"mask must be boolean, got dtype {eligible.dtype}")
        if eligible.shape != log_weights.shape:
            raise ValueError(
                f"mask has shape {eligible.shape} but log_weights has shape {log_weights.shape}"
            )
    eligible = eligible & np.isfinite(log_weights)
    n_eligible = int(eligible.sum())
    if k > n_eligible:
        raise ValueError(
            f"cannot draw k = {k} items without replacement: only {n_eligible} are eligible "
            f"(mask true and weight > 0) out of {log_weights.size}"
        )
    keys = log_weights + rng.gumbel(size=log_weights.shape)
    candidates = np.flatnonzero(eligible)
    # largest key first; equal keys (measure zero) fall back to the lower index
    order = np.lexsort((candidates, -keys[candidates]))[:k]
    return candidates[order].astype(np.int64)
