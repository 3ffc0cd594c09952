"""Base models by name, without importing torch: params are checked against this before any stage
loads a model, and folders, stages and adapters are keyed by these names."""
from __future__ import annotations

import re

OFFLINE_MODEL = "gemma-3-270m"  # converted from its PyPI GGUF by the `model` stage
# paper profile: name in params -> hub id (base and instruct variants)
PAPER_MODELS = {
    "phi-4-mini": "microsoft/Phi-4-mini-instruct",
    "llama-3.1-8b": "meta-llama/Llama-3.1-8B",
    "llama-3.1-8b-instruct": "meta-llama/Llama-3.1-8B-Instruct",
    "qwen2.5-7b": "Qwen/Qwen2.5-7B",
    "qwen2.5-7b-instruct": "Qwen/Qwen2.5-7B-Instruct",
}
INSTRUCT = frozenset({"phi-4-mini", "llama-3.1-8b-instruct", "qwen2.5-7b-instruct"})  # chat
# models (no Phi-4-mini base checkpoint is public); the others are base models
# parameters (billions), for the cost estimate
PARAMETERS_B = {"gemma-3-270m": 0.27, "phi-4-mini": 3.8, "llama-3.1-8b": 8.0,
                "llama-3.1-8b-instruct": 8.0, "qwen2.5-7b": 7.6, "qwen2.5-7b-instruct": 7.6}
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # a name is a folder and a DVC stage key


def known_names(model_sources: dict | None = None) -> list[str]:
    """Every base model name the params may use: the offline model, the paper's, and the ones
    ``train.model_sources`` adds."""
    return sorted({OFFLINE_MODEL, *PAPER_MODELS, *(model_sources or {})})


def source(name: str, model_sources: dict | None = None) -> str:
    """The hub id or folder a model name stands for (model_sources first)."""
    model_sources = model_sources or {}
    if name in model_sources:
        return str(model_sources[name])
    return PAPER_MODELS.get(name, name)
