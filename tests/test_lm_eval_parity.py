"""The evaluate stage's Global-MMLU and MMLU-ProX-Lite scores equal lm-eval's own: the stock
``global_mmlu_es`` and ``mmlu_prox_lite_en`` tasks, run through lm-eval's entry point
(``simple_evaluate``, what ``lm_eval --model hf --tasks ...`` calls) with the hub serving the same
fixture rows, against compass.evaluation.paper_tasks on the loader's items. Per sample: the same
log-likelihoods, the same generated text. The positive control: items without their hub rows
(cleaned text) give a different score on the one row whose option carries whitespace."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from compass.data.sets import global_mmlu, mmlu_prox
from compass.evaluation import paper_tasks
from tests.conftest import SHARED_FIXTURES, fixture_path
from tests.tiny_lm import tiny_llama, tiny_tokenizer

LITE = SHARED_FIXTURES / "global_mmlu" / "lite_test" / "es.csv"
PROX_ARROW = SHARED_FIXTURES / "mmlu_prox_lite" / "en_arrow"
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("no_network")]


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def model(tok):
    return tiny_llama(len(tok), seed=5)


def _serve(monkeypatch, repos: tuple[str, ...], name: str, splits: dict[str, list[dict]]):
    """``datasets.load_dataset`` answers the hub ids ``repos`` (config ``name``) with local rows,
    as the hub would; nothing else is served."""
    import datasets

    real = datasets.load_dataset

    def load_dataset(path, name_=None, *args, **kwargs):
        asked = kwargs.pop("name", name_)
        if path in repos and asked == name:
            return datasets.DatasetDict({k: datasets.Dataset.from_list(v) for k, v in splits.items()})
        return real(path, asked, *args, **kwargs)

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)


@pytest.fixture(scope="module")
def manager():
    """lm-eval's own task index (its whole library, as ``lm_eval --tasks`` reads it), once."""
    from lm_eval.tasks import TaskManager

    return TaskManager()


def _stock(model, tok, manager, task: str, **kw) -> dict:
    """lm-eval's own task by its own name, through its own entry point (samples logged)."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=model, tokenizer=tok, batch_size=1, device="cpu")
    return lm_eval.simple_evaluate(model=lm, tasks=[task], num_fewshot=0, log_samples=True,
                                   task_manager=manager, **kw)


def _by_doc(result: dict, key: str) -> dict:
    return {str(s["doc"][key]): s for samples in result["samples"].values() for s in samples}


def test_global_mmlu_per_sample_equals_lm_evals_own_task(model, tok, manager, tmp_path,
                                                       monkeypatch):
    with open(fixture_path(LITE), newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    padded = [r for r in rows if any(r[o] != r[o].strip() for o in paper_tasks.GLOBAL_MMLU_OPTIONS)]
    by_category = {}
    for r in rows:
        by_category.setdefault(r["subject_category"], []).append(r)
    subset = [r for group in by_category.values() for r in group[:3]] + padded  # every subtask
    folder = tmp_path / "lite_test"
    folder.mkdir()
    with open(folder / "es.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(subset)
    items = global_mmlu.load_global_mmlu_lite("es", source=folder,
                                              cache_dir=str(tmp_path / "cache"))
    ours = paper_tasks.run_global_mmlu(model, tok, items, "es", tmp_path / "tasks", lite=True,
                                       cross_check=False)
    _serve(monkeypatch, ("CohereLabs/Global-MMLU-Lite", "CohereForAI/Global-MMLU-Lite"), "es",
           {"test": subset, "dev": subset[:5]})
    theirs = _by_doc(_stock(model, tok, manager, "global_mmlu_es"), "sample_id")
    assert sorted(theirs) == sorted(ours["id"])
    for sample_id, lls in zip(ours["id"], ours["loglikelihoods"]):
        stock = [float(r[0]) for r in theirs[sample_id]["filtered_resps"]]
        np.testing.assert_allclose(lls, stock, atol=1e-5, err_msg=sample_id)
    cleaned = [{k: v for k, v in it.items() if k != "row"} for it in items]
    control = paper_tasks.run_global_mmlu(model, tok, cleaned, "es", tmp_path / "control",
                                          lite=True, cross_check=False)
    moved = {i for i, lls in zip(control["id"], control["loglikelihoods"])
             if not np.allclose(lls, [float(r[0]) for r in theirs[i]["filtered_resps"]], atol=1e-5)}
    assert moved == {r["sample_id"] for r in padded}


def test_prox_lite_per_sample_equals_lm_evals_own_task(model, tok, manager, tmp_path,
                                                      monkeypatch):
    fixture_path(PROX_ARROW)
    import datasets

    rows = datasets.load_from_disk(str(PROX_ARROW)).to_list()
    by_category = {}
    for r in rows:
        by_category.setdefault(r["category"], []).append(r)
    subset = [group[0] for group in by_category.values()]  # one per subtask
    saved = tmp_path / "prox"
    datasets.Dataset.from_list(subset).save_to_disk(str(saved))
    items = mmlu_prox.load_mmlu_prox_lite("en", source=saved, source_split="test")
    ours, _ = paper_tasks.run_prox_lite(model, tok, items, items[:1], "en", tmp_path / "tasks",
                                        num_fewshot=0, max_gen_toks=6, generator="lm-eval")
    _serve(monkeypatch, ("li-lab/MMLU-ProX-Lite",), "en", {"test": subset, "validation": subset[:1]})
    theirs = _by_doc(_stock(model, tok, manager, "mmlu_prox_lite_en",
                                   gen_kwargs="max_gen_toks=6"),
                     "question_id")
    assert sorted(theirs) == sorted(ours["id"])
    for qid, generated, extracted in zip(ours["id"], ours["generated"], ours["extracted"]):
        assert (generated, extracted) == (theirs[qid]["resps"][0][0],
                                          theirs[qid]["filtered_resps"][0]), qid
