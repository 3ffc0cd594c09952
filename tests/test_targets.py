"""LoRA targets on the paper's three architectures, built from their configs on the meta device
(every layer's real shape, no weights, no memory): the same kinds of sublayer are adapted on
each, and Phi's fused modules are not silently skipped."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from compass.training import targets

from tests.conftest import SHARED_FIXTURES as FIXTURES
from tests.conftest import fixture_path
CONFIGS = {
    "phi-4-mini": Path(__file__).parent / "model_configs" / "phi-4-mini-instruct.json",
    "llama-3.1-8b": FIXTURES / "models" / "llama-3.1-8b" / "config.json",
    "qwen2.5-7b": FIXTURES / "models" / "qwen2.5-7b-instruct" / "config.json",
}
PAPER_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def build(name: str, layers: int | None = 2):
    """The architecture from its config at ``layers`` decoder layers (None: all), on meta."""
    from transformers import AutoConfig, AutoModelForCausalLM

    path = fixture_path(CONFIGS[name])
    raw = json.loads(path.read_text())
    if layers is not None:
        raw["num_hidden_layers"] = layers
    config = AutoConfig.for_model(raw.pop("model_type"), **raw)
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_the_paper_targets_adapt_all_seven_kinds_on_every_architecture(name):
    model = build(name)
    resolved = targets.resolve(model, PAPER_TARGETS)
    assert targets.adapted_kinds(model, resolved) == targets.KINDS
    if name == "phi-4-mini":  # fused: four modules hold the seven kinds
        assert resolved == ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"]
    else:
        assert resolved == PAPER_TARGETS


def test_peft_adapts_the_resolved_modules_of_phi():
    """What the code did before: the seven names passed as they are adapt only o_proj and
    down_proj of Phi (peft ignores the names it does not find). Resolved, every fused module
    gets a LoRA, and the trainable count is what the shapes say."""
    from peft import LoraConfig, get_peft_model

    def adapted(target_modules):
        model = build("phi-4-mini")
        peft_model = get_peft_model(model, LoraConfig(r=8, target_modules=target_modules))
        names = {n.split(".lora_A")[0].rsplit(".", 1)[-1]
                 for n, _ in peft_model.named_parameters() if ".lora_A" in n}
        trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
        return names, trainable

    assert adapted(PAPER_TARGETS)[0] == {"o_proj", "down_proj"}
    model = build("phi-4-mini")
    resolved = targets.resolve(model, PAPER_TARGETS)
    names, trainable = adapted(resolved)
    assert names == {"qkv_proj", "o_proj", "gate_up_proj", "down_proj"}
    assert trainable == targets.lora_parameters(model, resolved, rank=8)


def test_same_kinds_across_the_three_models_or_a_refusal():
    kinds = {name: targets.adapted_kinds(build(name), targets.resolve(build(name), PAPER_TARGETS))
             for name in CONFIGS}
    targets.check_comparable(kinds)  # all seven everywhere: accepted
    qv = {name: targets.adapted_kinds(build(name), targets.resolve(build(name), ["q_proj", "v_proj"]))
          for name in CONFIGS}
    assert qv["phi-4-mini"] == ("q_proj", "k_proj", "v_proj")  # qkv_proj brings k along
    with pytest.raises(ValueError, match="phi-4-mini: q_proj, k_proj, v_proj"):
        targets.check_comparable(qv)


def test_unknown_names_are_refused_with_the_model_sublayers():
    model = build("llama-3.1-8b")
    with pytest.raises(ValueError, match=r"'qkv' is not a linear sublayer of this llama model.*'q_proj'"):
        targets.resolve(model, ["qkv"])
    assert targets.resolve(model, "all-linear") == "all-linear"
    assert targets.adapted_kinds(model, "all-linear") == targets.KINDS
    with pytest.raises(ValueError, match="stands alone"):
        targets.resolve(model, ["all-linear", "q_proj"])


@pytest.mark.parametrize("name, expected_millions", [
    ("llama-3.1-8b", 20.97), ("qwen2.5-7b", 20.19), ("phi-4-mini", 11.53)])
def test_full_depth_trainable_parameters(name, expected_millions):
    """Rank 8 on all seven kinds at full depth, from the shapes: Llama-3.1-8B 8 x 32 layers x
    (q 4096+4096, k and v 4096+1024 each, o 4096+4096, gate and up 4096+14336 each, down
    14336+4096) = 20.97M, the figure peft prints for this model."""
    model = build(name, layers=None)
    count = targets.lora_parameters(model, targets.resolve(model, PAPER_TARGETS), rank=8)
    assert count / 1e6 == pytest.approx(expected_millions, abs=0.01)


def test_the_check_refuses_models_that_would_adapt_different_kinds(tmp_path):
    """The check stage (and `make repro`'s preflight) reads each model's config where it is at
    hand and refuses, in one line naming each model's kinds, targets that a fused module would
    widen on one model only."""
    import shutil

    from compass import config
    from compass.stages.check import comparable_adapters

    sources = {}
    for name in ("phi-4-mini", "llama-3.1-8b"):
        fixture_path(CONFIGS[name])
        folder = tmp_path / name
        folder.mkdir()
        shutil.copy(CONFIGS[name], folder / "config.json")
        sources[name] = str(folder)

    def cfg(modules):
        return config.from_dict({"train": {"models": list(sources), "model_sources": sources,
                                           "target_modules": modules}})

    comparable_adapters(cfg(PAPER_TARGETS))
    with pytest.raises(config.ConfigError, match="phi-4-mini: q_proj, k_proj, v_proj; llama-3.1-8b: q_proj, v_proj"):
        comparable_adapters(cfg(["q_proj", "v_proj"]))
    with pytest.raises(config.ConfigError, match="'attn' is not a linear sublayer"):
        comparable_adapters(cfg(["attn"]))
