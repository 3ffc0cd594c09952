"""The paper profile's data, assembled from the loaders in :mod:`compass.data.paper`.

- Pool: the Aya Dataset (both layouts). Each target language's own Aya rows are its existing
  training data, never auxiliary for itself; other languages are capped at
  data.aux_per_language_cap rows (a seeded sample). A target's rows stay uncapped (all of them
  are its training data), so with several targets each is a larger auxiliary language for the
  others than an uncapped-by-design language would be.
- E_t: the Global-MMLU dev split of the target (285 items), as prompt/response pairs.
- Test: Global-MMLU-Lite test (data.test_set = lite) or the full Global-MMLU test, with subject,
  subject category and the culturally sensitive / agnostic label kept; MMLU-ProX-Lite test (and
  its validation split for few-shot prompts) for evaluation.prox.languages.

E_t and the test items enter the pool as pairs of the target language (so they are embedded once,
decontaminate the selection and assign test items to clusters), with benchmark sources that
:func:`is_benchmark` marks: a benchmark pair is never auxiliary data for another target.
"""
from __future__ import annotations

from compass import hub_ids
from compass.data import paper
from compass.data.splits import rng_for

DEV_SOURCE = "global_mmlu"          # E_t pairs
TEST_SOURCE = "global_mmlu_test"    # test items as pairs (embedding only; never trained on)
PROX_TEST_SOURCE = "mmlu_prox_test"  # MMLU-ProX-Lite test items as pairs (decontamination only)
BENCHMARK_SOURCES = (DEV_SOURCE, TEST_SOURCE, PROX_TEST_SOURCE)
TEST_SOURCES = (TEST_SOURCE, PROX_TEST_SOURCE)  # what the selection is decontaminated against
AYA_SOURCE = "aya_dataset"


def hub_source(source: str, configs: tuple[str, ...] = ("default",)) -> dict:
    """A data-set param as the loaders take it: ``source`` (a local path, or the hub id under
    which the local cache holds ``configs``, current or former organisation name) and its pinned
    ``revision`` (``id@revision`` in params; None: the hub's main)."""
    from compass import hub_assets

    repo_id, revision = hub_ids.split(source)
    if hub_assets.is_hub_id(repo_id):
        repo_id = hub_assets.offline_id(repo_id, configs)
    return {"source": repo_id, "revision": revision}


def is_benchmark(source: str) -> bool:
    """Whether a pool pair's ``source`` is one of the benchmarks (E_t or a test set) rather than
    training data."""
    return source in BENCHMARK_SOURCES


def aya_pool(cfg) -> list[dict]:
    """Aya pairs; auxiliary languages capped at data.aux_per_language_cap (0: no cap)."""
    pairs = paper.load_aya(**hub_source(cfg.data.aux_dataset))
    cap = cfg.data.aux_per_language_cap
    if not cap:
        return pairs
    by_lang: dict[str, list[dict]] = {}
    for p in pairs:
        by_lang.setdefault(p["language"], []).append(p)
    kept = []
    for lang, rows in sorted(by_lang.items()):
        if lang in cfg.targets or len(rows) <= cap:
            kept += rows
        else:
            order = sorted(rng_for(cfg.seed, lang, "aya_cap").choice(len(rows), cap, replace=False))
            kept += [rows[i] for i in order]
    return kept


def benchmark_items(cfg, lang: str) -> dict[str, list[dict]]:
    """E_t, test and (where asked) MMLU-ProX-Lite items of one target, with the rows each loader
    dropped (empty options) under 'dropped'."""
    d = cfg.data
    dev = paper.load_global_mmlu(lang, "dev", **hub_source(d.target_dataset, (lang,)))
    if d.test_set == "lite":
        test = paper.load_global_mmlu_lite(lang, "test",
                                           **hub_source(d.target_lite_dataset, (lang,)))
    else:
        test = paper.load_global_mmlu(lang, "test", **hub_source(d.target_dataset, (lang,)))
    test = list(test)
    if len(test) > cfg.data.split.max_test_items:  # a seeded sample, in the data set's order
        keep = sorted(rng_for(cfg.seed, lang, "test_items").choice(
            len(test), cfg.data.split.max_test_items, replace=False))
        test = [test[i] for i in keep]
    out = {"dev": list(dev), "test": test,
           "dropped": [*getattr(dev, "dropped", []), *getattr(test, "dropped", [])]}
    if lang in cfg.prox_languages():
        prox = hub_source(d.prox_lite_dataset, (lang,))
        out["prox_test"] = paper.load_mmlu_prox_lite(lang, "test", **prox)
        out["prox_validation"] = paper.load_mmlu_prox_lite(lang, "validation", **prox)
    return out


def benchmark_pairs(items: dict[str, list[dict]]) -> list[dict]:
    """E_t and the test items (Global-MMLU, and MMLU-ProX-Lite where loaded) as pool pairs (ids
    '<lang>/<source>/<sample id>'): embedded once, so the selection is decontaminated against
    every test set the adapters are scored on."""
    return (paper.global_mmlu_dev_as_pairs(items["dev"], DEV_SOURCE)
            + paper.global_mmlu_dev_as_pairs(items["test"], TEST_SOURCE)
            + paper.global_mmlu_dev_as_pairs(items.get("prox_test", []), PROX_TEST_SOURCE))


def pool_id(item: dict, source: str) -> str:
    """The pool id of a benchmark item, ``<lang>/<source>/<item id>``."""
    return f"{item['language']}/{source}/{item['id']}"
