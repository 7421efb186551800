"""Mixup and CutMix for single-label classification, through timm's `Mixup`."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from medalist.config.schema import Config


class BatchMixer:
    """timm's Mixup / CutMix on a training batch: images mixed in pairs, class indices turned
    into the matching soft targets (the cross-entropy loss takes them as they are).

    timm draws from numpy's global generator; it is seeded from torch's, which the fold loop
    seeds every epoch, so a run (and its resume) mixes the same way each time.
    """

    def __init__(self, cfg: Config, num_classes: int) -> None:
        from timm.data import Mixup

        t = cfg.train
        self.num_classes = num_classes
        self.mixup = Mixup(
            mixup_alpha=t.mixup,
            cutmix_alpha=t.cutmix,
            prob=t.mix_prob,
            label_smoothing=0.0,  # the loss smooths (train.label_smoothing), mixed or not
            num_classes=num_classes,
        )

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if len(x) % 2:  # pairs only: an odd batch trains unmixed
            return x, F.one_hot(y, self.num_classes).float()
        np.random.seed(int(torch.randint(0, 2**31 - 1, (1,))))
        return self.mixup(x, y)
