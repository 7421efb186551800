"""`medalist check`: can the pipeline memorise a handful of images? If not, it has a bug.

The probe trains the configured model, loss and optimizer on one fixed batch (a few images
spread over the classes) with Lightning's `overfit_batches=1`, until the task counts the batch
memorised for a few steps in a row (PASS) or the step budget runs out (FAIL): the training
loss at or below a threshold for classification and segmentation; for detection, whose loss
has parts that never near 0, every true box found (and no other) at IoU 0.5
(`Task.check_memorised`).
Everything that would keep a correct pipeline from reaching zero is switched off for the probe:
augmentation, label smoothing, dropout, drop path, EMA, the learning-rate schedule. It also
draws a grid of augmented training inputs exactly as the model receives them (de-normalised,
with their labels, or their masks drawn on them), so augmentation and preprocessing bugs are
visible.

Output: `<project>/checks/<timestamp>/check.json` and `plots/input_batch.png`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from medalist.config import Config, load_config
from medalist.data.dataset import ImageDataset, mix_seed
from medalist.data.frames import centre_frame, check_frame_inputs, rows_source
from medalist.data.images import ImageSource
from medalist.errors import TrainingDiverged, UserError
from medalist.io import write_json
from medalist.logs import quiet_libraries
from medalist.tasks.base import Task

PROBE_OVERRIDES = [
    "data.augment=[]",
    "train.scheduler=none",
    "train.warmup_epochs=0",
    "train.label_smoothing=0",
    "train.mixup=0",
    "train.cutmix=0",
    "train.ema=false",
    "train.swa=false",
    "train.freeze_backbone_epochs=0",
    "model.drop_rate=0",
    "model.drop_path_rate=0",
]
GRID_IMAGES = 16


@dataclass
class CheckResult:
    """What `medalist check` found: PASS or FAIL, the loss per step, and where it wrote."""

    passed: bool
    reason: str
    losses: list[float]
    threshold: float
    n_images: int
    out_dir: Path
    input_batch: Path
    seconds: float
    ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["result"] = "PASS" if self.passed else "FAIL"
        return d


class LossProbe(Callback):
    """Records the training loss of every step and whether the task counts the batch memorised;
    stops once it has been for `patience` steps in a row."""

    def __init__(self, task: Task, threshold: float, patience: int) -> None:
        self.task, self.threshold, self.patience = task, threshold, patience
        self.losses: list[float] = []
        self.memorised: list[bool] = []

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, i: int
    ) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.losses.append(float(loss.detach()))
        x, y = batch
        predict = lambda: eval_predictions(pl_module, x)  # noqa: E731 - called if the task asks
        self.memorised.append(
            self.task.check_memorised(self.losses[-1], self.threshold, y, predict)
        )
        if self.passed:
            trainer.should_stop = True

    @property
    def passed(self) -> bool:
        recent = self.memorised[-self.patience :]
        return len(recent) == self.patience and all(recent)


def eval_predictions(pl_module: Any, x: torch.Tensor) -> torch.Tensor:
    """The model's predictions of a batch in eval mode; training mode again after."""
    model = pl_module.model
    model.eval()
    try:
        with torch.no_grad():
            return pl_module.task.predict_batch(model, x)
    finally:
        model.train()


