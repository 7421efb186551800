"""The optimizer and learning-rate schedule of a fold, from the `train` section.

Every parameter is in the optimizer from the first step (frozen ones simply get no gradient),
so the schedule covers the whole model and a resumed run continues the same state. The head
trains at `train.lr`; the backbone at `train.lr x train.backbone_lr_mult`, or with timm's
layer-wise decay (`train.layer_decay`: each layer from the top down a factor lower). Lower
rates are carried as timm's `lr_scale` on a parameter group, which timm's schedulers apply;
the one-cycle schedule gets them as per-group peaks.
"""

from __future__ import annotations

from typing import Any

import torch

from medalist.config.schema import Train
from medalist.errors import UserError
from medalist.models.factory import backbone_parameters

# One-cycle: the peak after this share of the updates, from peak/25 (torch's defaults).
ONECYCLE_WARMUP = 0.3


def base_lr(t: Train) -> float:
    """`train.lr` as a number; "auto" must have been resolved by the learning-rate finder."""
    if t.lr == "auto":
        raise UserError(
            "train.lr = auto is resolved by `medalist train` (the learning-rate finder on "
            "fold 0); give a number here, e.g. the one `medalist lr CONFIG` suggests"
        )
    return float(t.lr)


def _split_groups(model: torch.nn.Module, t: Train) -> list[dict[str, Any]]:
    """timm's weight-decay groups (no decay on biases and norms), each split into head and
    backbone, the backbone's with `lr_scale = backbone_lr_mult`."""
    from timm.optim import param_groups_weight_decay

    skip = model.no_weight_decay() if hasattr(model, "no_weight_decay") else set()
    backbone = {id(p) for p in backbone_parameters(model)}
    groups = []
    for part in ("head", "backbone"):
        for g in param_groups_weight_decay(model, t.weight_decay, no_weight_decay_list=skip):
            params = [p for p in g["params"] if (id(p) in backbone) == (part == "backbone")]
            if params:
                scale = t.backbone_lr_mult if part == "backbone" else 1.0
                groups.append({**g, "params": params, "lr_scale": scale})
    return groups


def create_optimizer(t: Train, model: torch.nn.Module) -> torch.optim.Optimizer:
    """timm's optimizer `train.optimizer` over the model, with the backbone's lower rates."""
    from timm.optim import create_optimizer_v2

    lr = base_lr(t)
    if t.layer_decay is not None:
        opt = create_optimizer_v2(
            model, opt=t.optimizer, lr=lr, weight_decay=t.weight_decay, layer_decay=t.layer_decay
        )
    elif t.backbone_lr_mult != 1.0:
        opt = create_optimizer_v2(
            _split_groups(model, t), opt=t.optimizer, lr=lr, weight_decay=t.weight_decay
        )
    else:
        return create_optimizer_v2(model, opt=t.optimizer, lr=lr, weight_decay=t.weight_decay)
    for g in opt.param_groups:  # the starting rates, before (or without) a schedule
        g["lr"] = lr * g.get("lr_scale", 1.0)
    return opt


def create_schedule(t: Train, opt: torch.optim.Optimizer, steps_per_epoch: int) -> Any:
    """The schedule stepped after every optimizer update; None for `train.scheduler: none`."""
    lr = base_lr(t)
    if t.scheduler == "none":
        return None
    if t.scheduler == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            opt,
            max_lr=[lr * g.get("lr_scale", 1.0) for g in opt.param_groups],
            total_steps=t.epochs * steps_per_epoch,
            pct_start=ONECYCLE_WARMUP,
            anneal_strategy="cos",
            cycle_momentum=False,  # AdamW's betas stay as set
        )
    from timm.scheduler import create_scheduler_v2

    for g in opt.param_groups:  # timm's schedule starts from the base rate and applies lr_scale
        g["lr"] = lr
    sched, _ = create_scheduler_v2(
        opt,
        sched="cosine",
        num_epochs=t.epochs,
        warmup_epochs=t.warmup_epochs,
        warmup_lr=lr * 1e-3,
        min_lr=lr * 1e-3,
        cooldown_epochs=0,
        step_on_epochs=False,
        updates_per_epoch=steps_per_epoch,
    )
    return sched
