"""The memory plan (compass.training.memory): the effective batch is kept, the plan moves the
right way with memory and length, a refusal is one line that says what fits, the saved-tensor
counter counts what autograd really keeps (planted controls), the measured numbers of the paper's
three architectures hold, and length buckets keep every example once."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from compass import paths
from compass.training import memory
from compass.training.memory import GIB
from tests.conftest import SHARED_FIXTURES as FIXTURES
from tests.conftest import fixture_path

CONFIGS = {
    "phi-4-mini": Path(__file__).parent / "model_configs" / "phi-4-mini-instruct.json",
    "llama-3.1-8b": FIXTURES / "models" / "llama-3.1-8b" / "config.json",
    "qwen2.5-7b": FIXTURES / "models" / "qwen2.5-7b-instruct" / "config.json",
}
PAPER = memory.Setting()  # profiles/paper.yaml's train section (checked below)


def config_of(name: str) -> dict:
    return json.loads(fixture_path(CONFIGS[name]).read_text())


@pytest.fixture(scope="module")
def phi():
    """Phi-4-mini's shape and measured activations (its config ships with the tests)."""
    config = config_of("phi-4-mini")
    return config, memory.model_shape(config, PAPER, "phi-4-mini"), memory.activations_for(config)


def plan_phi(phi, gib, batch, length, **kwargs):
    config, shape, acts = phi
    return memory.plan(config, gib * GIB, batch, length, PAPER, shape=shape, activations=acts,
                       **kwargs)


def rank(p) -> tuple:
    """Preference order of plans: no checkpointing first, then the larger micro-batch."""
    return (not p.checkpointing, p.micro_batch)


# ---- the plan ----------------------------------------------------------------------------------
def test_the_effective_batch_is_kept_and_the_estimate_fits(phi):
    for batch in (1, 2, 3, 4, 6, 8, 12, 16, 24, 32):
        for gib in (10, 16, 24, 40, 80, 141):
            for length in (128, 512, 1024, 2048, 4096):
                try:
                    p = plan_phi(phi, gib, batch, length)
                except memory.MemoryPlanError:
                    continue
                assert p.micro_batch * p.grad_accum == batch
                assert batch % p.micro_batch == 0
                assert p.estimated_peak_bytes <= gib * GIB * (1 - memory.SAFETY)
                assert p.estimated_peak_bytes == pytest.approx(p.parts.total)


def test_more_memory_never_a_worse_plan_longer_rows_never_a_better_one(phi):
    """With one mode forced, the micro-batch grows with memory and shrinks with length; in auto
    the plan moves along the preference order (no checkpointing, then larger micro-batches):
    more memory may trade a large checkpointed micro-batch for a smaller plain one."""
    sizes, lengths = (12, 16, 24, 32, 48, 64, 80, 100, 141, 200), (256, 512, 1024, 2048, 4096)

    def plans(mode, gib, length):
        try:
            return plan_phi(phi, gib, 16, length, checkpointing=mode)
        except memory.MemoryPlanError:
            return None

    for mode in ("auto", True, False):
        key = rank if mode == "auto" else (lambda p: p.micro_batch)
        for length in lengths:
            found = [plans(mode, gib, length) for gib in sizes]
            got = [key(p) for p in found if p is not None]
            assert got == sorted(got), (mode, length)
            first = next((i for i, p in enumerate(found) if p is not None), len(found))
            assert all(p is not None for p in found[first:])  # once it fits, it keeps fitting
        for gib in sizes:
            found = [plans(mode, gib, length) for length in lengths]
            got = [key(p) for p in found if p is not None]
            assert got == sorted(got, reverse=True), (mode, gib)


