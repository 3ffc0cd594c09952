"""How a LoRA training step fits a GPU: micro-batch, gradient accumulation and checkpointing.

``train.batch_size`` is the effective batch (the sequences one optimizer step averages over). On
an 80 GB card the paper's 16 x 1,024 tokens do not fit in one micro-batch at 8B (measured 54.5
GiB at 4 x 1,024 on an H200), so :func:`plan` splits it into ``micro_batch`` x ``grad_accum``
(their product is always ``batch_size``) and switches on gradient checkpointing only where no
split fits without it, from an estimate of the peak:

* weights: every parameter (embeddings and output layer, tied ones once) x the dtype's bytes;
* LoRA + optimizer: the trainable LoRA parameters (compass.training.targets) x 4 tensors (weight,
  gradient, AdamW's two moments) in the adapter dtype (float32 by default, train.adapter_dtype);
* activations: the bytes autograd saves for backward, **measured** (:func:`measure_activations`)
  per token per decoder layer on the architecture itself (full width, 2 layers, on the CPU) and
  extrapolated linearly in layers and tokens, plus one layer's backward working set (two with
  checkpointing: the recomputed layer and its gradients);
* logits: the loss (adapters.completion_loss) runs the output layer at the predicted positions
  only and upcasts its logits to float32 for the cross-entropy; log-softmax keeps its float32
  output for backward (the only tensor the loss saves, measured: the frozen output layer keeps
  no input), and backward holds two more (its gradient in and out): 12 bytes per predicted
  position x vocabulary at the start of backward;
* a fixed allowance for the CUDA context and library workspaces (not in torch's allocator).

Why measured: what is saved depends on code paths nobody would guess from the config (peft casts
each adapted layer's input to the float32 adapter dtype and keeps the copy, LoRA dropout keeps a
mask, RMSNorm keeps a float32 copy, sdpa repeats grouped key/value heads when a padding mask is
present, and eager attention keeps a length x length score matrix). :data:`MEASURED` holds the
numbers for the paper's three models (benchmarks/measure_activation_memory.py writes it), so the
preflight builds nothing; another model or setting is measured on demand (seconds to a minute on
two cores: bf16 matrix products are emulated on most CPUs).

:func:`length_buckets` is separate: micro-batches of similar lengths pad less (it changes which
examples share a batch, so it is opt-in).
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

GIB = 2 ** 30
PAPER_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
CONTEXT_BYTES = 1 * GIB  # CUDA context + cuBLAS workspaces (allowance, not measured here)
SAFETY = 0.10  # share of the device kept free: allocator fragmentation, estimate error
LOGIT_BYTES = 12  # per predicted position x vocab: float32 log-probs + their gradient in and out
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
MEASURE_VOCAB = 256  # the output layer is accounted for analytically (logits), so kept tiny


class MemoryPlanError(ValueError):
    """No micro-batch fits the device, even one sequence with gradient checkpointing."""


# ---- counting what autograd saves ------------------------------------------------------------
def _storage_key(tensor) -> tuple:
    storage = tensor.untyped_storage()
    return tensor.device.type, tensor.device.index, storage.data_ptr()


@dataclass
class SavedTensors:
    """Distinct storages saved for backward in a block: ``bytes`` and ``tensors`` (storages)."""

    bytes: int = 0
    tensors: int = 0
    _held: dict = field(default_factory=dict, repr=False)


@contextlib.contextmanager
def saved_tensors(exclude=()):
    """Count the bytes autograd saves for backward inside the block, each storage once (views of
    one tensor share it, and a saved view keeps its whole storage alive), leaving out the
    storages of ``exclude`` (the model's parameters: counted as weights, not activations).
    Held storages cannot be freed and reused during the block, so addresses stay unique."""
    import torch

    record = SavedTensors()
    skip = {_storage_key(t) for t in exclude}

    def pack(tensor):
        if tensor.device.type == "meta":
            raise ValueError("saved_tensors counts real storages; meta tensors have none")
        key = _storage_key(tensor)
        if key not in skip and key not in record._held:
            storage = tensor.untyped_storage()
            record._held[key] = storage
            record.bytes += storage.nbytes()
            record.tensors += 1
        return tensor

    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            yield record
    finally:
        record._held.clear()


# ---- configs and the measuring model ---------------------------------------------------------
def as_config(config):
    """A transformers config from a config or a config.json dict (not modified)."""
    from transformers import AutoConfig, PretrainedConfig

    if isinstance(config, PretrainedConfig):
        return config
    raw = dict(config)
    return AutoConfig.for_model(raw.pop("model_type"), **raw)


def _reduced(config, layers: int, vocab: int):
    """``config`` at ``layers`` decoder layers and a ``vocab``-row embedding (token ids that no
    longer fit are dropped), every width as it is."""
    from transformers import AutoConfig

    raw = as_config(config).to_dict()
    raw.update(num_hidden_layers=layers, vocab_size=vocab)
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        raw[key] = None
    if isinstance(raw.get("layer_types"), list):
        raw["layer_types"] = raw["layer_types"][:layers]
    for key in ("architectures", "transformers_version", "_name_or_path", "dtype", "torch_dtype"):
        raw.pop(key, None)
    return AutoConfig.for_model(raw.pop("model_type"), **raw)


def build_reduced(config, layers: int = 2, dtype: str = "bfloat16", attention: str = "sdpa",
                  vocab: int = MEASURE_VOCAB):
    """The architecture at ``layers`` layers, full width, on the CPU in ``dtype``, in train mode.
    The weights are a constant: what autograd saves depends on shapes, not values, and filling
    skips the random init (seconds at 8B width). The output layer is ``vocab`` rows wide (the
    plan accounts for the real one's logits analytically)."""
    import torch
    from transformers import AutoModelForCausalLM

    reduced = _reduced(config, layers, vocab)
    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # older transformers: a normal (slower) init
        no_init_weights = contextlib.nullcontext
    with no_init_weights():
        model = AutoModelForCausalLM.from_config(reduced, dtype=getattr(torch, dtype),
                                                 attn_implementation=attention)
    with torch.no_grad():
        for param in model.parameters():
            param.fill_(0.01)
    return model.train()


def _train_settings(rank, alpha, dropout, target_modules, dora=False):
    """What adapters.lora_config reads from train params."""
    from types import SimpleNamespace

    return SimpleNamespace(rank=rank, alpha=alpha, dropout=dropout,
                           target_modules=tuple(target_modules), dora=dora)


# ---- measured activations --------------------------------------------------------------------
@dataclass(frozen=True)
class ActivationProfile:
    """Bytes saved for backward: ``per_layer`` per token and ``per_layer_sq`` per row per
    length² in each decoder layer (eager scores, a per-layer padding-mask bias), and ``fixed`` /
    ``fixed_sq`` outside the layers (embedding output, final norm, position tables)."""

    per_layer: float
    per_layer_sq: float = 0.0
    fixed: float = 0.0
    fixed_sq: float = 0.0

    def layer_bytes(self, micro: int, length: int) -> float:
        """Bytes one decoder layer saves for backward for ``micro`` rows of ``length`` tokens."""
        return micro * length * (self.per_layer + self.per_layer_sq * length)

    def total(self, layers: int, micro: int, length: int) -> float:
        """Bytes all ``layers`` decoder layers and the parts outside them save for backward."""
        fixed = micro * length * (self.fixed + self.fixed_sq * length)
        return layers * self.layer_bytes(micro, length) + fixed


@dataclass(frozen=True)
class Activations:
    """One architecture and setting, measured without and with gradient checkpointing;
    ``misfit``: the largest relative error of the fit at a measured length (0 with two
    lengths: the fit goes through both)."""

    key: str
    plain: ActivationProfile
    checkpointed: ActivationProfile
    misfit: float = 0.0

    def of(self, checkpointing: bool) -> ActivationProfile:
        """The profile with gradient checkpointing on or off."""
        return self.checkpointed if checkpointing else self.plain


def activation_key(config, rank: int = 16, dropout: float = 0.05,
                   target_modules=PAPER_TARGETS, dtype: str = "bfloat16",
                   adapter_dtype: str = "float32", attention: str = "sdpa",
                   padded: bool = True, dora: bool = False) -> str:
    """What the saved bytes depend on: the layer shapes and the settings (dropout only by
    whether it is on: its mask has the input's size whatever the rate)."""
    c = as_config(config)
    heads = c.num_attention_heads
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // heads
    kv = getattr(c, "num_key_value_heads", None) or heads
    modules = target_modules if isinstance(target_modules, str) else ",".join(target_modules)
    kind = "dora" if dora else "lora"
    return (f"{c.model_type} h{c.hidden_size} i{getattr(c, 'intermediate_size', None)} a{heads}"
            f" kv{kv} d{head_dim} | {dtype} {kind} r{rank}"
            f" {'dropout' if dropout else 'no-dropout'} {adapter_dtype}"
            f" {modules} | {attention} {'padded' if padded else 'unpadded'}")


def _decoder_saved(model, exclude, length: int, padded: bool, seed: int) -> int:
    """Bytes saved by one forward of the decoder on one row of ``length`` tokens (the last one
    padding when ``padded``: a mask makes sdpa take another path), as completion_loss runs it."""
    import torch

    from compass.training import adapters

    _, decoder, _ = adapters.causal_lm_parts(model)
    generator = torch.Generator().manual_seed(seed)
    vocab = decoder.get_input_embeddings().num_embeddings
    ids = torch.randint(0, vocab, (1, length), generator=generator)
    mask = torch.ones(1, length, dtype=torch.long)
    if padded:
        mask[0, -1] = 0
    with saved_tensors(exclude) as record:
        hidden = decoder(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
    if not hidden.requires_grad:
        raise RuntimeError("the decoder's output needs no gradient: no adapter is trainable")
    del hidden
    return record.bytes


def _fit(saved: dict, lengths) -> tuple[ActivationProfile, float]:
    """Per-layer and fixed bytes from runs at 1 and 2 layers (the first layer can save less
    than the others: its input needs no gradient, so ``fixed`` may be negative); per token and
    per token² from the shortest and longest length (one length: no length² term). Returns the
    profile and its largest relative misfit at the lengths in between."""
    per_layer = {n: saved[2, n] - saved[1, n] for n in lengths}
    fixed = {n: 2 * saved[1, n] - saved[2, n] for n in lengths}

    def linear_and_square(values):
        if len(lengths) == 1:
            (n,) = lengths
            return values[n] / n, 0.0
        a, b = lengths[0], lengths[-1]
        square = (values[b] / b - values[a] / a) / (b - a)
        return values[a] / a - square * a, square

    p1, p2 = linear_and_square(per_layer)
    f1, f2 = linear_and_square(fixed)
    profile = ActivationProfile(per_layer=p1, per_layer_sq=p2, fixed=f1, fixed_sq=f2)
    misfit = max(abs(profile.total(layers, 1, n) - saved[layers, n]) / max(saved[layers, n], 1)
                 for layers, n in saved)
    return profile, misfit


@contextlib.contextmanager
def cuda_dropout():
    """Dropout as CUDA runs it, also on the CPU: CUDA's fused kernel (torch.native_dropout)
    keeps a 1-byte mask for backward, the CPU's plain path a float copy of the noise (4 bytes
    per element at a float32 adapter input). Measured on the CPU, LoRA dropout would count 3
    bytes per element of every adapted layer's input that the GPU never holds."""
    import torch
    import torch.nn.functional as F

    original = F.dropout

    def fused(input, p=0.5, training=True, inplace=False):
        if training and 0 < p < 1 and input.numel() > 0 and not inplace:
            return torch.native_dropout(input, p, True)[0]
        return original(input, p, training, inplace)

    F.dropout = fused
    try:
        yield
    finally:
        F.dropout = original


def measure_activations(config, rank: int = 16, alpha: int = 32, dropout: float = 0.05,
                        target_modules=PAPER_TARGETS, dtype: str = "bfloat16",
                        adapter_dtype: str = "float32", attention: str = "sdpa",
                        padded: bool = True, lengths=(4, 8), modes=(False, True),
                        seed: int = 0, dora: bool = False) -> Activations:
    """Bytes saved for backward per token, per decoder layer and outside the layers, measured
    on the architecture of ``config`` at full width: built at 2 layers on the CPU in ``dtype``,
    the LoRA attached as train_adapter attaches it (adapters.lora_config: targets resolved per
    architecture; float32 adapter weights unless ``adapter_dtype`` is 'base'), the decoder run
    forward in train mode (dropout on) at 1 and then 2 layers, at each of ``lengths``, without
    and with checkpointing (``modes``; speed.training_speedups, as training switches it on).
    Dropout runs CUDA's kernel (:func:`cuda_dropout`). Only the forward runs: everything
    backward needs is saved by then (and bf16 backward is emulated, minutes, on CPUs without
    native bf16). A mode not in ``modes`` is left as None."""
    from peft import get_peft_model

    from compass.training import adapters, speed

    lengths = tuple(sorted(lengths))
    model = build_reduced(config, layers=2, dtype=dtype, attention=attention)
    base_model = model
    settings = _train_settings(rank, alpha, dropout, target_modules, dora)
    peft_model = get_peft_model(model, adapters.lora_config(settings, model),
                                autocast_adapter_dtype=adapter_dtype == "float32")
    weights = [*peft_model.parameters(), *peft_model.buffers()]
    profiles, misfit = {}, 0.0
    for checkpointing in sorted(set(modes)):  # plain first: checkpointing leaves an input hook
        saved = {}
        try:
            with speed.training_speedups(peft_model, checkpointing), cuda_dropout():
                for layers in (1, 2):
                    base_model.config.num_hidden_layers = layers  # the decoder runs layers[:n]
                    for n in lengths:
                        saved[layers, n] = _decoder_saved(peft_model, weights, n, padded, seed)
        finally:
            base_model.config.num_hidden_layers = 2
        profiles[checkpointing], off = _fit(saved, lengths)
        misfit = max(misfit, off)
    key = activation_key(config, rank, dropout, target_modules, dtype, adapter_dtype, attention,
                         padded, dora)
    return Activations(key=key, plain=profiles.get(False), checkpointed=profiles.get(True),
                       misfit=misfit)


# ---- the settings and shapes a plan reads ----------------------------------------------------
@dataclass(frozen=True)
class Setting:
    """The training settings the peak depends on (train params, and the attention kernel)."""

    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = PAPER_TARGETS
    dtype: str = "bfloat16"
    adapter_dtype: str = "float32"
    attention: str = "sdpa"
    padded: bool = True  # padded rows: sdpa repeats grouped key/value heads and keeps a mask
    dora: bool = False

    @classmethod
    def from_train(cls, train_cfg, dtype: str = "bfloat16", attention: str = "sdpa") -> Setting:
        """From train params. ``dtype``: what train.dtype resolves to on the GPU (``auto`` is
        bf16 there). Packed rows count as padded: their position-id mask takes the same path."""
        modules = train_cfg.target_modules
        return cls(rank=train_cfg.rank, alpha=train_cfg.alpha, dropout=train_cfg.dropout,
                   target_modules=(modules,) if isinstance(modules, str) else tuple(modules),
                   dtype=dtype, adapter_dtype=getattr(train_cfg, "adapter_dtype", "float32"),
                   attention=attention, padded=True, dora=bool(getattr(train_cfg, "dora", False)))

    def key(self, config) -> str:
        """The key under which this setting's activations are measured and stored for ``config``'s
        architecture."""
        return activation_key(config, self.rank, self.dropout, self.target_modules, self.dtype,
                              self.adapter_dtype, self.attention, self.padded, self.dora)

    def adapter_bytes(self) -> int:
        """Bytes per adapter parameter: 4 in float32, else those of the training float type."""
        return 4 if self.adapter_dtype == "float32" else DTYPE_BYTES[self.dtype]


@dataclass(frozen=True)
class ModelShape:
    """What the weights and logits terms need: counted from the config on the meta device."""

    name: str
    layers: int
    hidden: int
    vocab: int
    parameters: int  # every parameter once (tied embedding and output layer: once)
    lora_parameters: int


def model_shape(config, setting: Setting = Setting(), name: str | None = None) -> ModelShape:
    """Parameter counts of ``config``'s model and of its LoRA (targets resolved per
    architecture, as training resolves them), without allocating anything."""
    from compass.training import targets

    config = as_config(config)
    skeleton = targets.skeleton(config)
    resolved = targets.resolve(skeleton, list(setting.target_modules))
    return ModelShape(
        name=name or getattr(config, "_name_or_path", "") or config.model_type,
        layers=config.num_hidden_layers, hidden=config.hidden_size, vocab=config.vocab_size,
        parameters=sum(p.numel() for p in skeleton.parameters()),
        lora_parameters=targets.lora_parameters(skeleton, resolved, setting.rank))


# Measured by benchmarks/measure_activation_memory.py --emit (bytes; see ActivationProfile) with
# torch 2.13, transformers 5.24, peft 0.21 (what is saved is their code: remeasure on upgrades;
# tests/test_memory_plan.py checks these against a fresh measurement at one length):
# key -> {"plain": (per_layer, per_layer_sq, fixed, fixed_sq), "checkpointed": (...)}
MEASURED: dict[str, dict[str, tuple[float, float, float, float]]] = {
    # phi-4-mini
    ('phi3 h3072 i8192 a24 kv8 d128 | bfloat16 lora r16 dropout float32 '
     'q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj | sdpa padded'): {
        'plain': (185704.0, 2.0, -2688.0, 0.0),
        'checkpointed': (6144.0, 0.0, 12292.0, 0.0),
    },
    # llama-3.1-8b
    ('llama h4096 i14336 a32 kv8 d128 | bfloat16 lora r16 dropout float32 '
     'q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj | sdpa padded'): {
        'plain': (346696.0, 2.0, -11776.0, 0.0),
        'checkpointed': (8192.0, 0.0, 16388.0, 0.0),
    },
    # qwen2.5-7b
    ('qwen2 h3584 i18944 a28 kv4 d128 | bfloat16 lora r16 dropout float32 '
     'q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj | sdpa padded'): {
        'plain': (373816.0, 2.0, -10240.0, 0.0),
        'checkpointed': (7168.0, 0.0, 14340.0, 0.0),
    },
    # llama-3.1-8b, H200 run
    ('llama h4096 i14336 a32 kv8 d128 | bfloat16 lora r16 no-dropout float32 '
     'q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj | sdpa unpadded'): {
        'plain': (295496.0, 0.0, 512.0, 0.0),
        'checkpointed': (8192.0, 0.0, 16388.0, 0.0),
    },
}


def activations_for(config, setting: Setting = Setting()) -> Activations:
    """The measured activations of ``config`` under ``setting``: from :data:`MEASURED` when
    the benchmark measured this shape and setting, else measured now (seconds to a minute) and
    kept for the process under the same key."""
    key = setting.key(config)
    if key in MEASURED:
        entry = MEASURED[key]
        return Activations(key=key, plain=ActivationProfile(*entry["plain"]),
                           checkpointed=ActivationProfile(*entry["checkpointed"]))
    if key not in _MEASURED_NOW:
        _MEASURED_NOW[key] = measure_activations(
            config, rank=setting.rank, alpha=setting.alpha, dropout=setting.dropout,
            target_modules=setting.target_modules, dtype=setting.dtype,
            adapter_dtype=setting.adapter_dtype, attention=setting.attention,
            padded=setting.padded, dora=setting.dora)
    return _MEASURED_NOW[key]


_MEASURED_NOW: dict[str, Activations] = {}


# ---- the estimate and the plan ---------------------------------------------------------------
@dataclass(frozen=True)
class Parts:
    """The estimated peak, in bytes, by what holds it."""

    weights: float
    lora_optimizer: float
    activations: float  # saved for backward by the decoder (all layers and outside them)
    logits: float  # float32 log-probs saved by the loss
    backward: float  # the larger of: the logits' gradients, a layer's backward working set
    context: float  # CUDA context and workspaces (allowance)

    @property
    def total(self) -> float:
        """The whole estimated peak, in bytes."""
        return (self.weights + self.lora_optimizer + self.activations + self.logits
                + self.backward + self.context)

    def describe(self) -> str:
        """The parts in GiB on one line, for refusals and logs."""
        gib = {k: v / GIB for k, v in dataclasses.asdict(self).items()}
        return (f"weights {gib['weights']:.1f}, LoRA+AdamW {gib['lora_optimizer']:.1f}, "
                f"activations {gib['activations']:.1f}, logits {gib['logits']:.1f}, "
                f"backward {gib['backward']:.1f}, context {gib['context']:.1f} GiB")


def estimate(shape: ModelShape, activations: Activations, setting: Setting, micro: int,
             length: int, checkpointing: bool, loss_positions: int | None = None,
             context_bytes: float = CONTEXT_BYTES) -> Parts:
    """The peak of one training step on ``micro`` rows of ``length`` tokens (module docstring).
    ``loss_positions``: predicted positions per row (None: all ``length - 1``, the worst case;
    the completion loss predicts only the response's tokens)."""
    predicted = micro * (length - 1 if loss_positions is None else loss_positions)
    profile = activations.of(checkpointing)
    dtype = DTYPE_BYTES[setting.dtype]
    layer = activations.plain.layer_bytes(micro, length)  # the recomputed layer is a plain one
    working = (2 if checkpointing else 1) * layer
    return Parts(
        weights=shape.parameters * dtype,
        lora_optimizer=shape.lora_parameters * setting.adapter_bytes() * 4,
        activations=profile.total(shape.layers, micro, length),
        logits=predicted * shape.vocab * 4,
        backward=max(predicted * shape.vocab * (LOGIT_BYTES - 4), working),
        context=context_bytes)


@dataclass(frozen=True)
class MemoryPlan:
    """How one model trains on one device: ``micro_batch`` rows per forward, ``grad_accum``
    forwards per optimizer step (their product is train.batch_size), checkpointing or not."""

    model: str
    micro_batch: int
    grad_accum: int
    checkpointing: bool
    estimated_peak_bytes: float
    parts: Parts
    device_bytes: float
    max_length: int
    safety: float = SAFETY

    def describe(self) -> str:
        """One line for the log and the book."""
        how = "with" if self.checkpointing else "without"
        return (f"{self.model}: {self.micro_batch} x {self.max_length} tokens per micro-batch x "
                f"{self.grad_accum} accumulation steps = batch {self.micro_batch * self.grad_accum}"
                f", {how} gradient checkpointing; estimated peak "
                f"{self.estimated_peak_bytes / GIB:.1f} of {self.device_bytes / GIB:.1f} GiB "
                f"({self.parts.describe()})")


def divisors(n: int) -> list[int]:
    """The micro-batch sizes that keep the effective batch exactly ``n``, largest first."""
    return [d for d in range(n, 0, -1) if n % d == 0]


def _fits(parts: Parts, device_bytes: float, safety: float) -> bool:
    return parts.total <= device_bytes * (1 - safety)


def plan(config, device_bytes: float, batch_size: int, max_length: int,
         setting: Setting = Setting(), name: str | None = None, safety: float = SAFETY,
         context_bytes: float = CONTEXT_BYTES, checkpointing: bool | str = "auto",
         loss_positions: int | None = None, activations: Activations | None = None,
         shape: ModelShape | None = None) -> MemoryPlan:
    """The largest micro-batch (a divisor of ``batch_size``) whose estimated peak fits
    ``device_bytes`` less the ``safety`` share: without checkpointing if any does, else with
    (``checkpointing`` True/False forces one). Raises :class:`MemoryPlanError` in one line
    when even one sequence with checkpointing does not fit, naming what would."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    if checkpointing not in ("auto", True, False):
        raise ValueError(f"checkpointing must be auto, true or false, got {checkpointing!r}")
    shape = shape or model_shape(config, setting, name)
    activations = activations or activations_for(config, setting)
    modes = [False, True] if checkpointing == "auto" else [bool(checkpointing)]

    def parts(micro, length, mode):
        return estimate(shape, activations, setting, micro, length, mode, loss_positions,
                        context_bytes)

    for mode in modes:
        for micro in divisors(batch_size):
            found = parts(micro, max_length, mode)
            if _fits(found, device_bytes, safety):
                return MemoryPlan(shape.name, micro, batch_size // micro, mode, found.total,
                                  found, device_bytes, max_length, safety)
    raise MemoryPlanError(_refusal(shape, parts, modes[-1], device_bytes, max_length, safety))


def _refusal(shape: ModelShape, parts, mode: bool, device_bytes: float, max_length: int,
             safety: float) -> str:
    """One line: the model, the estimate, the device, and a max_length or device that fits."""
    smallest = parts(1, max_length, mode)
    usable = device_bytes * (1 - safety)
    lo, hi = 0, max_length - 1  # the longest length that fits, by bisection (monotone)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if _fits(parts(1, mid, mode), device_bytes, safety) else (lo, mid - 1)
    need = math.ceil(smallest.total / (1 - safety) / GIB)
    how = "with" if mode else "without"
    remedy = (f"train.max_length <= {lo} would fit, or a device with >= {need} GiB"
              if lo >= 2 else f"no max_length fits (weights alone {smallest.weights / GIB:.1f}"
              f" GiB): use a device with >= {need} GiB")
    return (f"{shape.name} does not fit {device_bytes / GIB:.1f} GiB: 1 sequence x {max_length} "
            f"tokens {how} gradient checkpointing needs ~{smallest.total / GIB:.1f} GiB "
            f"({smallest.describe()}), over the {usable / GIB:.1f} GiB left after a "
            f"{safety:.0%} margin; {remedy}")


# ---- micro-batches of similar lengths --------------------------------------------------------
def padding_fraction(lengths, batches) -> float:
    """Share of a padded batch's token slots that are padding, over ``batches`` (lists of
    example indices; each batch as wide as its longest example)."""
    lengths = np.asarray(lengths)
    slots = sum(len(b) * int(lengths[b].max()) for b in batches if len(b))
    real = sum(int(lengths[b].sum()) for b in batches if len(b))
    return 1 - real / slots if slots else 0.0


def random_batches(n: int, micro_batch: int, seed: int) -> list[list[int]]:
    """A seeded permutation cut into consecutive micro-batches (what training draws today)."""
    order = np.random.default_rng(seed).permutation(n)
    return [order[i:i + micro_batch].tolist() for i in range(0, n, micro_batch)]


def length_buckets(lengths, micro_batch: int, seed: int,
                   chunk_batches: int = 16) -> list[list[int]]:
    """Micro-batches of similar lengths, every example exactly once, the same for a seed:
    examples shuffled, cut into chunks of ``chunk_batches`` micro-batches, each chunk sorted by
    length (ties by index) and cut into micro-batches, then the micro-batches shuffled, so the
    order of lengths stays random across training and a chunk bounds how far an example moves."""
    if micro_batch < 1 or chunk_batches < 1:
        raise ValueError("micro_batch and chunk_batches must be >= 1")
    lengths = np.asarray(lengths)
    rng = np.random.default_rng([seed, 1])
    order = rng.permutation(len(lengths))
    size = micro_batch * chunk_batches
    batches = []
    for start in range(0, len(order), size):
        chunk = order[start:start + size]
        chunk = chunk[np.lexsort((chunk, lengths[chunk]))]
        batches += [chunk[i:i + micro_batch].tolist() for i in range(0, len(chunk), micro_batch)]
    return [batches[i] for i in rng.permutation(len(batches))]


def sorted_within_step(indices, lengths, micro_batch: int) -> list[list[int]]:
    """One optimizer step's examples cut into micro-batches of similar lengths: the step sees
    the same examples (and, weighted by tokens, the same loss), with less padding."""
    indices = np.asarray(indices)
    ranked = indices[np.lexsort((indices, np.asarray(lengths)[indices]))]
    return [ranked[i:i + micro_batch].tolist() for i in range(0, len(ranked), micro_batch)]


def bucketing_report(lengths, micro_batch: int, seed: int, chunk_batches: int = 16) -> dict:
    """Padding of random micro-batches against :func:`length_buckets`' (shares of slots)."""
    random = padding_fraction(lengths, random_batches(len(lengths), micro_batch, seed))
    bucketed = padding_fraction(lengths, length_buckets(lengths, micro_batch, seed,
                                                        chunk_batches))
    return {"random": random, "bucketed": bucketed, "saved": random - bucketed,
            "slots_ratio": (1 - random) / (1 - bucketed) if bucketed < 1 else math.nan}
