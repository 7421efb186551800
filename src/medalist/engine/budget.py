"""What a training step needs before any is taken: the batch per update, and the GPU memory.

The memory estimate adds the weights, their gradients, the optimizer's state (and an averaged
copy for EMA or SWA) to the activations a forward pass keeps for the backward pass. Those are
measured, not guessed: one forward pass of two images at the configured size on the CPU,
counting every tensor autograd saves (`torch.autograd.graph.saved_tensors_hooks`), scaled to
the per-device batch and halved under mixed precision. A CUDA context and allocator slack come
on top as a fixed reserve. It is an estimate (about +-30%): cuDNN workspaces and fragmentation
vary by card and library version.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from medalist.config.schema import Config
from medalist.tasks.base import Task

GIB = 2**30
MIB = 2**20
RESERVE_BYTES = int(0.75 * GIB)  # CUDA context, cuDNN workspace, allocator slack
REFERENCE_GPU = ("a 16 GB card (no GPU here)", int(15.5 * GIB))
STATE_PER_PARAM = {"sgd": 1, "momentum": 1, "adafactor": 1, "lion": 1}  # else 2 (Adam-like)
PROBE_IMAGES = 2


@dataclass
class MemoryEstimate:
    """Bytes a training step needs on one device, by part, against the device's memory."""

    weights: int
    gradients: int
    optimizer: int
    averaged: int
    activations_per_image: int
    batch: int  # per device
    precision: str
    gpu: str
    gpu_bytes: int

    @property
    def activations(self) -> int:
        return self.activations_per_image * self.batch

    @property
    def total(self) -> int:
        fixed = self.weights + self.gradients + self.optimizer + self.averaged
        return fixed + self.activations + RESERVE_BYTES

    @property
    def fits(self) -> bool:
        return self.total <= self.gpu_bytes

    def largest_batch(self) -> int:
        """The largest per-device batch whose estimate fits (0: not even one image)."""
        room = self.gpu_bytes - (self.total - self.activations)
        return max(0, room // max(1, self.activations_per_image))


def saved_activation_bytes(
    model: torch.nn.Module, x: torch.Tensor, forward: Callable[..., Any] | None = None
) -> int:
    """Bytes of the tensors autograd keeps from one forward pass of `x` (weights excluded);
    `forward(model, x)` runs it (a task's `forward_for_memory`), else `model(x)`."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x) if forward is None else forward(model, x)
    del out
    return sum(seen.values())


def _gpu() -> tuple[str, int]:
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        return props.name, int(props.total_memory)
    return REFERENCE_GPU


def estimate_memory(
    cfg: Config, model: torch.nn.Module, forward: Callable[..., Any] | None = None
) -> MemoryEstimate:
    """The estimate for `model` at the configured batch, size, optimizer and precision."""
    from medalist.engine.fold_loop import device_count, resolve_precision

    h, w = cfg.data.train_height_width
    x = torch.rand(PROBE_IMAGES, cfg.model.in_chans, h, w)
    per_image = saved_activation_bytes(model, x, forward) // PROBE_IMAGES
    precision = resolve_precision(cfg)
    if not torch.cuda.is_available() and cfg.train.precision == "auto":
        precision = "16-mixed"  # what a GPU run of this config would use
    if "mixed" in precision or precision.startswith(("16", "bf16")):
        per_image //= 2
    n = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    states = STATE_PER_PARAM.get(cfg.train.optimizer.lower(), 2)
    gpu, gpu_bytes = _gpu()
    return MemoryEstimate(
        weights=4 * n,
        gradients=4 * trainable,
        optimizer=4 * states * trainable,
        averaged=4 * n if cfg.train.averaged_weights else 0,
        activations_per_image=per_image,
        batch=max(1, cfg.train.batch_size // device_count(cfg)),
        precision=precision,
        gpu=gpu,
        gpu_bytes=gpu_bytes,
    )


def _size(n: int) -> str:
    if n < MIB:
        return "under 1 MiB"
    return f"{n / GIB:.1f} GiB" if n >= GIB else f"{n / MIB:.0f} MiB"


def batch_line(cfg: Config) -> str:
    """The images per forward pass and per optimizer update."""
    t = cfg.train
    return (
        f"batch: {t.batch_size} images per step x {t.accumulate_grad_batches} accumulated = "
        f"{t.batch_size * t.accumulate_grad_batches} per update"
    )


def memory_lines(cfg: Config, est: MemoryEstimate) -> list[str]:
    """The estimate as the user reads it, with what to change when it won't fit."""
    h, w = cfg.data.train_height_width
    lines = [
        f"memory: about {_size(est.total)} of {_size(est.gpu_bytes)} on {est.gpu} "
        f"(weights {_size(est.weights)}, gradients and optimizer "
        f"{_size(est.gradients + est.optimizer + est.averaged)}, activations "
        f"{_size(est.activations)} at {est.batch} images of {h}x{w} in {est.precision})"
    ]
    if est.fits:
        return lines
    fit = est.largest_batch()
    if fit < 1:
        lines.append(
            "warning: one image does not fit: lower data.image_size, set "
            "model.grad_checkpointing=true, or pick a smaller model.backbone"
        )
        return lines
    smaller = 2 ** int(math.log2(fit))
    acc = math.ceil(est.batch / smaller) * cfg.train.accumulate_grad_batches
    lines.append(
        f"warning: it won't fit; keep {est.batch * cfg.train.accumulate_grad_batches} images "
        f"per update with train.batch_size={smaller} train.accumulate_grad_batches={acc}, or "
        "set model.grad_checkpointing=true"
    )
    return lines


def training_plan(cfg: Config, task: Task) -> list[str]:
    """Build the model once (so a bad freeze or checkpointing setting fails before the run),
    and return the batch and memory lines printed when training starts."""
    from medalist.models.factory import frozen_stage_parameters, set_grad_checkpointing

    model = task.create_model(cfg)
    frozen_stage_parameters(model, cfg.model.freeze_stages)
    if cfg.model.grad_checkpointing:
        set_grad_checkpointing(model)
    estimate = estimate_memory(cfg, model, task.forward_for_memory)
    return [batch_line(cfg), *memory_lines(cfg, estimate)]
