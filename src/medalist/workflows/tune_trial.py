"""One worker's side of `medalist tune`: the objective that makes each trial a medalist run.

A trial samples the search space, trains the folds `tune.metric_folds` with the sampled values
as overrides into `runs/<study>-trialNNN/`, and reports the competition metric to the pruner
every epoch through Optuna's Lightning callback. Its `trial.json` links the run to the study.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from medalist.config import Config, load_config
from medalist.config.schema import Tune
from medalist.config.space import grid_of, parse_space
from medalist.console import console, err_console
from medalist.errors import TrainingDiverged, UserError, first_line
from medalist.io import read_json, write_json
from medalist.logs import quiet_libraries
from medalist.runs import layout

if TYPE_CHECKING:
    import optuna


@dataclass
class TrialJob:
    """What one worker needs to run its share of the trials (picklable, for worker processes)."""

    config: Path
    overrides: list[str]
    study: str
    storage: str
    trials: int
    timeout: float | None = None
    seed: int | None = None
    worker: int = 0
    workers: int = 1
    gpu: str | None = None
    threads: int | None = None


def shown_url(url: str) -> str:
    """The storage URL with its password hidden."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown as given
        return url


def _with_driver(url: str) -> str:
    """postgresql:// through psycopg2 when psycopg (SQLAlchemy 2.1's default driver) is absent."""
    import importlib.util

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return url  # RDBStorage says what is wrong with it
    if parsed.drivername == "postgresql" and importlib.util.find_spec("psycopg") is None:
        if importlib.util.find_spec("psycopg2") is not None:
            return parsed.set(drivername="postgresql+psycopg2").render_as_string(False)
    return url


def open_storage(url: str, t: Tune) -> optuna.storages.RDBStorage:
    """An RDB storage with a heartbeat: a trial whose worker dies is failed, then retried."""
    import time

    import optuna
    from sqlalchemy.exc import IntegrityError, ProgrammingError, SQLAlchemyError

    # Several workers write to one SQLite file: wait for its lock instead of failing at once.
    sqlite = url.startswith("sqlite")
    engine_kwargs = {"connect_args": {"timeout": 60}} if sqlite else {}
    for attempt in range(5):
        try:
            with optuna_quiet():
                storage = optuna.storages.RDBStorage(
                    _with_driver(url),
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=t.heartbeat_interval,
                    grace_period=t.grace_period,
                    heartbeat_stale_trial_callback=(
                        optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=t.max_retries)
                    ),
                )
            break
        except (IntegrityError, ProgrammingError) as exc:
            # Workers that start together on a new database race to create its tables.
            if attempt == 4:
                raise _cannot_open(url, exc) from None
            time.sleep(0.5 * (attempt + 1))
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise _cannot_open(url, exc) from None
    if sqlite:
        _write_ahead_log(storage)
    return storage


def _cannot_open(url: str, exc: Exception) -> UserError:
    reason = first_line(getattr(exc, "orig", None) or exc)
    if isinstance(exc, ImportError):
        reason = f"{reason} (for postgresql:// pip install psycopg2-binary)"
    return UserError(
        f"--storage {shown_url(url)}: cannot open it ({reason}); give sqlite:///path.db or "
        "postgresql://user:password@host/database"
    )


def _write_ahead_log(storage: optuna.storages.RDBStorage) -> None:
    """SQLite in WAL mode: readers never block a writer nor a writer a reader, which removes
    the "database is locked" deadlocks of workers sharing one file. It stays set in the file."""
    from sqlalchemy.exc import OperationalError

    try:
        with storage.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    except OperationalError:
        pass  # another process holds the file right now; it sets the mode, or the next run does


