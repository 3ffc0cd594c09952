"""Training-speed options: each changes how fast a step runs or how much memory it takes, never
what it computes (tests check the same loss and gradients as the plain path on tiny models).

* ``train.fused_loss``: how the output layer and the cross-entropy meet at the completion
  positions. ``off`` materialises their logits (rows x vocabulary); ``chunked`` runs the output
  layer and the loss a block of rows at a time under activation checkpointing, so at most one
  block's logits exist, in forward and in backward (any device, logit soft-capping included;
  one extra output-layer matmul); ``torch`` is torch's own ``linear_cross_entropy`` with its
  chunking options (torch >= 2.13; no soft-capping; measured 20x slower than ``off`` on a CPU at
  Gemma-3's 262k vocabulary with a few hundred rows, as its docs say chunking only pays when rows
  exceed the hidden size); ``liger`` is Liger-Kernel's fused linear cross-entropy (CUDA + Triton,
  not installed by this package: ``pip install liger-kernel``).
* ``train.gradient_checkpointing``: recompute each decoder layer's activations in backward
  (transformers' own, non-reentrant): less memory, about a third more compute.
* ``train.compile``: ``torch.compile`` each decoder layer for the run (measured 1.49x at the 8B
  shape on an H200 in benchmarks/bench_gpu.py); the layers run eager again afterwards, because a
  KV cache (scoring, generation) makes compiled layers recompile.
"""
from __future__ import annotations

import contextlib
import functools
import importlib.util
import warnings

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

FUSED_LOSSES = ("off", "chunked", "torch", "liger")
LOGITS_PER_CHUNK = 2 ** 25  # chunked: rows per block = this / vocabulary (128 MiB of fp32 logits)


def check_fused_loss(kind: str) -> str:
    """``kind`` when it is one of FUSED_LOSSES, else ValueError naming the allowed ones."""
    if kind not in FUSED_LOSSES:
        raise ValueError(f"train.fused_loss {kind!r} is not allowed; choose one of "
                         f"{list(FUSED_LOSSES)}")
    return kind


def output_logits(base, head, hidden: torch.Tensor) -> torch.Tensor:
    """The output layer on the given hidden states only, with the model's logit soft-capping."""
    logits = head(hidden)
    cap = getattr(base.config, "final_logit_softcapping", None)
    return torch.tanh(logits / cap) * cap if cap else logits


def chunked_cross_entropy(base, head, hidden: torch.Tensor, targets: torch.Tensor,
                          rows: int | None = None) -> torch.Tensor:
    """Mean cross-entropy of the output layer on ``hidden`` against ``targets``, a block of
    ``rows`` at a time: each block's logits are dropped after its loss and recomputed in backward
    (``torch.utils.checkpoint``), so memory holds one block's logits instead of all of them."""
    if rows is None:
        rows = max(1, LOGITS_PER_CHUNK // head.weight.shape[0])

    def block_loss_sum(h, t):
        return F.cross_entropy(output_logits(base, head, h).float(), t, reduction="sum")

    total = hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, hidden.shape[0], rows):
        block = slice(start, start + rows)
        total = total + checkpoint(block_loss_sum, hidden[block], targets[block],
                                   use_reentrant=False)
    return total / max(1, hidden.shape[0])


@functools.cache
def liger_available() -> bool:
    """Whether liger-kernel is installed (checked once): the ``liger`` fused loss needs it."""
    return importlib.util.find_spec("liger_kernel") is not None


@functools.cache
def _warn_once(message: str) -> None:
    warnings.warn(message)


def head_cross_entropy(base, head, hidden: torch.Tensor, targets: torch.Tensor,
                       kind: str = "off") -> torch.Tensor:
    """Mean cross-entropy of the output layer on ``hidden`` (completion positions only) against
    ``targets``, computed as ``kind`` says (module docstring). A kind this machine cannot run
    falls back to ``chunked`` (same loss) with a warning naming why."""
    cap = getattr(base.config, "final_logit_softcapping", None)
    weight, bias = head.weight, getattr(head, "bias", None)
    if kind == "liger":
        if hidden.is_cuda and liger_available():
            from liger_kernel.transformers.functional import liger_fused_linear_cross_entropy

            loss = liger_fused_linear_cross_entropy(hidden, weight, targets, bias=bias, softcap=cap)
            return loss[0] if isinstance(loss, tuple) else loss  # some releases add z-loss etc.
        _warn_once("train.fused_loss liger needs CUDA and the liger-kernel package; using chunked")
        kind = "chunked"
    if kind == "torch":
        options = getattr(torch.nn, "LinearCrossEntropyOptions", None)
        if options is not None and not cap:
            return F.linear_cross_entropy(hidden, weight, targets, linear_bias=bias,
                                          options=options())
        _warn_once("train.fused_loss torch needs torch>=2.13 and a model without logit "
                   "soft-capping; using chunked")
        kind = "chunked"
    if kind == "chunked":
        return chunked_cross_entropy(base, head, hidden, targets)
    check_fused_loss(kind)
    return F.cross_entropy(output_logits(base, head, hidden).float(), targets)


def decoder_layers(model) -> list:
    """The decoder layers of a model with or without a PEFT wrapper (``model.layers``), or an empty
    list for an architecture that has none there."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    layers = getattr(getattr(base, "model", None), "layers", None)
    return list(layers) if layers is not None else []


@contextlib.contextmanager
def training_speedups(model, gradient_checkpointing: bool = False, compile: bool | str = False):
    """The model (a PeftModel) with gradient checkpointing and/or compiled decoder layers for the
    block; both are undone on exit, also on error, so the base model serves eager, cache-using
    scoring afterwards. ``compile``: True (inductor) or a torch.compile backend name."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    layers = decoder_layers(model) if compile else []
    if compile and not layers:
        _warn_once(f"train.compile: {type(base).__name__} has no model.layers to compile; "
                   "runs eager")
    # transformers >= 5.24 renames gradient checkpointing to activation checkpointing
    if hasattr(base, "activation_checkpointing_enable"):
        enable = functools.partial(base.activation_checkpointing_enable,
                                   activation_checkpointing_kwargs={"use_reentrant": False})
        disable = base.activation_checkpointing_disable
    else:
        enable = functools.partial(base.gradient_checkpointing_enable,
                                   gradient_checkpointing_kwargs={"use_reentrant": False})
        disable = base.gradient_checkpointing_disable
    if gradient_checkpointing:
        enable()
    backend = compile if isinstance(compile, str) else "inductor"
    for layer in layers:
        layer.compile(backend=backend)
    try:
        yield model
    finally:
        for layer in layers:
            layer._compiled_call_impl = None
        if gradient_checkpointing:
            disable()
