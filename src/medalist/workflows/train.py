"""`medalist folds` and `medalist train`: the story of a run, top to bottom.

Check every input, make or read the folds, open the run directory, cache the images, train
each fold (resuming where a killed process stopped), merge the out-of-fold predictions and
scores, mirror to the tracker.
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
from medalist.data.folds import (
    fold_summary,
    folds_file_name,
    make_folds,
    read_folds,
    render_fold_table,
    write_folds,
)
from medalist.data.images import ImageSource, build_cache
from medalist.data.tables import Tables, load_tables
from medalist.errors import UserError
from medalist.io import read_json, write_csv, write_json
from medalist.runs import provenance
from medalist.runs.rundir import (
    RunDir,
    create_run_dir,
    merge_folds,
    new_run_path,
    open_run_dir,
    write_merged,
    write_run_header,
)

if TYPE_CHECKING:
    from medalist.runs.tracking import Trackers


@dataclass
class Prepared:
    cfg: Config
    tables: Tables
    task: Any
    folds: np.ndarray
    images: ImageSource | None = None


@dataclass
class TrainSummary:
    run: RunDir
    scores: dict[str, Any] | None
    folds_done: list[int]
    diagnosis: dict[str, Any] | None = None


def folds_path(cfg: Config) -> Path:
    c = cfg.cv
    return (
        cfg.root
        / "folds"
        / folds_file_name(c.scheme, c.n_splits, c.seed, cfg.competition.group_column)
    )


def compute_folds(cfg: Config, train: pd.DataFrame) -> np.ndarray:
    targets = cfg.target_columns
    if cfg.competition.task == "segment" and cfg.cv.scheme in ("stratified", "stratified_group"):
        # Masks stratify by emptiness and area quartile, not by their run-length text.
        from medalist.data.tables import image_paths
        from medalist.tasks.segment import mask_strata

        paths = image_paths(cfg, train, cfg.path(cfg.competition.image_dir))
        train = train.assign(mask_area_bin=mask_strata(cfg, train, paths).to_numpy())
        targets = ["mask_area_bin"]
    return make_folds(
        train,
        scheme=cfg.cv.scheme,
        n_splits=cfg.cv.n_splits,
        seed=cfg.cv.seed,
        target_columns=targets,
        group_column=cfg.competition.group_column,
        where=str(cfg.path(cfg.competition.train_csv)),
    )


def get_folds(cfg: Config, train: pd.DataFrame, *, save: bool = True) -> np.ndarray:
    """The saved folds for this cv setting, made (and saved, unless `save` is off) on first use."""
    path = folds_path(cfg)
    ids = train[cfg.competition.id_column]
    if path.is_file():
        return read_folds(path, ids, cfg.competition.id_column)
    folds = compute_folds(cfg, train)
    warn_split_sequences(cfg, train, folds)
    if save:
        write_folds(path, ids, folds)
    return folds


def warn_split_sequences(cfg: Config, train: pd.DataFrame, folds: np.ndarray) -> None:
    """Frames of one video in several folds: near-identical neighbours make the CV optimistic."""
    seq = cfg.competition.sequence_column
    if seq is None or seq not in train.columns:
        return
    spread = pd.Series(folds).groupby(train[seq].to_numpy()).nunique()
    split = int((spread > 1).sum())
    if split:
        err_console.print(
            f"[yellow]warning[/]: {split} of {len(spread)} sequences have frames in several "
            "folds; neighbouring frames are near copies, so the CV is optimistic. Keep each "
            f"sequence in one fold: cv.scheme=group competition.group_column={seq}"
        )


def run_folds(cfg: Config) -> tuple[Path, pd.DataFrame]:
    """`medalist folds`: write the folds file and return its per-fold summary."""
    from medalist.data.tables import load_train

    train = load_train(cfg)
    folds = compute_folds(cfg, train)
    warn_split_sequences(cfg, train, folds)
    path = folds_path(cfg)
    write_folds(path, train[cfg.competition.id_column], folds)
    return path, fold_summary(train, folds, cfg.target_columns, cfg.competition.group_column)


def print_fold_table(summary: pd.DataFrame) -> None:
    console.print(render_fold_table(summary))


def prepare(cfg: Config, *, need_test: bool = False) -> Prepared:
    """Every check that can fail on the user's input, before anything is written."""
    from medalist.data.dataset import create_transform
    from medalist.models.factory import check_backbone, pretrained_file

    if cfg.competition.task == "detect":
        raise UserError("competition.task = 'detect' is not available yet; use classify or segment")
    tables = load_tables(cfg, need_test=need_test)
    task = task_class(cfg).from_config(cfg, tables.train)
    task.encode(tables.train)
    pretrained_file(cfg)
    check_backbone(cfg.model.backbone)
    create_transform(cfg.data.augment, train=True)
    folds = get_folds(cfg, tables.train, save=False)
    return Prepared(cfg, tables, task, folds)


def image_source(cfg: Config, paths: list[Path], ids: pd.Series) -> ImageSource:
    """Images for training or prediction, through the decoded-image cache when enabled."""
    size, chans = cfg.data.image_size, cfg.model.in_chans
    source = ImageSource(paths, size, chans, ids=ids.tolist())
    if not cfg.data.cache:
        source.verify()
        return source
    with progress("caching images", len(paths)) as advance:
        source.cached = build_cache(paths, size, chans, cfg.root / ".cache", progress=advance)
    return source


def print_epoch(label: str, epochs: int, metric: str, r: dict[str, float]) -> None:
    """One line per epoch (a module-level function, so DDP can pickle it into its processes)."""
    console.print(
        f"{label} | epoch {int(r['epoch'])}/{epochs} | train_loss {r['train_loss']:.4f} | "
        f"val_loss {r['val_loss']:.4f} | {metric} {r[metric]:.4f} | {r['time_s']:.1f}s"
    )


def _epoch_line(label: str, epochs: int, metric: str) -> Any:
    return functools.partial(print_epoch, label, epochs, metric)


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
    write_json(run.file("task.json"), prepared.task.state())
    ids = prepared.tables.train[cfg.competition.id_column]
    if not folds_path(cfg).is_file():
        write_folds(folds_path(cfg), ids, prepared.folds)
    write_csv(run.file("folds.csv"), pd.DataFrame({"id": ids, "fold": prepared.folds}))
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
) -> TrainSummary:
    """`medalist train`: a new run (or the rest of `resume`), fold by fold.

    `callbacks(fold)` may add Lightning callbacks to a fold's trainer (e.g. Optuna's pruning).
    """
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
    # Decoding every image (into the cache) is the last check before the run directory exists.
    ids = prepared.tables.train[cfg.competition.id_column]
    prepared.images = image_source(cfg, prepared.tables.train_paths, ids)
    if resume is None:
        run = start_run(cfg, prepared, name)
    else:
        train_ids = prepared.tables.train[cfg.competition.id_column]
        prepared.folds = read_folds(run.file("folds.csv"), train_ids, "id")
        prepared.task = type(prepared.task).from_state(cfg, run.task_state())
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
    from medalist.engine.fold_loop import fold_done
    from medalist.runs.tracking import create_tracker

    task, train_df = prepared.task, prepared.tables.train
    images = prepared.images or image_source(
        cfg, prepared.tables.train_paths, train_df[cfg.competition.id_column]
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
        artifacts = ["scores.json", "oof.csv", "diagnosis.json", "plots", "analysis"]
        tracker.finish(scores, [run.file(a) for a in artifacts])
    done = [k for k in range(cfg.cv.n_splits) if fold_done(run.path, k)]
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
    from medalist.engine.fold_loop import fold_done, read_fold_result, train_fold

    task = prepared.task
    for index, seed in enumerate(run_seeds(cfg)):
        for fold in selected:
            label = f"fold {fold}" + (f" seed {seed}" if cfg.train.seeds > 1 else "")
            if fold_done(run.path, fold, index):
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
                report=_epoch_line(label, cfg.train.epochs, task.metric.name),
                callbacks=callbacks(fold) if callbacks else [],
            )
            if tracker:
                tracker.end_fold(key, result.as_dict())
            console.print(
                f"{label}: {task.metric.name} {result.score:.4f} (best epoch {result.best_epoch})"
            )


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
    from medalist.engine.fold_loop import fold_done

    run = open_run_dir(path)
    cfg = run.config()
    missing = [
        f"fold {k}" + (f" seed {cfg.train.seed + i}" if i else "")
        for i in range(cfg.train.seeds)
        for k in range(cfg.cv.n_splits)
        if not fold_done(run.path, k, i)
    ]
    if missing:
        raise UserError(
            f"run {run.path}: {', '.join(missing)} not finished; train them "
            "(medalist train --resume RUN --folds K) or copy their fold_<k>/ folders in"
        )
    task = load_run_task(run, cfg)
    scores = finish_run(cfg, run, task)
    return TrainSummary(run, scores, list(range(cfg.cv.n_splits)))


def run_seeds(cfg: Config) -> list[int]:
    """The seeds of a run: train.seed, then one more for each repeat (folds stay fixed)."""
    return [cfg.train.seed + i for i in range(cfg.train.seeds)]


def finish_run(cfg: Config, run: RunDir, task: Any) -> dict[str, Any] | None:
    """Merge the folds (and seeds) into oof.csv and scores.json once every fold is done.

    With several seeds the out-of-fold predictions are the seeds' average, `folds` holds each
    fold's score averaged over seeds, and `seed_scores` the CV mean of each seed alone.
    """
    metric = task.metric
    per_seed = []
    for index in range(cfg.train.seeds):
        merged = merge_folds(run, cfg.cv.n_splits, metric.name, metric.higher_is_better, index)
        if merged is None:
            return None
        per_seed.append(merged)
    scores = dict(per_seed[0]["scores"])
    oof = per_seed[0]["oof"].sort_values("id", kind="stable").reset_index(drop=True)
    if len(per_seed) > 1:
        cols = task.pred_columns
        stacked = [m["oof"].sort_values("id", kind="stable")[cols].to_numpy() for m in per_seed]
        oof[cols] = np.mean(stacked, axis=0)
        fold_scores = np.mean([m["scores"]["folds"] for m in per_seed], axis=0)
        seed_scores = [m["scores"]["mean"] for m in per_seed]
        scores.update(
            folds=fold_scores.tolist(),
            mean=float(fold_scores.mean()),
            std=float(fold_scores.std()),
            seed_scores=seed_scores,
            seed_mean=float(np.mean(seed_scores)),
            seed_std=float(np.std(seed_scores)),
            seconds=float(sum(m["scores"]["seconds"] for m in per_seed)),
        )
    from medalist.engine.fold_loop import fold_dir

    # The task scores the merged table (segmentation reads each fold's masks beside it) and
    # fits its thresholds, which task.json keeps for predict.
    dirs = [
        [fold_dir(run.path, k, i) for i in range(cfg.train.seeds)] for k in range(cfg.cv.n_splits)
    ]
    scores.update(task.finish_oof(oof, dirs))
    write_json(run.file("task.json"), task.state())
    scores["seeds"] = run_seeds(cfg)
    write_merged(run, oof, scores)
    return scores


def task_class(cfg: Config) -> Any:
    """The task class of `competition.task`."""
    if cfg.competition.task == "segment":
        from medalist.tasks.segment import SegmentTask

        return SegmentTask
    from medalist.tasks.classify import ClassifyTask

    return ClassifyTask


def load_run_task(run: RunDir, cfg: Config) -> Any:
    return task_class(cfg).from_state(cfg, read_json(run.file("task.json")))
