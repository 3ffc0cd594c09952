import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from compass import config
from compass.evaluation import scoring
from compass.training.adapters import (AdapterRegistry, IGNORE, collate, completion_loss, encode_example,
                              full_logits_loss, train_adapter)
from tests.tiny_lm import tiny_gemma, tiny_llama, tiny_tokenizer


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture
def train_cfg():
    return replace(config.TrainConfig(), steps=6, batch_size=4, learning_rate=5e-3, save_every=2,
                   max_length=48, warmup_steps=1)


EXAMPLES = [{"prompt": f"Привіт {i}?", "response": f"Добре, дякую {i}."} for i in range(6)] + \
           [{"prompt": f"Hello {i}?", "response": f"Fine, thanks {i}."} for i in range(6)]


def test_encode_example_labels_only_the_completion(tok):
    enc = encode_example(tok, "Як справи?", "Добре.", max_length=64)
    ctx = tok("Як справи?")["input_ids"]
    assert enc["input_ids"][0] == tok.bos_token_id and enc["input_ids"][-1] == tok.eos_token_id
    assert enc["labels"][:len(ctx)] == [IGNORE] * len(ctx)
    assert enc["labels"][len(ctx):] == enc["input_ids"][len(ctx):]
    # the completion tokens are exactly lm-eval's continuation tokens (+ eos)
    _, cont = scoring.encode_pair(tok, "Як справи?\n", "Добре.")
    assert enc["input_ids"][len(ctx):-1] == cont


@pytest.mark.parametrize("build", [tiny_gemma, tiny_llama])
def test_positions_only_loss_equals_full_logits_loss(tok, build):
    model = build(len(tok))
    batch = collate([encode_example(tok, e["prompt"], e["response"], 48) for e in EXAMPLES[:5]],
                    tok.pad_token_id)
    fast, n_fast = completion_loss(model, batch)
    plain, n_plain = full_logits_loss(model, batch)
    assert n_fast == n_plain > 0
    assert abs(fast.item() - plain.item()) < 1e-5


def _lora_state(out_dir):
    from safetensors.torch import load_file

    return load_file(str(out_dir / "adapter" / "adapter_model.safetensors"))


def test_training_lowers_loss_and_saves_portable_adapter(tok, train_cfg, tmp_path):
    summary = train_adapter(tiny_gemma(len(tok)), tok, EXAMPLES, replace(train_cfg, steps=12),
                            tmp_path, seed=0, base_name="tiny-gemma", show_progress_bar=False)
    assert summary["steps"] == 12 and summary["final_loss"] < summary["first_loss"]
    cfg = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert cfg["base_model_name_or_path"] == "tiny-gemma"
    assert cfg["target_modules"] == sorted(cfg["target_modules"])  # peft's set, written in order
    assert "/" not in json.dumps(cfg).replace("\\/", "") or str(tmp_path) not in json.dumps(cfg)
    assert (tmp_path / "train_log.csv").exists() and not (tmp_path / "checkpoint.pt").exists()


def test_interrupted_training_resumes_to_the_same_adapter(tok, train_cfg, tmp_path):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    train_adapter(tiny_gemma(len(tok)), tok, EXAMPLES, train_cfg, whole, seed=3,
                  base_name="t", show_progress_bar=False)
    out = train_adapter(tiny_gemma(len(tok)), tok, EXAMPLES, train_cfg, parts, seed=3,
                        base_name="t", stop_after=3, show_progress_bar=False)
    assert out == {"interrupted_at": 3} and (parts / "checkpoint.pt").exists()
    assert not (parts / "adapter").exists()  # nothing half-written is served
    train_adapter(tiny_gemma(len(tok)), tok, EXAMPLES, train_cfg, parts, seed=3,
                  base_name="t", show_progress_bar=False)
    a, b = _lora_state(whole), _lora_state(parts)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)


