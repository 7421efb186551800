"""One inference path: fold weights to test predictions, members to a blend, a blend to a
checked submission. `medalist predict`, `medalist ensemble`, the offline notebook's runtime and
`medalist package --check` all call it, so a submission is made the same way everywhere.

- `fold_predictions`: the test predictions of a model per state dict (with the configured TTA),
  combined by the task (the mean of arrays).
- `run_test_predictions`: that for a trained run directory's finished folds and seeds.
- `blend_members`: several runs' predictions combined with their weights by the task.
- `write_submission`: smoothing over video frames when asked, the task's submission format
  (checked against the sample), and the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medalist.config import Config
from medalist.console import console
from medalist.data.images import ImageSource
from medalist.data.tables import Tables, load_tables
from medalist.errors import UserError, first_line
from medalist.io import write_csv
from medalist.runs import layout
from medalist.runs.rundir import RunDir
from medalist.tasks import Task, load_run_task


@dataclass
class TestPredictions:
    """One run's fold-combined predictions on the test set, before they are formatted."""

    name: str
    cfg: Config
    task: Task
    ids: pd.Series
    preds: Any
    tables: Tables | None = None
    run: RunDir | None = None


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


def fold_predictions(cfg: Config, task: Task, images: ImageSource, weights: Iterable[dict]) -> Any:
    """The task's combination of the test predictions of each state dict in `weights` (one
    model at a time, with the configured TTA)."""
    from medalist.data.dataset import ImageDataset, create_input_norm
    from medalist.engine.fold_loop import make_loader, predict_array, use_gpu

    transform = task.create_transform([], train=False)
    dataset = ImageDataset(
        images, np.arange(len(images)), None, transform, sample=task.transform_sample
    )
    loader = make_loader(
        cfg, dataset, train=False, batch_size=cfg.predict.batch_size, collate=task.collate
    )
    device = "cuda" if use_gpu(cfg) else "cpu"
    model = task.create_model(cfg)
    norm = create_input_norm(cfg.data, images.channels)

    def each() -> Iterator[np.ndarray]:
        for state in weights:
            model.load_state_dict(state)
            yield predict_array(model, task, loader, norm=norm, tta=cfg.predict.tta, device=device)

    return task.combine(each())


def test_tables(cfg: Config) -> Tables:
    """The tables a prediction needs; the sample submission is required."""
    tables = load_tables(cfg, need_test=True)
    if tables.sample is None:
        raise UserError(
            "competition.sample_submission is not set: predict needs it to shape the file"
        )
    return tables


def check_checkpoint(path: Path) -> None:
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


def run_test_predictions(run: RunDir, *, tta: list[str] | None = None) -> TestPredictions:
    """The combined test predictions of a trained run's finished folds (and seeds)."""
    import pickle

    import torch

    from medalist.workflows.train import image_source

    cfg = run.config()
    cfg.model.pretrained = False  # the folds' weights replace every parameter
    if tta is not None:
        cfg.predict.tta = tta
    tables = test_tables(cfg)
    task = load_run_task(run, cfg)
    folds = run.done_folds(cfg.cv.n_splits)
    if not folds:
        raise UserError(f"run {run.path} has no finished fold: train it first (or --resume it)")
    if len(folds) < cfg.cv.n_splits:
        console.print(f"[yellow]warning[/]: only folds {folds} are done; averaging those")
    folders = [
        run.fold_dir(k, i) for i in range(cfg.train.seeds) for k in folds if run.fold_done(k, i)
    ]
    for folder in folders:  # before the test images are decoded (and cached)
        check_checkpoint(folder / layout.BEST_CKPT)
    task.check_sample(tables)
    ids = tables.test[cfg.competition.id_column]
    images = image_source(cfg, tables.test_paths, ids, tables.test, "test")

    def weights() -> Iterator[dict]:
        for folder in folders:
            path = folder / layout.BEST_CKPT
            try:
                state = torch.load(path, map_location="cpu", weights_only=False)
            except (RuntimeError, EOFError, pickle.UnpicklingError) as exc:
                raise UserError(
                    f"{path} is unreadable ({first_line(exc)[:80]}): restore the file, "
                    "or train the run again"
                ) from None
            yield inference_weights(state["state_dict"], cfg.train.averaged_weights)

    preds = fold_predictions(cfg, task, images, weights())
    return TestPredictions(run.name, cfg, task, ids, preds, tables, run)


def blend_members(results: Sequence[TestPredictions], weights: dict[str, float], what: str) -> Any:
    """The members' test predictions combined with their weights (by name); every member must
    have read the same test ids. A single member is its own prediction."""
    first = results[0]
    for r in results[1:]:
        if list(map(str, r.ids)) != list(map(str, first.ids)):
            raise UserError(
                f"{what}: member {r.name} reads other test ids than {first.name}; its config "
                "points at another test set"
            )
    if len(results) == 1:
        return first.preds
    return first.task.combine([r.preds for r in results], [weights[r.name] for r in results])


def make_submission(
    cfg: Config,
    task: Task,
    ids: pd.Series,
    test: pd.DataFrame,
    preds: Any,
    sample: pd.DataFrame,
    window: int = 1,
) -> tuple[Any, pd.DataFrame]:
    """(predictions smoothed over `window` video frames (1: as they are), the submission in the
    sample's shape, checked by the task)."""
    from medalist.workflows.smooth import smooth_test_predictions

    preds = smooth_test_predictions(cfg, task, ids, test, preds, window)
    comp = cfg.competition
    if comp.submission_by is None:
        return preds, task.format_submission(ids, preds, sample)
    return submit_by_group(cfg, task, test, preds, sample)


def submit_by_group(
    cfg: Config, task: Task, test: pd.DataFrame, preds: Any, sample: pd.DataFrame
) -> tuple[Any, pd.DataFrame]:
    """A submission row per group of test images (`competition.submission_by`): the images'
    predictions combined (mean or max), shaped and checked as the sample's rows."""
    from medalist.data.submission_rows import combine_rows, group_keys, sample_key_column

    comp = cfg.competition
    keys = group_keys(test, comp.submission_by, "the test table (competition.test_csv)")
    groups, combined = combine_rows(keys, preds, comp.submission_reduce)
    sample_id = sample_key_column(cfg, sample)
    wanted = sample[sample_id].astype(str)
    if len(groups) != len(sample) or set(groups) != set(wanted):
        unmatched = sorted(set(wanted) - set(groups)) or sorted(set(groups) - set(wanted))
        raise UserError(
            f"competition.submission_by {comp.submission_by!r} makes {len(groups)} rows of the "
            f"{len(test)} test images, but sample_submission lists {len(sample)} (first "
            f"unmatched: {unmatched[0] if unmatched else 'a repeated id'!r}); fix "
            "competition.submission_by so it names the sample's rows"
        )
    clash = comp.id_column != sample_id and comp.id_column in sample.columns
    if clash:
        raise UserError(
            f"sample_submission has both {sample_id!r} (its rows) and {comp.id_column!r}: with "
            "competition.submission_by the sample names groups, not images; fix the sample"
        )
    shaped = sample.rename(columns={sample_id: comp.id_column})
    sub = task.format_submission(groups, combined, shaped)
    return combined, sub.rename(columns={comp.id_column: sample_id})


def write_submission(path: Path, submission: pd.DataFrame) -> Path:
    """The submission file, written atomically: `path` as CSV, or beside it as a zip of mask
    files when the task made them (`medalist.data.mask_files`); returns what was written."""
    from medalist.data.mask_files import MaskFiles

    if isinstance(submission, MaskFiles):
        return submission.write(path)
    write_csv(path, submission)
    return path
