"""Tracker mirrors of a run, chosen by `track.backends` (several at once).

Each mirror logs the same things: the config as parameters, per-epoch metrics per fold, each
fold's result, the CV summary, and the run's files and plots.

- mlflow: one parent run per medalist run, one child per fold (Lightning's MLFlowLogger), in
  a SQLite file inside the project.
- wandb: one W&B run per fold, grouped by the medalist run, plus a `cv` run (WandbLogger);
  offline files in <project>/wandb/.
- comet: one experiment per fold plus a `cv` experiment (CometLogger); offline archives in
  <project>/comet/.
- neptune: one Neptune run with a namespace per fold; offline files in <project>/.neptune/.
  Lightning 2.6 dropped its NeptuneLogger ("Neptune has been sunset"), so the epochs are
  logged from the fold's history.csv when the fold ends.
- tensorboard: event files in <project>/tb/<run>/fold_<k> and <project>/tb/<run>/cv.
- csv: params.csv, metrics.csv (fold x epoch), folds.csv and summary.csv in
  <project>/tracking/<run>/.

The run directory never depends on a tracker: any failure, here or inside a Lightning logger
during training, is reported once and that tracker stops; the run goes on.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from lightning.pytorch.loggers.logger import Logger

from medalist.config import Config, config_to_dict, flatten
from medalist.console import err_console
from medalist.errors import first_line, was_stopped
from medalist.io import read_json, write_json
from medalist.logs import quiet_libraries
from medalist.runs import layout
from medalist.runs.rundir import RunDir

IMAGE_EXTS = (".png", ".jpg", ".jpeg")
FoldKey = int | str  # 3, or "3_seed1" for a repeat of fold 3 with the run's second seed


def default_tracking_uri(root: Path) -> str:
    return f"sqlite:///{(root / 'mlruns.db').resolve()}"


@contextlib.contextmanager
def env_vars(**values: str) -> Iterator[None]:
    """Environment variables set for the duration of a block (read by a client at start)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class Mirror:
    """One tracker's mirror of a run. Public calls never raise; subclasses fill the `_` hooks."""

    title = "tracker"

    def __init__(self, cfg: Config, run: RunDir) -> None:
        self.cfg, self.run = cfg, run
        self.enabled = True
        self.loggers: dict[FoldKey, Logger] = {}
        self.live: set[FoldKey] = set()  # folds whose epochs went through a live logger

    @property
    def project(self) -> str:
        return self.cfg.track.experiment or self.cfg.root.name

    @property
    def uid(self) -> str:
        """A stable id of this run (same after --resume), for the trackers' own run ids."""
        started = self.run.provenance().get("started_at", "")
        return hashlib.sha1(f"{self.run.path}|{started}".encode()).hexdigest()[:10]

    def params(self) -> dict[str, Any]:
        return flatten(config_to_dict(self.cfg))

    def history(self, fold: FoldKey) -> pd.DataFrame:
        path = self.run.fold_dir(fold) / layout.HISTORY
        return pd.read_csv(path) if path.is_file() else pd.DataFrame()

    def fail(self, what: str, exc: BaseException) -> None:
        if self.enabled:
            err_console.print(
                f"[yellow]warning[/]: {self.title} {what} failed ({exc}); "
                f"the run goes on without {self.title}"
            )
        self.enabled = False

    def _call(self, what: str, fn: Any, *args: Any) -> Any:
        if not self.enabled:
            return None
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001 - a tracker must never stop a run
            self.fail(what, exc)
            return None

    # ---- the interface train() calls ------------------------------------------------------
    def start(self) -> None:
        self._call("start", self._start)

    def fold_loggers(self, fold: FoldKey) -> list[Logger]:
        """Lightning loggers for this fold's trainer (empty when the tracker has none)."""
        logger = self._call("fold logger", self._logger_for, fold)
        if logger is None:
            return []
        self.live.add(fold)
        return [SafeLogger(logger, self)]

    def end_fold(self, fold: FoldKey, result: Mapping[str, Any]) -> None:
        if fold not in self.live:  # no live logger saw the epochs: log them from history.csv
            self._call("epoch history", self._replay, fold)
        self._call("fold end", self._end_fold, fold, dict(result))

    def finish(self, scores: Mapping[str, Any] | None, artifacts: list[Path]) -> None:
        self._call("finish", self._finish, dict(scores) if scores else None, artifacts)

    def abort(self, exc: BaseException) -> None:
        """The run stopped early: pruned or interrupted (KILLED) or an error (FAILED)."""
        self._call("stop", self._abort, stop_status(exc), first_line(exc)[:250])

    # ---- hooks --------------------------------------------------------------------------------
    def _start(self) -> None:
        pass

    def _fold_logger(self, fold: FoldKey) -> Logger | None:
        return None

    def _logger_for(self, fold: FoldKey) -> Logger | None:
        if fold not in self.loggers:
            logger = self._fold_logger(fold)
            if logger is None:
                return None
            self.loggers[fold] = logger
        return self.loggers[fold]

    def _replay(self, fold: FoldKey) -> None:
        logger = self._logger_for(fold)
        if logger is None:
            return
        for row in self.history(fold).to_dict("records"):
            logger.log_metrics(numeric(row), step=int(row["epoch"]))
        logger.finalize("success")

    def _end_fold(self, fold: FoldKey, result: dict[str, Any]) -> None:
        pass

    def _finish(self, scores: dict[str, Any] | None, artifacts: list[Path]) -> None:
        pass

    def _abort(self, status: str, reason: str) -> None:
        pass