def suggest(trial: optuna.Trial, key: str, dist: Any) -> Any:
    """The trial's value for `key`, drawn from its distribution."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(key, dist.choices)
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(key, dist.low, dist.high, step=dist.step, log=dist.log)
    return trial.suggest_int(key, dist.low, dist.high, step=dist.step, log=dist.log)


def trial_run_name(study: str, number: int) -> str:
    """The run directory name of a trial: `<study>-trial007`."""
    return f"{study}-trial{number:03d}"


def param_overrides(params: dict[str, Any]) -> list[str]:
    """Sampled values as `section.key=value` overrides, written as YAML reads them back."""
    out = []
    for key, value in params.items():
        text = yaml.safe_dump(value, default_flow_style=True).strip()
        out.append(f"{key}={text.removesuffix('...').strip()}")
    return out


def worker_main(job: TrialJob) -> None:
    """A worker process: its share of the trials; a UserError is one line and exit code 2."""
    if job.gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = job.gpu
    quiet_libraries()
    if job.threads:
        import torch

        torch.set_num_threads(job.threads)
    try:
        run_trials(job)
    except UserError as exc:
        err_console.print(f"[red]error[/]: worker {job.worker}: {exc}")
        raise SystemExit(2) from None


def run_trials(job: TrialJob) -> None:
    """Run `job.trials` trials of the study in this process."""
    import optuna

    cfg = load_config(job.config, job.overrides)
    space = parse_space(cfg, f"config {job.config}")
    study = optuna.load_study(
        study_name=job.study,
        storage=open_storage(job.storage, cfg.tune),
        sampler=create_sampler(cfg.tune, space, job.seed),
        pruner=create_pruner(cfg.tune),
    )
    objective = Objective(job, cfg, space, study.user_attrs.get("metric", ""))
    import torch

    with optuna_quiet():
        study.optimize(
            objective,
            n_trials=job.trials,
            timeout=job.timeout,
            catch=(UserError, torch.OutOfMemoryError),
            callbacks=[objective.after],
            gc_after_trial=True,
        )


def create_sampler(t: Tune, space: dict[str, Any], seed: int | None) -> optuna.samplers.BaseSampler:
    """The sampler `tune.sampler` names."""
    from optuna import samplers

    if t.sampler == "grid":
        return samplers.GridSampler(grid_of(space), seed=seed)
    if t.sampler == "random":
        return samplers.RandomSampler(seed=seed)
    if t.sampler == "cmaes":
        return samplers.CmaEsSampler(n_startup_trials=t.n_startup_trials, seed=seed)
    return samplers.TPESampler(n_startup_trials=t.n_startup_trials, seed=seed)


def create_pruner(t: Tune) -> optuna.pruners.BasePruner:
    """The pruner `tune.pruner` names; no trial stops within its first `n_warmup_epochs`."""
    from optuna import pruners

    if t.pruner == "none":
        return pruners.NopPruner()
    if t.pruner == "hyperband":
        return pruners.HyperbandPruner(min_resource=t.n_warmup_epochs + 1)
    return pruners.MedianPruner(
        n_startup_trials=t.pruner_startup_trials, n_warmup_steps=t.n_warmup_epochs
    )


class _FoldSteps:
    """The trial as one fold's pruning callback sees it: epoch e of the i-th metric fold is
    reported at step i * epochs + e, so the folds of a trial never report over each other; and
    the trial's very last epoch is never pruned, since stopping it there saves nothing."""

    def __init__(self, trial: optuna.Trial, offset: int, last_step: int) -> None:
        self._trial, self._offset, self._last_step = trial, offset, last_step
        self._step = -1

    def report(self, value: float, step: int) -> None:
        self._step = step + self._offset
        self._trial.report(value, self._step)

    def should_prune(self) -> bool:
        return self._step < self._last_step and self._trial.should_prune()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._trial, name)


