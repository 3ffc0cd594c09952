"""benchmarks/bench_gpu.py --tiny: the GPU benchmark's every row runs on a CPU in seconds."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_gpu_tiny_runs_every_row_and_writes_its_rates(tmp_path):
    out = tmp_path / "gpu.json"
    done = subprocess.run([sys.executable, "benchmarks/bench_gpu.py", "--tiny", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "## training" in done.stdout and "## scoring" in done.stdout
    results = json.loads(out.read_text())
    for key in ("train_tokens_per_s", "score_items_per_s", "gen_tokens_per_s", "prefill_tokens_per_s",
                "params_b"):
        assert results[key] > 0, key
    trainers = {row["trainer"]: row for row in results["training"]}
    packed, padded = (trainers["compass completion loss, packed"],
                      trainers["compass completion loss, padded"])
    assert packed["batch_rows"] < padded["batch_rows"]  # the same examples in fewer rows
    assert abs(packed["first_loss"] - padded["first_loss"]) < 1e-4  # ... and the same loss
    scorers = {row["scorer"]: row for row in results["scoring"]}
    compass = scorers["compass batched (score_items)"]
    assert compass["same_choice"] == f"{compass['items']}/{compass['items']}"
    assert compass["max_abs_ll_diff"] < 1e-3
    assert results["shape"] == "tiny"