def stop_status(exc: BaseException) -> str:
    """KILLED for a pruned trial, an interrupt or a SIGTERM (the run was stopped), FAILED
    otherwise."""
    return "KILLED" if was_stopped(exc) else "FAILED"


class SafeLogger(Logger):
    """A Lightning logger whose failures stop its tracker, never the training."""

    def __init__(self, inner: Logger, mirror: Mirror) -> None:
        super().__init__()
        self.inner, self.mirror = inner, mirror

    def _do(self, what: str, *args: Any, **kwargs: Any) -> Any:
        if not self.mirror.enabled:
            return None
        try:
            return getattr(self.inner, what)(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001
            self.mirror.fail(f"logger ({what})", exc)
            return None

    @property
    def name(self) -> str | None:
        return self.inner.name

    @property
    def version(self) -> int | str | None:
        return self.inner.version

    @property
    def save_dir(self) -> str | None:
        return self.inner.save_dir

    @property
    def experiment(self) -> Any:
        return self.inner.experiment

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self._do("log_metrics", metrics, step)

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        self._do("log_hyperparams", params, *args, **kwargs)

    def log_graph(self, model: Any, input_array: Any = None) -> None:
        self._do("log_graph", model, input_array)

    def save(self) -> None:
        self._do("save")

    def finalize(self, status: str) -> None:
        self._do("finalize", status)

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        self._do("after_save_checkpoint", checkpoint_callback)


def numeric(row: Mapping[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in row.items() if isinstance(v, (int, float)) and v == v}


def artifact_files(artifacts: list[Path]) -> Iterator[tuple[str, Path]]:
    """(name, file) for every file among `artifacts`, folders walked (plots/loss.png)."""
    for path in artifacts:
        if path.is_file():
            yield path.name, path
        elif path.is_dir():
            for f in sorted(p for p in path.rglob("*") if p.is_file()):
                yield f"{path.name}/{f.relative_to(path).as_posix()}", f


def fold_summary(result: dict[str, Any]) -> dict[str, float]:
    """A fold's result as metrics: fold_score, fold_best_epoch, fold_epochs, fold_seconds."""
    return {f"fold_{k}": float(v) for k, v in numeric(result).items() if k != "fold"}


# ---------------------------------------------------------------------------------------------
# MLflow


class MlflowMirror(Mirror):
    """A parent MLflow run per medalist run, a child per fold (ids kept in tracking.json)."""

    title = "MLflow"

    def __init__(self, cfg: Config, run: RunDir) -> None:
        super().__init__(cfg, run)
        self.uri = cfg.track.tracking_uri or default_tracking_uri(cfg.root)
        self.ids_file = run.file("tracking.json")
        self.ids: dict[str, Any] = read_json(self.ids_file) if self.ids_file.is_file() else {}
        self.client: Any = None
        self.experiment_id: str | None = None

    def _start(self) -> None:
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
        from mlflow import MlflowClient

        quiet_libraries(warnings_too=False)  # after mlflow's import set its own level
        self.client = MlflowClient(self.uri)
        exp = self.client.get_experiment_by_name(self.project)
        if exp is None:
            artifacts = (self.cfg.root / "mlartifacts").resolve().as_uri()
            self.experiment_id = self.client.create_experiment(self.project, artifacts)
        else:
            self.experiment_id = exp.experiment_id
        if "parent" in self.ids:  # --resume: the stopped parent runs again
            self.client.update_run(self.ids["parent"], status="RUNNING")
        else:
            parent = self.client.create_run(
                self.experiment_id,
                run_name=self.run.name,
                tags={"medalist.run_dir": str(self.run.path)},
            )
            self.ids["parent"] = parent.info.run_id
            for key, value in self.params().items():
                self.client.log_param(self.ids["parent"], key, str(value)[:500])
            write_json(self.ids_file, self.ids)

    def _fold_logger(self, fold: FoldKey) -> Logger:
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
            experiment_name=self.project, tracking_uri=self.uri, run_id=self.ids[key]
        )

    def _end_fold(self, fold: FoldKey, result: dict[str, Any]) -> None:
        child = self.ids.get(f"fold_{fold}")
        if child is None:
            return
        for k, v in fold_summary(result).items():
            self.client.log_metric(child, k, v)
        self.client.set_terminated(child)

    def _finish(self, scores: dict[str, Any] | None, artifacts: list[Path]) -> None:
        parent = self.ids["parent"]
        if scores:
            self.client.log_metric(parent, "cv_mean", scores["mean"])
            self.client.log_metric(parent, "cv_std", scores["std"])
            for k, s in enumerate(scores["folds"]):
                self.client.log_metric(parent, "cv_fold", s, step=k)
            if "by_group" in scores:  # the CV per submission row (competition.submission_by)
                self.client.log_metric(parent, "cv_by_group_mean", scores["by_group"]["mean"])
                self.client.log_metric(parent, "cv_by_group_std", scores["by_group"]["std"])
        for path in artifacts:
            if path.is_file():
                self.client.log_artifact(parent, str(path))
            elif path.is_dir():
                self.client.log_artifacts(parent, str(path), artifact_path=path.name)
        self.client.set_terminated(parent, "FINISHED" if scores else "RUNNING")

    def _abort(self, status: str, reason: str) -> None:
        """Close the parent and the fold that was training, with why (a tag)."""
        parent = self.ids.get("parent")
        if parent is None:
            return
        open_folds = [k for k in self.live if f"fold_{k}" in self.ids]
        for run_id in [parent] + [self.ids[f"fold_{k}"] for k in open_folds]:
            if self.client.get_run(run_id).info.status in ("RUNNING", "FAILED"):
                self.client.set_tag(run_id, "medalist.stopped", reason or status.lower())
                self.client.set_terminated(run_id, status)


def mirror_class(name: str) -> type[Mirror]:
    """The Mirror for a `track.backends` name (the other backends' module loads on demand)."""
    if name == "mlflow":
        return MlflowMirror
    from medalist.runs import tracker_backends as b

    classes: dict[str, type[Mirror]] = {
        "wandb": b.WandbMirror,
        "comet": b.CometMirror,
        "neptune": b.NeptuneMirror,
        "tensorboard": b.TensorBoardMirror,
        "csv": b.CsvMirror,
    }
    return classes[name]


class Trackers:
    """Every configured mirror behind the interface train() calls."""

    def __init__(self, mirrors: list[Mirror]) -> None:
        self.mirrors = mirrors

    def fold_loggers(self, fold: FoldKey) -> list[Logger]:
        """Every mirror's Lightning logger for this fold."""
        return [lg for m in self.mirrors for lg in m.fold_loggers(fold)]

    def fold_logger(self, fold: FoldKey) -> Logger | None:
        """One logger, for callers that take one: the first mirror's; the others log this
        fold's epochs from its history when it ends."""
        for m in self.mirrors:
            loggers = m.fold_loggers(fold)
            if loggers:
                return loggers[0]
        return None

    def end_fold(self, fold: FoldKey, result: Mapping[str, Any]) -> None:
        for m in self.mirrors:
            m.end_fold(fold, result)

    def finish(self, scores: Mapping[str, Any] | None, artifacts: list[Path]) -> None:
        for m in self.mirrors:
            m.finish(scores, artifacts)

    def abort(self, exc: BaseException) -> None:
        """Tell every mirror the run stopped early (never raises)."""
        for m in self.mirrors:
            m.abort(exc)


def create_tracker(cfg: Config, run: RunDir) -> Trackers | None:
    """The mirrors named in `track.backends`, started; None when there are none."""
    names = list(dict.fromkeys(b for b in cfg.track.backends if b != "none"))
    if not names:
        return None
    mirrors = [mirror_class(name)(cfg, run) for name in names]
    for m in mirrors:
        m.start()
    return Trackers(mirrors)
