"""`medalist lr`: the learning-rate finder on fold 0, and `train.lr: auto`.

Lightning's `Tuner.lr_find` trains fold 0 for a short while with the learning rate rising
exponentially from `min_lr` to `max_lr`, records the (smoothed) training loss at each step,
then puts the weights back. Its suggestion is the steepest descent of that curve. The curve is
saved as a plot so a person can see whether the suggestion sits on a clean slope.
"""

from __future__ import annotations

import contextlib
import io
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medalist.config import Config, load_config
from medalist.console import console
from medalist.errors import UserError

if TYPE_CHECKING:
    from medalist.workflows.train import Prepared

MIN_LR, MAX_LR = 1.0e-6, 1.0
STEPS = 100
SKIP = 10  # the first steps: the smoothed loss is still warming up
PLACEHOLDER_LR = 1.0e-3  # the optimizer needs a number to be built; the finder overrides it


@dataclass
class LrResult:
    """The finder's suggestion, its curve (learning rates and losses) and the plot's path."""

    suggestion: float
    lrs: list[float]
    losses: list[float]
    plot: Path | None


def find_lr(
    cfg: Config, prepared: Prepared, *, fold: int = 0, steps: int = STEPS, plot: Path | None = None
) -> LrResult:
    """Run Lightning's learning-rate finder on `fold` and (optionally) plot its curve."""
    from lightning.pytorch.tuner import Tuner

    from medalist.engine.fold_loop import build_trainer, setup_fold
    from medalist.logs import quiet_libraries

    probe = cfg.model_copy(deep=True)
    probe._root = cfg.root
    if probe.train.lr == "auto":
        probe.train.lr = PLACEHOLDER_LR
    probe.train.scheduler = "none"  # the finder brings its own schedule
    task, images = prepared.task, prepared.images
    y = task.encode(prepared.tables.train)
    setup = setup_fold(probe, task, images, y, prepared.folds, fold, probe.train.seed)
    # Enough epochs for `steps` updates however small the fold (the finder stops at `steps`).
    per_epoch = max(1, len(setup.train_loader) // probe.train.accumulate_grad_batches)
    probe.train.epochs = math.ceil(steps / per_epoch) + 1
    out = probe.root / ".cache" / "lr_find"
    trainer = build_trainer(probe, out, [], [], task.metric.mode)
    quiet_libraries(warnings_too=True)
    # Lightning's finder draws a tqdm bar of its own: on a terminal only, like medalist's bars.
    bar_to = sys.stderr if console.is_terminal else io.StringIO()
    with contextlib.redirect_stderr(bar_to):
        finder = Tuner(trainer).lr_find(
            setup.module,
            train_dataloaders=setup.train_loader,
            min_lr=MIN_LR,
            max_lr=MAX_LR,
            num_training=steps,
            update_attr=False,
        )
    lrs = [float(v) for v in finder.results["lr"]] if finder is not None else []
    losses = [float(v) for v in finder.results["loss"]] if finder is not None else []
    suggestion = steepest_descent(lrs, losses)
    if suggestion is None:
        raise UserError(
            f"the learning-rate finder found no clear slope in {steps} steps on fold {fold}; "
            "give train.lr a number (1.0e-3 is a safe start for AdamW)"
        )
    path = _plot(lrs, losses, float(suggestion), plot) if plot is not None else None
    return LrResult(float(suggestion), lrs, losses, path)


def steepest_descent(lrs: list[float], losses: list[float], skip: int = SKIP) -> float | None:
    """The learning rate where the loss falls fastest per decade, before its minimum.

    Lightning's own suggestion takes the slope against the learning rate itself, which the
    noise at the smallest rates dominates; per decade (log scale) is what the plot shows.
    """
    loss = np.asarray(losses, dtype=np.float64)
    lr = np.asarray(lrs, dtype=np.float64)
    ok = np.isfinite(loss) & (lr > 0)
    loss, lr = loss[ok], lr[ok]
    if len(loss) < skip + 3:
        return None
    end = skip + int(np.argmin(loss[skip:])) + 1
    if end - skip < 3:
        return None
    slope = np.gradient(loss[skip:end], np.log10(lr[skip:end]))
    best = int(np.argmin(slope))
    return float(lr[skip + best]) if slope[best] < 0 else None


def _plot(lrs: list[float], losses: list[float], suggestion: float, path: Path) -> Path:
    from medalist.plots import new_figure, save_figure

    fig = new_figure(6, 4)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(lrs, losses)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss (smoothed)")
    i = int(np.argmin(np.abs(np.log(lrs) - math.log(suggestion))))
    ax.plot([lrs[i]], [losses[i]], "o", color="red", label=f"suggestion {suggestion:.2g}")
    ax.legend()
    ax.set_title("learning-rate finder, fold 0")
    fig.tight_layout()
    return save_figure(fig, path)


def lr_command(config: str | Path, overrides: list[str] = (), plot: Path | None = None) -> LrResult:
    """`medalist lr CONFIG`: the finder's suggestion and its plot (default plots/lr_find.png)."""
    import torch

    from medalist.workflows.train import image_source, prepare

    cfg = load_config(config, overrides)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    prepared = prepare(cfg)
    ids = prepared.tables.train[cfg.competition.id_column]
    prepared.images = image_source(cfg, prepared.tables.train_paths, ids, prepared.tables.train)
    return find_lr(cfg, prepared, plot=plot or cfg.root / "plots" / "lr_find.png")


def resolve_auto_lr(cfg: Config, prepared: Prepared) -> float:
    """`train.lr: auto`: the finder's suggestion on fold 0 becomes the run's `train.lr`."""
    result = find_lr(cfg, prepared)
    cfg.train.lr = float(f"{result.suggestion:.3g}")
    console.print(f"train.lr = auto: the learning-rate finder suggests {cfg.train.lr:g} (fold 0)")
    return cfg.train.lr