def test_checkpointing_only_where_nothing_fits_without(phi):
    p = plan_phi(phi, 24, 16, 1024)  # plain micro-batch 1 fits 24 GiB (16.5 GiB): no checkpointing
    assert not p.checkpointing
    p = plan_phi(phi, 16, 16, 1024)  # it does not fit 16 GiB less 10%: checkpointing
    assert p.checkpointing and p.micro_batch * p.grad_accum == 16
    forced = plan_phi(phi, 24, 16, 1024, checkpointing=True)
    assert forced.checkpointing and forced.micro_batch >= p.micro_batch
    with pytest.raises(ValueError, match="checkpointing must be"):
        plan_phi(phi, 24, 16, 1024, checkpointing="yes")
    with pytest.raises(ValueError, match="batch_size"):
        plan_phi(phi, 24, 0, 1024)


def test_a_refusal_is_one_line_naming_the_values_and_what_fits(phi):
    with pytest.raises(memory.MemoryPlanError) as caught:
        plan_phi(phi, 12, 16, 1024)
    message = str(caught.value)
    assert isinstance(caught.value, ValueError) and "\n" not in message
    assert message.startswith("phi-4-mini does not fit 12.0 GiB: 1 sequence x 1024 tokens with "
                              "gradient checkpointing needs ~")
    assert "10.8 GiB left after a 10% margin" in message
    shorter = int(message.split("train.max_length <= ")[1].split()[0])
    assert 2 <= shorter < 1024
    assert plan_phi(phi, 12, 16, shorter).checkpointing  # the length it names fits
    with pytest.raises(memory.MemoryPlanError):
        plan_phi(phi, 12, 16, shorter + 1)
    with pytest.raises(memory.MemoryPlanError, match=r"no max_length fits \(weights alone 7\.1 "
                                                      r"GiB\): use a device with >= \d+ GiB"):
        plan_phi(phi, 6, 16, 1024)


def test_the_paper_profile_reads_the_measured_setting():
    from compass import config

    train = config.load(paths.PROFILES / "paper.yaml").train
    assert memory.Setting.from_train(train) == PAPER
    assert (train.batch_size, train.max_length) == (16, 1024)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_paper_plans_on_an_80_gib_card(name):
    """16 x 1,024 tokens on 80 GiB: a plan exists for each paper model, from the measured
    numbers (nothing is built), and it keeps the batch of 16."""
    config = config_of(name)
    assert PAPER.key(config) in memory.MEASURED
    p = memory.plan(config, 80 * GIB, 16, 1024, PAPER, name=name)
    assert p.micro_batch * p.grad_accum == 16 and p.micro_batch < 16
    assert p.estimated_peak_bytes <= 72 * GIB
    assert p.describe().startswith(f"{name}: {p.micro_batch} x 1024 tokens per micro-batch")
    assert "\n" not in p.describe()


def test_the_estimate_against_the_h200_measurement():
    """The one measured peak: Llama-3.1-8B's shape, LoRA r16 on every linear layer, no dropout,
    4 x 1,024 unpadded tokens with half of each row predicted, torch's allocator peak (no
    context) on an H200: 54.5 GiB, 19.5 GiB with checkpointing (bench_8b.log). A guard, not a
    fit: the constants were not tuned to it."""
    config = config_of("llama-3.1-8b")
    setting = memory.Setting(dropout=0.0, padded=False)
    acts = memory.activations_for(config, setting)  # from MEASURED: nothing built
    shape = memory.model_shape(config, setting, "llama-3.1-8b")
    for mode, measured in ((False, 54.5), (True, 19.5)):
        parts = memory.estimate(shape, acts, setting, 4, 1024, mode, loss_positions=512,
                                context_bytes=0)
        assert parts.total / GIB == pytest.approx(measured, rel=0.10)


# ---- the saved-tensor counter ------------------------------------------------------------------
def test_the_counter_on_a_planted_linear_chain():
    """Linear(8, 16) -> ReLU -> Linear(16, 4) on 5 rows: the first linear keeps its input for
    its weight gradient (5 x 8 floats), ReLU keeps its output (5 x 16), which the second linear
    keeps too (one storage, counted once), and the second linear keeps its weight (16 x 4), a
    parameter: left out when parameters are excluded."""
    torch.manual_seed(0)
    chain = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    x = torch.randn(5, 8)
    with memory.saved_tensors(exclude=list(chain.parameters())) as saved:
        chain(x).sum()
    assert (saved.bytes, saved.tensors) == (4 * (5 * 8 + 5 * 16), 2)
    with memory.saved_tensors() as with_weights:
        chain(x).sum()
    assert with_weights.bytes == saved.bytes + 4 * 16 * 4


