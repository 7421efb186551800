"""Mask losses on logits: binary cross-entropy + Dice (the default), or one of
segmentation_models_pytorch's (Dice, focal, Lovasz, Tversky, Jaccard), one sigmoid per class."""

from __future__ import annotations

import torch
from torch import nn

from medalist.config.schema import Config
from medalist.errors import UserError


class DiceBCELoss(nn.Module):
    """Binary cross-entropy plus soft Dice (segmentation_models_pytorch's), on logits; one
    sigmoid per class when there are several (classes may overlap)."""

    def __init__(self, classes: int = 1) -> None:
        super().__init__()
        from segmentation_models_pytorch.losses import DiceLoss

        self.bce = nn.BCEWithLogitsLoss()
        self.dice = DiceLoss(mode="binary" if classes == 1 else "multilabel", from_logits=True)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = target.float()
        if target.ndim == 3:  # one class: (N, H, W)
            target = target.unsqueeze(1)
        return self.bce(logits, target) + self.dice(logits, target)


SEGMENT_LOSSES = ("auto", "bce_dice", "bce", "dice", "focal", "lovasz", "tversky", "jaccard")


def check_loss(cfg: Config) -> None:
    if cfg.train.loss == "ce_dice":
        raise UserError(
            "train.loss = 'ce_dice' is for one class per pixel (softmax over index masks, "
            "competition.mask_mode: index); these masks have a sigmoid per class: use one of "
            f"{', '.join(SEGMENT_LOSSES)} (auto = bce_dice)"
        )
    if cfg.train.loss not in SEGMENT_LOSSES:
        raise UserError(
            f"train.loss = {cfg.train.loss!r} does not fit masks; use one of "
            f"{', '.join(SEGMENT_LOSSES)} (auto = bce_dice)"
        )


class MaskLoss(nn.Module):
    """One of segmentation_models_pytorch's losses on logits, with (N, H, W) targets of one
    class given the channel axis the loss expects; `with_bce` adds binary cross-entropy."""

    def __init__(self, loss: nn.Module | None, with_bce: bool) -> None:
        super().__init__()
        self.loss = loss
        self.bce = nn.BCEWithLogitsLoss() if with_bce else None

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = target.float()
        if target.ndim == 3:  # one class: (N, H, W)
            target = target.unsqueeze(1)
        total = self.bce(logits, target) if self.bce is not None else 0.0
        return total + (self.loss(logits, target) if self.loss is not None else 0.0)


def create_mask_loss(cfg: Config, classes: int) -> nn.Module:
    """The configured mask loss: binary cross-entropy + Dice by default, or smp's Dice, focal,
    Lovasz, Tversky or Jaccard loss (one sigmoid per class, classes may overlap)."""
    from segmentation_models_pytorch import losses

    name, t = cfg.train.loss, cfg.train
    mode = "binary" if classes == 1 else "multilabel"
    if name in ("auto", "bce_dice"):
        return DiceBCELoss(classes)
    if name == "bce":
        return MaskLoss(None, with_bce=True)
    made = {
        "dice": lambda: losses.DiceLoss(mode=mode, from_logits=True),
        "focal": lambda: losses.FocalLoss(mode=mode, gamma=t.focal_gamma),
        "lovasz": lambda: losses.LovaszLoss(mode=mode, from_logits=True),
        "tversky": lambda: losses.TverskyLoss(
            mode=mode, from_logits=True, alpha=t.tversky_alpha, beta=t.tversky_beta
        ),
        "jaccard": lambda: losses.JaccardLoss(mode=mode, from_logits=True),
    }[name]()
    return MaskLoss(made, with_bce=False)
