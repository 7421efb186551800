"""`medalist train`: the story of a run, top to bottom.

Check every input, make or read the folds (`workflows.folds`), open the run directory, cache the
images, train each fold (resuming where a killed process stopped), merge the out-of-fold
predictions and scores (`runs.merge`), mirror to the tracker.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from medalist.config import Config, load_config
from medalist.console import console, err_console, progress
from medalist.data.folds import read_folds, write_folds
from medalist.data.frames import check_frame_inputs, stack_frames
from medalist.data.images import ImageSource, build_cache, config_source
from medalist.data.tables import Tables, load_tables
from medalist.errors import UserError
from medalist.io import write_csv, write_json
from medalist.runs import layout, provenance
from medalist.runs.merge import finish_run, run_seeds
from medalist.runs.rundir import (
    RunDir,
    create_run_dir,
    new_run_path,
    open_run_dir,
    write_run_header,
)
from medalist.tasks import Task, load_run_task, task_class

# Generated project notebooks and scripts import these from here.
from medalist.workflows.folds import (  # noqa: F401
    folds_path,
    get_folds,
    print_fold_table,
    run_folds,
)

if TYPE_CHECKING:
    from medalist.runs.tracking import Trackers


@dataclass
class Prepared:
    cfg: Config
    tables: Tables
    task: Task
    folds: np.ndarray
    images: ImageSource | None = None


@dataclass
class TrainSummary:
    run: RunDir
    scores: dict[str, Any] | None
    folds_done: list[int]
    diagnosis: dict[str, Any] | None = None


def prepare(cfg: Config, *, need_test: bool = False) -> Prepared:
    """Every check that can fail on the user's input, before anything is written."""
    from medalist.models.factory import check_backbone, pretrained_file

    task_type = task_class(cfg)
    tables = load_tables(cfg, need_test=need_test)
    task = task_type.from_config(cfg, tables.train)
    task.encode(tables.train)
    task.check_sample(tables)
    pretrained_file(cfg)
    check_backbone(cfg.model.backbone)
    task.create_transform(cfg.data.augment, train=True)
    check_frame_inputs(cfg, tables.train, task)
    task.create_mixer(cfg)
    folds = get_folds(cfg, tables.train, save=False)
    return Prepared(cfg, tables, task, folds)


def image_source(
    cfg: Config,
    paths: list[Path],
    ids: pd.Series,
    table: pd.DataFrame | None = None,
    what: str = "train",
) -> ImageSource:
    """Images for training or prediction, through the decoded-image cache when enabled; with
    `data.frame_offsets` each row's stack of video frames from `table` (frames cached once)."""
    source = config_source(cfg, paths, ids.tolist())
    if not cfg.data.cache:
        source.verify()
        return stack_frames(cfg, source, table, what)
    with progress("caching images", len(paths)) as advance:
        source.cached = build_cache(
            paths,
            source.size,
            source.channels,
            cfg.root / ".cache",
            progress=advance,
            keep_aspect=source.keep_aspect,
        )
    return stack_frames(cfg, source, table, what)


def print_epoch(label: str, epochs: int, metric: str, r: dict[str, float]) -> None:
    """One line per epoch (a module-level function, so DDP can pickle it into its processes)."""
    console.print(
        f"{label} | epoch {int(r['epoch'])}/{epochs} | train_loss {r['train_loss']:.4f} | "
        f"val_loss {r['val_loss']:.4f} | {metric} {r[metric]:.4f} | {r['time_s']:.1f}s"
    )


@dataclass
class RunClock:
    """After the first epoch this process trains: the time per epoch and the run's end.

    `epochs_left` counts every epoch still to train in the run (all folds and seeds). A plain
    object, so DDP can pickle it with the epoch line into its processes.
    """

    epochs_left: int
    told: bool = False

    def __call__(self, r: dict[str, float]) -> None:
        if self.told:
            return
        self.told = True
        seconds = r["time_s"] * (self.epochs_left - 1)
        console.print(
            f"{r['time_s']:.1f}s per epoch: about {_duration(seconds)} for the "
            f"{self.epochs_left - 1} epochs left in the run"
        )


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def report_epoch(
    label: str, epochs: int, metric: str, clock: RunClock | None, r: dict[str, float]
) -> None:
    """The epoch's line, then (once per run) the time the rest of the run will take."""
    print_epoch(label, epochs, metric, r)
    if clock is not None:
        clock(r)


def _epoch_line(label: str, epochs: int, metric: str, clock: RunClock | None = None) -> Any:
    return functools.partial(report_epoch, label, epochs, metric, clock)


def parse_fold_list(text: str | None, n_splits: int) -> list[int]:
    if not text:
        return list(range(n_splits))
    try:
        folds = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise UserError(
            f"--folds {text!r}: give fold numbers separated by commas, e.g. 0,2"
        ) from None
    bad = [f for f in folds if not 0 <= f < n_splits]
    if bad:
        raise UserError(
            f"--folds {text!r}: fold {bad[0]} does not exist (cv.n_splits is {n_splits})"
        )
    return folds


def check_clean_tree(root: Path) -> None:
    """--require-clean: refuse to start unless the project's code is committed."""
    state = provenance.git_state(root)
    if state["commit"] is None:
        raise UserError(
            f"--require-clean: {root} is not in a git repository; run git init and commit"
        )
    if state["dirty"]:
        raise UserError(
            f"--require-clean: the git tree at {root} has uncommitted changes; commit them "
            "(git commit -am ...) or drop --require-clean"
        )


def start_run(cfg: Config, prepared: Prepared, name: str | None) -> RunDir:
    run = create_run_dir(cfg, name)
    if cfg.track.commit_before_run:
        commit = provenance.commit_code(cfg.root, f"medalist: code of run {run.name}")
        console.print(f"committed the code as {commit[:8]} before the run")
    seeds = {"train.seed": cfg.train.seed, "cv.seed": cfg.cv.seed}
    prov = provenance.collect(cfg.root, seeds)
    diff = provenance.git_diff(cfg.root) if prov["git"]["dirty"] else ""
    if prov["git"]["dirty"]:
        err_console.print(
            "[yellow]warning[/]: the git tree is dirty; the diff is saved in diff.patch"
        )
    write_run_header(run, cfg, prov, diff)
    write_json(run.file(layout.TASK), prepared.task.state())
    ids = prepared.tables.train[cfg.competition.id_column]
    if not folds_path(cfg).is_file():
        write_folds(folds_path(cfg), ids, prepared.folds)
    write_csv(run.file(layout.FOLDS), pd.DataFrame({"id": ids, "fold": prepared.folds}))
    return run


def train(
    config: str | Path | None,
    overrides: list[str] = (),
    *,
    name: str | None = None,
    folds: str | None = None,
    resume: str | Path | None = None,
    callbacks: Callable[[int], list[Any]] | None = None,
    require_clean: bool = False,
    exclude: str | Path | None = None,
) -> TrainSummary:
    """`medalist train`: a new run (or the rest of `resume`), fold by fold.

    `callbacks(fold)` may add Lightning callbacks to a fold's trainer (e.g. Optuna's pruning).
    `exclude` names a CSV of ids to train without (see `medalist.workflows.exclude`).
    """
    from medalist.workflows.exclude import exclude_rows, record_exclusion

    if resume is not None:
        run = open_run_dir(resume)
        cfg = run.config()
        if overrides:
            raise UserError("--resume continues a run as it was configured; drop the overrides")
    else:
        if config is None:
            raise UserError("give a CONFIG (e.g. configs/baseline.yaml) or --resume RUN_DIR")
        cfg = load_config(config, overrides)
        if name is not None:
            new_run_path(cfg, name)  # a taken name fails now, not after decoding every image
    selected = parse_fold_list(folds, cfg.cv.n_splits)
    if require_clean:
        check_clean_tree(cfg.root)
    if cfg.train.threads:
        import torch

        torch.set_num_threads(cfg.train.threads)
    prepared = prepare(cfg)
    excluded = exclude_rows(cfg, prepared, exclude, run if resume is not None else None)
    plan_run(cfg, prepared)
    # Decoding every image (into the cache) is the last check before the run directory exists.
    ids = prepared.tables.train[cfg.competition.id_column]
    prepared.images = image_source(cfg, prepared.tables.train_paths, ids, prepared.tables.train)
    if cfg.train.lr == "auto":
        from medalist.workflows.lr import resolve_auto_lr

        resolve_auto_lr(cfg, prepared)
    if resume is None:
        run = start_run(cfg, prepared, name)
        record_exclusion(run, excluded)
    else:
        train_ids = prepared.tables.train[cfg.competition.id_column]
        prepared.folds = read_folds(run.file(layout.FOLDS), train_ids, "id")
        prepared.task = load_run_task(run, cfg)
    console.print(f"run [bold]{run.name}[/] -> {run.path}")
    return train_in_run(cfg, prepared, run, selected, callbacks=callbacks)


def train_in_run(
    cfg: Config,
    prepared: Prepared,
    run: RunDir,
    selected: list[int],
    *,
    callbacks: Callable[[int], list[Any]] | None = None,
) -> TrainSummary:
    from medalist.runs.tracking import create_tracker

    task, train_df = prepared.task, prepared.tables.train
    images = prepared.images or image_source(
        cfg, prepared.tables.train_paths, train_df[cfg.competition.id_column], train_df
    )
    y = task.encode(train_df)
    tracker = create_tracker(cfg, run)
    try:
        _train_folds(cfg, prepared, run, selected, images, y, tracker, callbacks)
    except BaseException as exc:  # pruned, interrupted or failed: the trackers say so
        if tracker:
            tracker.abort(exc)
        raise
    scores = finish_run(cfg, run, task)
    diagnosis = diagnose(run)
    if tracker:
        artifacts = [layout.SCORES, layout.OOF, layout.DIAGNOSIS, layout.PLOTS, layout.ANALYSIS]
        tracker.finish(scores, [run.file(a) for a in artifacts])
    done = run.done_folds(cfg.cv.n_splits)
    return TrainSummary(run, scores, done, diagnosis)


def _train_folds(
    cfg: Config,
    prepared: Prepared,
    run: RunDir,
    selected: list[int],
    images: ImageSource,
    y: np.ndarray,
    tracker: Trackers | None,
    callbacks: Callable[[int], list[Any]] | None,
) -> None:
    """Every selected fold of every seed that is not done yet."""
    from medalist.engine.fold_loop import read_fold_result, train_fold

    task = prepared.task
    todo = [(i, k) for i in range(len(run_seeds(cfg))) for k in selected if not run.fold_done(k, i)]
    clock = RunClock(len(todo) * cfg.train.epochs) if todo else None
    for index, seed in enumerate(run_seeds(cfg)):
        for fold in selected:
            label = f"fold {fold}" + (f" seed {seed}" if cfg.train.seeds > 1 else "")
            if run.fold_done(fold, index):
                done = read_fold_result(run.path, fold, index)
                console.print(f"{label}: done already ({done.score:.4f})")
                continue
            key = fold if index == 0 else f"{fold}_seed{index}"
            loggers = tracker.fold_loggers(key) if tracker else []
            result = train_fold(
                cfg,
                task,
                images,
                y,
                prepared.folds,
                fold,
                run.path,
                seed=seed,
                seed_index=index,
                loggers=loggers,
                report=_epoch_line(label, cfg.train.epochs, task.metric.name, clock),
                callbacks=callbacks(fold) if callbacks else [],
            )
            if tracker:
                tracker.end_fold(key, result.as_dict())
            console.print(
                f"{label}: {task.metric.name} {result.score:.4f} (best epoch {result.best_epoch})"
            )


def plan_run(cfg: Config, prepared: Prepared) -> None:
    """The batch per update and the memory estimate, before anything is written."""
    from medalist.engine.budget import training_plan

    for line in training_plan(cfg, prepared.task):
        if line.startswith("warning: "):
            err_console.print(f"[yellow]warning[/]: {line.removeprefix('warning: ')}")
        else:
            console.print(line)


def diagnose(run: RunDir) -> dict[str, Any] | None:
    """Learning-curve verdicts, error analysis and plots; a failure here never fails the run."""
    from medalist.analysis.run_analysis import analyse_run, render_verdict

    try:
        diagnosis = analyse_run(run.path)
    except Exception as exc:  # noqa: BLE001 - the trained run stands without its analysis
        err_console.print(f"[yellow]warning[/]: the run's analysis failed ({exc})")
        return None
    console.print(render_verdict(diagnosis), markup=False)
    return diagnosis


def merge_run(path: str | Path) -> TrainSummary:
    """`medalist train --merge RUN`: oof.csv and scores.json once every fold of every seed is in."""
    run = open_run_dir(path)
    cfg = run.config()
    missing = [
        f"fold {k}" + (f" seed {cfg.train.seed + i}" if i else "")
        for i in range(cfg.train.seeds)
        for k in range(cfg.cv.n_splits)
        if not run.fold_done(k, i)
    ]
    if missing:
        raise UserError(
            f"run {run.path}: {', '.join(missing)} not finished; train them "
            "(medalist train --resume RUN --folds K) or copy their fold_<k>/ folders in"
        )
    task = load_run_task(run, cfg)
    scores = finish_run(cfg, run, task)
    return TrainSummary(run, scores, list(range(cfg.cv.n_splits)))
