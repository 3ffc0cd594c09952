"""LoRA target modules that mean the same sublayers on every architecture.

``train.target_modules`` names sublayer *kinds* by their Llama names: ``q_proj k_proj v_proj
o_proj`` (attention) and ``gate_proj up_proj down_proj`` (MLP). Some architectures fuse kinds
into one matrix: Phi-3 and Phi-4-mini (transformers' ``modeling_phi3.py``) have ``qkv_proj`` and
``gate_up_proj``. Passed as they are, the seven names would adapt only Phi's ``o_proj`` and
``down_proj`` (peft matches names and ignores the rest), so its adapters would not be comparable
with Llama's or Qwen's. :func:`resolve` maps each name a model lacks to the fused module that
holds it, and :func:`adapted_kinds` says which kinds the result adapts: a fused module adapts
every kind it holds (``qkv_proj`` for ``q_proj`` alone adapts ``k_proj`` and ``v_proj`` too), so
:func:`check_comparable` refuses a run whose models would adapt different kinds.
``all-linear`` (peft's own: every linear layer but the output layer) passes through.
"""
from __future__ import annotations

KINDS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
FUSED: dict[str, tuple[str, ...]] = {  # fused module -> the kinds it holds, in its row order
    "qkv_proj": ("q_proj", "k_proj", "v_proj"),  # Phi-3, Phi-4-mini
    "gate_up_proj": ("gate_proj", "up_proj"),  # Phi-3, Phi-4-mini
}
ALL_LINEAR = "all-linear"


def linear_sublayers(model) -> set[str]:
    """The last name component of every linear layer of ``model`` except its output layer
    (``lm_head``): what ``train.target_modules`` entries are matched against."""
    import torch

    names = set()
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and not name.endswith("lm_head"):
            names.add(name.rsplit(".", 1)[-1])
    return names


def _model_type(model) -> str:
    return str(getattr(getattr(model, "config", None), "model_type", type(model).__name__))


def resolve(model, requested) -> list[str] | str:
    """``requested`` (train.target_modules) as the module names of ``model``: a name the model has
    stays; a kind it only has inside a fused module becomes that module; ``all-linear`` stays.
    An unknown name is refused, naming the model's linear sublayers."""
    requested = [requested] if isinstance(requested, str) else list(requested)
    if ALL_LINEAR in requested:
        if len(requested) > 1:
            raise ValueError(f"train.target_modules = {requested}: '{ALL_LINEAR}' stands alone")
        return ALL_LINEAR
    present = linear_sublayers(model)
    out: list[str] = []
    for name in requested:
        if name in present:
            chosen = name
        else:
            holders = [fused for fused, kinds in FUSED.items()
                       if name in kinds and fused in present]
            if not holders:
                raise ValueError(
                    f"train.target_modules: {name!r} is not a linear sublayer of this "
                    f"{_model_type(model)} model, nor inside one of its fused ones; its linear "
                    f"sublayers: {sorted(present)} (or use '{ALL_LINEAR}')")
            chosen = holders[0]
        if chosen not in out:
            out.append(chosen)
    return out


def adapted_kinds(model, resolved) -> tuple[str, ...]:
    """The sublayer kinds (:data:`KINDS`) that adapting ``resolved`` on ``model`` changes, in
    :data:`KINDS` order; ``all-linear`` adapts every kind the model has."""
    names = sorted(linear_sublayers(model)) if resolved == ALL_LINEAR else list(resolved)
    kinds = set()
    for name in names:
        kinds.update(FUSED.get(name, (name,)))
    return tuple(k for k in KINDS if k in kinds)


def check_comparable(kinds_by_model: dict[str, tuple[str, ...]]) -> None:
    """Refuse models in one run whose adapters would change different kinds of sublayer (their
    comparison would confound the model with the adapter), naming each model's kinds."""
    distinct = set(kinds_by_model.values())
    if len(distinct) > 1:
        listed = "; ".join(f"{m}: {', '.join(k)}" for m, k in kinds_by_model.items())
        raise ValueError(
            "train.target_modules adapts different sublayers on different models (fused modules "
            f"adapt every kind they hold): {listed}. Name every kind a fused module holds "
            "(e.g. q_proj, k_proj, v_proj for Phi's qkv_proj) or use 'all-linear'")


def lora_parameters(model, resolved, rank: int) -> int:
    """Trainable LoRA parameters of ``resolved`` on ``model``: rank x (in + out) per adapted
    linear layer, counted from the layers' shapes (works on a model built on the meta device)."""
    import torch

    targets = None if resolved == ALL_LINEAR else set(resolved)
    total = 0
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear) or name.endswith("lm_head"):
            continue
        if targets is None or name.rsplit(".", 1)[-1] in targets:
            total += rank * (module.in_features + module.out_features)
    return total


def skeleton(config):
    """The architecture of a transformers config on the meta device: every layer's shape, no
    weights, no memory (what the checks here need)."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


def configs_at_hand(cfg) -> dict:
    """The config of each ``train.models`` entry that is at hand offline (the converted offline
    model, a local folder, the hub cache at the pinned revision); the others are left to the
    stages, which read them from the loaded model."""
    from transformers import AutoConfig

    from compass import hub_ids
    from compass.training import models

    out = {}
    for name in cfg.train.models:
        try:
            repo, revision = hub_ids.split(models.resolve(name, cfg.train.model_sources))
            out[name] = AutoConfig.from_pretrained(repo, revision=revision, local_files_only=True,
                                                   trust_remote_code=cfg.train.trust_remote_code)
        except Exception:  # not converted or not cached yet: nothing to check here
            continue
    return out


def kinds_by_model(cfg) -> dict[str, tuple[str, ...]]:
    """The kinds each ``train.models`` entry would adapt, for the models whose config is at hand
    (:func:`configs_at_hand`); the train stage resolves the others on the loaded model."""
    out = {}
    for name, config in configs_at_hand(cfg).items():
        model = skeleton(config)
        out[name] = adapted_kinds(model, resolve(model, cfg.train.target_modules))
    return out