def pick_rows(task: Task, y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """`n` rows for the probe and the grid, as the task picks them (spread over the classes)."""
    return task.check_rows(y, n, seed)


def as_picture(x: torch.Tensor) -> np.ndarray:
    """A CHW uint8 input tensor (what the model gets before normalisation) as an HWC image."""
    return x.permute(1, 2, 0).numpy()


def draw_input_batch(
    cfg: Config, task: Task, images: ImageSource, y: np.ndarray, path: Path
) -> Path:
    """The training inputs after the configured augmentation, de-normalised, with their
    targets drawn or written by the task."""
    from medalist.plots import plot_image_grid

    d = cfg.data
    transform = task.create_transform(d.augment, train=True)
    ds = ImageDataset(
        images, np.arange(len(images)), y, transform, seed=cfg.train.seed,
        sample=task.transform_sample,
    )  # fmt: skip
    pics, titles = [], []
    for i in range(len(ds)):
        x, target = ds[i]
        pics.append(task.draw_target(centre_frame(cfg, as_picture(x)), target.numpy()))
        titles.append(f"{images.ids[i]}\n{task.describe_target(target.numpy())}")
    steps = ", ".join(s["name"] for s in d.augment) or "no augmentation"
    return plot_image_grid(
        pics,
        titles,
        path,
        f"training inputs{task.check_caption} as the model sees them ({steps}), de-normalised",
    )


def check_dir(root: Path) -> Path:
    """A new `<project>/checks/<timestamp>/` folder (a suffix when two start in one second)."""
    base = root / "checks" / datetime.now().strftime("%Y%m%d-%H%M%S")
    path, i = base, 1
    while path.exists():
        path, i = base.with_name(f"{base.name}-{i}"), i + 1
    path.mkdir(parents=True)
    return path


def run_check(
    config: str | Path,
    overrides: list[str] = (),
    *,
    n_images: int = 8,
    max_steps: int = 300,
    threshold: float = 0.05,
    patience: int = 3,
) -> CheckResult:
    """Train on one batch of `n_images` until the loss stays <= `threshold` (PASS) or
    `max_steps` run out (FAIL); write the input grid and check.json."""
    from medalist.data.tables import check_images_exist, image_paths, load_train
    from medalist.engine.fold_loop import resolve_precision, use_gpu
    from medalist.engine.module import FoldModule
    from medalist.models.factory import check_backbone, pretrained_file
    from medalist.tasks import task_class

    if n_images < 1:
        raise UserError(f"--images {n_images}: give 1 or more images to memorise")
    if not threshold > 0:
        raise UserError(f"--threshold {threshold}: give a loss above 0, e.g. 0.05")
    if max_steps < patience:
        raise UserError(f"--steps {max_steps}: give at least {patience} steps")
    overrides = list(overrides)
    cfg = load_config(config, overrides)
    probe_cfg = load_config(config, [*overrides, *PROBE_OVERRIDES, f"train.epochs={max_steps}"])
    task_type = task_class(cfg)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    check_backbone(cfg.model.backbone)
    pretrained_file(cfg)
    train = load_train(cfg)
    task = task_type.from_config(cfg, train)
    task.create_transform(cfg.data.augment, train=True)
    check_frame_inputs(cfg, train, task)
    y_all = task.encode(train)
    rows = pick_rows(task, y_all, max(n_images, GRID_IMAGES), cfg.train.seed)
    ids = train[cfg.competition.id_column].astype(str).to_numpy()[rows].tolist()
    all_paths = image_paths(cfg, train, cfg.path(cfg.competition.image_dir))
    paths = [all_paths[i] for i in rows]
    check_images_exist(paths, "training", "competition.image_dir")
    images = rows_source(cfg, train, all_paths, rows, ids)
    y = y_all[rows]
    out = check_dir(cfg.root)
    grid = draw_input_batch(cfg, task, images, y, out / "plots" / "input_batch.png")

    start = time.perf_counter()
    n = min(n_images, len(rows))
    probe_images = rows_source(cfg, train, all_paths, rows[:n], ids[:n])
    dataset = ImageDataset(
        probe_images,
        np.arange(n),
        y[:n],
        task.create_transform([], train=False),
        sample=task.transform_sample,
    )
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=n, shuffle=False, collate_fn=task.collate
    )
    L.seed_everything(mix_seed(cfg.train.seed, 0, 1), workers=False, verbose=False)
    model = task.create_model(probe_cfg)
    module = FoldModule(probe_cfg, model, task.create_loss(probe_cfg, y[:n]), task, 0, 1)
    probe = LossProbe(task, threshold, patience)
    gpu = use_gpu(cfg)
    quiet_libraries(warnings_too=False)
    trainer = L.Trainer(
        max_epochs=max_steps,
        overfit_batches=1,
        accelerator="gpu" if gpu else "cpu",
        devices=1,
        precision=resolve_precision(cfg),
        callbacks=[probe],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        deterministic=not gpu,
        default_root_dir=out,
    )
    diverged = None
    try:
        trainer.fit(module, loader)
    except TrainingDiverged:
        diverged = len(probe.losses) + 1
    losses = probe.losses
    passed = diverged is None and probe.passed
    goal = task.check_goal(threshold)
    if diverged is not None:
        reason = (
            f"the loss became NaN or infinite at step {diverged}: lower train.lr "
            f"(now {cfg.train.lr:g}) or look for NaN in inputs and targets"
        )
    elif passed:
        reason = (
            f"{goal}: reached after {len(losses)} steps (loss {losses[-1]:.4g}); "
            f"the pipeline can memorise {n} images"
        )
    else:
        reason = (
            f"after {len(losses)} steps the loss is {losses[-1]:.4g} (started at {losses[0]:.4g}) "
            f"and not yet {goal}: the pipeline can't memorise {n} images. "
            f"Check that labels match images and the inputs look right ({grid.name}), the loss "
            f"and the output layer, and train.lr (now {cfg.train.lr:g})"
        )
    result = CheckResult(
        passed=passed,
        reason=reason,
        losses=losses,
        threshold=threshold,
        n_images=n,
        out_dir=out,
        input_batch=grid,
        seconds=time.perf_counter() - start,
        ids=ids[:n],
    )
    write_json(out / "check.json", {**result.as_dict(), "overrides": overrides})
    return result


def trajectory(losses: list[float], points: int = 10) -> list[tuple[int, float]]:
    """(step, loss) at about `points` steps spread log-evenly from the first to the last."""
    if not losses:
        return []
    steps = np.unique(
        np.geomspace(1, len(losses), num=min(points, len(losses))).round().astype(int)
    )
    return [(int(s), losses[s - 1]) for s in steps]