def test_views_of_one_storage_count_once():
    lin = torch.nn.Linear(8, 16)
    x = torch.randn(5, 8)
    with memory.saved_tensors(exclude=list(lin.parameters())) as saved:
        z = lin(x)
        (z[:, :8] * z[:, 8:]).sum()  # mul keeps both halves: one 5 x 16 storage
    assert (saved.bytes, saved.tensors) == (4 * (5 * 8 + 5 * 16), 2)


def test_nothing_is_counted_without_a_gradient():
    chain = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    x = torch.randn(5, 8)
    with torch.no_grad(), memory.saved_tensors() as saved:
        chain(x).sum()
    assert (saved.bytes, saved.tensors) == (0, 0)
    chain.requires_grad_(False)
    with memory.saved_tensors() as frozen:
        chain(x).sum()
    assert frozen.bytes == 0


def test_the_loss_keeps_float32_log_probs_and_not_its_input():
    """What the logits term assumes: the completion loss (speed.head_cross_entropy, 'off')
    upcasts the logits to float32 and log-softmax keeps them, 4 bytes x positions x vocab; the
    frozen output layer keeps no input; the targets and a scalar are all else."""
    from compass.training import speed
    from tests.tiny_lm import tiny_llama

    model = tiny_llama(1000).to(torch.bfloat16).requires_grad_(False)
    hidden = torch.randn(24, 32, dtype=torch.bfloat16, requires_grad=True)
    targets = torch.randint(0, 1000, (24,))
    with memory.saved_tensors(exclude=list(model.parameters())) as saved:
        speed.head_cross_entropy(model, model.lm_head, hidden, targets)
    assert saved.bytes == 24 * 1000 * 4 + 24 * 8 + 4


# ---- measured activations ----------------------------------------------------------------------
TINY = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "vocab_size": 300, "max_position_embeddings": 256}


def test_attention_length_squared_terms_are_measured():
    """Eager attention keeps each head's float32 softmax (4 bytes per row per length² per head,
    in a float32 model: bf16 adds a copy, and is slow on this CPU); sdpa keeps none, but with a
    padding mask keeps the mask as a bias in the model's dtype in every layer."""
    def sq(attention, padded, lengths=(4, 8)):
        acts = memory.measure_activations(TINY, attention=attention, padded=padded, dropout=0.0,
                                          lengths=lengths, modes=(False,), dtype="float32")
        assert acts.misfit < 1e-9  # a middle length lies on the fitted curve
        return acts.plain.per_layer_sq

    assert sq("eager", False, lengths=(4, 8, 12)) == 4 * TINY["num_attention_heads"]
    assert sq("sdpa", False) == 0
    assert sq("sdpa", True) == 4


@pytest.fixture(scope="module")
def measured_now():
    """The three paper architectures measured now at one short length (seconds each)."""
    return {name: memory.measure_activations(config_of(name), lengths=(2,))
            for name in CONFIGS if CONFIGS[name].exists()}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_checkpointing_keeps_only_each_layer_input(name, measured_now):
    """Checkpointing keeps a layer's input (hidden size x bf16 per token) instead of its
    activations, on each architecture built from its config (2 layers, full width, CPU)."""
    fixture_path(CONFIGS[name])
    acts, hidden = measured_now[name], config_of(name)["hidden_size"]
    assert acts.checkpointed.per_layer == 2 * hidden
    assert acts.plain.per_layer > 20 * acts.checkpointed.per_layer


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_the_stored_numbers_match_a_fresh_measurement(name, measured_now):
    """MEASURED is what the installed torch/transformers/peft save (if this fails after an
    upgrade, rerun benchmarks/measure_activation_memory.py --emit)."""
    fixture_path(CONFIGS[name])
    stored = memory.activations_for(config_of(name))
    for mode in (False, True):
        fresh, kept = measured_now[name].of(mode), stored.of(mode)
        assert fresh.per_layer == kept.per_layer + 2 * kept.per_layer_sq  # at length 2
        assert fresh.fixed == kept.fixed + 2 * kept.fixed_sq


