"""lm-eval's paper tasks rebuilt on local rows (compass.evaluation.paper_tasks).

The reference everywhere is lm-eval's own configuration, read from its own YAML files under
lm_eval/tasks: the written tasks must render the same prompts, choices and targets, use the same
functions, filters and metrics, and differ only in where the rows come from. The runs use the
random-init tiny Gemma: its answers are garbage, which exercises the paths (and the answer
extraction failures) without a real model. Real rows come from ``shared/fixtures``; the tests
that need them are skipped when it is absent. Nothing may touch the network (``no_network``).
"""
from __future__ import annotations

import csv
import functools
import json
import inspect
from pathlib import Path

import pytest

from compass.evaluation import paper_tasks
from tiny_lm import tiny_gemma, tiny_tokenizer

from tests.conftest import SHARED_FIXTURES as FIXTURES
# missing fixtures fail these tests (COMPASS_FIXTURES=none skips them): conftest.fixture_path
needs_fixtures = pytest.mark.usefixtures("fixtures_dir")
GMMLU = FIXTURES / "global_mmlu"
PROX = FIXTURES / "mmlu_prox_lite"
# the keys a written task may differ in from lm-eval's: where the rows come from, and its name
DATA_KEYS = {"dataset_path", "dataset_name", "dataset_kwargs", "task", "tag", "metadata"}


pytestmark = pytest.mark.usefixtures("no_network")  # every test here: the network refused


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def hf_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("hf_cache"))


def lm_eval_yaml(relative: str) -> dict:
    """lm-eval's own config of one task, read from its YAML with its own loader."""
    import lm_eval.tasks
    from lm_eval.tasks._yaml_loader import load_yaml

    return load_yaml(Path(lm_eval.tasks.__file__).parent / relative)


def written_yaml(folder, name: str, leaf: str) -> dict:
    from lm_eval.tasks._yaml_loader import load_yaml

    return load_yaml(paper_tasks.task_folder(folder, name) / f"{leaf}.yaml")


def same_function(a, b) -> bool:
    """The same function of the same file (a module loaded twice yields distinct objects)."""
    if isinstance(a, functools.partial) and isinstance(b, functools.partial):
        return same_function(a.func, b.func) and a.args == b.args and a.keywords == b.keywords
    return (inspect.getsourcefile(a) == inspect.getsourcefile(b)
            and a.__qualname__ == b.__qualname__)


def assert_same_semantics(ours: dict, theirs: dict, allowed: set[str] = frozenset()):
    """Every key of lm-eval's config but the data source is lm-eval's, functions included."""
    for key in sorted(set(ours) | set(theirs)):
        if key in DATA_KEYS | set(allowed):
            continue
        a, b = ours.get(key), theirs.get(key)
        if key == "fewshot_config":
            assert set(a) == set(b), key
            for sub in a:
                assert (same_function(a[sub], b[sub]) if callable(b[sub]) else a[sub] == b[sub]), sub
        elif callable(b):
            assert callable(a) and same_function(a, b), key
        else:
            assert a == b, key


def load_written(folder, name: str) -> dict:
    """Our written task, built by lm-eval's own TaskManager from its YAMLs: {leaf: Task}."""
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=str(paper_tasks.task_folder(folder, name)),
                          include_defaults=False)
    return manager.load([name])["tasks"]


def read_csv(path: Path) -> list[dict]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


# --------------------------------------------------------------------------------------------
# Global-MMLU


