"""compass.cost: the cost of a full run, checked against hand arithmetic."""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from compass import config, cost
from compass.config import ConfigError

NO_GPU_FILE = {}  # an empty measurement: every rate from cost.FALLBACK, whatever the repo holds
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def no_prompt_lengths_file(tmp_path, monkeypatch):
    """Every test here starts without measured prompt lengths (the repo's results file is not
    read); a test plants its own."""
    monkeypatch.setattr(cost, "PROMPT_LENGTHS", tmp_path / "absent" / "prompt_lengths.json")


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


# --------------------------------------------------------------------------------------------
# scoring from tokens, prompt lengths from benchmarks/results/prompt_lengths.json

def planted_lengths(scale: float = 1.0) -> dict:
    """A prompt-lengths file in prompt_lengths.py's schema: es measured, fr not (it takes the
    mean); Global-MMLU items and ProX prompts ``scale`` times the round figures."""
    def gmmlu(item, chat, shot=90):
        return {"item_tokens": item * scale, "item_tokens_chat": chat * scale,
                "shot_tokens": shot * scale, "shot_tokens_chat": (shot + 10) * scale}

    def prox(zero, five):
        return {key + suffix: {"mean": value * scale + extra, "rows": 588}
                for key, value in (("prompt_0shot", zero), ("prompt_5shot", five))
                for suffix, extra in (("", 0), ("_chat", 50))}

    return {"benchmarks": {
        "global_mmlu_lite_test": {"languages": {"es": gmmlu(100, 130)}, "mean": gmmlu(200, 230)},
        "global_mmlu_dev": {"languages": {"en": gmmlu(60, 70, 50)}, "mean": gmmlu(60, 70, 60)},
        "mmlu_prox_lite_test": {"languages": {"es": prox(300, 1_800)}, "mean": prox(400, 2_400),
                                "num_fewshot": 5}}}


def write_lengths(path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def test_the_prompt_lengths_file_is_read_when_present(tmp_path, monkeypatch):
    """Scoring counts tokens: items x (measured tokens per item) / (tokens per second); the
    tokens rate, measured on no GPU here, is derived from the items/s rate x the tokens of the
    items it was measured on. fr is not in the file: it takes the mean over the languages."""
    planted = write_lengths(tmp_path / "pl.json", planted_lengths())
    monkeypatch.setattr(cost, "PROMPT_LENGTHS", planted)
    row = cost.cost_table(small(), NO_GPU_FILE).loc["llama-3.1-8b"]
    # 400 items x 3 runs per language; llama-3.1-8b (base) reads plain prompts: es 100, fr 200
    assert row["mc_tokens"] == 1_200 * (100 + 200)
    assert row["mc_gpu_h"] == pytest.approx(1_200 * 300 / (3.2 * cost.BENCH_ITEM_TOKENS) / 3600)
    # ProX (es only): 5-shot prompts of 1,800 tokens, 30 generations
    assert row["prox_prompt_tokens"] == 30 * 1_800
    prefill, attention = 2 * 9_080, 8e9 / (32 * 4096)
    prox_s = 30 * (300 / 30 + 1_800 * (1 + 1_800 / attention) / prefill)
    assert row["prox_gpu_h"] == pytest.approx(prox_s / 3600)
    notes = "\n".join(cost.assumptions(small(), NO_GPU_FILE))
    assert "MEASURED tokens per item" in notes and str(tmp_path / "pl.json") in notes
    assert "es 130 / 100, fr 230 / 200" in notes  # chat / plain per target
    assert "DERIVED (no tokens/s measured yet): 3.2 items/s" in notes
    assert "(fr) takes the mean over the measured languages" in notes
    assert "ESTIMATE" in notes  # each ProX shot's worked answer stays an estimate


def test_without_prompt_lengths_the_estimates_are_labelled():
    notes = "\n".join(cost.assumptions(small(), NO_GPU_FILE))
    assert f"ESTIMATE of {cost.BENCH_ITEM_TOKENS:,.0f} tokens per item" in notes
    assert "no prompt-lengths file" in notes and "MEASURED" not in notes
    row = cost.cost_table(small(), NO_GPU_FILE).loc["llama-3.1-8b"]
    assert row["mc_tokens"] == round(2_400 * cost.BENCH_ITEM_TOKENS)
    assert row["mc_gpu_h"] == pytest.approx(2_400 / 3.2 / 3600)  # the items/s rate's own hours


def test_doubled_prompt_tokens_double_the_scoring_cost(tmp_path):
    """Positive control: a planted doubling of every prompt doubles the multiple-choice tokens
    and hours and nothing but the prompt lines moves."""
    once = cost.cost_table(small(), NO_GPU_FILE, planted_lengths(1))
    twice = cost.cost_table(small(), NO_GPU_FILE, planted_lengths(2))
    llama = "llama-3.1-8b"
    assert twice.loc[llama, "mc_tokens"] == 2 * once.loc[llama, "mc_tokens"]
    assert twice.loc[llama, "mc_gpu_h"] == pytest.approx(2 * once.loc[llama, "mc_gpu_h"])
    assert twice.loc[llama, "prox_prompt_tokens"] == 2 * once.loc[llama, "prox_prompt_tokens"]
    same = [c for c in cost.COLUMNS if c not in ("mc_tokens", "mc_gpu_h", "prox_prompt_tokens",
                                                 "prox_gpu_h", "gpu_h")]
    pd.testing.assert_frame_equal(once[same], twice[same])


def test_unchanged_inputs_give_the_unchanged_table(tmp_path):
    """Negative control: the same lengths as a file or a dict, read twice, give one table; an
    empty measurement gives the table of no file at all."""
    path = write_lengths(tmp_path / "pl.json", planted_lengths())
    first = cost.cost_table(small(), NO_GPU_FILE, path)
    pd.testing.assert_frame_equal(first, cost.cost_table(small(), NO_GPU_FILE, path))
    pd.testing.assert_frame_equal(first, cost.cost_table(small(), NO_GPU_FILE,
                                                         copy.deepcopy(planted_lengths())))
    pd.testing.assert_frame_equal(cost.cost_table(small(), NO_GPU_FILE, {}),
                                  cost.cost_table(small(), NO_GPU_FILE))


def test_chat_models_read_the_chat_lengths_and_shots_add_their_tokens():
    plain = cost.cost_table(small(), NO_GPU_FILE, planted_lengths()).loc["llama-3.1-8b"]
    chat = cost.cost_table(small(**{"train.chat_template": True}), NO_GPU_FILE,
                           planted_lengths()).loc["llama-3.1-8b"]
    assert chat["mc_tokens"] == 1_200 * (130 + 230)
    assert chat["prox_prompt_tokens"] == 30 * 1_850 and plain["prox_prompt_tokens"] == 30 * 1_800
    # 2 Global-MMLU shots: es has no dev rows but test rows (its own language), fr the dev mean
    shots = cost.cost_table(small(**{"evaluation.num_fewshot": 2}), NO_GPU_FILE,
                            planted_lengths()).loc["llama-3.1-8b"]
    assert shots["mc_tokens"] == 1_200 * ((100 + 2 * 90) + (200 + 2 * 60))
    # ProX at 2 shots: 0-shot + 2/5 of the five shots' tokens
    two = cost.cost_table(small(**{"evaluation.prox.num_fewshot": 2}), NO_GPU_FILE,
                          planted_lengths()).loc["llama-3.1-8b"]
    assert two["prox_prompt_tokens"] == 30 * (300 + 2 * 1_500 / 5)


def test_measured_scoring_token_rates_replace_the_derived_one():
    gpu = {"score_items_per_s": 4.0, "score_item_tokens": 1_000, "params_b": 8, "device": "GPU X"}
    r = cost.rates(gpu)["score_tokens_per_s"]
    assert r.value == 4_000 and r.source.startswith("DERIVED")
    assert "as measured with them" in r.source
    r = cost.rates({**gpu, "score_tokens_per_s": 9_000})["score_tokens_per_s"]
    assert r.value == 9_000 and "compass's scorer on Global-MMLU-shaped items" in r.source
    r = cost.rates({**gpu, "score_tokens_per_s": 9_000, "score_lm_eval_tokens_per_s": 7_000})
    assert r["score_tokens_per_s"].value == 7_000  # what the paper's Global-MMLU runs through
    assert "lm-eval's HF backend" in r["score_tokens_per_s"].source
    with pytest.raises(ConfigError, match="score_item_tokens"):
        cost.rates({"score_item_tokens": 0})


@pytest.mark.parametrize("content", ['{"benchmarks": 1}', "[]", "{",
                                     '{"benchmarks": {"global_mmlu_lite_test": '
                                     '{"languages": {}, "mean": {"item_tokens": -1}}}}',
                                     '{"benchmarks": {"mmlu_prox_lite_test": {"mean": {}}}}'])
def test_bad_prompt_lengths_are_a_config_error(tmp_path, content):
    path = tmp_path / "prompt_lengths.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match="prompt_lengths.json|prompt lengths"):
        cost.cost_table(small(), NO_GPU_FILE, path)
    with pytest.raises(ConfigError, match="does not exist"):
        cost.cost_table(small(), NO_GPU_FILE, tmp_path / "nope.json")


def test_the_repository_lengths_file_has_what_cost_reads():
    """benchmarks/results/prompt_lengths.json (when committed) passes the check and covers the
    paper profile's benchmarks."""
    path = ROOT / "benchmarks" / "results" / "prompt_lengths.json"
    if not path.exists():
        pytest.skip("no measured prompt lengths in the repository")
    data, _ = cost.prompt_lengths(path)
    assert set(cost.LENGTH_FIGURES) <= set(data["benchmarks"])


@pytest.mark.slow
def test_prompt_lengths_script_on_a_subset(tmp_path):
    """benchmarks/prompt_lengths.py on one language and a few rows: the JSON cost reads
    (~20 s: converting Llama-3.1's tokenizer alone takes ~10 s)."""
    pytest.importorskip("tiktoken")
    pytest.importorskip("lm_eval")
    from tests.conftest import SHARED_FIXTURES, fixture_path

    fixture_path("models", "llama-3.1-8b-instruct", "original", "tokenizer.model")
    fixture_path("mmlu_prox_lite")
    out = tmp_path / "prompt_lengths.json"
    done = subprocess.run([sys.executable, "benchmarks/prompt_lengths.py", "--languages", "ja",
                           "--rows", "12", "--fixtures", str(SHARED_FIXTURES), "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| global_mmlu_lite_test" in done.stdout and "| mmlu_prox_lite_test" in done.stdout
    data, _ = cost.prompt_lengths(out)  # passes cost's own check
    assert data["bos_added"] == 1 and data["benchmarks"]["mmlu_prox_lite_test"]["cot"]["estimate"]
    assert "global_mmlu_dev" not in data["benchmarks"]  # no ja dev rows in the fixtures
    gmmlu = data["benchmarks"]["global_mmlu_lite_test"]["languages"]["ja"]
    assert gmmlu["context"]["rows"] == 12
    assert gmmlu["continuation_tokens"] == gmmlu["continuation_tokens_chat"] == 1
    assert gmmlu["context_chat"]["mean"] > gmmlu["context"]["mean"]  # the template's header
    assert gmmlu["item_tokens"] == pytest.approx(gmmlu["context"]["mean"] + 4)
    prox = data["benchmarks"]["mmlu_prox_lite_test"]["languages"]["ja"]
    for kind in ("prompt_0shot", "prompt_5shot", "prompt_0shot_chat", "prompt_5shot_chat"):
        s = prox[kind]
        assert s["rows"] == 12 and 0 < s["median"] <= s["p95"] <= s["max"], kind
    cots = 5 * prox["cot_tokens_per_shot"]  # the estimate, on top of the shots' measured tokens
    assert prox["prompt_5shot"]["mean"] > prox["prompt_0shot"]["mean"] + cots
    table = cost.cost_table(small(**{"languages.targets": ["ja", "fr"],
                                     "evaluation.prox.languages": ["ja"]}), NO_GPU_FILE, out)
    assert table.loc["llama-3.1-8b", "mc_tokens"] == round(
        1_200 * 2 * data["benchmarks"]["global_mmlu_lite_test"]["languages"]["ja"]["item_tokens"])
