"""Lightning callbacks and plugins of the fold loop: seeding, reporting, freezing, atomic saves."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.plugins.io import TorchCheckpointIO

from medalist.data.dataset import mix_seed
from medalist.io import write_csv
from medalist.models.factory import backbone_parameters, frozen_stage_parameters


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints written to a temp file and renamed: a kill never leaves a broken .ckpt."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None
    ) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            torch.save(checkpoint, tmp)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)


class EpochSeed(Callback):
    """Seeds torch (dropout, drop-path) from (seed, fold, epoch) at the start of every epoch."""

    def __init__(self, seed: int, fold: int) -> None:
        self.seed, self.fold = seed, fold

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        torch.manual_seed(mix_seed(self.seed, self.fold, trainer.current_epoch, 5))


class EpochReport(Callback):
    """After each epoch: the history file (atomic) and one line for the user."""

    def __init__(self, history_path: Path, report: Callable[[dict[str, float]], None]) -> None:
        self.history_path = history_path
        self.report = report

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        history = getattr(pl_module, "history", [])
        if not history or trainer.sanity_checking:
            return
        if trainer.is_global_zero:
            write_csv(self.history_path, pd.DataFrame(history))
            self.report(history[-1])


class BackboneFreeze(Callback):
    """Train only the head for the first N epochs, then the whole model; the stem and first
    `stages` stages of the backbone (`model.freeze_stages`) never train.

    Every parameter is in the optimizer from the start (the timm schedule covers all of them);
    a frozen parameter has no gradient, which AdamW skips. BatchNorm layers of frozen stages
    keep their running statistics (eval mode). The state is a function of the epoch alone, so a
    resumed run freezes exactly as an uninterrupted one.
    """

    def __init__(self, epochs: int, stages: int = 0) -> None:
        self.epochs = epochs
        self.stages = stages

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        model = pl_module.model
        trainable = trainer.current_epoch >= self.epochs
        for p in backbone_parameters(model):
            p.requires_grad_(trainable)
        frozen = {id(p) for p in frozen_stage_parameters(model, self.stages)}
        for m in model.modules():
            own = list(m.parameters(recurse=False))
            if own and all(id(p) in frozen for p in own):
                for p in own:
                    p.requires_grad_(False)
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()


class BatchProgress(Callback):
    """A progress bar inside each training epoch (batches, images/s, time left, running loss),
    on a terminal only: piped output keeps its one line per epoch."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.bar: Any = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        from medalist.console import EpochBar

        if trainer.is_global_zero:
            total = int(trainer.num_training_batches)
            text = f"{self.label} epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"
            self.bar = EpochBar(text, total)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, i: int
    ) -> None:
        if self.bar is not None:
            images = len(batch[0]) * trainer.world_size
            loss = pl_module._train_loss_sum / max(1, pl_module._train_batches)
            self.bar.advance(images, loss)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        self.on_train_epoch_end(trainer, pl_module)