@needs_fixtures
def test_global_mmlu_task_is_lm_evals_config_and_prompt(tmp_path):
    from lm_eval.utils import apply_template

    rows = read_csv(GMMLU / "lite_test" / "es.csv")[:40]  # hub rows, columns as on the hub
    dev = [json.loads(line) for line in (GMMLU / "dev" / "es.jsonl").read_text("utf-8").splitlines()]
    name = paper_tasks.write_global_mmlu_task(rows, "es", tmp_path, fewshot_items=dev)
    assert name == "compass_global_mmlu_es"
    theirs = lm_eval_yaml("global_mmlu/default/es/global_mmlu_es_stem.yaml")
    ours = written_yaml(tmp_path, name, "compass_global_mmlu_es_stem")
    assert_same_semantics(ours, theirs)
    assert ours["dataset_path"] == "json" and "dataset_name" not in ours
    assert set(ours["dataset_kwargs"]["data_files"]) == {"test", "dev"}
    by_id = {row["sample_id"]: row for row in rows}
    tasks = load_written(tmp_path, name)
    assert {t.removeprefix("compass_global_mmlu_es_") for t in tasks} <= {
        "business", "humanities", "medical", "other", "stem", "social_sciences"}
    n = 0
    for task in tasks.values():
        for doc in task.test_docs():
            row = by_id[doc["sample_id"]]
            # lm-eval's own template on the fixture row, against our task's rendering
            assert task.doc_to_text(doc) == apply_template(theirs["doc_to_text"], row)
            assert task.doc_to_choice(doc) == ["A", "B", "C", "D"]
            assert task.doc_to_target(doc) == row["answer"]
            n += 1
    assert n == len(rows)  # every row lands in exactly one of lm-eval's subtasks


@needs_fixtures
def test_global_mmlu_full_task_keeps_lm_evals_per_subject_tasks(tmp_path):
    rows = read_csv(GMMLU / "full_test_en" / "anatomy.csv")[:5]
    name = paper_tasks.write_global_mmlu_task(rows, "en", tmp_path, lite=False)
    assert name == "compass_global_mmlu_full_en"
    ours = written_yaml(tmp_path, name, "compass_global_mmlu_full_en_anatomy")
    theirs = lm_eval_yaml("global_mmlu/full/en/global_mmlu_full_en_anatomy.yaml")
    assert_same_semantics(ours, theirs, allowed={"fewshot_split"})
    # no dev rows given: no few-shot split (lm-eval's is 'dev'; 0-shot runs need none)
    assert theirs["fewshot_split"] == "dev" and "fewshot_split" not in ours
    assert list(load_written(tmp_path, name)) == ["compass_global_mmlu_full_en_anatomy"]


@needs_fixtures
def test_loader_items_hand_lm_eval_their_hub_rows_unchanged(hf_cache):
    """Items from our loader carry their source row, so lm-eval renders its prompt from the hub
    row exactly; an item without it (converted back from the cleaned fields) renders the one
    hub option with surrounding whitespace without it: the check can tell the two apart."""
    from lm_eval.utils import apply_template

    from compass.data.sets import global_mmlu

    template = lm_eval_yaml("global_mmlu/default/es/global_mmlu_es_stem.yaml")["doc_to_text"]
    raw = read_csv(GMMLU / "lite_test" / "es.csv")
    items = global_mmlu.load_global_mmlu_lite("es", source=GMMLU / "lite_test", cache_dir=hf_cache)
    padded = {r["sample_id"] for r in raw
              if any(r[o] != r[o].strip() for o in paper_tasks.GLOBAL_MMLU_OPTIONS)}
    assert len(padded) == 1

    def differ(converted):
        assert [r["sample_id"] for r in converted] == [r["sample_id"] for r in raw]
        return {r["sample_id"] for r, c in zip(raw, converted)
                if apply_template(template, r) != apply_template(template, c)}

    assert differ(paper_tasks.global_mmlu_rows(items)) == set()
    assert paper_tasks.global_mmlu_rows(items) == [dict(r) for r in raw]
    cleaned = [{k: v for k, v in it.items() if k != "row"} for it in items]
    assert differ(paper_tasks.global_mmlu_rows(cleaned)) == padded
    for r, c in zip(raw, paper_tasks.global_mmlu_rows(cleaned)):
        assert (c["answer"], c["subject_category"], c["cultural_sensitivity_label"]) == \
            (r["answer"], r["subject_category"], r["cultural_sensitivity_label"])


