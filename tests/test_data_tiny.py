import pandas as pd
import pytest

from compass.config import SplitConfig
from compass.data.splits import SplitError, make_test_items, split_language
from compass.data.tiny import FOLDER_LANGUAGE, load_pairs
from compass.languages import normalize
from compass.schemas import PAIR_FIELDS


@pytest.fixture(scope="module")
def pairs():
    return load_pairs()


def test_pairs_follow_schema_and_ids_are_unique(pairs):
    assert len(pairs) > 5000
    assert all(set(PAIR_FIELDS) <= set(p) for p in pairs)
    ids = [p["id"] for p in pairs]
    assert len(ids) == len(set(ids))
    counts = pd.Series([p["language"] for p in pairs]).value_counts()
    assert counts["fa"] > 700 and counts["ja"] > 500 and counts["uk"] > 400
    for tag in FOLDER_LANGUAGE.values():
        assert normalize(tag) == tag


@pytest.mark.parametrize("lang", ["fa", "ja", "uk"])
def test_splits_disjoint_grouped_and_deterministic(pairs, lang):
    own = [p for p in pairs if p["language"] == lang]
    cfg = SplitConfig()
    a = split_language(own, cfg, seed=0)
    b = split_language(own, cfg, seed=0)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == len(own) and a["id"].is_unique
    assert set(a["split"]) == {"dev", "train", "test"}
    # a prompt group never straddles two splits (no leakage through repeated prompts)
    assert (a.groupby("group")["split"].nunique() == 1).all()
    # existing train data covers only part of the topics
    assert a.loc[a["split"] == "train", "topic"].nunique() < a["topic"].nunique()
    c = split_language(own, cfg, seed=1)
    assert not a["split"].equals(c["split"])


def test_test_items_are_valid_and_deterministic(pairs):
    own = [p for p in pairs if p["language"] == "uk"]
    cfg = SplitConfig(max_test_items=50)
    splits = split_language(own, cfg, seed=0)
    items = make_test_items(own, splits, cfg, seed=0)
    assert items == make_test_items(own, splits, cfg, seed=0)
    assert len(items) == 50
    by_id = {p["id"]: p for p in own}
    topic_of_response = {}
    for p in own:
        topic_of_response.setdefault(p["response"], set()).add(p["topic"])
    test_ids = set(splits.loc[splits["split"] == "test", "id"])
    positions = []
    for item in items:
        assert item["id"] in test_ids
        assert len(item["choices"]) == 4 and len(set(item["choices"])) == 4
        assert item["choices"][item["answer"]] == by_id[item["id"]]["response"]
        for k, choice in enumerate(item["choices"]):
            if k != item["answer"]:  # distractors come from other topics of the language
                assert topic_of_response[choice] - {item["topic"]}
        positions.append(item["answer"])
    assert len(set(positions)) > 1  # the true answer is not always in the same place


def test_single_topic_language_is_rejected():
    pairs = [{"id": f"x/{i}", "language": "yo", "topic": "one", "prompt": f"p{i}",
              "response": "r", "source": "t"} for i in range(30)]
    with pytest.raises(SplitError, match="'yo' has one topic"):
        split_language(pairs, SplitConfig(), seed=0)


@pytest.mark.parametrize("lang", ["fa", "uk"])
def test_distractors_come_only_from_splits_no_adapter_trains_on(pairs, lang):
    """A distractor from the train split is a response the adapters saw and zero-shot did not."""
    own = [p for p in pairs if p["language"] == lang]
    splits = split_language(own, SplitConfig(), seed=0)
    trained = {p["response"] for p in own
               if p["id"] in set(splits.loc[splits["split"] == "train", "id"])}
    untrained = {p["response"] for p in own
                 if p["id"] in set(splits.loc[splits["split"] != "train", "id"])}
    items = make_test_items(own, splits, SplitConfig(), seed=0)
    for item in items:
        distractors = [c for k, c in enumerate(item["choices"]) if k != item["answer"]]
        assert all(d in untrained for d in distractors)
    only_trained = trained - untrained
    assert only_trained and not any(d in only_trained for it in items for d in it["choices"])
