"""One fold from data to best weights and out-of-fold predictions, and prediction with saved folds.

Files of a fold (names in `medalist.runs.layout`): `last.ckpt` (full state, every epoch, removed
when the fold is done), `best.ckpt` (weights of the best epoch by the competition metric),
`history.csv`, `oof.csv`, the task's arrays and `result.json` (written last: its presence means
the fold is done). The task (`medalist.tasks.base.Task`) supplies the model, loss, transforms and
everything that depends on the kind of target.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader

from medalist.config.schema import Config
from medalist.data.dataset import (
    EpochShuffleSampler,
    ImageDataset,
    ShardSampler,
    mix_seed,
    seed_worker,
)
from medalist.data.images import ImageSource
from medalist.engine.callbacks import (
    AtomicCheckpointIO,
    BackboneFreeze,
    BatchProgress,
    EpochReport,
    EpochSeed,
)
from medalist.engine.module import FoldModule
from medalist.errors import UserError
from medalist.io import read_json, write_csv, write_json
from medalist.logs import quiet_libraries
from medalist.models.factory import set_grad_checkpointing
from medalist.runs import layout
from medalist.tasks.base import Task


@dataclass
class FoldResult:
    fold: int
    score: float
    best_epoch: int
    epochs: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def use_gpu(cfg: Config) -> bool:
    return cfg.train.accelerator in ("gpu", "cuda") or (
        cfg.train.accelerator == "auto" and torch.cuda.is_available()
    )


def resolve_precision(cfg: Config) -> str:
    if cfg.train.precision != "auto":
        return "32-true" if cfg.train.precision == "32" else cfg.train.precision
    if use_gpu(cfg):
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"


def resolve_channels_last(cfg: Config) -> bool:
    value = cfg.train.channels_last
    return use_gpu(cfg) if value == "auto" else bool(value)


def read_fold_result(run_dir: Path, fold: int, seed_index: int = 0) -> FoldResult:
    return FoldResult(**read_json(layout.fold_dir(run_dir, fold, seed_index) / layout.RESULT))


def device_count(cfg: Config) -> int:
    """How many processes train a fold: `train.devices` when a number, else 1 (or all GPUs)."""
    devices = cfg.train.devices
    if isinstance(devices, int) and devices > 0:
        return devices
    if str(devices) in ("-1", "auto") and use_gpu(cfg):
        return max(1, torch.cuda.device_count())
    if isinstance(devices, str) and devices.isdigit():
        return int(devices)
    return 1


def make_loader(
    cfg: Config,
    dataset: ImageDataset,
    *,
    train: bool,
    batch_size: int | None = None,
    collate: Callable[[list[Any]], Any] | None = None,
) -> DataLoader:
    """Batches of `batch_size` (the global batch: split over the DDP processes when training)."""
    workers = cfg.data.workers
    size = batch_size or cfg.train.batch_size
    if train:
        world = device_count(cfg)
        if size % world:
            raise UserError(
                f"train.batch_size = {size} does not split over train.devices = {world}; "
                "use a multiple of the device count"
            )
        sampler: Any = EpochShuffleSampler(dataset, size, drop_last=len(dataset) > size)
        size //= world
    else:
        sampler = ShardSampler(len(dataset))
    return DataLoader(
        dataset,
        batch_size=size,
        sampler=sampler,
        num_workers=workers,
        worker_init_fn=seed_worker if workers else None,
        collate_fn=collate,
        persistent_workers=workers > 0,  # no new processes each epoch
        pin_memory=use_gpu(cfg),
    )


def resolve_strategy(cfg: Config) -> str:
    """Several devices train with DDP in spawned processes, so the command itself runs once."""
    if device_count(cfg) > 1 and cfg.train.strategy in ("auto", "ddp"):
        return "ddp_spawn"
    return cfg.train.strategy


def build_trainer(
    cfg: Config, out: Path, callbacks: list[Any], loggers: Sequence[Any], mode: str
) -> L.Trainer:
    from lightning.pytorch.callbacks import ModelCheckpoint

    best = ModelCheckpoint(
        dirpath=out,
        filename="best",
        monitor="monitor",
        mode=mode,
        save_top_k=1,
        save_weights_only=True,
        save_on_train_epoch_end=True,
        enable_version_counter=False,
    )
    last = ModelCheckpoint(
        dirpath=out,
        filename="last",
        monitor=None,
        save_top_k=1,
        save_on_train_epoch_end=True,
        enable_version_counter=False,
    )
    gpu = use_gpu(cfg)
    quiet_libraries(warnings_too=False)  # after lightning's import reset its logger
    return L.Trainer(
        max_epochs=cfg.train.epochs,
        accelerator="gpu" if gpu else "cpu",
        devices=cfg.train.devices,
        strategy=resolve_strategy(cfg),
        # BatchNorm statistics over the global batch; torch's SyncBatchNorm needs GPUs.
        sync_batchnorm=gpu and device_count(cfg) > 1,
        precision=resolve_precision(cfg),
        callbacks=[*callbacks, best, last],
        logger=list(loggers) if loggers else False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        deterministic=not gpu,
        benchmark=gpu,
        gradient_clip_val=cfg.train.grad_clip,
        accumulate_grad_batches=cfg.train.accumulate_grad_batches,
        default_root_dir=out,
        plugins=[AtomicCheckpointIO()],
        log_every_n_steps=max(1, min(50, cfg.train.batch_size)),
        use_distributed_sampler=False,
    )


@dataclass
class FoldSetup:
    """A fold's module and loaders, ready for a Trainer (training, or the lr finder)."""

    module: FoldModule
    train_loader: DataLoader
    valid_loader: DataLoader
    valid_idx: np.ndarray