@needs_fixtures
def test_run_global_mmlu_tiny_with_cross_check(tok, tmp_path, hf_cache):
    from lm_eval.utils import apply_template

    from compass.data.sets import global_mmlu

    model = tiny_gemma(len(tok), seed=3)
    items = global_mmlu.load_global_mmlu_lite("es", source=GMMLU / "lite_test", cache_dir=hf_cache)
    frame = paper_tasks.run_global_mmlu(model, tok, items, "es", tmp_path, limit=4)
    assert list(frame["id"]) == [item["id"] for item in items[:4]]
    assert {"id", "subject", "subject_category", "cultural_sensitivity_label", "gold", "pred",
            "correct", "acc", "loglikelihoods", "context", "continuations", "fast_pred",
            "same_choice", "ll_diff"} <= set(frame.columns)
    assert list(frame["gold"]) == [item["answer"] for item in items[:4]]
    assert (frame["correct"] == frame["acc"]).all()  # our argmax is lm-eval's acc
    assert frame.attrs["lm_eval"]["acc"] == pytest.approx(frame["acc"].mean())
    assert all(c == [" A", " B", " C", " D"] for c in frame["continuations"])
    template = lm_eval_yaml("global_mmlu/default/es/global_mmlu_es_stem.yaml")["doc_to_text"]
    rows = paper_tasks.global_mmlu_rows(items[:4])
    assert list(frame["context"]) == [apply_template(template, row) for row in rows]
    check = frame.attrs["cross_check"]
    assert check["items"] == 4 and check["same_choice"] == 4
    assert check["max_abs_loglikelihood_diff"] < 1e-4
    assert frame["same_choice"].all() and (frame["ll_diff"] < 1e-4).all()


def test_unknown_language_names_lm_evals_languages(tmp_path):
    item = {"id": "a/test/0", "topic": "a", "category": "STEM", "question": "q",
            "choices": ["1", "2", "3", "4"], "answer": 0}
    with pytest.raises(ValueError, match=r"'global_mmlu_xx'.*language 'xx'.*: ar, .*\bes\b"):
        paper_tasks.write_global_mmlu_task([item], "xx", tmp_path)
    with pytest.raises(ValueError, match=r"'global_mmlu_full_xx'.*\buk\b"):
        paper_tasks.write_global_mmlu_task([item], "xx", tmp_path, lite=False)
    with pytest.raises(ValueError, match=r"'mmlu_prox_lite_xx'.*language 'xx'.*\bja\b"):
        paper_tasks.write_prox_lite_task([item], [], "xx", tmp_path)


def test_rows_outside_lm_evals_subtasks_raise(tmp_path):
    """lm-eval's subtasks filter rows by category; a row no filter keeps would vanish silently."""
    item = {"id": "a/test/0", "topic": "a", "category": "Astrology", "question": "q",
            "choices": ["1", "2", "3", "4"], "answer": 0}
    with pytest.raises(ValueError, match=r"1 of 1 rows fall in none of lm-eval's subtasks"):
        paper_tasks.write_global_mmlu_task([item], "es", tmp_path)


# --------------------------------------------------------------------------------------------
# MMLU-ProX-Lite


def prox_english_rows() -> tuple[list[dict], list[dict]]:
    """The English Lite test rows and those of its business category (skips without fixtures)."""
    if not (PROX / "en_arrow").is_dir():
        pytest.skip(f"real-format fixtures not found at {FIXTURES}")
    import datasets

    rows = datasets.load_from_disk(str(PROX / "en_arrow")).to_list()
    return rows, [r for r in rows if r["category"] == "business"]


@pytest.fixture(scope="module")
def prox_en():
    """The English Lite test rows (hub columns). The fixture has no validation rows with a chain
    of thought, so few-shot rows are other test rows of the category with a written CoT."""
    rows, business = prox_english_rows()
    fewshot = [dict(r, cot_content=f"A: Let's think step by step. Step. The answer is ({r['answer']}).")
               for r in business[2:7]]
    return rows, business[:2], fewshot


