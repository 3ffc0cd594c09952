"""The real pipeline, cut down to the cheapest subset that still trains and evaluates: a clone of
this repository's HEAD whose params.yaml asks for two target languages, a tiny saved model and a
few steps. The cluster pipeline test and benchmarks/cluster_subset.py both run it."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import WORKSPACE_OVERRIDES

DVC = str(Path(sys.executable).parent / "dvc")
LANGUAGES = ("fa", "uk")
MODEL = "tiny"
# evaluate of each language, and through its inputs every stage upstream (pool, data, sampling,
# model, train); long context, ECDA and the book stay out
TARGETS = tuple(f"evaluate@{MODEL}-{lang}" for lang in LANGUAGES)
OVERRIDES = {
    **WORKSPACE_OVERRIDES,
    "languages.targets": list(LANGUAGES),
    "sampling.methods": ["random", "compass"],
    "train.methods": ["random", "compass"],
    "evaluation.max_items": 4,
    "evaluation.nll_items": 8,
    "evaluation.lm_eval_check_items": 2,
    "train.seeds": 1,
    "train.curve_steps": [],
    "ecda.language": "fa",
    "ecda.model": MODEL,
    "long_context.languages": ["fa"],
}
# what a run writes that is not its result: executed notebooks record when and how long each
# cell ran, and timings.jsonl is the wall-time log
VOLATILE = ("data/executed/", "data/timings.jsonl", "data/cache/")


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                          check=True).stdout.strip()


def _set(params: dict, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    node = params
    for key in parents:
        node = node[key]
    node[leaf] = value


def subset_project(dest: Path, source: Path | None = None,
                   embedding_cache: Path | None = None) -> Path:
    """A committed clone of ``source``'s HEAD at ``dest`` with the subset's params, the tiny
    model saved beside it (``dest``/../tiny-model) and a small pool; returns ``dest``."""
    from tests.tiny_lm import tiny_gemma, tiny_tokenizer

    source = Path(source or Path(__file__).resolve().parents[1])
    head = _git(source, "rev-parse", "HEAD")
    subprocess.run(["git", "clone", "-q", "--no-checkout", str(source), str(dest)], check=True)
    _git(dest, "checkout", "-q", "-B", "cluster-subset", head)
    model_dir = dest.parent / "tiny-model"
    if not model_dir.exists():
        tok = tiny_tokenizer()
        tiny_gemma(len(tok)).save_pretrained(model_dir)
        tok.save_pretrained(model_dir)
    params = yaml.safe_load((dest / "params.yaml").read_text(encoding="utf-8"))
    for dotted, value in {**OVERRIDES, "train.models": [MODEL],
                          "train.model_sources": {MODEL: str(model_dir)}}.items():
        _set(params, dotted, value)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    (dest / "dvc.lock").unlink(missing_ok=True)  # the subset's stages start stale
    _git(dest, "add", "-A")
    _git(dest, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "cluster subset")
    _small_pool(dest, embedding_cache)
    return dest


# the small pool of the tests' workspace (tests/conftest.py), so its embedding cache has them all
POOL_SCRIPT = """
from compass import config
from compass.stages.pool import build_pool, load_profile_pairs
from tests.conftest import small_pool
cfg = config.load()
build_pool(cfg, pairs=small_pool(load_profile_pairs(cfg)), show_progress_bar=False)
"""


def _small_pool(root: Path, embedding_cache: Path | None) -> None:
    """The pool stage's outputs from a small pool, recorded with ``dvc commit`` as if the stage
    had run (embedding the whole tiny pool takes minutes; every later stage runs for real).
    ``embedding_cache``: a folder of embedding stores to embed from; removed again afterwards,
    so the stages under test embed alike in every workspace."""
    cache = root / "data" / "cache"
    if embedding_cache is not None and Path(embedding_cache).is_dir():
        shutil.copytree(embedding_cache, cache / "embeddings")
    subprocess.run([sys.executable, "-c", POOL_SCRIPT], cwd=root,
                   env=clean_env(), check=True, capture_output=True, text=True)
    shutil.rmtree(cache, ignore_errors=True)
    dvc(root, "commit", "-f", "pool")


def outputs(root: Path) -> dict[str, str]:
    """Every file under data/ but the volatile ones, by its sha256: the bytes of a stage's
    outputs must not depend on the workspace (a job's worktree) that wrote them."""
    found = {}
    for path in sorted((root / "data").rglob("*")):
        name = path.relative_to(root).as_posix()
        if path.is_file() and not name.startswith(VOLATILE):
            found[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


# what would send the clone's stages to other code or another data root (the tests' workspace
# sets the last three)
FOREIGN_ENV = ("PYTHONPATH", "COMPASS_DATA_DIR", "COMPASS_TRACE_PARAMS", "COMPASS_TRACE_STAGE")


def clean_env() -> dict:
    """This environment without FOREIGN_ENV: the clone's stages use its code and its data/."""
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN_ENV}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def dvc(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([DVC, *args], cwd=root, capture_output=True, text=True, check=check,
                          env=clean_env())