# ---- length buckets ----------------------------------------------------------------------------
def lognormal_lengths(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    return np.clip(rng.lognormal(np.log(256), 0.8, size=n).astype(int), 8, 1024)


def test_buckets_keep_every_example_once_and_are_seeded():
    lengths = lognormal_lengths(1003)
    batches = memory.length_buckets(lengths, 4, seed=7)
    assert sorted(i for b in batches for i in b) == list(range(1003))
    assert all(1 <= len(b) <= 4 for b in batches)
    assert batches == memory.length_buckets(lengths, 4, seed=7)
    assert batches != memory.length_buckets(lengths, 4, seed=8)
    report = memory.bucketing_report(lengths, 4, seed=7)
    assert report["bucketed"] < report["random"] / 2
    assert report["saved"] == pytest.approx(report["random"] - report["bucketed"])


def test_sorting_within_a_step_keeps_the_step_examples():
    lengths = lognormal_lengths(64)
    step = np.random.default_rng(1).permutation(64)[:16]
    micro = memory.sorted_within_step(step, lengths, 4)
    assert sorted(i for b in micro for i in b) == sorted(step.tolist())
    assert memory.padding_fraction(lengths, micro) <= memory.padding_fraction(
        lengths, [step[i:i + 4].tolist() for i in range(0, 16, 4)])


def test_an_unmeasured_model_is_measured_on_demand_from_either_config_kind():
    """A shape or setting the benchmark did not measure is measured when planned (once per
    process); a transformers config gives what its config.json dict gives."""
    from transformers import AutoConfig

    setting = memory.Setting(rank=4, alpha=8, dtype="float32")
    assert setting.key(TINY) not in memory.MEASURED
    p = memory.plan(TINY, 1 * GIB, 8, 64, setting, context_bytes=0)
    assert (p.micro_batch, p.checkpointing) == (8, False)
    assert memory.activations_for(TINY, setting) is memory.activations_for(TINY, setting)
    raw = dict(TINY)
    config = AutoConfig.for_model(raw.pop("model_type"), **raw)
    assert setting.key(config) == setting.key(TINY)
    assert memory.model_shape(config, setting) == memory.model_shape(TINY, setting)
    assert memory.plan(config, 1 * GIB, 8, 64, setting, context_bytes=0).parts == p.parts


def test_the_preflight_plans_each_model_and_refuses_one_that_cannot_fit(monkeypatch):
    """check.memory_plans on the paper preset with Phi-4-mini's config at hand: a plan line at
    80 GiB (effective batch kept), a one-line ConfigError at 12 GiB, nothing without a size."""
    from compass import config
    from compass.stages import check
    from compass.training import targets

    from transformers import AutoConfig

    raw = config_of("phi-4-mini")
    at_hand = {"phi-4-mini": AutoConfig.for_model(**raw)}
    monkeypatch.setattr(targets, "configs_at_hand", lambda cfg: at_hand)
    paper = paths.PROFILES / "paper.yaml"
    [line] = check.memory_plans(config.load(paper))
    assert line.startswith("memory: phi-4-mini") and "x" in line
    with pytest.raises(config.ConfigError) as err:
        check.memory_plans(config.load(paper, {"train.device_memory_gib": 12}))
    assert "train.device_memory_gib = 12: phi-4-mini does not fit" in str(err.value)
    assert "\n" not in str(err.value)
    assert check.memory_plans(config.load(paper, {"train.device_memory_gib": None})) == []
