"""Data-parallel training (train.processes): 2 gloo CPU processes under `accelerate launch` train
the adapter one process trains at the same global batch."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from compass.training import distributed
from tests import ddp_worker
from tests.test_adapters_evaluate import _lora_state

ROOT = Path(__file__).resolve().parents[1]


def test_outside_a_launch_there_is_one_process():
    assert distributed.world() == (0, 1) and distributed.is_main()
    assert distributed.total(7, "cpu") == 7
    assert distributed.local_device() is None


def test_launch_command_runs_the_module_under_accelerate():
    command = distributed.launch_command("compass.stages.train", ["--job", "j"], 4, port=1234)
    assert command[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    assert command[command.index("--num_processes") + 1] == "4"
    assert command[-4:] == ["--module", "compass.stages.train", "--job", "j"]


def test_shards_split_each_micro_batch():
    from compass.training.adapters import batch_indices, batch_of
    from tests.tiny_lm import tiny_tokenizer

    tok = tiny_tokenizer()
    encoded = [{"input_ids": [2, i + 3], "labels": [-100, i + 3]} for i in range(12)]
    whole = batch_indices(12, 3, 4, seed=5)
    rows = [batch_of(encoded, 3, 4, 5, tok.pad_token_id, "cpu", shard=(r, 2))["input_ids"][:, 1] - 3
            for r in range(2)]
    assert sorted(torch.cat(rows).tolist()) == sorted(whole.tolist())


@pytest.mark.slow
def test_two_gloo_processes_train_the_one_process_adapter(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    ddp_worker.main(str(one))
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'tests'}{os.pathsep}{ROOT}", "OMP_NUM_THREADS": "1"}
    command = distributed.launch_command("ddp_worker", [str(two)], 2, port=distributed.free_port())
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "rank 1 of 2" in run.stdout and "rank 0 of 2" in run.stdout
    a, b = _lora_state(one), _lora_state(two)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-5), key
    log_one, log_two = pd.read_csv(one / "train_log.csv"), pd.read_csv(two / "train_log.csv")
    assert (log_one["tokens"] == log_two["tokens"]).all()  # the whole batch counted, not a share
    assert (log_one["loss"] - log_two["loss"]).abs().max() < 1e-5
    assert (two / "steps" / "2" / "adapter_config.json").exists()
    assert not (two / "checkpoint.pt").exists()


def test_a_finished_adapter_is_reused_only_for_the_same_run(tmp_path):
    from compass.training.adapters import train_adapter
    from tests.tiny_lm import tiny_gemma, tiny_tokenizer

    tok = tiny_tokenizer()
    cfg = ddp_worker.tiny_run_config(1)
    examples = ddp_worker.examples()
    first = train_adapter(tiny_gemma(len(tok)), tok, examples, cfg, tmp_path, seed=5, base_name="t",
                          show_progress_bar=False, snapshot_steps=(2,))
    weights = tmp_path / "adapter" / "adapter_model.safetensors"
    stamp = weights.stat().st_mtime_ns
    again = train_adapter(tiny_gemma(len(tok)), tok, examples, cfg, tmp_path, seed=5, base_name="t",
                          show_progress_bar=False, snapshot_steps=(2,), reuse_finished=True)
    assert again["reused"] and again["final_loss"] == pytest.approx(first["final_loss"], abs=1e-5)
    assert weights.stat().st_mtime_ns == stamp
    changed = [dict(e, response=e["response"] + "!") for e in examples]  # same count, other text
    other = train_adapter(tiny_gemma(len(tok)), tok, changed, cfg, tmp_path, seed=5, base_name="t",
                          show_progress_bar=False, snapshot_steps=(2,), reuse_finished=True)
    assert "reused" not in other and weights.stat().st_mtime_ns != stamp
    retrained = train_adapter(tiny_gemma(len(tok)), tok, changed, cfg, tmp_path, seed=5, base_name="t",
                              show_progress_bar=False, snapshot_steps=(2,))
    assert "reused" not in retrained  # without reuse_finished, always trained


@pytest.mark.parametrize("profile", ["tiny", "paper", "paper_fixtures"])
def test_a_training_job_travels_as_json_and_returns_the_same_params(tmp_path, profile):
    from compass import config
    from compass.stages import train

    cfg = config.load(ROOT / "profiles" / f"{profile}.yaml")
    job = tmp_path / "job.json"
    job.write_text(json.dumps(train.job_of(cfg, "fa", "m", ("naive",))))
    read = train.read_job(job)
    assert read["cfg"] == cfg and read["methods"] == ["naive"] and read["lang"] == "fa"
    assert b"\x80" not in job.read_bytes()  # no pickle protocol header: plain text