def resume_epoch(ckpt: Path) -> int:
    """The epoch Lightning resumes `ckpt` at: the epochs its fit loop had processed (the
    checkpoint is written before the epoch counts as completed)."""
    state = torch.load(ckpt, map_location="cpu", weights_only=False, mmap=True)
    return int(state["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"])


def setup_fold(
    cfg: Config,
    task: Task,
    images: ImageSource,
    y: np.ndarray,
    folds: np.ndarray,
    fold: int,
    seed: int,
) -> FoldSetup:
    """The seeded model, the fold's datasets and loaders, and the Lightning module."""
    train_idx, valid_idx = np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)
    L.seed_everything(mix_seed(seed, fold, 1), workers=False, verbose=False)
    model = task.create_model(cfg)
    if cfg.model.grad_checkpointing:
        set_grad_checkpointing(model)
    if resolve_channels_last(cfg):
        model = model.to(memory_format=torch.channels_last)
    sample = task.transform_sample
    train_ds = ImageDataset(
        images,
        train_idx,
        y,
        task.create_transform(cfg.data.augment, train=True),
        seed=seed,
        fold=fold,
        sample=sample,
    )
    valid_ds = ImageDataset(
        images, valid_idx, y, task.create_transform([], train=False), sample=sample
    )
    train_loader = make_loader(cfg, train_ds, train=True, collate=task.collate)
    # Optimizer steps per epoch: global batches, the same on one process or several, over the
    # batches accumulated into each update (the last update of an epoch may take fewer).
    batches = math.ceil(len(train_loader.sampler) / cfg.train.batch_size)
    steps_per_epoch = math.ceil(batches / cfg.train.accumulate_grad_batches)
    valid_loader = make_loader(cfg, valid_ds, train=False, collate=task.collate)
    module = FoldModule(
        cfg,
        model,
        task.create_loss(cfg, y[train_idx]),
        task,
        fold,
        steps_per_epoch,
        channels_last=resolve_channels_last(cfg),
    )
    return FoldSetup(module, train_loader, valid_loader, valid_idx)


