"""Training-speed options (compass.training.speed): each gives the plain path's loss and gradients."""
import warnings
from dataclasses import replace

import pytest
import torch

from compass import config
from compass.training import speed
from compass.training.adapters import collate, completion_loss, encode_example, train_adapter
from tests.test_adapters_evaluate import EXAMPLES, _lora, _lora_state
from tests.tiny_lm import tiny_gemma, tiny_llama, tiny_tokenizer


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


def _batch(tok):
    return collate([encode_example(tok, e["prompt"], e["response"], 48) for e in EXAMPLES[:6]],
                   tok.pad_token_id)


def _loss_and_grads(model, batch, **kwargs):
    model.zero_grad()
    loss, n = completion_loss(model, batch, **kwargs)
    loss.backward()
    grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.requires_grad])
    return loss.item(), n, grads


def _checkpointing(base) -> bool:
    return getattr(base, "is_activation_checkpointing", None) or base.is_gradient_checkpointing


def _softcapped(model):
    model.config.final_logit_softcapping = 5.0  # tanh capping, as Gemma-2 does (30.0 there)
    return model


@pytest.mark.parametrize("build", [tiny_gemma, tiny_llama, lambda v: _softcapped(tiny_gemma(v))])
@pytest.mark.parametrize("kind", ["chunked", "torch"])
def test_fused_losses_give_the_plain_loss_and_gradients(tok, build, kind, monkeypatch):
    vocab = len(tok)
    monkeypatch.setattr(speed, "LOGITS_PER_CHUNK", vocab * 7)  # blocks of 7 rows: several blocks
    model = _lora(build(vocab), tok)
    for p in model.parameters():  # a trained-looking adapter (B = 0 would hide gradient errors)
        if p.requires_grad:
            torch.nn.init.normal_(p, std=0.05)
    batch = _batch(tok)
    plain = _loss_and_grads(model, batch)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        fused = _loss_and_grads(model, batch, fused_loss=kind)
    assert plain[1] == fused[1] > 7
    assert abs(plain[0] - fused[0]) < 1e-5
    assert torch.allclose(plain[2], fused[2], atol=1e-6, rtol=1e-4)


def test_torch_fused_loss_falls_back_to_chunked_with_softcapping(tok):
    model = _lora(_softcapped(tiny_gemma(len(tok))), tok)
    speed._warn_once.cache_clear()
    with pytest.warns(UserWarning, match="soft-capping; using chunked"):
        completion_loss(model, _batch(tok), fused_loss="torch")


def test_liger_without_cuda_falls_back_to_chunked(tok):
    model = _lora(tiny_llama(len(tok)), tok)
    speed._warn_once.cache_clear()
    with pytest.warns(UserWarning, match="liger needs CUDA"):
        loss, _ = completion_loss(model, _batch(tok), fused_loss="liger")
    assert abs(loss.item() - completion_loss(model, _batch(tok))[0].item()) < 1e-5


def test_unknown_fused_loss_is_refused():
    with pytest.raises(ValueError, match="'fast'.*off"):
        speed.check_fused_loss("fast")
    with pytest.raises(config.ConfigError, match="train.fused_loss = 'fast'"):
        config.load(overrides={"train.fused_loss": "fast"})
    with pytest.raises(config.ConfigError, match="batch_size 8 is not a multiple of train.processes 3"):
        config.load(overrides={"train.processes": 3})


@pytest.mark.parametrize("options", [{"gradient_checkpointing": True},
                                     {"compile": "aot_eager"},
                                     {"gradient_checkpointing": True, "compile": "aot_eager"}])
def test_checkpointing_and_compile_give_the_same_loss_and_gradients_and_are_undone(tok, options):
    model = _lora(tiny_llama(len(tok)), tok)
    for p in model.parameters():
        if p.requires_grad:
            torch.nn.init.normal_(p, std=0.05)
    model.train()
    batch = _batch(tok)
    plain = _loss_and_grads(model, batch)
    with speed.training_speedups(model, **options):
        if options.get("gradient_checkpointing"):
            assert _checkpointing(model.get_base_model())
        fast = _loss_and_grads(model, batch)
    assert abs(plain[0] - fast[0]) < 1e-5
    assert torch.allclose(plain[2], fast[2], atol=1e-6, rtol=1e-4)
    assert not _checkpointing(model.get_base_model())
    assert all(layer._compiled_call_impl is None for layer in speed.decoder_layers(model))


def test_adapter_dtype_float32_keeps_lora_and_optimizer_state_fp32_on_a_bf16_base(tok, tmp_path):
    base = tiny_llama(len(tok)).to(torch.bfloat16)
    cfg = replace(config.TrainConfig(), steps=2, batch_size=4, max_length=48, warmup_steps=0,
                  seeds=1, curve_steps=())
    seen = {}

    def spy(model, batch):
        seen.update({n: p.dtype for n, p in model.named_parameters() if p.requires_grad})
        return completion_loss(model, batch)

    for adapter_dtype, expected in (("float32", torch.float32), ("base", torch.bfloat16)):
        seen.clear()
        train_adapter(base, tok, EXAMPLES, replace(cfg, adapter_dtype=adapter_dtype),
                      tmp_path / adapter_dtype, seed=0, base_name="t", loss_fn=spy,
                      show_progress_bar=False)
        assert seen and set(seen.values()) == {expected}, adapter_dtype
    assert next(base.parameters()).dtype == torch.bfloat16  # the base model as it was


def test_training_with_every_option_gives_the_plain_adapter(tok, tmp_path):
    cfg = replace(config.TrainConfig(), steps=4, batch_size=4, learning_rate=5e-3, max_length=48,
                  warmup_steps=1, dropout=0.0, seeds=1, curve_steps=())
    plain = train_adapter(tiny_gemma(len(tok)), tok, EXAMPLES, cfg, tmp_path / "plain", seed=3,
                          base_name="t", show_progress_bar=False)
    fast = train_adapter(tiny_gemma(len(tok)), tok, EXAMPLES,
                         replace(cfg, fused_loss="chunked", gradient_checkpointing=True), tmp_path / "fast",
                         seed=3, base_name="t", show_progress_bar=False)
    assert abs(plain["final_loss"] - fast["final_loss"]) < 1e-4
    a, b = _lora_state(tmp_path / "plain"), _lora_state(tmp_path / "fast")
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-5), key


@pytest.mark.slow
def test_inductor_compiled_training_gives_the_eager_adapter(tok, tmp_path):
    """train.compile: true (inductor, C++ codegen on a CPU: about a minute on 2 cores)."""
    cfg = replace(config.TrainConfig(), steps=3, batch_size=4, learning_rate=5e-3, max_length=48,
                  warmup_steps=1, dropout=0.0, seeds=1, curve_steps=(), packing=False)
    train_adapter(tiny_llama(len(tok)), tok, EXAMPLES, cfg, tmp_path / "eager", seed=3,
                  base_name="t", show_progress_bar=False)
    train_adapter(tiny_llama(len(tok)), tok, EXAMPLES, replace(cfg, compile=True), tmp_path / "compiled",
                  seed=3, base_name="t", show_progress_bar=False)
    a, b = _lora_state(tmp_path / "eager"), _lora_state(tmp_path / "compiled")
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-4), key