def test_one_base_model_trains_many_adapters_as_fresh_ones_would(tok, train_cfg, tmp_path):
    """The train stage loads the base model once per language: after each adapter it must be the
    plain model again, so the next adapter equals one trained on a freshly loaded model."""
    shared = tiny_gemma(len(tok))
    before = {k: v.clone() for k, v in shared.state_dict().items()}
    for method, data in (("a", EXAMPLES[:6]), ("b", EXAMPLES[6:])):
        train_adapter(shared, tok, data, train_cfg, tmp_path / "shared" / method, seed=1,
                      base_name="t", show_progress_bar=False)
        assert not any("lora" in name for name in shared.state_dict())
    after = shared.state_dict()
    assert after.keys() == before.keys()
    for key in before:
        torch.testing.assert_close(after[key], before[key], rtol=0, atol=0)
    fresh = tiny_gemma(len(tok))
    train_adapter(fresh, tok, EXAMPLES[6:], train_cfg, tmp_path / "fresh" / "b", seed=1,
                  base_name="t", show_progress_bar=False)
    a, b = _lora_state(tmp_path / "shared" / "b"), _lora_state(tmp_path / "fresh" / "b")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_dora_flag_trains(tok, train_cfg, tmp_path):
    summary = train_adapter(tiny_llama(len(tok)), tok, EXAMPLES, replace(train_cfg, dora=True, steps=2),
                            tmp_path, seed=0, base_name="t", show_progress_bar=False)
    cfg = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert cfg["use_dora"] is True and summary["steps"] == 2


def test_registry_switches_adapters_on_one_base(tok, train_cfg, tmp_path):
    for method, data in (("a", EXAMPLES[:6]), ("b", EXAMPLES[6:])):
        train_adapter(tiny_gemma(len(tok)), tok, data, train_cfg, tmp_path / method, seed=0,
                      base_name="t", show_progress_bar=False)
    registry = AdapterRegistry(path_of=lambda lang, method: tmp_path / method / "adapter")
    model = registry.attach(tiny_gemma(len(tok)), [("uk", "a"), ("uk", "b")])
    ids = torch.tensor([tok("Привіт 1?\nДобре")["input_ids"]])
    registry.activate(model, "uk", "a")
    out_a = model(input_ids=ids).logits
    registry.activate(model, "uk", "b")
    out_b = model(input_ids=ids).logits
    registry.activate(model, "uk", "a")
    assert not torch.allclose(out_a, out_b)
    torch.testing.assert_close(model(input_ids=ids).logits, out_a)
    with pytest.raises(FileNotFoundError, match="no trained adapter"):
        registry.attach(tiny_gemma(len(tok)), [("uk", "missing")])


ITEMS = [{"id": f"q{i}", "topic": "t", "category": "", "question": q, "answer": 0,
          "choices": choices} for i, (q, choices) in enumerate([
              ("Як справи?", ["Добре, дякую.", "Я люблю каву", "Сьогодні понеділок", "Ні"]),
              ("What is your name?", ["I am a bot", "Blue", "It is raining today.", "42"]),
              ("Привіт", ["Привіт!", "Hello there, general", "До побачення", "Так"]),
          ])]


@pytest.mark.parametrize("build", [tiny_gemma, tiny_llama])
def test_prefix_reusing_scorer_equals_plain_scoring(tok, build):
    model = build(len(tok), seed=1)
    for item in ITEMS:
        fast = scoring.choice_loglikelihoods(model, tok, item["question"], item["choices"])
        plain = scoring.choice_loglikelihoods_plain(model, tok, item["question"], item["choices"])
        np.testing.assert_allclose(fast, plain, rtol=1e-5, atol=1e-5)


