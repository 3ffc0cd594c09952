"""Language adapters: LoRA/DoRA training with completion-only loss and positions-only logits,
resumable checkpoints, atomic saves with a portable config, and a registry by language and method.

Why positions-only logits: Gemma-3's output layer has 262k rows, most of the model's FLOPs; the
loss needs logits only where a completion token is predicted, so the output layer runs only there.
"""
from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import shutil
import time
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from compass import io, paths
from compass.training import distributed, speed
from compass.training.speed import output_logits  # noqa: F401 (the scorer's import)

IGNORE = -100
LOG = logging.getLogger(__name__)


# ---- examples --------------------------------------------------------------------------------
def encode_example(tokenizer, prompt: str, response: str, max_length: int, turn=None) -> dict:
    """Token ids and labels; the loss covers the completion ("\\n" + response + eos) only.

    The split mirrors lm-eval's multiple-choice encoding (context = prompt, continuation =
    "\\n" + answer, ids of the context taken from the tokenised whole), so training and scoring
    see the same tokens. ``turn`` (an instruct model's chat template, compass.training.chat):
    the prompt as a user turn, the response right after the assistant's header and closed by the
    template's end of turn, which the loss covers instead of eos.
    """
    if turn is not None:
        prompt = turn.prompt(prompt)
        context = tokenizer(prompt, add_special_tokens=True)["input_ids"]
        whole = tokenizer(prompt + response + turn.end, add_special_tokens=True)["input_ids"]
    else:
        context = tokenizer(prompt, add_special_tokens=True)["input_ids"]
        whole = tokenizer(prompt + "\n" + response, add_special_tokens=True)["input_ids"]
        whole = whole + [tokenizer.eos_token_id]
    n_context = min(len(context), len(whole) - 1)
    ids = whole[:max_length]
    labels = [IGNORE] * min(n_context, len(ids)) + ids[n_context:]
    return {"input_ids": ids, "labels": labels[: len(ids)]}


