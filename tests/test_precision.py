"""train.dtype = auto: bf16 only where the CPU computes it natively (flags AND a timed matmul),
decided once per machine with a margin timing noise cannot cross, and recorded for every stage."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from compass.training import precision


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    monkeypatch.delenv(precision.ENV_OVERRIDE, raising=False)
    monkeypatch.setenv("COMPASS_DATA_DIR", str(tmp_path / "data"))  # no recorded decision
    precision.cpu_bf16.cache_clear()
    yield monkeypatch
    precision.cpu_bf16.cache_clear()


def fake_speeds(monkeypatch, bf16_seconds, fp32_seconds=0.01):
    monkeypatch.setattr(precision, "matmul_seconds",
                        lambda dtype, repeats=3: bf16_seconds if dtype == torch.bfloat16 else fp32_seconds)


def test_cpu_without_native_bf16_gets_fp32(fresh):
    fresh.setattr(precision, "native_bf16_flags", lambda: set())
    fake_speeds(fresh, bf16_seconds=1.0)  # emulated: 100x slower, as measured on AMD Zen 3
    chosen = precision.choose("auto", "cpu")
    assert chosen.dtype == "float32" and "no native bf16" in chosen.reason


def test_cpu_with_native_bf16_gets_bf16(fresh):
    fresh.setattr(precision, "native_bf16_flags", lambda: {"avx512_bf16"})
    fake_speeds(fresh, bf16_seconds=0.004)
    chosen = precision.choose("auto", "cpu")
    assert chosen.dtype == "bfloat16" and "avx512_bf16" in chosen.reason


def test_flags_without_the_speed_still_get_fp32(fresh):
    fresh.setattr(precision, "native_bf16_flags", lambda: {"amx_bf16"})
    fake_speeds(fresh, bf16_seconds=0.05)
    chosen = precision.choose("auto", "cpu")
    assert chosen.dtype == "float32" and "emulated" in chosen.reason


@pytest.mark.parametrize("value, dtype", [("0", "float32"), ("1", "bfloat16")])
def test_environment_override(fresh, value, dtype):
    fresh.setenv(precision.ENV_OVERRIDE, value)
    assert precision.choose("auto", "cpu").dtype == dtype


def test_explicit_dtype_and_cuda_are_not_measured(fresh):
    fresh.setattr(precision, "matmul_seconds", lambda *a, **k: pytest.fail("measured"))
    assert precision.choose("float32", "cpu").dtype == "float32"
    assert precision.choose("bfloat16", "cpu").dtype == "bfloat16"
    assert precision.choose("auto", "cuda").dtype == "bfloat16"
    with pytest.raises(ValueError, match=r"'float16' is not allowed.*auto"):
        precision.choose("float16", "cpu")


def test_cpu_flags_parse_linux_and_arm_cpuinfo(tmp_path):
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n")
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n")
    assert {"avx2", "avx512_bf16"} <= precision.cpu_flags(x86)
    assert "bf16" in precision.cpu_flags(arm)
    assert precision.cpu_flags(tmp_path / "absent") == set()


def test_loaded_model_records_the_choice(fresh, tmp_path):
    from compass.training import models
    from tests.tiny_lm import tiny_gemma, tiny_tokenizer

    tok = tiny_tokenizer()
    tiny_gemma(len(tok)).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    fresh.setenv(precision.ENV_OVERRIDE, "0")
    model, _ = models.load(str(tmp_path), dtype="auto")
    assert model.compass_precision.dtype == "float32" and next(model.parameters()).dtype == torch.float32


def test_the_decision_does_not_move_with_timing_noise(fresh):
    """On one CPU with native bf16 the bf16/fp32 ratio read 0.93 in one run and 0.20 in another;
    emulated bf16 reads ~100x. Draws across each range give one decision and the same bytes."""
    rng = np.random.default_rng(0)
    for flags, low, high, dtype in (({"avx512_bf16"}, 0.15, 2.5, "bfloat16"),
                                    ({"amx_bf16"}, 20.0, 200.0, "float32"),
                                    (set(), 0.15, 200.0, "float32")):
        fresh.setattr(precision, "native_bf16_flags", lambda flags=flags: flags)
        seen = set()
        for ratio in rng.uniform(low, high, size=50):
            precision.cpu_bf16.cache_clear()
            fake_speeds(fresh, bf16_seconds=0.01 * ratio)
            chosen = precision.decide()
            seen.add((chosen.dtype, chosen.reason))
        assert len(seen) == 1 and seen.pop()[0] == dtype


AGREE = """
import sys, torch
from compass.training import precision
ratio = float(sys.argv[1])
precision.native_bf16_flags = lambda: {{"avx512_bf16"}}
precision.matmul_seconds = lambda dtype, repeats=3: 0.01 * (ratio if dtype == torch.bfloat16 else 1.0)
print(precision.choose("auto", "cpu").dtype)
"""


def test_two_processes_on_one_machine_agree_whatever_they_measure(fresh, tmp_path):
    """Once the precision stage recorded the decision, a process that measures bf16 as fast and
    one that measures it 50x slow (past the margin) both read the record."""
    from compass import paths

    fresh.setattr(precision, "native_bf16_flags", lambda: {"avx512_bf16"})
    fake_speeds(fresh, bf16_seconds=0.005)
    chosen, changed = precision.record()
    assert changed and chosen.dtype == "bfloat16" and paths.precision_record().exists()
    assert precision.record() == (chosen, False)  # the same decision writes nothing
    env = {**__import__("os").environ, "COMPASS_DATA_DIR": str(tmp_path / "data")}
    env.pop(precision.ENV_OVERRIDE, None)
    answers = [subprocess.run([sys.executable, "-c", AGREE.format(), str(ratio)], env=env,
                              capture_output=True, text=True, check=True).stdout.strip()
               for ratio in (0.2, 50.0)]
    assert answers == ["bfloat16", "bfloat16"]


def test_an_override_that_contradicts_the_record_is_named(fresh):
    fresh.setattr(precision, "native_bf16_flags", lambda: set())
    precision.record()  # float32 recorded
    fresh.setenv(precision.ENV_OVERRIDE, "1")
    with pytest.raises(ValueError, match="COMPASS_CPU_BF16=1 contradicts the float type recorded"):
        precision.choose("auto", "cpu")
