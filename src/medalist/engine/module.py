"""The Lightning module shared by every fold of every task.

It keeps the epoch history itself (saved inside each checkpoint), so a resumed fold continues
the same history, and it scores validation with the competition metric on the whole fold.
"""

from __future__ import annotations

import math
import time
from typing import Any

import lightning as L
import torch

from medalist.config.schema import Config
from medalist.errors import TrainingDiverged
from medalist.tasks.base import Task


def peak_memory_mb(device: torch.device) -> float:
    """Peak GPU memory allocated on a GPU; peak resident memory of the process on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class FoldModule(L.LightningModule):
    """A model, its loss and the task's activation and metric."""

    def __init__(
        self,
        cfg: Config,
        model: torch.nn.Module,
        loss: torch.nn.Module,
        task: Task,
        fold: int,
        steps_per_epoch: int,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.channels_last = channels_last
        self.model = model
        self.loss_fn = loss
        self.task = task
        self.fold = fold
        self.steps_per_epoch = max(1, steps_per_epoch)  # optimizer updates, after accumulation
        self.mixer = task.create_mixer(cfg)
        self.ema = None
        if cfg.train.ema:
            from timm.utils import ModelEmaV3

            # timm's warm-up: the decay rises as 1 - (1 + step)^(-2/3) up to ema_decay, so a
            # short run averages its recent updates, not the random weights it started from.
            self.ema = ModelEmaV3(model, decay=cfg.train.ema_decay, use_warmup=True)
        self.swa = None
        if cfg.train.swa:
            from torch.optim.swa_utils import AveragedModel

            # An equal average of the weights at the end of each epoch from swa_first_epoch;
            # use_buffers averages BatchNorm's running statistics too (no extra pass).
            self.swa = AveragedModel(model, use_buffers=True)
            self.swa.requires_grad_(False)  # not trained: no gradients (and none for DDP)
        self._swa_epoch = -1
        from medalist.data.dataset import create_input_norm

        self.input_norm = create_input_norm(cfg.data, cfg.model.in_chans)
        self.history: list[dict[str, float]] = []
        self._reset_epoch()

    def _reset_epoch(self) -> None:
        self._train_loss_sum = 0.0
        self._train_batches = 0
        self._train_parts: dict[str, float] = {}
        self._val_outputs: list[torch.Tensor] = []
        self._val_targets: list[torch.Tensor] = []
        self._val_loss_sum = 0.0
        self._val_count = 0
        self._epoch_start = time.perf_counter()

    # ---- model -----------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        # uint8 images travel to the device; they are normalised there.
        x, *rest = batch
        x = self.input_norm(x)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return (x, *rest)

    def eval_model(self) -> torch.nn.Module:
        """What validation and prediction run: the EMA or SWA average when there is one."""
        if self.ema is not None:
            return self.ema.module
        if self.swa is not None and int(self.swa.n_averaged) > 0:
            return self.swa.module
        return self.model

    def configure_optimizers(self) -> Any:
        from medalist.engine.optim import create_optimizer, create_schedule

        opt = create_optimizer(self.cfg.train, self.model)
        sched = create_schedule(self.cfg.train, opt, self.steps_per_epoch)
        if sched is None:
            return opt
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def lr_scheduler_step(self, scheduler: Any, metric: Any = None) -> None:
        # timm schedulers count optimizer updates; Lightning calls this after each step.
        if hasattr(scheduler, "step_update"):
            scheduler.step_update(num_updates=self.global_step)
        else:  # torch's (one-cycle, or the learning-rate finder's)
            scheduler.step()

    # ---- training ----------------------------------------------------------------------------
    def on_train_epoch_start(self) -> None:
        self._reset_epoch()

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        x, y = batch
        if self.mixer is not None:
            x, y = self.mixer(x, y)
        loss, parts = self.task.training_loss(self.model, self.loss_fn, x, y)
        if not torch.isfinite(loss):
            raise TrainingDiverged(
                f"fold {self.fold} epoch {self.current_epoch + 1}: the training loss is "
                f"{loss.item()}; lower train.lr (now {self.cfg.train.lr:g}), or check inputs "
                "and targets for NaN"
            )
        self._train_loss_sum += float(loss.detach())
        self._train_batches += 1
        for name, part in parts.items():  # a detector's own losses, kept in the history
            self._train_parts[name] = self._train_parts.get(name, 0.0) + float(part.detach())
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.ema is not None:
            self.ema.update(self.model, step=self.global_step)

    # ---- validation --------------------------------------------------------------------------
    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        loss, preds = self.task.validation_batch(self.eval_model(), self.loss_fn, x, y)
        self._val_loss_sum += float(loss) * len(y)
        self._val_count += len(y)
        self._val_outputs.append(preds.detach().cpu())
        self._val_targets.append(y.detach().cpu())

    def on_validation_epoch_start(self) -> None:
        # The epoch's weights join the SWA average before they are validated (once per epoch).
        epoch = self.current_epoch + 1
        if (
            self.swa is not None
            and not self.trainer.sanity_checking
            and epoch >= self.cfg.train.swa_first_epoch
            and epoch > self._swa_epoch
        ):
            self.swa.update_parameters(self.model)
            self._swa_epoch = epoch

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking or not self._val_outputs:
            return
        preds, y = torch.cat(self._val_outputs), torch.cat(self._val_targets)
        sums = torch.tensor(
            [self._val_loss_sum, self._val_count, self._train_loss_sum, self._train_batches],
            dtype=torch.float64,
        )
        if self.trainer.world_size > 1:
            preds, y = self._gather_shards(preds), self._gather_shards(y)
            sums = self.all_gather(sums.to(self.device)).sum(dim=0).cpu()
        preds, y = preds.numpy().astype(self.task.pred_dtype), y.numpy()
        val_loss = float(sums[0] / max(1.0, float(sums[1])))
        train_loss = float(sums[2] / max(1.0, float(sums[3])))
        try:
            score = self.task.score(y, preds)
        except ValueError:
            score = float("nan")
        record = {
            "epoch": self.current_epoch + 1,
            "train_loss": train_loss,
            "val_loss": val_loss,
            self.task.metric.name: score,
            **{f"train_{k}": v / max(1, self._train_batches) for k, v in self._train_parts.items()},
            "lr": float(self.trainer.optimizers[0].param_groups[0]["lr"]),
            "time_s": time.perf_counter() - self._epoch_start,
            "peak_mem_mb": peak_memory_mb(self.device),
        }
        self.history.append(record)
        worst = -math.inf if self.task.metric.higher_is_better else math.inf
        self.log("monitor", score if math.isfinite(score) else worst, prog_bar=False)
        self.log_dict(
            {"train_loss": train_loss, "val_loss": val_loss, self.task.metric.name: score},
            prog_bar=False,
        )
        self._val_outputs, self._val_targets = [], []

    def _gather_shards(self, local: torch.Tensor) -> torch.Tensor:
        """The whole validation fold from the DDP shards (process r held rows r, r+W, ...)."""
        world = self.trainer.world_size
        sizes = self.all_gather(torch.tensor(len(local), device=self.device)).reshape(-1)
        longest = int(sizes.max())
        padded = torch.zeros((longest, *local.shape[1:]), dtype=local.dtype)
        padded[: len(local)] = local
        gathered = self.all_gather(padded.to(self.device)).cpu()  # (world, longest, ...)
        # Row i*W + r of the fold is row i of process r.
        rows = gathered.transpose(0, 1).reshape(world * longest, *local.shape[1:])
        return rows[: int(sizes.sum())]

    # ---- checkpoint state -------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["medalist_history"] = list(self.history)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.history = list(checkpoint.get("medalist_history", []))
