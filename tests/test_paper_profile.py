"""The paper profile's data protocol and guards, on small hand-made records (no model, no hub)."""
import pytest

from compass import config
from compass.data import paper_profile as pp
from compass.evaluation.paper_protocol import _seeded_order, _wants_prox
from compass.protocols.data import paper_splits
from compass.stages import ecda as ecda_stage


def _pair(pid, lang, source, topic="t"):
    return {"id": pid, "language": lang, "topic": topic, "prompt": f"p {pid}", "response": f"r {pid}",
            "source": source}


def _item(sample_id, lang="es"):
    return {"id": sample_id, "language": lang, "topic": "astronomy", "category": "STEM",
            "question": f"q {sample_id}", "choices": ["a", "b", "c", "d"], "answer": 1, "cs_label": "CA"}


def test_paper_splits_follow_the_protocol():
    own = [_pair("es/aya/1", "es", pp.AYA_SOURCE), _pair("es/global_mmlu/d1", "es", pp.DEV_SOURCE),
           _pair("es/global_mmlu_test/t1", "es", pp.TEST_SOURCE)]
    splits, items = paper_splits(own, {"test": [_item("t1")], "dev": [], "dropped": []})
    assert dict(zip(splits["id"], splits["split"])) == {
        "es/aya/1": "train", "es/global_mmlu/d1": "dev", "es/global_mmlu_test/t1": "test"}
    assert items[0]["id"] == "es/global_mmlu_test/t1" and items[0]["sample_id"] == "t1"
    assert items[0]["cs_label"] == "CA" and items[0]["category"] == "STEM"


def test_a_target_without_aya_rows_is_named():
    own = [_pair("xh/global_mmlu/d1", "xh", pp.DEV_SOURCE)]
    with pytest.raises(config.ConfigError, match="target language 'xh' has no Aya rows"):
        paper_splits(own, {"test": [], "dev": [], "dropped": []})


def test_the_language_shift_never_streams_benchmark_items():
    cfg = config.from_dict({"languages": {"targets": ["es", "fr"]}, "ecda": {"language": "es"}})
    pairs = [_pair(f"fr/global_mmlu_test/{i}", "fr", pp.TEST_SOURCE) for i in range(50)]
    pairs += [_pair(f"de/aya/{i}", "de", pp.AYA_SOURCE) for i in range(5)]
    shifted = ecda_stage.shift_language_pairs(cfg, pairs)
    assert set(shifted["language"]) == {"de"} and set(shifted["source"]) == {pp.AYA_SOURCE}


def test_evaluation_order_is_seeded_not_the_files_subject_order():
    items = [_item(f"s{i:03d}") for i in range(100)]
    first = _seeded_order(items, 0, "es")
    assert first == _seeded_order(items, 0, "es")
    assert first != items and sorted(i["id"] for i in first) == [i["id"] for i in items]
    assert _seeded_order(items, 1, "es") != first


def test_prox_languages_are_read_without_the_targets():
    cfg = config.from_dict({"languages": {"targets": ["ja", "ko"]},
                            "evaluation": {"prox": {"languages": ["ko"]}}, "ecda": {"language": "ja"}})
    assert not _wants_prox(cfg, "ja") and _wants_prox(cfg, "ko")
    assert _wants_prox(config.from_dict({}), "fa")  # 'targets': every target


def test_duplicate_pool_ids_are_named(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPASS_DATA_DIR", str(tmp_path))
    from compass.stages.pool import build_pool

    pairs = [_pair("en/x/1", "en", "s"), _pair("en/x/1", "en", "s")]
    with pytest.raises(ValueError, match=r"1 duplicate pair id\(s\), e.g. \['en/x/1'\]"):
        build_pool(config.from_dict({}), pairs=pairs, show_progress_bar=False)


def test_prox_items_keep_the_worked_answer(tmp_path):
    import json

    from compass.data import paper
    from compass.evaluation.paper_tasks import prox_rows

    row = {"question_id": 7, "question": "q?", **{f"option_{k}": f"o{k}" for k in range(10)},
           "answer": "B", "answer_index": 1, "cot_content": "A: Let's think step by step. B.",
           "category": "math", "src": "stemez-Math"}
    folder = tmp_path / "validation"
    folder.mkdir()
    (folder / "en.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")
    items = paper.load_mmlu_prox_lite("en", "validation", source=folder)
    assert items[0]["cot_content"] == "A: Let's think step by step. B."
    assert prox_rows(items)[0]["cot_content"] == "A: Let's think step by step. B."


def test_unannotated_items_are_their_own_group_in_the_cultural_breakdown():
    from compass.evaluation.paper_protocol import cultural_label

    assert [cultural_label(x) for x in ("CS", "CA", "-", "", None)] == \
        ["CS", "CA", "not annotated", "not annotated", "not annotated"]