def collate(examples: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded tensors of ``examples``: ``pad_id`` in the ids, IGNORE (-100) in the labels so
    padding adds no loss, and an attention mask of the real tokens."""
    width = max(len(e["input_ids"]) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, e in enumerate(examples):
        n = len(e["input_ids"])
        ids[row, :n] = torch.tensor(e["input_ids"])
        labels[row, :n] = torch.tensor(e["labels"])
        mask[row, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def pack_rows(lengths: list[int], width: int) -> list[list[int]]:
    """Which examples share a row: first-fit over the examples in decreasing length (ties in
    input order), each row at most ``width`` tokens. Deterministic."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    rows: list[list[int]] = []
    room: list[int] = []
    for i in order:
        for r, free in enumerate(room):
            if lengths[i] <= free:
                rows[r].append(i)
                room[r] -= lengths[i]
                break
        else:
            rows.append([i])
            room.append(width - lengths[i])
    return rows


def collate_packed(examples: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """The same examples as :func:`collate`, several to a row (rows as wide as the longest
    example), with position ids restarting at 0 for each example: transformers' masking then
    keeps attention within each example (``find_packed_sequence_indices``), so every example
    sees exactly the tokens it sees padded, at a fraction of the padded tokens (Aya-like lengths
    leave most of a padded batch empty). Each example's first label is dropped, as the shift in
    :func:`completion_loss` drops it in a padded row (there it predicts nothing; packed, it would
    be predicted from the previous example's last token). ``attention_mask`` marks real tokens
    (for counting); the loss passes none, so the packed mask applies."""
    width = max(len(e["input_ids"]) for e in examples)
    rows = pack_rows([len(e["input_ids"]) for e in examples], width)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    for row, members in enumerate(rows):
        at = 0
        for i in members:
            e = examples[i]
            n = len(e["input_ids"])
            ids[row, at:at + n] = torch.tensor(e["input_ids"])
            labels[row, at + 1:at + n] = torch.tensor(e["labels"][1:n], dtype=torch.long)
            mask[row, at:at + n] = 1
            positions[row, at:at + n] = torch.arange(n)
            at += n
        positions[row, at:] = torch.arange(width - at)  # the pads: a sequence of their own
    return {"input_ids": ids, "labels": labels, "attention_mask": mask, "position_ids": positions}


def batch_indices(n_examples: int, step: int, batch_size: int, seed: int) -> np.ndarray:
    """Which examples make up optimizer micro-batch ``step``: a fresh seeded permutation each
    epoch, so a resumed run sees exactly the batches an uninterrupted one would."""
    per_epoch = max(1, n_examples // batch_size)
    epoch, position = divmod(step, per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(n_examples)
    return order[position * batch_size:(position + 1) * batch_size]


def batch_of(encoded: list[dict], step: int, batch_size: int, seed: int, pad_id: int,
             device, packed: bool = False,
             shard: tuple[int, int] = (0, 1)) -> dict[str, torch.Tensor]:
    """Micro-batch ``step`` of ``encoded`` as tensors on ``device``, padded or ``packed``
    (:func:`collate_packed`; the same examples and loss): the one place that turns
    :func:`batch_indices` into a batch, so adapter training, continual updates and the Fisher
    estimate draw their batches the same way (and a resumed run the same batches). ``shard``
    (rank, processes): this process's share of the micro-batch (every processes-th row)."""
    rank, size = shard
    rows = batch_indices(len(encoded), step, batch_size, seed)[rank::size]
    make = collate_packed if packed else collate
    return {k: v.to(device) for k, v in make([encoded[i] for i in rows], pad_id).items()}


def batches_of(encoded: list[dict], step: int, batch_size: int, seed: int, pad_id: int, device,
               packed: bool = False, shard: tuple[int, int] = (0, 1),
               rows: int | None = None) -> list[dict[str, torch.Tensor]]:
    """:func:`batch_of` as forward passes of at most ``rows`` examples each (the memory plan's
    micro-batch, compass.training.memory), each padded or packed on its own: the same examples
    and, each pass weighted by its share of the predicted tokens, the same loss. ``rows`` None:
    the whole micro-batch in one pass."""
    if rows is None:
        return [batch_of(encoded, step, batch_size, seed, pad_id, device, packed, shard)]
    rank, size = shard
    picked = batch_indices(len(encoded), step, batch_size, seed)[rank::size]
    make = collate_packed if packed else collate
    return [{k: v.to(device) for k, v in make([encoded[i] for i in picked[j:j + rows]],
                                               pad_id).items()}
            for j in range(0, len(picked), rows)]


def predicted_tokens(batch: dict) -> int:
    """Tokens a batch's loss averages over: the positions whose next token is a label."""
    return int((batch["labels"][:, 1:] != IGNORE).sum())


# ---- loss --------------------------------------------------------------------------------------
def causal_lm_parts(model):
    """(base model, its decoder stack, its output head) of a model with or without a PEFT wrapper:
    scoring runs the decoder and the head apart, to keep only the logits it needs."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base, base.model, base.get_output_embeddings()


def completion_loss(model, batch: dict, fused_loss: str = "off") -> tuple[torch.Tensor, int]:
    """Mean cross-entropy over completion tokens, with the output layer applied only at the
    positions that predict one (``fused_loss``: how, :mod:`compass.training.speed`; the same
    loss). Returns (loss, number of predicted tokens)."""
    base, decoder, head = causal_lm_parts(model)
    if "position_ids" in batch:  # packed rows (collate_packed): the positions delimit the examples
        inputs = {"position_ids": batch["position_ids"], "attention_mask": None}
    else:
        inputs = {"attention_mask": batch["attention_mask"]}
    # no KV cache: training never reads it, and building one each step defeats torch.compile
    hidden = decoder(input_ids=batch["input_ids"], use_cache=False, **inputs).last_hidden_state
    targets = batch["labels"][:, 1:]
    keep = targets != IGNORE
    return (speed.head_cross_entropy(base, head, hidden[:, :-1][keep], targets[keep], fused_loss),
            int(keep.sum()))


def packing_supported(model, examples: list[dict]) -> bool:
    """Whether the model keeps packed examples apart: two of ``examples`` (at most 8 tokens each)
    run packed in one row and padded in two must give the same hidden states. transformers'
    masking does this from the position ids for its current attention code; a model whose
    attention ignores them (remote code, older releases) would let one example attend to another,
    so training falls back to padding there. Checked once per base model (eval mode, no grad)."""
    base, decoder, _ = causal_lm_parts(model)
    known = getattr(base, "compass_packing_ok", None)
    if known is not None:
        return known
    pair = [{"input_ids": e["input_ids"][:8], "labels": e["labels"][:8]} for e in examples[:2]]
    if len(pair) < 2:
        return True  # nothing to pack together
    device = next(model.parameters()).device
    padded = collate(pair, 0)
    row = torch.tensor([pair[0]["input_ids"] + pair[1]["input_ids"]], device=device)
    positions = torch.tensor([list(range(len(pair[0]["input_ids"])))
                              + list(range(len(pair[1]["input_ids"])))], device=device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            real = padded["attention_mask"].bool()
            a = decoder(input_ids=padded["input_ids"].to(device), use_cache=False,
                        attention_mask=padded["attention_mask"].to(device)).last_hidden_state[real.to(device)]
            b = decoder(input_ids=row, position_ids=positions, attention_mask=None,
                        use_cache=False).last_hidden_state[0]
        if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
            return False  # broken weights (NaN): nothing to learn about packing; pad, decide later
        error = float((a.float() - b.float()).abs().max() / a.float().abs().max().clamp_min(1e-6))
        ok = error < (1e-4 if a.dtype == torch.float32 else 2e-2)  # attending across: O(1)
    finally:
        model.train(was_training)
    base.compass_packing_ok = ok
    if not ok:
        warnings.warn(f"{type(base).__name__} does not keep packed examples apart; training "
                      "pads instead")
    return ok


def full_logits_loss(model, batch: dict) -> tuple[torch.Tensor, int]:
    """The plain transformers loss (logits at every position): the benchmark's reference."""
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                labels=batch["labels"])
    return out.loss, int((batch["labels"][:, 1:] != IGNORE).sum())


# ---- training ----------------------------------------------------------------------------------
def lora_config(train_cfg, model=None):
    """peft's LoraConfig from train params. With ``model``, ``train.target_modules`` is resolved
    to that architecture's module names (compass.training.targets: Phi's fused qkv_proj and
    gate_up_proj), so the same kinds of sublayer are adapted on every model."""
    from peft import LoraConfig

    modules = list(train_cfg.target_modules)
    if model is not None:
        from compass.training import targets

        modules = targets.resolve(model, modules)
    return LoraConfig(r=train_cfg.rank, lora_alpha=train_cfg.alpha, lora_dropout=train_cfg.dropout,
                      target_modules=modules, use_dora=train_cfg.dora,
                      task_type="CAUSAL_LM", bias="none")


class UnsafeCheckpointError(ValueError):
    """A checkpoint holds pickled objects beyond tensors and plain data: it is not loaded."""


def load_checkpoint(path: Path) -> dict:
    """A training checkpoint read as data only (``weights_only``): a file another process or
    machine wrote through a shared cache must never run code here. One that carries other
    pickled objects is refused, not deleted, so that someone can look at it."""
    import pickle

    try:
        return torch.load(path, weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UnsafeCheckpointError(
            f"{path} holds pickled objects that are not tensors or plain data ({first}); "
            "refusing to load it. Delete it to train that adapter afresh.") from None


def _atomic_torch_save(obj, path: Path) -> None:
    with io.atomic_path(path) as tmp:
        torch.save(obj, tmp)


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


def train_adapter(base_model, tokenizer, examples: list[dict], train_cfg, out_dir: str | Path,
                  seed: int, base_name: str, loss_fn=completion_loss, stop_after: int | None = None,
                  show_progress_bar: bool = True, init_adapter: str | Path | None = None,
                  snapshot_steps=(), reuse_finished: bool = False) -> dict:
    """Train one adapter on ``examples`` (dicts with prompt, response) into ``out_dir``/adapter.

    Resumes from ``out_dir``/checkpoint when one exists. ``stop_after`` ends the run after that
    many steps without finishing (tests use it to simulate an interruption). ``init_adapter``
    starts from an existing adapter's weights (continual updates). ``snapshot_steps``: the
    adapter as it is after each of these steps is also saved, to ``out_dir``/steps/<step>
    (the NLL-against-steps curve). ``reuse_finished``: an adapter already in ``out_dir`` from
    the same run (:func:`run_digest`: settings, examples, seed, start, training code) is kept,
    not trained again (a run across machines, README). ``base_model`` comes back as
    it was given (the adapter's layers are taken out again, also on error), so one loaded base
    model can train every adapter of a language.
    """
    from peft import PeftModel, get_peft_model

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not examples:
        raise ValueError("no training examples given")
    digest = run_digest(train_cfg, examples, seed, init_adapter, snapshot_steps)
    if reuse_finished and finished_run(out_dir) == digest:
        summary = json.loads((out_dir / "summary.json").read_text())
        return {**summary, "seconds": math.nan, "tokens_per_second": math.nan, "reused": True}
    torch.manual_seed(seed)
    # fp32 adapter weights (and so fp32 optimizer state) on a bf16 base model, unless
    # train.adapter_dtype = base keeps them in the base model's dtype
    upcast = getattr(train_cfg, "adapter_dtype", "float32") == "float32"
    if init_adapter is not None:
        model = PeftModel.from_pretrained(base_model, str(init_adapter), is_trainable=True,
                                          autocast_adapter_dtype=upcast)
    else:
        model = get_peft_model(base_model, lora_config(train_cfg, base_model),
                               autocast_adapter_dtype=upcast)
    was_training = base_model.training
    if loss_fn is completion_loss:
        loss_fn = functools.partial(completion_loss,
                                    fused_loss=getattr(train_cfg, "fused_loss", "off"))
    try:
        plan = memory_plan(base_model, train_cfg, base_name)
        checkpointing = (plan.checkpointing if plan is not None
                         else getattr(train_cfg, "gradient_checkpointing", False) is True)
        with speed.training_speedups(model, checkpointing, getattr(train_cfg, "compile", False)):
            return _train_loop(model, tokenizer, examples, train_cfg, out_dir, seed, base_name,
                               loss_fn, stop_after, show_progress_bar, init_adapter,
                               tuple(snapshot_steps), digest, plan)
    finally:
        model.unload()  # the LoRA layers out again: base_model is the plain model it was
        base_model.train(was_training)


def memory_plan(base_model, train_cfg, name: str):
    """How training fits the GPU (compass.training.memory: forward passes of the plan's
    micro-batch, checkpointing where needed), or None on a CPU, where each micro-batch is one
    pass as configured. Raises MemoryPlanError, in one line, when nothing fits."""
    device = next(base_model.parameters()).device
    if device.type != "cuda":
        return None
    from compass.training import memory

    gib = getattr(train_cfg, "device_memory_gib", None)
    device_bytes = gib * memory.GIB if gib \
        else torch.cuda.get_device_properties(device).total_memory
    share = train_cfg.batch_size // distributed.world()[1]
    plan = memory.plan(base_model.config, device_bytes, share, train_cfg.max_length,
                       memory.Setting.from_train(train_cfg), name=name,
                       checkpointing=getattr(train_cfg, "gradient_checkpointing", False))
    LOG.info("memory plan: %s", plan.describe())
    return plan


def _train_loop(model, tokenizer, examples, train_cfg, out_dir: Path, seed: int, base_name: str,
                loss_fn, stop_after, show_progress_bar: bool, init_adapter,
                snapshot_steps: tuple[int, ...], digest: str, plan=None) -> dict:
    from peft import set_peft_model_state_dict
    from peft.utils import get_peft_model_state_dict
    from transformers import get_linear_schedule_with_warmup

    model.train()
    device = next(model.parameters()).device
    rank, size = distributed.world()
    main = rank == 0  # the one process that writes (several: train.processes, distributed.py)
    from compass.training import chat

    turn = chat.turn_for(getattr(train_cfg, "chat_template", False), base_name, tokenizer)
    encoded = [encode_example(tokenizer, e["prompt"], e["response"], train_cfg.max_length, turn)
               for e in examples]
    packed = bool(getattr(train_cfg, "packing", False)) and packing_supported(model, encoded)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=train_cfg.learning_rate)
    scheduler = get_linear_schedule_with_warmup(optimizer, train_cfg.warmup_steps, train_cfg.steps)
    checkpoint = out_dir / "checkpoint.pt"
    fingerprint = digest  # a checkpoint resumes only the same run (run_digest)
    log: list[dict] = []
    step = 0
    if checkpoint.exists():
        state = load_checkpoint(checkpoint)
        if state.get("fingerprint") != fingerprint:  # another config's run: start over
            warnings.warn(f"{checkpoint} belongs to a run with other settings; starting afresh")
            checkpoint.unlink(missing_ok=True)  # several processes: the first one removes it
            state = None
    else:
        state = None
    if state is not None:
        set_peft_model_state_dict(model, state["adapter"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        step, log = state["step"], state["log"]
    bar = tqdm(total=train_cfg.steps, initial=step, desc=f"training {out_dir.name}",
               disable=not (show_progress_bar and main))
    start = time.perf_counter() - (log[-1]["seconds"] if log else 0.0)
    while step < train_cfg.steps:
        if stop_after is not None and step >= stop_after:
            bar.close()
            return {"interrupted_at": step}
        optimizer.zero_grad(set_to_none=True)
        total_loss, tokens = 0.0, 0
        for micro in range(train_cfg.grad_accum):
            passes = batches_of(encoded, step * train_cfg.grad_accum + micro,
                                train_cfg.batch_size, seed, tokenizer.pad_token_id, device,
                                packed=packed, shard=(rank, size),
                                rows=plan.micro_batch if plan is not None else None)
            whole = (distributed.total(sum(predicted_tokens(b) for b in passes), device)
                     if len(passes) > 1 else None)
            for batch in passes:
                loss, n = loss_fn(model, batch)
                if not torch.isfinite(loss):
                    raise NonFiniteLossError(f"loss is {loss.item()} at step {step}")
                if whole is not None:  # this pass's share of the whole micro-batch's mean
                    loss = loss * (n / whole)
                elif size > 1:  # this process's share of the whole micro-batch's mean
                    loss = loss * (n / distributed.total(n, device))
                (loss / train_cfg.grad_accum).backward()
                total_loss += distributed.total(loss.item(), device) / train_cfg.grad_accum
                tokens += int(distributed.total(int(batch["attention_mask"].sum()), device))
        distributed.sum_gradients(params)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        step += 1
        log.append({"step": step, "loss": total_loss, "lr": scheduler.get_last_lr()[0],
                    "tokens": tokens, "seconds": round(time.perf_counter() - start, 3)})
        bar.update(1)
        bar.set_postfix(loss=f"{total_loss:.3f}")
        if step in snapshot_steps and step < train_cfg.steps and main:
            serve_adapter(model, out_dir / "steps" / str(step), base_name)
        if step % train_cfg.save_every == 0 and step < train_cfg.steps and main:
            _atomic_torch_save({"adapter": get_peft_model_state_dict(model),
                                "optimizer": optimizer.state_dict(),
                                "scheduler": scheduler.state_dict(),
                                "torch_rng": torch.get_rng_state(), "step": step, "log": log,
                                "fingerprint": fingerprint},
                               checkpoint)
    bar.close()
    if main:
        summary = save_adapter(model, out_dir, base_name, log, train_cfg, len(examples), digest,
                               plan.describe() if plan is not None else "")
        if checkpoint.exists():
            checkpoint.unlink()
    distributed.barrier()  # the others read what the first wrote (train_log.csv) only after this
    if not main:  # what the first process wrote, with this process's clock
        summary = {**json.loads((out_dir / "summary.json").read_text()), **_speed(log)}
    return summary


def _speed(log: list[dict]) -> dict:
    """Wall seconds and tokens per second of a training log."""
    seconds = float(log[-1]["seconds"]) if log else 0.0
    tokens = sum(int(row["tokens"]) for row in log)
    return {"seconds": round(seconds, 2),
            "tokens_per_second": round(tokens / seconds, 1) if seconds else math.nan}


def run_digest(train_cfg, examples: list[dict], seed: int, init_adapter, snapshot_steps) -> str:
    """What makes one adapter: the settings, the examples (text), the seed, the starting adapter,
    the snapshot steps and the training code. Equal digests train equal adapters."""
    import hashlib

    h = hashlib.sha256(json.dumps({"config": asdict(train_cfg), "seed": seed,
                                   "init": str(init_adapter),
                                   "steps": list(snapshot_steps),
                                   "examples": [[e["prompt"], e["response"]] for e in examples]},
                                  sort_keys=True, default=str).encode())
    from compass.training import chat

    for module in (__file__, speed.__file__, distributed.__file__, chat.__file__):
        h.update(Path(module).read_bytes())
    return h.hexdigest()[:16]


def finished_run(out_dir: Path) -> str | None:
    """The run digest of the finished adapter in ``out_dir``, if one is there."""
    try:
        if (Path(out_dir) / "adapter" / "adapter_config.json").exists():
            return json.loads((Path(out_dir) / "summary.json").read_text()).get("run")
    except (OSError, ValueError):
        return None
    return None


def save_adapter(model, out_dir: Path, base_name: str, log: list[dict], train_cfg,
                 n_examples: int, digest: str = "", memory_plan: str = "") -> dict:
    """Write adapter/ (portable config), train_log.csv and summary.json; the adapter folder is
    replaced in one rename, so a reader never sees a half-written adapter. Wall times go to the
    untracked timing log (compass.timings), not into these tracked files, so a rerun that trains
    the same weights writes the same bytes; the returned summary carries them for the notebook."""
    from compass import timings

    serve_adapter(model, out_dir / "adapter", base_name)
    frame = pd.DataFrame(log)
    io.write_csv(out_dir / "train_log.csv", frame.drop(columns=["seconds"], errors="ignore"))
    tokens = int(frame["tokens"].sum()) if len(frame) else 0
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    chosen = getattr(base, "compass_precision", None)
    summary = {"steps": len(frame), "examples": n_examples, "tokens": tokens,
               "final_loss": float(frame["loss"].iloc[-1]) if len(frame) else math.nan,
               "first_loss": float(frame["loss"].iloc[0]) if len(frame) else math.nan,
               "precision": ({"device": chosen.device, "dtype": chosen.dtype} if chosen else
                             {"device": str(next(model.parameters()).device),
                              "dtype": str(next(model.parameters()).dtype).removeprefix("torch.")}),
               "train_config": {k: list(v) if isinstance(v, tuple) else v
                                for k, v in asdict(train_cfg).items()},
               "adapted": adapted_summary(model),
               "run": digest}
    if memory_plan:  # a GPU run: how it fit the card
        summary["memory_plan"] = memory_plan
    io.write_json(out_dir / "summary.json", summary)
    rate = _speed(log)
    timings.record(f"train_adapter {out_dir.parent.parent.name}/{out_dir.name}", rate["seconds"],
                   tokens_per_second=rate["tokens_per_second"],
                   precision_reason=chosen.reason if chosen else "")
    return {**summary, **rate}


def adapted_summary(model) -> dict:
    """What the adapter changes: the module names LoRA targets on this architecture, the kinds of
    sublayer they are (compass.training.targets) and the trainable parameter count."""
    from compass.training import targets

    modules = getattr(model, "peft_config", {}).get("default")
    names = modules.target_modules if modules is not None else []
    names = names if isinstance(names, str) else sorted(names)
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return {"target_modules": names, "kinds": list(targets.adapted_kinds(base, names)),
            "trainable_parameters": int(sum(p.numel() for p in model.parameters()
                                            if p.requires_grad))}


def serve_adapter(model, final: Path, base_name: str) -> Path:
    """Write the model's active adapter to ``final`` with a portable config, swapping folders by
    rename: a reader sees the old adapter or the new one, never a half-written one."""
    final = Path(final)
    staging = final.parent / f".{final.name}.tmp"
    if staging.exists():
        shutil.rmtree(staging)
    model.save_pretrained(staging)
    config_path = staging / "adapter_config.json"
    adapter_config = json.loads(config_path.read_text())
    # peft's model card names the base model by the folder it was loaded from (the model's
    # config), the adapter config by its own record: both become the name
    local_paths = {adapter_config.get("base_model_name_or_path"),
                   getattr(model.get_base_model().config, "_name_or_path", None)} - {None, "",
                                                                                     base_name}
    adapter_config["base_model_name_or_path"] = base_name  # a name, not this machine's path
    card = staging / "README.md"
    if local_paths and card.exists():
        text = card.read_text(encoding="utf-8")
        for local_path in sorted(local_paths, key=len, reverse=True):
            text = text.replace(local_path, base_name)
        card.write_text(text, encoding="utf-8")
    if isinstance(adapter_config.get("target_modules"), list):  # peft writes a set: its order
        adapter_config["target_modules"] = sorted(adapter_config["target_modules"])  # varies by run
    config_path.write_text(json.dumps(adapter_config, indent=2))
    if final.exists():
        old = final.parent / f".{final.name}.old"
        if old.exists():
            shutil.rmtree(old)
        os.replace(final, old)
        os.replace(staging, final)
        shutil.rmtree(old)
    else:
        os.replace(staging, final)
    return final


# ---- registry ----------------------------------------------------------------------------------
def adapter_name(lang: str, method: str) -> str:
    """The PEFT adapter name of (language, method): one model can hold several adapters at once."""
    return f"{lang}__{method}"


class AdapterRegistry:
    """Adapters of one base model laid out by language and method; attach several to one base
    model and switch. ``path_of(lang, method)`` replaces the pipeline's layout (tests)."""

    def __init__(self, model: str | None = None, path_of=None):
        if path_of is None and model is None:
            raise ValueError("AdapterRegistry needs the base model's name (adapters are keyed "
                             "by it)")
        self._model = model
        self._path_of = path_of or (lambda lang, method:
                                    paths.adapter_dir(lang, model, method) / "adapter")

    def path(self, lang: str, method: str, replicate: int = 0, step: int | None = None) -> Path:
        """The adapter of the first training seed, of seed ``replicate`` (train.seeds), or the
        first seed's after ``step`` steps (train.curve_steps)."""
        if step is not None:
            return paths.adapter_snapshot(lang, self._model, method, step)
        if replicate:
            return paths.adapter_dir(lang, self._model, method, replicate) / "adapter"
        return self._path_of(lang, method)

    @contextlib.contextmanager
    def activated(self, model, lang: str, method: str, replicate: int = 0, step: int | None = None):
        """Load one more adapter (another seed's, a step snapshot) into a PeftModel from
        :meth:`attach`, make it active for the block, then drop it again."""
        path = self.path(lang, method, replicate, step)
        if not (path / "adapter_config.json").exists():
            raise FileNotFoundError(f"no trained adapter at {path}; run `dvc repro` (train stages)")
        name = f"{adapter_name(lang, method)}__seed{replicate}__step{step}"
        previous = model.active_adapter
        model.load_adapter(str(path), adapter_name=name)
        model.set_adapter(name)
        try:
            yield model
        finally:
            model.set_adapter(previous)
            model.delete_adapter(name)

    def exists(self, lang: str, method: str) -> bool:
        """Whether the first seed's adapter of (language, method) has been trained and saved."""
        return (self.path(lang, method) / "adapter_config.json").exists()

    def attach(self, base_model, entries: list[tuple[str, str]]):
        """A PeftModel holding every (lang, method) adapter in ``entries``, the first active."""
        from peft import PeftModel

        missing = [e for e in entries if not self.exists(*e)]
        if missing:
            raise FileNotFoundError(f"no trained adapter for {missing}; run `dvc repro` "
                                    "(train stages)")
        first, *rest = entries
        model = PeftModel.from_pretrained(base_model, str(self.path(*first)),
                                          adapter_name=adapter_name(*first))
        for lang, method in rest:
            model.load_adapter(str(self.path(lang, method)),
                               adapter_name=adapter_name(lang, method))
        model.eval()
        return model

    @staticmethod
    def activate(model, lang: str, method: str) -> None:
        """Make the loaded adapter of (language, method) the active one of ``model``."""
        model.set_adapter(adapter_name(lang, method))