def test_scorer_agrees_with_lm_eval(tok, tmp_path):
    from compass.evaluation import lmeval

    model = tiny_gemma(len(tok), seed=2)
    predictions = scoring.score_items(model, tok, ITEMS, show_progress_bar=False)
    check = lmeval.cross_check(model, tok, ITEMS, predictions, tmp_path, name="tiny_mc")
    assert check["items"] == 3
    assert check["same_choice_acc"] == 3 and check["same_choice_acc_norm"] == 3
    assert check["max_abs_loglikelihood_diff"] < 1e-4
    assert abs(check["lm_eval_acc"] - predictions["acc"].mean()) < 1e-9


def test_breakdown_per_topic():
    import pandas as pd

    frame = pd.DataFrame({"topic": ["a", "a", "b"], "acc": [1, 0, 1], "acc_norm": [1, 1, 0]})
    out = scoring.breakdown(frame).set_index("topic")
    assert out.loc["a", "acc"] == 0.5 and out.loc["a", "n"] == 2 and out.loc["b", "acc_norm"] == 0


# ---- packing: the same loss and gradients as padding, at fewer tokens ----------------------------
def _lora(model, tok):
    from peft import LoraConfig, get_peft_model

    return get_peft_model(model, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0,
                                            target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))


def test_pack_rows_fills_rows_first_fit_by_decreasing_length():
    from compass.training.adapters import pack_rows

    rows = pack_rows([5, 3, 9, 2, 4], width=9)
    assert rows == [[2], [0, 4], [1, 3]]
    assert all(sum([5, 3, 9, 2, 4][i] for i in row) <= 9 for row in rows)
    assert sorted(i for row in rows for i in row) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("build", [tiny_gemma, tiny_llama])
def test_packed_batch_gives_the_padded_loss_and_gradients(tok, build):
    """Gemma's sliding window (8 tokens here) included: every example sees what it sees padded."""
    from compass.training.adapters import collate_packed

    long = EXAMPLES[0]["response"] + " " + EXAMPLES[1]["response"]  # 64 tokens; the rest 43 and 22
    examples = [encode_example(tok, EXAMPLES[0]["prompt"], long, 64)] + \
        [encode_example(tok, e["prompt"], e["response"], 64) for e in EXAMPLES[4:11]]
    padded, packed = collate(examples, tok.pad_token_id), collate_packed(examples, tok.pad_token_id)
    assert packed["input_ids"].shape[0] < padded["input_ids"].shape[0]  # fewer rows
    assert int(packed["attention_mask"].sum()) == int(padded["attention_mask"].sum())
    model = _lora(build(len(tok)), tok)
    grads, losses = [], []
    for batch in (padded, packed):
        model.zero_grad()
        loss, n = completion_loss(model, batch)
        loss.backward()
        losses.append((loss.item(), n))
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.requires_grad]))
    assert losses[0][1] == losses[1][1] > 0
    assert abs(losses[0][0] - losses[1][0]) < 1e-5
    assert torch.allclose(grads[0], grads[1], atol=1e-6, rtol=1e-4)


def test_packing_check_accepts_transformers_models_and_refuses_cross_attention(tok, monkeypatch):
    import transformers.masking_utils as masking

    from compass.training.adapters import packing_supported

    examples = [encode_example(tok, e["prompt"], e["response"], 48) for e in EXAMPLES[:2]]
    assert packing_supported(tiny_llama(len(tok)), examples)
    assert packing_supported(tiny_gemma(len(tok)), examples)
    monkeypatch.setattr(masking, "find_packed_sequence_indices", lambda position_ids: None)
    with pytest.warns(UserWarning, match="pads instead"):
        assert not packing_supported(tiny_llama(len(tok)), examples)


def test_packed_training_equals_padded_training_without_dropout(tok, train_cfg, tmp_path):
    cfg = replace(train_cfg, dropout=0.0)
    a = train_adapter(tiny_gemma(len(tok)), tok, EXAMPLES, replace(cfg, packing=False), tmp_path / "a",
                      seed=1, base_name="t", show_progress_bar=False)
    b = train_adapter(tiny_gemma(len(tok)), tok, EXAMPLES, replace(cfg, packing=True), tmp_path / "b",
                      seed=1, base_name="t", show_progress_bar=False, snapshot_steps=(2, 4))
    assert a["tokens"] == b["tokens"] and abs(a["final_loss"] - b["final_loss"]) < 1e-4
    sa, sb = _lora_state(tmp_path / "a"), _lora_state(tmp_path / "b")
    for key in sa:
        assert torch.allclose(sa[key], sb[key], atol=1e-5), key
    assert sorted(p.name for p in (tmp_path / "b" / "steps").iterdir()) == ["2", "4"]
    assert (tmp_path / "b" / "steps" / "2" / "adapter_config.json").exists()


def test_packing_check_does_not_judge_broken_weights(tok):
    from compass.training.adapters import causal_lm_parts, packing_supported

    examples = [encode_example(tok, e["prompt"], e["response"], 48) for e in EXAMPLES[:2]]
    model = tiny_llama(len(tok))
    with torch.no_grad():
        model.model.layers[0].self_attn.q_proj.weight.fill_(float("nan"))
    assert not packing_supported(model, examples)  # pads this time ...
    assert getattr(causal_lm_parts(model)[0], "compass_packing_ok", None) is None  # ... decides later


class _Planted:
    """Stands for any object a pickle could carry (and run code from) into a checkpoint."""

    def __reduce__(self):
        return (print, ("a checkpoint ran code",))


def test_a_checkpoint_that_carries_a_pickled_object_is_refused(tmp_path, capsys):
    from compass.training.adapters import UnsafeCheckpointError, load_checkpoint

    plain, planted = tmp_path / "plain.pt", tmp_path / "planted.pt"
    torch.save({"adapter": {"w": torch.ones(2)}, "step": 3, "log": [{"loss": 1.0}]}, plain)
    assert load_checkpoint(plain)["step"] == 3  # negative control: plain data loads
    torch.save({"adapter": {}, "step": 3, "extra": _Planted()}, planted)
    with pytest.raises(UnsafeCheckpointError, match="planted.pt.*refusing"):
        load_checkpoint(planted)
    assert "ran code" not in capsys.readouterr().out and planted.exists()


def test_a_micro_batch_split_into_forward_passes_trains_the_same_adapter(tok, train_cfg, tmp_path):
    """The memory plan's micro-batches (forward passes of 2 of the 4 rows, each weighted by its
    share of the predicted tokens) train the adapter one pass of 4 trains; the plain mean of the
    two passes' means (unweighted) would not: the positive control of the weighting."""
    from types import SimpleNamespace

    from compass.training import adapters

    cfg = replace(train_cfg, batch_size=4, packing=False, dropout=0.0)  # dropout draws differ
    whole, split = tmp_path / "whole", tmp_path / "split"
    train_adapter(tiny_gemma(len(tok)), tok, EXAMPLES, cfg, whole, seed=2, base_name="t",
                  show_progress_bar=False)
    plan = SimpleNamespace(micro_batch=2, checkpointing=False, describe=lambda: "2 x 2 (test)")
    original = adapters.memory_plan
    adapters.memory_plan = lambda *a, **k: plan
    try:
        train_adapter(tiny_gemma(len(tok)), tok, EXAMPLES, cfg, split, seed=2, base_name="t",
                      show_progress_bar=False)
    finally:
        adapters.memory_plan = original
    a, b = _lora_state(whole), _lora_state(split)
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-5), key
    assert json.loads((split / "summary.json").read_text())["memory_plan"] == "2 x 2 (test)"
    assert "memory_plan" not in json.loads((whole / "summary.json").read_text())
    passes = adapters.batches_of([encode_example(tok, e["prompt"], e["response"], 64)
                                  for e in EXAMPLES], 0, 4, 2, tok.pad_token_id, "cpu", rows=2)
    counts = [adapters.predicted_tokens(p) for p in passes]
    assert len(passes) == 2 and counts[0] != counts[1]  # unequal: unweighted means would differ