def train_fold(
    cfg: Config,
    task: Task,
    images: ImageSource,
    y: np.ndarray,
    folds: np.ndarray,
    fold: int,
    run_dir: Path,
    *,
    seed: int,
    seed_index: int = 0,
    loggers: Sequence[Any] = (),
    report: Callable[[dict[str, float]], None] = lambda r: None,
    callbacks: Sequence[Any] = (),
) -> FoldResult:
    """Train fold `fold` (resuming from its last checkpoint when there is one)."""
    out = layout.fold_dir(run_dir, fold, seed_index)
    out.mkdir(parents=True, exist_ok=True)
    setup = setup_fold(cfg, task, images, y, folds, fold, seed)
    module, valid_loader, valid_idx = setup.module, setup.valid_loader, setup.valid_idx
    label = f"fold {fold}" + (f" seed {seed}" if seed_index else "")
    hooks: list[Any] = [
        EpochSeed(seed, fold),
        EpochReport(out / layout.HISTORY, report),
        BatchProgress(label),
    ]
    if cfg.train.freeze_backbone_epochs or cfg.model.freeze_stages:
        hooks.append(BackboneFreeze(cfg.train.freeze_backbone_epochs, cfg.model.freeze_stages))
    trainer = build_trainer(cfg, out, [*hooks, *callbacks], loggers, task.metric.mode)
    last = out / layout.LAST_CKPT
    resume = last if last.is_file() else None
    if resume is not None:
        # Lightning makes the training iterator before it hands the sampler the epoch it resumes
        # at; with worker processes that iterator prefetches at once, so the sampler must know
        # the epoch already, or the first resumed epoch replays epoch 0's order and draws.
        setup.train_loader.sampler.set_epoch(resume_epoch(resume))
    trainer.fit(module, setup.train_loader, valid_loader, ckpt_path=resume)

    best = torch.load(out / layout.BEST_CKPT, map_location="cpu", weights_only=False)
    module.load_state_dict(best["state_dict"])
    # The out-of-fold predictions are made with the TTA views the submission uses
    # (predict.tta), so the CV scores the model the way the leaderboard will.
    preds = predict_array(
        module.eval_model(),
        task,
        valid_loader,
        norm=module.input_norm,
        tta=cfg.predict.tta,
        device=module.device,
    )
    oof = task.oof_frame(images_ids(images, valid_idx), folds[valid_idx], y[valid_idx], preds)
    task.write_fold_arrays(out, preds)  # e.g. segmentation's masks beside the table
    write_csv(out / layout.FOLD_OOF, oof)
    # Under ddp_spawn the history lives in the spawned processes; rank 0 wrote it to disk.
    history = module.history
    history = pd.DataFrame(history) if history else pd.read_csv(out / layout.HISTORY)
    metric_col = task.metric.name
    best_row = (
        history[metric_col].idxmax()
        if task.metric.higher_is_better
        else history[metric_col].idxmin()
    )
    result = FoldResult(
        fold=fold,
        score=task.score(y[valid_idx], preds),
        best_epoch=int(history.loc[best_row, "epoch"]),
        epochs=len(history),
        seconds=float(history["time_s"].sum()),
    )
    write_json(out / layout.RESULT, result.as_dict())
    last.unlink(missing_ok=True)
    return result


def images_ids(images: ImageSource, rows: np.ndarray) -> pd.Series:
    return pd.Series(np.asarray(images.ids, dtype=object)[rows])


@torch.inference_mode()
def predict_array(
    model: torch.nn.Module,
    task: Task,
    loader: DataLoader,
    *,
    norm: torch.nn.Module,
    tta: Sequence[str] = (),
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Task predictions for every batch of `loader` (uint8 images), combined over TTA views by
    the task (each view's prediction put back in the image's orientation by the task first)."""
    model.eval()
    model.to(device)
    norm.to(device)
    outputs = []
    with torch.inference_mode():
        for x, *_ in loader:
            x = norm(x.to(device))
            views = [task.predict_batch(model, x).float()]
            for view in tta:
                flipped = x.flip(-1 if view == "hflip" else -2)
                views.append(task.undo_view(task.predict_batch(model, flipped).float(), view))
            outputs.append(task.combine_views(views).cpu())
    return torch.cat(outputs).numpy().astype(task.pred_dtype)
