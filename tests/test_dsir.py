"""compass.selection.dsir: DSIR weights from the data-selection library, seeded Gumbel top-k sampling."""
import numpy as np
import pytest

from compass.selection import dsir

COOKING = (
    "pan oil garlic onion simmer boil recipe salt pepper butter flour oven bake stir sauce "
    "knife chop dough soup roast"
).split()
ASTRONOMY = (
    "star planet orbit galaxy telescope comet nebula moon gravity light year solar eclipse "
    "asteroid cosmos meteor crater satellite"
).split()


def _texts(rng, vocab, n, length=8):
    return [" ".join(rng.choice(vocab, length)) for _ in range(n)]


@pytest.fixture(scope="module")
def corpus():
    rng = np.random.default_rng(0)
    target = _texts(rng, COOKING, 150)
    candidates = _texts(rng, COOKING, 150) + _texts(rng, ASTRONOMY, 150)
    return target, candidates


@pytest.fixture(scope="module")
def weights(corpus):
    target, candidates = corpus
    return dsir.log_importance_weights(target, candidates, ngrams=2, num_buckets=10000)


def test_weights_favour_target_like_candidates(weights, corpus):
    assert weights.shape == (len(corpus[1]),)
    assert weights.dtype == float and np.isfinite(weights).all()
    cooking, astronomy = weights[:150], weights[150:]
    assert cooking.mean() > astronomy.mean()
    assert cooking.min() > astronomy.max()


def test_weights_follow_the_input_order(weights, corpus):
    target, candidates = corpus
    perm = np.random.default_rng(1).permutation(len(candidates))
    shuffled = dsir.log_importance_weights(target, [candidates[i] for i in perm])
    np.testing.assert_allclose(shuffled, weights[perm])


def test_sharded_library_run_is_put_back_in_order(weights, corpus):
    """num_proc > 1: the library shards the file round-robin; the result is still input order."""
    target, candidates = corpus
    parallel = dsir.log_importance_weights(target, candidates, num_proc=3)
    np.testing.assert_allclose(parallel, weights)


def test_awkward_texts_and_work_dir(tmp_path):
    target = ["salt and pepper", "pepper sauce\nwith salt", "garlic"]
    candidates = [
        "", "salt\u2028pepper", "moon\r\nstar", 'a "quoted" pepper', "Привет, pepper",
    ]
    weights = dsir.log_importance_weights(target, candidates, num_buckets=1000, work_dir=tmp_path)
    assert weights.shape == (5,)
    assert weights[0] == 0.0  # no tokens, no evidence either way
    assert weights[1] > weights[2]
    assert list(tmp_path.iterdir()) == []  # the temporary folder is removed


def test_input_errors():
    with pytest.raises(ValueError, match="target_texts is empty"):
        dsir.log_importance_weights([], ["x"])
    with pytest.raises(TypeError, match="list of strings"):
        dsir.log_importance_weights("target", ["x"])
    with pytest.raises(ValueError, match="num_buckets"):
        dsir.log_importance_weights(["a"], ["b"], num_buckets=0)
    assert dsir.log_importance_weights(["a"], []).shape == (0,)


def test_tokenizer_matches_the_library():
    from data_selection.hashed_ngram_dsir import wpt

    text = "Hello, world!! It's 3.5$ -- ok? Привет, мир… 你好"
    assert dsir.wordpunct_tokenize(text) == wpt.tokenize(text)


def test_gumbel_top_k_is_seeded():
    log_w = np.log(np.arange(1, 51, dtype=float))
    a = dsir.gumbel_top_k(log_w, 10, np.random.default_rng(7))
    b = dsir.gumbel_top_k(log_w, 10, np.random.default_rng(7))
    c = dsir.gumbel_top_k(log_w, 10, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.dtype == np.int64 and len(set(a.tolist())) == 10


def test_gumbel_top_k_respects_mask_and_k():
    rng = np.random.default_rng(0)
    log_w = np.zeros(20)
    mask = np.zeros(20, dtype=bool)
    mask[[1, 4, 5, 9, 13, 17]] = True
    for k in range(0, 7):
        chosen = dsir.gumbel_top_k(log_w, k, rng, mask=mask)
        assert len(chosen) == k and len(set(chosen.tolist())) == k
        assert mask[chosen].all()
    assert sorted(dsir.gumbel_top_k(log_w, 6, rng, mask=mask).tolist()) == [1, 4, 5, 9, 13, 17]


def test_gumbel_top_k_errors():
    rng = np.random.default_rng(0)
    mask = np.array([True, True, True, False, False])
    with pytest.raises(ValueError, match=r"k = 4.*only 3 are eligible"):
        dsir.gumbel_top_k(np.zeros(5), 4, rng, mask=mask)
    with pytest.raises(ValueError, match=r"k = 3.*only 2"):  # weight 0 is not eligible
        dsir.gumbel_top_k(np.array([0.0, -np.inf, 1.0]), 3, rng)
    with pytest.raises(TypeError, match="Generator"):
        dsir.gumbel_top_k(np.zeros(5), 1, 0)
    with pytest.raises(ValueError, match="shape"):
        dsir.gumbel_top_k(np.zeros(5), 1, rng, mask=np.ones(4, dtype=bool))
    with pytest.raises(ValueError, match="NaN"):
        dsir.gumbel_top_k(np.array([0.0, np.nan]), 1, rng)


def test_gumbel_top_k_samples_proportionally():
    rng = np.random.default_rng(123)
    weights = np.array([1.0, 2.0, 4.0, 8.0, 0.0])
    log_w = np.log(weights, where=weights > 0, out=np.full(5, -np.inf))
    draws = 8000
    first = np.bincount([dsir.gumbel_top_k(log_w, 1, rng)[0] for _ in range(draws)], minlength=5)
    np.testing.assert_allclose(first / draws, weights / weights.sum(), atol=0.02)
    assert first[4] == 0
    pairs = np.zeros(5)
    for _ in range(3000):
        pairs[dsir.gumbel_top_k(log_w, 2, rng)] += 1
    assert pairs[0] < pairs[1] < pairs[2] < pairs[3] and pairs[4] == 0


def test_sampling_on_dsir_weights_prefers_the_target_domain(weights):
    chosen = dsir.gumbel_top_k(weights, 50, np.random.default_rng(0))
    assert (chosen < 150).mean() > 0.9  # the first 150 candidates are about cooking
