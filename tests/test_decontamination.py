"""Decontamination: near-copies and translations of test items leave the auxiliary pool; its recall
on parallel text the package carries is measured (and a planted translation is caught)."""
import numpy as np
import pandas as pd

from compass.selection.decontamination import contaminated, parallel_recall, parallel_texts


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_a_planted_translation_and_a_near_copy_are_dropped_and_the_rest_kept():
    rng = np.random.default_rng(0)
    test = unit(rng.normal(size=(5, 16)))
    others = unit(rng.normal(size=(40, 16)))  # unrelated chat of one language
    # a translation: the test item's direction plus a language offset (cosine ~0.87), and a copy
    offset = unit(rng.normal(size=16))
    translation = unit(test[2] + 0.5 * offset)
    copy = unit(test[4] + 0.05 * unit(rng.normal(size=16)))
    vectors = np.vstack([others, translation, copy])
    aux = pd.DataFrame({"id": [f"ru/{i}" for i in range(len(vectors))], "language": "ru"})
    lookup = dict(zip(aux["id"], vectors))
    assert 0.84 < float(translation @ test[2]) < 0.9 < float(copy @ test[4])
    drop, report = contaminated(aux, lambda ids: np.stack([lookup[i] for i in ids]), test, 0.9, 0.84)
    assert drop[-2] and drop[-1] and not drop[:-2].any()
    assert report.loc[0, ["near_copies", "translations", "kept"]].tolist() == [1, 1, 40]


def test_without_the_mutual_rule_a_translation_under_the_threshold_stays():
    """The near-copy threshold alone (the earlier rule) misses the translation: negative control
    of the second rule."""
    rng = np.random.default_rng(1)
    test = unit(rng.normal(size=(3, 16)))
    translation = unit(test[0] + 0.55 * unit(rng.normal(size=16)))
    aux = pd.DataFrame({"id": ["x"], "language": "de"})
    drop, _ = contaminated(aux, lambda ids: translation[None, :], test, 0.9, 1.0)
    assert not drop.any()


def test_parallel_text_is_aligned_and_recall_is_measured():
    texts = parallel_texts()
    assert set(texts) == {"templates", "nouns"}
    assert len(texts["nouns"]) == 26 and {len(v) for v in texts["nouns"].values()} == {100}
    assert len({len(v) for v in texts["templates"].values()}) == 1

    def embed(batch):  # a perfect encoder: every translation gets its original's vector
        block = len(batch) // 26  # the texts come language by language, aligned by position
        return np.eye(block)[np.arange(len(batch)) % block]

    table = parallel_recall(embed, 0.9, 0.84).set_index("parallel_set")
    assert (table["recall"] == 1.0).all() and table.loc["nouns", "pairs"] == 26 * 25 * 100
