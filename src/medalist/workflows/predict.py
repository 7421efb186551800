"""`medalist predict`: average the folds' predictions on the test set into a checked submission."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medalist.config import Config
from medalist.console import console
from medalist.data.images import ImageSource
from medalist.data.tables import load_tables
from medalist.errors import UserError
from medalist.io import write_csv
from medalist.runs.rundir import RunDir, open_run_dir


def average_folds(
    cfg: Config, task: Any, images: ImageSource, weights: Iterable[dict]
) -> np.ndarray:
    """Test predictions averaged over the models whose state dicts `weights` yields (with TTA)."""
    from medalist.data.dataset import ImageDataset, create_input_norm, create_transform
    from medalist.engine.fold_loop import make_loader, predict_array, use_gpu
    from medalist.models.factory import create_model

    d = cfg.data
    transform = create_transform([], train=False)
    dataset = ImageDataset(images, np.arange(len(images)), None, transform)
    loader = make_loader(cfg, dataset, train=False, batch_size=cfg.predict.batch_size)
    device = "cuda" if use_gpu(cfg) else "cpu"
    model = create_model(cfg, task.num_outputs)
    norm = create_input_norm(d, images.channels)
    total, count = None, 0
    for state in weights:
        model.load_state_dict(state)
        p = predict_array(model, task, loader, norm=norm, tta=cfg.predict.tta, device=device)
        p = p if p.dtype == np.float64 else p.astype(np.float32)  # float16 masks: sum in 32
        total, count = (p if total is None else total + p), count + 1
    if total is None:
        raise UserError("no fold weights to predict with")
    return total / count


def inference_weights(state_dict: dict, averaged: str | None) -> dict:
    """The model's weights from a fold checkpoint: its EMA or SWA copy when the run kept one
    (`train.averaged_weights`) and it holds an average; otherwise the trained model's."""
    model = {n.removeprefix("model."): v for n, v in state_dict.items() if n.startswith("model.")}
    if averaged is None:
        return model
    if averaged == "swa" and int(state_dict.get("swa.n_averaged", 0)) == 0:
        return model  # a best epoch before averaging began
    prefix = f"{averaged}.module."
    copy = {n.removeprefix(prefix): v for n, v in state_dict.items() if n.startswith(prefix)}
    return copy or model


@dataclass
class PredictResult:
    run: RunDir
    submission: pd.DataFrame
    path: Path
    preds: np.ndarray


@dataclass
class TestPredictions:
    """One run's fold-averaged predictions on the test set, before they are formatted."""

    run: RunDir
    cfg: Config
    task: Any
    tables: Any
    ids: pd.Series
    preds: np.ndarray


def _test_tables(cfg: Config) -> Any:
    tables = load_tables(cfg, need_test=True)
    if tables.sample is None:
        raise UserError(
            "competition.sample_submission is not set: predict needs it to shape the file"
        )
    return tables


def check_window(window: int, option: str = "--smooth") -> int:
    if window < 1 or window % 2 == 0:
        raise UserError(f"{option} {window}: give an odd number of frames (1 = off, 3, 5, ...)")
    return window


def predict(
    run_path: str | Path,
    *,
    tta: list[str] | None = None,
    out: Path | None = None,
    smooth: int | None = None,
) -> PredictResult:
    """Fold-averaged test predictions of a run (an ensemble: its members' blend), smoothed over
    video frames when `smooth` (else `predict.smooth_window`) is above 1, written as
    `RUN/submission.csv`."""
    from medalist.workflows.ensemble import ensemble_test_predictions
    from medalist.workflows.train import load_run_task

    if smooth is not None:
        check_window(smooth)
    run = open_run_dir(run_path)
    if run.ensemble() is not None:
        cfg = run.config()
        tables = _test_tables(cfg)
        ids = tables.test[cfg.competition.id_column]
        preds = ensemble_test_predictions(run, tta=tta)
        task = load_run_task(run, cfg)
    else:
        result = test_predictions(run, tta=tta)
        tables, ids, preds, task, cfg = (
            result.tables, result.ids, result.preds, result.task, result.cfg
        )  # fmt: skip
    from medalist.workflows.smooth import smooth_test_predictions

    window = smooth if smooth is not None else cfg.predict.smooth_window
    preds = smooth_test_predictions(cfg, ids, tables.test, preds, window)
    sub = task.format_submission(ids, preds, tables.sample)
    path = out or run.file("submission.csv")
    write_csv(path, sub)
    return PredictResult(run, sub, path, preds)


def _check_checkpoint(path: Path) -> None:
    """A fold's weights exist and are whole (torch saves a zip; a cut-short one lacks its end)."""
    import zipfile

    if not path.is_file():
        raise UserError(
            f"{path} is missing: the fold's weights are gone; restore the file, or train the "
            "run again"
        )
    if not zipfile.is_zipfile(path):
        raise UserError(
            f"{path} is unreadable (cut short or not a checkpoint): restore the file, or train "
            "the run again"
        )


def test_predictions(run: RunDir, *, tta: list[str] | None = None) -> TestPredictions:
    """The fold (and seed) average of a trained run's predictions on the test set."""
    import pickle

    import torch

    from medalist.engine.fold_loop import fold_dir, fold_done
    from medalist.workflows.train import image_source, load_run_task

    cfg = run.config()
    if tta is not None:
        cfg.predict.tta = tta
    tables = _test_tables(cfg)
    task = load_run_task(run, cfg)
    folds = [k for k in range(cfg.cv.n_splits) if fold_done(run.path, k)]
    if not folds:
        raise UserError(f"run {run.path} has no finished fold: train it first (or --resume it)")
    if len(folds) < cfg.cv.n_splits:
        console.print(f"[yellow]warning[/]: only folds {folds} are done; averaging those")
    folders = [
        fold_dir(run.path, k, i)
        for i in range(cfg.train.seeds)
        for k in folds
        if fold_done(run.path, k, i)
    ]
    for folder in folders:  # before the test images are decoded (and cached)
        _check_checkpoint(folder / "best.ckpt")
    ids = tables.test[cfg.competition.id_column]
    images = image_source(cfg, tables.test_paths, ids)

    def weights() -> Iterator[dict]:
        for folder in folders:
            try:
                state = torch.load(folder / "best.ckpt", map_location="cpu", weights_only=False)
            except (RuntimeError, EOFError, pickle.UnpicklingError) as exc:
                raise UserError(
                    f"{folder / 'best.ckpt'} is unreadable ({str(exc).splitlines()[0][:80]}): "
                    "restore the file, or train the run again"
                ) from None
            yield inference_weights(state["state_dict"], cfg.train.averaged_weights)

    preds = average_folds(cfg, task, images, weights())
    return TestPredictions(run, cfg, task, tables, ids, preds)
