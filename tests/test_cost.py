"""compass.cost: the cost of a full run, checked against hand arithmetic."""
from __future__ import annotations

import json

import pytest

from compass import config, cost
from compass.config import ConfigError

NO_GPU_FILE = {}  # an empty measurement: every rate from cost.FALLBACK, whatever the repo holds


def small(**overrides):
    """2 targets x 2 methods on llama-3.1-8b (8B: no size scaling), everything small and round."""
    raw = {"profile": "paper", "languages": {"targets": ["es", "fr"]},
           "train": {"models": ["llama-3.1-8b"], "methods": ["random", "compass"], "steps": 10,
                     "batch_size": 2, "grad_accum": 3, "max_length": 100, "seeds": 1,
                     "curve_steps": []},
           "evaluation": {"max_items": 0, "prox": {"languages": ["es"], "limit": 10, "num_fewshot": 5,
                                                   "max_gen_toks": 300}},
           "long_context": {"languages": ["es", "fr"], "tasks": ["niah_single", "cwe"], "lengths": [1000, 2000],
                            "samples_per_task": 5, "max_new_tokens": 6}}
    for dotted, value in overrides.items():
        config.apply_override(raw, dotted, value)
    return config.from_dict(raw)


def test_hand_computed_counts_and_hours():
    table = cost.cost_table(small(), NO_GPU_FILE)
    row = table.loc["llama-3.1-8b"]
    assert list(table.index) == ["llama-3.1-8b", "total"]
    assert row["adapters"] == 4  # 2 targets x 2 methods
    assert row["train_tokens"] == 4 * 10 * 2 * 3 * 100 == 24_000
    assert row["train_gpu_h"] == pytest.approx(24_000 / 9_080 / 3600)
    # Global-MMLU-Lite: 400 items x (1 zero-shot + 2 adapters) x 2 languages, 4 choices each
    assert row["mc_items"] == 2_400 and row["mc_requests"] == 9_600
    assert row["mc_gpu_h"] == pytest.approx(2_400 / 3.2 / 3600)
    # ProX: 10 items x 3 runs x 1 language; prompt 250 x (5 shots + 1) = 1,500 tokens
    assert row["prox_generations"] == 30
    assert row["prox_prompt_tokens"] == 30 * 1_500 and row["prox_gen_tokens"] == 30 * 300
    prefill = 2 * 9_080
    attention = 8e9 / (32 * 4096)
    prox_s = 30 * (300 / 30 + 1_500 * (1 + 1_500 / attention) / prefill)
    assert row["prox_gpu_h"] == pytest.approx(prox_s / 3600)
    # long context: 2 targets x 2 tasks x 5 samples x 3 runs = 60 per length, 2 lengths
    assert row["lc_generations"] == 120 and row["lc_prompt_tokens"] == 60 * 3_000
    lc_s = sum(60 * (n * (1 + n / attention) / prefill + 6 / 30) for n in (1000, 2000))
    assert row["lc_gpu_h"] == pytest.approx(lc_s / 3600)
    assert row["gpu_h"] == pytest.approx((24_000 / 9_080 + 2_400 / 3.2 + prox_s + lc_s) / 3600)


def test_models_scale_by_size_and_sum_into_the_total():
    table = cost.cost_table(small(**{"train.models": ["llama-3.1-8b", "phi-4-mini"]}), NO_GPU_FILE)
    llama, phi, total = table.loc["llama-3.1-8b"], table.loc["phi-4-mini"], table.loc["total"]
    assert phi["params_b"] == 3.8 and phi["train_tokens"] == llama["train_tokens"]
    assert phi["train_gpu_h"] == pytest.approx(llama["train_gpu_h"] * 3.8 / 8)
    assert phi["mc_gpu_h"] == pytest.approx(llama["mc_gpu_h"] * 3.8 / 8)
    # reading prompts: Phi's attention is a larger share (params / (layers x d_model) is smaller)
    assert phi["lc_gpu_h"] > llama["lc_gpu_h"] * 3.8 / 8
    assert total["train_tokens"] == 48_000 and total["adapters"] == 8
    assert total["gpu_h"] == pytest.approx(llama["gpu_h"] + phi["gpu_h"])
    assert table["adapters"].dtype.kind == "i"


def test_item_counts_follow_the_params():
    assert cost.cost_table(small(**{"data.test_set": "full"}), NO_GPU_FILE).loc["total", "mc_items"] \
        == 14_042 * 3 * 2
    assert cost.cost_table(small(**{"evaluation.max_items": 50}), NO_GPU_FILE).loc["total", "mc_items"] \
        == 50 * 3 * 2
    all_prox = small(**{"evaluation.prox.limit": 0, "evaluation.prox.languages": "targets"})
    assert cost.cost_table(all_prox, NO_GPU_FILE).loc["total", "prox_generations"] == 588 * 3 * 2
    no_prox = small(**{"evaluation.prox.languages": []})
    assert cost.cost_table(no_prox, NO_GPU_FILE).loc["total", "prox_gpu_h"] == 0