def test_prox_task_is_lm_evals_config_and_5shot_prompt(prox_en, tmp_path):
    from lm_eval.api.task import ConfigurableTask
    from lm_eval.tasks.mmlu_prox.en import utils as en_utils

    _, test, fewshot = prox_en
    name = paper_tasks.write_prox_lite_task(test, fewshot, "en", tmp_path, max_gen_toks=64)
    assert name == "compass_mmlu_prox_lite_en"
    leaf = "compass_mmlu_prox_lite_en_business"
    theirs = lm_eval_yaml("mmlu_prox/en/mmlu_prox_lite_en_business.yaml")
    ours = written_yaml(tmp_path, name, leaf)
    assert_same_semantics(ours, theirs, allowed={"generation_kwargs"})
    assert ours["generation_kwargs"] == {**theirs["generation_kwargs"], "max_gen_toks": 64}
    assert ours["filter_list"][0]["filter"][0]["regex_pattern"] == r"answer is \(?([ABCDEFGHIJ])\)?"
    assert set(ours["dataset_kwargs"]["data_files"]) == {"test", "validation"}
    # lm-eval's own task object from lm-eval's own YAML, on the same local files
    reference = ConfigurableTask(config={**{k: v for k, v in theirs.items() if k != "dataset_name"},
                                         "dataset_path": "json",
                                         "dataset_kwargs": ours["dataset_kwargs"]})
    task = load_written(tmp_path, name)[leaf]
    docs, ref_docs = list(task.test_docs()), list(reference.test_docs())
    assert len(docs) == 2
    for doc, ref_doc in zip(docs, ref_docs):
        prompt = task.fewshot_context(doc, 5)
        assert prompt == reference.fewshot_context(ref_doc, 5)
        # and, spelled out: description, five worked examples (first_n; each ends in a blank
        # line, and the empty few-shot target adds no delimiter), then the question
        shots = "".join(en_utils.fewshot_to_text(shot) for shot in fewshot[:5])
        assert prompt == theirs["description"] + shots + en_utils.doc_to_text(doc)
        assert prompt.endswith("Answer: Let's think step by step.")
        assert prompt.count("Answer: Let's think step by step. Step. The answer is (") == 5


def test_prox_loader_items_hand_lm_eval_their_hub_rows_unchanged(prox_en):
    """As for Global-MMLU: lm-eval reads the hub row the item carries, exactly; without it, the
    cleaned fields render differently where the hub's question or an option carries
    surrounding whitespace (the check can fail)."""
    from lm_eval.tasks.mmlu_prox.en import utils as en_utils

    from compass.data.sets import mmlu_prox

    rows, _, _ = prox_en
    items = mmlu_prox.load_mmlu_prox_lite("en", source=PROX / "en_arrow", source_split="test")

    def differ(converted):
        assert [(c["answer"], c["category"]) for c in converted] == \
            [(r["answer"], r["category"]) for r in rows]
        return {i for i, (c, r) in enumerate(zip(converted, rows))
                if en_utils.doc_to_text(c) != en_utils.doc_to_text(r)}

    assert differ(paper_tasks.prox_rows(items)) == set()
    cleaned = [{k: v for k, v in it.items() if k != "row"} for it in items]
    padded = {i for i, r in enumerate(rows)
              if any(isinstance(r[k], str) and r[k] != r[k].strip()
                     for k in ("question", *paper_tasks.PROX_OPTIONS))}
    assert differ(paper_tasks.prox_rows(cleaned)) == padded and 0 < len(padded) < len(rows) // 10


def test_run_prox_lite_tiny_counts_extraction_failures(prox_en, tok, tmp_path):
    _, test, fewshot = prox_en
    model = tiny_gemma(len(tok), seed=4)
    with pytest.warns(UserWarning, match="answer extraction failed"):
        frame, summary = paper_tasks.run_prox_lite(model, tok, test + fewshot, fewshot, "en",
                                                   tmp_path, limit=2, max_gen_toks=8)
    assert list(frame["id"]) == [str(r["question_id"]) for r in test]
    assert {"id", "category", "gold", "generated", "extracted", "correct",
            "extraction_failed"} <= set(frame.columns)
    assert list(frame["gold"]) == [r["answer"] for r in test]
    # garbage from a random model: nothing extracted, counted rather than crashing
    assert summary["n"] == 2 and summary["extraction_failures"] == frame["extraction_failed"].sum()
    assert summary["extraction_failure_rate"] == frame["extraction_failed"].mean()
    assert summary["exact_match"] == pytest.approx(frame["correct"].mean())
    assert summary["metric"] == "exact_match,custom-extract" and summary["max_gen_toks"] == 8


def test_prox_needs_its_fewshot_rows(prox_en, tmp_path):
    _, test, fewshot = prox_en
    with pytest.raises(ValueError, match=r"5-shot needs 5 few-shot rows.*business': 2"):
        paper_tasks.run_prox_lite(None, None, test, fewshot[:2], "en", tmp_path)
