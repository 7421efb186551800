"""The run directory, which is the truth about a run: its files, their merge, the ledger of runs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from medalist.config import Config, dump_config, load_config
from medalist.errors import UserError
from medalist.io import read_json, write_json, write_text
from medalist.runs import layout

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
ENSEMBLE_FILE = layout.ENSEMBLE


@dataclass
class RunDir:
    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def project(self) -> Path:
        return self.path.parent.parent

    def file(self, name: str) -> Path:
        return self.path / name

    def fold_dir(self, fold: int, seed_index: int = 0) -> Path:
        """The folder of one fold (and seed repeat)."""
        return layout.fold_dir(self.path, fold, seed_index)

    def fold_done(self, fold: int, seed_index: int = 0) -> bool:
        return layout.fold_done(self.path, fold, seed_index)

    def seed_fold_dirs(self, n_splits: int, seeds: int) -> list[list[Path]]:
        """Each fold's folders, one per seed repeat (`[k][i]`: fold k, seed repeat i)."""
        return [[self.fold_dir(k, i) for i in range(seeds)] for k in range(n_splits)]

    def done_folds(self, n_splits: int, seed_index: int = 0) -> list[int]:
        """The folds of seed repeat `seed_index` that have finished."""
        return [k for k in range(n_splits) if self.fold_done(k, seed_index)]

    def plot(self, name: str) -> Path:
        return layout.plot(self.path, name)

    def analysis(self, name: str) -> Path:
        return layout.analysis(self.path, name)

    def config(self) -> Config:
        return load_config(self.file(layout.CONFIG), root=self.project)

    def task_state(self) -> dict[str, Any]:
        return read_json(self.file(layout.TASK))

    def has_task(self) -> bool:
        return self.file(layout.TASK).is_file()

    def scores(self) -> dict[str, Any] | None:
        f = self.file(layout.SCORES)
        return read_json(f) if f.is_file() else None

    def provenance(self) -> dict[str, Any]:
        """provenance.json (commit, versions, device, seeds); empty when the run has none."""
        f = self.file(layout.PROVENANCE)
        return read_json(f) if f.is_file() else {}

    def trial(self) -> dict[str, Any] | None:
        """trial.json of a run that `medalist tune` made; None otherwise."""
        f = self.file(layout.TRIAL)
        return read_json(f) if f.is_file() else None

    def ensemble(self) -> dict[str, Any] | None:
        """The blend of an ensemble run (members, weights, method); None for a trained run."""
        f = self.file(ENSEMBLE_FILE)
        return read_json(f) if f.is_file() else None

    def members(self) -> list[RunDir]:
        """The member runs of an ensemble (siblings under runs/); a missing one is a UserError."""
        spec = self.ensemble() or {"members": []}
        runs = [RunDir(self.path.parent / name) for name in spec["members"]]
        for r in runs:
            if not r.file(layout.CONFIG).is_file():
                raise UserError(
                    f"ensemble {self.name}: member run {r.path} is missing; an ensemble needs "
                    "its members"
                )
        return runs


def new_run_name(cfg: Config) -> str:
    stem = cfg.source.stem if cfg.source else "run"
    return f"{stem}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def new_run_path(cfg: Config, name: str) -> Path:
    """Where a new run `name` goes; a bad name or an existing run is a UserError."""
    if not NAME_RE.match(name):
        raise UserError(f"--name {name!r}: use letters, digits, '.', '_' and '-' only")
    path = cfg.root / "runs" / name
    if path.exists():
        raise UserError(
            f"run {path} already exists: choose another --name, or --resume {path} to continue it"
        )
    return path


def create_run_dir(cfg: Config, name: str | None) -> RunDir:
    """A new, empty run directory under `<project>/runs/`; an existing name is never reused."""
    path = new_run_path(cfg, name or new_run_name(cfg))
    path.mkdir(parents=True)
    return RunDir(path)


def open_run_dir(path: str | Path) -> RunDir:
    """An existing run directory (it must hold config.yaml)."""
    p = Path(path)
    if not (p / layout.CONFIG).is_file():
        raise UserError(f"{p} is not a run directory (no config.yaml): give runs/<name>")
    return RunDir(p.resolve())


def write_run_header(run: RunDir, cfg: Config, provenance: dict[str, Any], diff: str) -> None:
    write_text(run.file(layout.CONFIG), dump_config(cfg))
    write_json(run.file(layout.PROVENANCE), provenance)
    if diff:
        write_text(run.file(layout.DIFF), diff)


def project_runs(project: Path) -> Iterator[tuple[RunDir, Config]]:
    """(run, config) of every run under `<project>/runs`, by name; unreadable configs skipped."""
    runs_dir = Path(project) / "runs"
    for path in sorted(runs_dir.glob(f"*/{layout.CONFIG}")) if runs_dir.is_dir() else []:
        run = RunDir(path.parent)
        try:
            yield run, run.config()
        except UserError:
            continue


def ledger(project: Path) -> pd.DataFrame:
    """Every run of a project: name, date, commit, dirty, backbone, epochs, CV, folds done.

    `trial` is ``study#N state`` for a run that `medalist tune` made (from its trial.json).
    """
    rows = []
    for run, cfg in project_runs(project):
        prov = run.provenance()
        scores = run.scores() or {}
        done = len(run.done_folds(cfg.cv.n_splits))
        blend = run.ensemble()
        if blend is not None:  # its folds are the members'; scored once they all were
            done = len(scores.get("folds") or [])
        git = prov.get("git", {})
        trial = run.trial()
        rows.append(
            {
                "name": run.name,
                "date": (prov.get("started_at") or "")[:16].replace("T", " "),
                "commit": (git.get("commit") or "")[:8],
                "dirty": git.get("dirty"),
                "backbone": "ensemble: " + " + ".join(blend["members"])
                if blend
                else cfg.model.backbone,
                "epochs": None if blend else cfg.train.epochs,
                "metric": scores.get("metric", cfg.competition.metric),
                "cv_mean": scores.get("mean"),
                "cv_std": scores.get("std"),
                "seeds": len(scores.get("seeds") or [cfg.train.seed]),
                "seed_std": scores.get("seed_std"),
                "folds_done": f"{done}/{cfg.cv.n_splits}",
                "trial": f"{trial['study']}#{trial['trial']} {trial['state']}" if trial else "",
            }
        )
    table = pd.DataFrame(
        rows,
        columns=[
            "name",
            "date",
            "commit",
            "dirty",
            "backbone",
            "epochs",
            "metric",
            "cv_mean",
            "cv_std",
            "seeds",
            "seed_std",
            "folds_done",
            "trial",
        ],
    )
    table["epochs"] = table["epochs"].astype("Int64")  # an ensemble has none
    return table
