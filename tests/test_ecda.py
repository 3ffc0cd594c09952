import numpy as np
import pandas as pd
import pytest
import torch
from peft import get_peft_model

from compass import config
from compass.continual import update as ecda
from compass.training.adapters import lora_config, serve_adapter
from compass.continual.stream import shift_share, simulate
from tests.tiny_lm import tiny_gemma, tiny_tokenizer

EXAMPLES = [{"prompt": f"Привіт {i}?", "response": f"Добре {i}."} for i in range(8)]


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture
def peft_model(tok):
    model = get_peft_model(tiny_gemma(len(tok)), lora_config(config.TrainConfig()))
    with torch.no_grad():  # non-zero B so that the adapter matters
        for n, p in ecda.trainable(model).items():
            p.normal_(0, 0.05)
    return model.eval()


def test_ewc_penalty_zero_at_anchor_and_quadratic(tok, peft_model):
    fisher = ecda.fisher_diagonal(peft_model, tok, EXAMPLES, 48, 4, 2, seed=0)
    assert all((f >= 0).all() for f in fisher.values())
    assert sum(float(f.sum()) for f in fisher.values()) > 0
    anchor = ecda.snapshot(peft_model)
    assert ecda.ewc_penalty(peft_model, fisher, anchor).item() == 0.0
    direction = {n: torch.randn_like(p) for n, p in anchor.items()}
    penalties = []
    for scale in (1e-2, 2e-2, 4e-2):
        ecda.restore(peft_model, {n: anchor[n] + scale * direction[n] for n in anchor})
        penalties.append(ecda.ewc_penalty(peft_model, fisher, anchor).item())
    assert penalties[1] / penalties[0] == pytest.approx(4.0, rel=1e-3)
    assert penalties[2] / penalties[0] == pytest.approx(16.0, rel=1e-3)


def test_replay_buffer_is_stratified_by_cluster():
    history = pd.DataFrame({"id": [f"x{i:03d}" for i in range(200)],
                            "cluster": [0] * 120 + [1] * 60 + [2] * 20,
                            "prompt": "p", "response": "r"})
    buffer = ecda.stratified_replay(history, 0.05, seed=0)
    assert len(buffer) == 10
    assert buffer["cluster"].value_counts().to_dict() == {0: 6, 1: 3, 2: 1}
    assert buffer["id"].tolist() == ecda.stratified_replay(history, 0.05, seed=0)["id"].tolist()
    rand = ecda.random_replay(history, 0.05, seed=0)
    assert len(rand) == 10 and rand["id"].is_unique


def test_rollback_on_planted_nan(tok, peft_model):
    before = ecda.snapshot(peft_model)

    def poisoned_update():
        with torch.no_grad():
            next(iter(ecda.trainable(peft_model).values())).fill_(float("nan"))
        return ecda.update(peft_model, tok, EXAMPLES, steps=2, lr=1e-3, batch_size=4,
                           max_length=48, seed=0)

    accepted, event, _ = ecda.guarded_update(peft_model, poisoned_update, lambda: 0.5, 0.1)
    assert not accepted and event["event"] == "rolled_back" and "non-finite" in event["reason"]
    for n, p in ecda.trainable(peft_model).items():
        torch.testing.assert_close(p, before[n])


def test_rollback_when_validation_drops(tok, peft_model):
    scores = iter([0.8, 0.5])
    accepted, event, result = ecda.guarded_update(
        peft_model, lambda: ecda.update(peft_model, tok, EXAMPLES, 2, 1e-2, 4, 48, 0),
        lambda: next(scores), tolerance=0.1)
    assert not accepted and event["reason"] == "validation accuracy dropped" and result.steps == 2
    scores = iter([0.8, 0.75])
    accepted, event, _ = ecda.guarded_update(
        peft_model, lambda: ecda.update(peft_model, tok, EXAMPLES, 2, 1e-2, 4, 48, 0),
        lambda: next(scores), tolerance=0.1)
    assert accepted and event["event"] == "accepted"


def test_update_is_deterministic(tok):
    results = []
    for _ in range(2):
        model = get_peft_model(tiny_gemma(len(tok)), lora_config(config.TrainConfig()))
        replay = EXAMPLES[:3]
        fisher = ecda.fisher_diagonal(model, tok, EXAMPLES, 48, 4, 2, 0)
        out = ecda.update(model, tok, EXAMPLES, 3, 1e-2, 4, 48, 0, fisher=fisher,
                          anchor=ecda.snapshot(model), lambda_ewc=2.0, replay=replay, beta=0.1)
        results.append((out.losses, ecda.snapshot(model)))
    assert results[0][0] == results[1][0]
    for n in results[0][1]:
        torch.testing.assert_close(results[0][1][n], results[1][1][n])


def test_served_adapter_swap_is_atomic(tok, peft_model, tmp_path, monkeypatch):
    folder = serve_adapter(peft_model, tmp_path / "served", "tiny")
    before = (folder / "adapter_model.safetensors").read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(type(peft_model), "save_pretrained", crash)
    with pytest.raises(OSError, match="disk full"):
        serve_adapter(peft_model, tmp_path / "served", "tiny")
    assert (folder / "adapter_model.safetensors").read_bytes() == before


def test_stream_schedules_and_determinism():
    assert [shift_share(t, 4, "gradual", 0.9, 2) for t in range(4)] == pytest.approx([0, 0.3, 0.6, 0.9])
    assert [shift_share(t, 4, "abrupt", 0.9, 2) for t in range(4)] == [0, 0, 0.9, 0.9]
    rng = np.random.default_rng(0)
    topics = [f"t{i}" for i in range(5)]
    pairs = pd.DataFrame({"id": [f"p{i}" for i in range(300)], "topic": rng.choice(topics, 300),
                          "prompt": "p", "response": "r"})
    items = [{"id": f"i{i}", "topic": topics[i % 5], "question": "q", "choices": ["a", "b"],
              "answer": 0} for i in range(100)]
    cfg = config.EcdaConfig(steps=4, window=50, test_items_per_step=10, val_items_per_step=4,
                            shift_topics=1, shift_strength=0.9)
    a = simulate(pairs, items, cfg, seed=1)
    b = simulate(pairs, items, cfg, seed=1)
    assert [s.window["id"].tolist() for s in a] == [s.window["id"].tolist() for s in b]
    focus = max(a[-1].mixture, key=a[-1].mixture.get)
    share = [float((s.window["topic"] == focus).mean()) for s in a]
    assert share[-1] > share[0] + 0.3  # the stream really drifts toward the focus topic
    assert all(len(s.test) == 10 and len(s.validation) == 4 for s in a)
    assert not set(i["id"] for i in a[0].test) & set(i["id"] for i in a[0].validation)