class Objective:
    """One trial: sample, train the metric folds as a medalist run, return their mean score."""

    def __init__(self, job: TrialJob, cfg: Config, space: dict[str, Any], metric: str) -> None:
        self.job, self.cfg, self.space, self.metric = job, cfg, space, metric
        self.folds = list(cfg.tune.metric_folds)
        self.storage = shown_url(job.storage)

    def run_dir(self, number: int) -> Path:
        return self.cfg.root / "runs" / trial_run_name(self.job.study, number)

    def __call__(self, trial: optuna.Trial) -> float:
        import optuna
        from optuna_integration import PyTorchLightningPruningCallback

        from medalist.engine.fold_loop import read_fold_result
        from medalist.workflows.train import train

        params = {key: suggest(trial, key, dist) for key, dist in self.space.items()}
        run_dir = self.run_dir(trial.number)
        trial.set_user_attr("run", run_dir.name)
        epochs = int(params.get("train.epochs", self.cfg.train.epochs))
        record = {"study": self.job.study, "trial": trial.number, "state": "running"}
        record |= {"params": params, "storage": self.storage}

        def fold_callbacks(fold: int) -> list[Any]:
            if not (run_dir / layout.TRIAL).is_file():
                write_json(run_dir / layout.TRIAL, record)
            last = len(self.folds) * epochs - 1
            steps = _FoldSteps(trial, self.folds.index(fold) * epochs, last)
            return [PyTorchLightningPruningCallback(steps, monitor="monitor")]

        overrides = [*self.job.overrides, *param_overrides(params)]
        folds = ",".join(str(f) for f in self.folds)
        try:
            with _quiet(self.job.workers > 1):
                train(
                    self.job.config,
                    overrides,
                    name=run_dir.name,
                    folds=folds,
                    callbacks=fold_callbacks,
                )
        except optuna.TrialPruned:
            trial.set_user_attr("stopped_because", f"{self.cfg.tune.pruner} pruner")
            _drop_resume_points(run_dir)
            raise
        except TrainingDiverged as exc:
            trial.set_user_attr("stopped_because", f"diverged: {exc}")
            _drop_resume_points(run_dir)
            raise optuna.TrialPruned(str(exc)) from None
        except Exception as exc:  # caught by optimize(catch=...) or re-raised there
            trial.set_user_attr("failed_because", first_line(exc))
            raise
        scores = [read_fold_result(run_dir, k).score for k in self.folds]
        return float(sum(scores) / len(scores))

    def after(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """After each trial: its final trial.json and one line for the user."""
        write_trial_file(self.cfg.root, study, trial, self.storage)
        prefix = f"[worker {self.job.worker}] " if self.job.workers > 1 else ""
        console.print(prefix + trial_line(trial, self.metric), markup=False)


def _drop_resume_points(run_dir: Path) -> None:
    """A stopped trial is never resumed: its full-state checkpoints would only fill the disk."""
    for path in run_dir.glob("fold_*/last.ckpt"):
        path.unlink(missing_ok=True)


def trial_record(trial: optuna.trial.FrozenTrial, study: str, storage: str) -> dict[str, Any]:
    """What `trial.json` in a trial's run directory says about it."""
    attrs = trial.user_attrs
    return {
        "study": study,
        "trial": trial.number,
        "state": trial.state.name.lower(),
        "value": trial.value,
        "params": trial.params,
        "epochs_reported": len(trial.intermediate_values),
        "retry_of": trial.system_attrs.get("failed_trial"),
        "reason": attrs.get("stopped_because") or attrs.get("failed_because"),
        "storage": storage,
    }


def write_trial_file(
    root: Path, study: optuna.Study, trial: optuna.trial.FrozenTrial, storage: str
) -> None:
    """Bring `trial.json` of a trial run in this project up to date with the storage."""
    run = trial.user_attrs.get("run")
    path = root / "runs" / run / layout.TRIAL if run else None
    if path is None or not path.parent.is_dir():
        return
    record = trial_record(trial, study.study_name, storage)
    if not path.is_file() or read_json(path) != _json_roundtrip(record):
        write_json(path, record)


def _json_roundtrip(data: dict[str, Any]) -> Any:

    return json.loads(json.dumps(data))


def trial_line(trial: optuna.trial.FrozenTrial, metric: str) -> str:
    """`trial 3: accuracy 0.7500 | train.lr=0.00123 | runs/baseline-trial003`."""
    state = trial.state.name.lower()
    attrs = trial.user_attrs
    if state == "complete":
        what = f"{metric} {trial.value:.4f}"
    elif state == "pruned":
        what = f"pruned after {len(trial.intermediate_values)} epoch(s)"
        if str(attrs.get("stopped_because", "")).startswith("diverged"):
            what = f"pruned: {attrs['stopped_because']}"
    else:
        what = f"{state}: {attrs.get('failed_because', '')}".rstrip(": ")
    retry = trial.system_attrs.get("failed_trial")
    head = f"trial {trial.number}" + (f" (retry of {retry})" if retry is not None else "")
    params = " ".join(f"{k}={short_value(v)}" for k, v in trial.params.items())
    run = attrs.get("run")
    return f"{head}: {what} | {params}" + (f" | runs/{run}" if run else "")


def short_value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


@contextlib.contextmanager
def _quiet(on: bool) -> Iterator[None]:
    """Silence training's epoch lines (worker processes print one line per trial instead)."""
    saved = console.quiet, err_console.quiet
    console.quiet = err_console.quiet = on or saved[0]
    try:
        yield
    finally:
        console.quiet, err_console.quiet = saved


@contextlib.contextmanager
def optuna_quiet() -> Iterator[None]:
    """Optuna's info lines and experimental-feature warnings: medalist prints its own lines."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield
