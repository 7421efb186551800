"""A run's inference weights as a package holds them: per finished fold, the model's (or its
EMA / SWA average's) state dict from `best.ckpt`, optionally in half precision, beside the run's
config, task and scores."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medalist.io import atomic_write
from medalist.runs import layout
from medalist.runs.rundir import RunDir


@dataclass
class FoldFile:
    run: str
    fold: int
    checkpoint_bytes: int
    packaged_bytes: int


def finished_folds(run: RunDir, n_splits: int) -> list[int]:
    return [k for k in run.done_folds(n_splits) if (run.fold_dir(k) / layout.BEST_CKPT).is_file()]


def write_fold(run: RunDir, k: int, dest: Path, averaged: str | None, half: bool) -> FoldFile:
    import torch

    from medalist.workflows.inference import inference_weights

    ckpt = run.fold_dir(k) / layout.BEST_CKPT
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    weights = inference_weights(state["state_dict"], averaged)
    if half:
        weights = {n: v.half() if v.is_floating_point() else v for n, v in weights.items()}
    path = layout.packaged_fold(dest, k)
    atomic_write(path, lambda f: torch.save(weights, f), mode="wb")
    return FoldFile(run.name, k, ckpt.stat().st_size, path.stat().st_size)


def write_runs(
    dest: Path, opened: list[tuple[RunDir, Any, list[int]]], half: bool
) -> tuple[list[FoldFile], list[dict[str, Any]]]:
    """Each run's config, task, scores and fold weights under `dest/<run>/`; the manifest's runs."""
    folds: list[FoldFile] = []
    entries = []
    for run, cfg, done in opened:
        (dest / run.name).mkdir(parents=True)
        for name in (layout.CONFIG, layout.TASK, layout.SCORES):
            if run.file(name).is_file():
                shutil.copy2(run.file(name), dest / run.name / name)
        averaged = cfg.train.averaged_weights
        folds += [write_fold(run, k, dest / run.name, averaged, half) for k in done]
        scores = run.scores() or {}
        cv = {k: scores.get(k) for k in ("metric", "mean", "std")} if scores else None
        entries.append({"name": run.name, "folds": done, "cv": cv, "tta": list(cfg.predict.tta)})
    return folds, entries
