"""benchmarks/bench_gpu.py --tiny: the GPU benchmark's every row runs on a CPU in seconds."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_bench_gpu_tiny_runs_every_row_and_writes_its_rates(tmp_path):
    out = tmp_path / "gpu.json"
    done = subprocess.run([sys.executable, "benchmarks/bench_gpu.py", "--tiny", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "## training" in done.stdout and "## scoring" in done.stdout
    # scoring and generation on the fresh model: before any training row (compile is the last)
    assert done.stdout.index("## scoring") < done.stdout.index("## generation") \
        < done.stdout.index("## training")
    results = json.loads(out.read_text())
    for key in ("train_tokens_per_s", "score_items_per_s", "gen_tokens_per_s", "prefill_tokens_per_s",
                "params_b", "score_tokens_per_s", "score_item_tokens", "score_gmmlu_items_per_s",
                "score_gmmlu_item_tokens"):
        assert results[key] > 0, key
    # tokens/s = items/s x tokens per item, for both shapes
    long_ = {row["scorer"]: row for row in results["scoring"]}["compass batched (score_items)"]
    assert long_["tokens_per_s"] == pytest.approx(results["score_items_per_s"]
                                                  * results["score_item_tokens"])
    assert results["score_tokens_per_s"] == pytest.approx(results["score_gmmlu_items_per_s"]
                                                          * results["score_gmmlu_item_tokens"])
    assert results["gen_tokens_per_s"] < 1e7  # the decoding steps' own time, never ~0
    trainers = {row["trainer"]: row for row in results["training"]}
    packed, padded = (trainers["compass completion loss, packed"],
                      trainers["compass completion loss, padded"])
    assert packed["batch_rows"] < padded["batch_rows"]  # the same examples in fewer rows
    assert abs(packed["first_loss"] - padded["first_loss"]) < 1e-4  # ... and the same loss
    scorers = {row["scorer"]: row for row in results["scoring"]}
    compass = scorers["compass batched (score_items)"]
    assert compass["same_choice"] == f"{compass['items']}/{compass['items']}"
    assert compass["max_abs_ll_diff"] < 1e-3
    gmmlu = {row["scorer"]: row for row in results["scoring_gmmlu"]}
    for row in gmmlu.values():  # the one-letter requests: every scorer picks the same
        assert row["same_choice"] == f"{row['items']}/{row['items']}"
        assert row["max_abs_ll_diff"] < 1e-3
    # a context once + four one-token continuations
    assert results["score_gmmlu_item_tokens"] < results["score_item_tokens"]
    if any(name.startswith("lm-eval") for name in gmmlu):
        assert results["score_lm_eval_tokens_per_s"] > 0
    assert results["shape"] == "tiny"
