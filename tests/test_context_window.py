"""Long-context lengths per model: which run, and YaRN for Qwen2.5 beyond its native 32,768
tokens, applied to the architecture built from its real config (two layers, random weights)."""
from __future__ import annotations

import json
from functools import partial

import pytest
import torch

from compass import config, paths
from compass.training import context_window
from tests.conftest import fixture_path

PAPER_LENGTHS = (8000, 32000, 64000, 128000)


def test_qwen_reads_oneruler_lengths_beyond_32k_only_with_yarn():
    plan = context_window.plan("qwen2.5-7b", PAPER_LENGTHS, 128)
    assert plan.yarn_factor == 4.0 and plan.window == 131_072
    assert plan.scored == PAPER_LENGTHS and plan.skipped == ()
    assert "YaRN" in plan.note()
    short = context_window.plan("qwen2.5-7b", (8000, 32000), 128)  # negative control
    assert short.yarn_factor is None and short.window == 32_768 and short.note() == ""


@pytest.mark.parametrize("model", ["phi-4-mini", "llama-3.1-8b", "llama-3.1-8b-instruct"])
def test_models_with_a_131k_window_need_no_extension(model):
    plan = context_window.plan(model, PAPER_LENGTHS, 128)
    assert plan.yarn_factor is None and plan.scored == PAPER_LENGTHS


def test_a_length_beyond_every_window_is_skipped_and_named():
    plan = context_window.plan("llama-3.1-8b", (8000, 131_072), 128)
    assert plan.scored == (8000,) and plan.skipped == (131_072,)
    assert "lengths [131072] do not fit llama-3.1-8b's 131072-token context" in plan.note()
    unknown = context_window.plan("my-model", (8000, 10**6), 128)  # decided once loaded
    assert unknown.scored == (8000, 10**6) and unknown.native is None
    loaded = context_window.plan("my-model", (8000, 10**6), 128, native=16_384)
    assert loaded.scored == (8000,)


def test_make_cost_counts_the_lengths_the_stage_scores():
    from compass import cost

    cfg = config.load(paths.PROFILES / "paper.yaml")
    answer = max(cfg.long_context.max_new_tokens, cfg.long_context.cwe_max_new_tokens)
    for name in cfg.train.models:
        assert cost.scored_lengths(cfg, name) == list(
            context_window.plan(name, cfg.long_context.lengths, answer).scored)
    assert cost.scored_lengths(cfg, "qwen2.5-7b") == list(cfg.long_context.lengths)


def test_yarn_changes_qwens_rotary_embedding_and_nothing_else():
    from transformers import AutoConfig, AutoModelForCausalLM

    path = fixture_path("models", "qwen2.5-7b-instruct", "config.json")
    raw = json.loads(path.read_text())
    raw.update(num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=4,
               num_key_value_heads=2, vocab_size=512)  # the real rope settings, a small body

    def build(adjust=None):
        cfg = AutoConfig.for_model(**{k: v for k, v in raw.items()})
        if adjust:
            adjust(cfg)
        torch.manual_seed(0)
        return AutoModelForCausalLM.from_config(cfg).eval()

    plain = build()
    yarn = build(partial(context_window.apply_yarn, factor=4.0, original=32_768))
    assert yarn.config.max_position_embeddings == 131_072
    assert yarn.config.rope_parameters["rope_type"] == "yarn"
    assert yarn.config.rope_parameters["rope_theta"] == plain.config.rope_parameters["rope_theta"]
    rotary_plain, rotary_yarn = plain.model.rotary_emb, yarn.model.rotary_emb
    assert rotary_yarn.attention_scaling > 1.0 == rotary_plain.attention_scaling
    assert not torch.allclose(rotary_plain.inv_freq, rotary_yarn.inv_freq)
    ids = torch.arange(16).unsqueeze(0)
    with torch.no_grad():
        assert torch.isfinite(yarn(ids).logits).all()


def test_the_preflight_names_lengths_that_cannot_run_and_the_yarn_it_applies():
    from compass.stages import check

    cfg = config.load(paths.PROFILES / "paper.yaml",
                      {"long_context.lengths": [8000, 64000, 131072]})
    notes = check.long_context_notes(cfg)
    assert any("qwen2.5-7b-instruct reads beyond its native 32,768 tokens with YaRN" in n
               for n in notes)
    assert any("lengths [131072] do not fit llama-3.1-8b-instruct's" in n for n in notes)
    assert check.long_context_notes(config.load(paths.PROFILES / "tiny.yaml")) == []
