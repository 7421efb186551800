"""Tracker mirrors of a run. MLflow by default, in a SQLite file inside the project.

One parent MLflow run per medalist run, one child per fold (per-epoch metrics through
Lightning's MLFlowLogger). The run directory never depends on the tracker: any tracker
failure is reported once and the run goes on.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from medalist.config import Config, config_to_dict, flatten
from medalist.console import err_console
from medalist.io import read_json, write_json
from medalist.runs.rundir import RunDir


def default_tracking_uri(root: Path) -> str:
    return f"sqlite:///{(root / 'mlruns.db').resolve()}"


class MlflowMirror:
    """Mirrors one run into MLflow; every call is safe to make when MLflow fails."""

    def __init__(self, cfg: Config, run: RunDir) -> None:
        self.cfg = cfg
        self.run = run
        self.uri = cfg.track.tracking_uri or default_tracking_uri(cfg.root)
        self.experiment = cfg.track.experiment or cfg.root.name
        self.ids_file = run.file("tracking.json")
        self.ids: dict[str, Any] = read_json(self.ids_file) if self.ids_file.is_file() else {}
        self.client = None
        self.experiment_id: str | None = None
        self.enabled = True

    def _fail(self, what: str, exc: Exception) -> None:
        err_console.print(f"[yellow]warning[/]: MLflow {what} failed ({exc}); the run goes on")
        self.enabled = False

    def start(self) -> None:
        try:
            os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
            os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
            from mlflow import MlflowClient

            for name in ("mlflow", "alembic", "mlflow.store.db.utils"):
                logging.getLogger(name).setLevel(logging.WARNING)

            self.client = MlflowClient(self.uri)
            exp = self.client.get_experiment_by_name(self.experiment)
            if exp is None:
                artifacts = (self.cfg.root / "mlartifacts").resolve().as_uri()
                self.experiment_id = self.client.create_experiment(self.experiment, artifacts)
            else:
                self.experiment_id = exp.experiment_id
            if "parent" not in self.ids:
                parent = self.client.create_run(
                    self.experiment_id,
                    run_name=self.run.name,
                    tags={"medalist.run_dir": str(self.run.path)},
                )
                self.ids["parent"] = parent.info.run_id
                params = flatten(config_to_dict(self.cfg))
                for key, value in params.items():
                    self.client.log_param(self.ids["parent"], key, str(value)[:500])
                write_json(self.ids_file, self.ids)
        except Exception as exc:  # noqa: BLE001 - a tracker must never stop a run
            self._fail("start", exc)

    def fold_logger(self, fold: int) -> Any | None:
        """A Lightning MLFlowLogger writing into this fold's child run."""
        if not self.enabled or self.client is None:
            return None
        try:
            key = f"fold_{fold}"
            if key not in self.ids:
                child = self.client.create_run(
                    self.experiment_id,
                    run_name=f"{self.run.name}/{key}",
                    tags={"mlflow.parentRunId": self.ids["parent"]},
                )
                self.ids[key] = child.info.run_id
                write_json(self.ids_file, self.ids)
            from lightning.pytorch.loggers import MLFlowLogger

            return MLFlowLogger(
                experiment_name=self.experiment, tracking_uri=self.uri, run_id=self.ids[key]
            )
        except Exception as exc:  # noqa: BLE001
            self._fail("fold logger", exc)
            return None

    def end_fold(self, fold: int, result: dict[str, Any]) -> None:
        if not self.enabled or self.client is None or f"fold_{fold}" not in self.ids:
            return
        try:
            child = self.ids[f"fold_{fold}"]
            for k, v in result.items():
                if isinstance(v, (int, float)):
                    self.client.log_metric(child, f"fold_{k}", float(v))
            self.client.set_terminated(child)
        except Exception as exc:  # noqa: BLE001
            self._fail("fold end", exc)

    def finish(self, scores: dict[str, Any] | None, artifacts: list[Path]) -> None:
        if not self.enabled or self.client is None:
            return
        try:
            parent = self.ids["parent"]
            if scores:
                self.client.log_metric(parent, "cv_mean", scores["mean"])
                self.client.log_metric(parent, "cv_std", scores["std"])
                for k, s in enumerate(scores["folds"]):
                    self.client.log_metric(parent, "cv_fold", s, step=k)
            for path in artifacts:
                if path.is_file():
                    self.client.log_artifact(parent, str(path))
                elif path.is_dir():
                    self.client.log_artifacts(parent, str(path), artifact_path=path.name)
            self.client.set_terminated(parent, "FINISHED" if scores else "RUNNING")
        except Exception as exc:  # noqa: BLE001
            self._fail("finish", exc)


def create_tracker(cfg: Config, run: RunDir) -> MlflowMirror | None:
    if "mlflow" not in cfg.track.backends:
        return None
    tracker = MlflowMirror(cfg, run)
    tracker.start()
    return tracker