def test_gpu_json_replaces_the_fallback(tmp_path):
    gpu = tmp_path / "gpu.json"
    gpu.write_text(json.dumps({"train_tokens_per_s": 4_000, "score_items_per_s": 40,
                               "params_b": 4.0, "device": "NVIDIA H200"}))
    row = cost.cost_table(small(), gpu).loc["llama-3.1-8b"]
    # measured at 4B, the 8B model is twice as slow: 2,000 tokens/s, 20 items/s
    assert row["train_gpu_h"] == pytest.approx(24_000 / 2_000 / 3600)
    assert row["mc_gpu_h"] == pytest.approx(2_400 / 20 / 3600)
    notes = "\n".join(cost.assumptions(small(), gpu))
    assert f"measured on NVIDIA H200 at 4B ({gpu})" in notes
    assert "ASSUMPTION, nothing measured" in notes  # gen_tokens_per_s was not in the file


def test_default_gpu_file_is_read_when_present(tmp_path, monkeypatch):
    gpu = tmp_path / "results" / "gpu.json"
    monkeypatch.setattr(cost, "GPU_RESULTS", gpu)
    before = cost.cost_table(small()).loc["total", "train_gpu_h"]
    assert before == pytest.approx(24_000 / 9_080 / 3600)  # no file: the H200 figures
    gpu.parent.mkdir()
    gpu.write_text(json.dumps({"train_tokens_per_s": 9_080 * 2, "params_b": 8}))
    assert cost.cost_table(small()).loc["total", "train_gpu_h"] == pytest.approx(before / 2)


@pytest.mark.parametrize("content", ['{"train_tokens_per_s": -1}', '{"params_b": "8B"}', "[1]", "{"])
def test_bad_gpu_json_is_a_config_error(tmp_path, content):
    gpu = tmp_path / "gpu.json"
    gpu.write_text(content)
    with pytest.raises(ConfigError, match="gpu.json"):
        cost.cost_table(small(), gpu)
    with pytest.raises(ConfigError, match="does not exist"):
        cost.cost_table(small(), tmp_path / "nope.json")


def test_assumptions_name_the_estimates():
    notes = cost.assumptions(small(), NO_GPU_FILE)
    text = "\n".join(notes)
    assert "9,080 tokens/s at 8B" in text and "3.2 items/s" in text
    assert "ASSUMPTION" in text and "ESTIMATE of 250 prompt tokens per shot, 1,500 per prompt" in text
    assert "APPROXIMATION" in text and "PARAMETERS_B" in text
    unknown = small(**{"train.models": ["my-model"], "train.model_sources": {"my-model": "org/m"}})
    assert "Size unknown for my-model: assumed 8B." in cost.assumptions(unknown, NO_GPU_FILE)
    assert cost.cost_table(unknown, NO_GPU_FILE).loc["my-model", "params_b"] == 8.0


def test_tiny_profile_counts_its_own_test_items():
    cfg = config.from_dict({})
    row = cost.cost_table(cfg, NO_GPU_FILE).loc["gemma-3-270m"]
    runs = 1 + len(cfg.train.methods)
    assert row["mc_items"] == len(cfg.targets) * runs * cfg.evaluation.max_items
    assert row["mc_requests"] == row["mc_items"] * (cfg.data.split.n_distractors + 1)
    assert row["prox_generations"] == 0


def test_cli_prints_the_table_for_the_tiny_params(capsys):
    assert cost.main([]) == 0  # the repository's params.yaml
    out = capsys.readouterr().out
    assert out.startswith("Cost of a full run: profile tiny")
    assert "| gemma-3-270m" not in out  # models are columns
    for label in ("| adapters", "| train tokens", "| GPU-h total", "gemma-3-270m", "total"):
        assert label in out
    assert "\nAssumptions:\n- LoRA training: " in out


def test_cli_bad_params(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text("train: {steps: 0}\n")
    assert cost.main(["--params", str(params)]) == 2
    assert "train.steps" in capsys.readouterr().err


def test_lengths_that_do_not_fit_the_window_are_not_counted():
    """The long-context stage drops a length whose prompt and answer exceed the model's window;
    the cost counts what runs: 131072 + the answer never fits a 131,072-token window."""
    from compass import config, cost

    cfg = config.from_dict({"long_context": {"lengths": [8000, 128000, 131072],
                                             "max_new_tokens": 64, "cwe_max_new_tokens": 128}})
    assert cost.scored_lengths(cfg, "llama-3.1-8b") == [8000, 128000]
    assert cost.scored_lengths(cfg, "qwen2.5-7b-instruct") == [8000, 128000]  # with YaRN
    assert cost.scored_lengths(cfg, "a-model-of-mine") == [8000, 128000, 131072]


def test_each_model_reads_long_prompts_at_its_own_attention_cost():
    """Attention's share of a prefill grows with L / (params / (layers x d_model)): Phi-4-mini
    (3.8B, 32 x 3072) pays it sooner than Llama-3.1-8B (8B, 32 x 4096); an unknown model gets
    Llama's constant."""
    from compass import cost

    assert cost.attention_tokens("llama-3.1-8b") == pytest.approx(8e9 / (32 * 4096))
    assert cost.attention_tokens("phi-4-mini") == pytest.approx(3.8e9 / (32 * 3072))
    assert cost.attention_tokens("qwen2.5-7b") == pytest.approx(7.6e9 / (28 * 3584))
    assert cost.attention_tokens("my-model") == cost.ATTENTION_TOKENS
    cfg = small(**{"train.models": ["phi-4-mini", "llama-3.1-8b"]})
    lines = " ".join(cost.assumptions(cfg, NO_GPU_FILE))
    assert "phi-4-mini 38,656" in lines and "llama-3.1-8b 61,035" in lines
