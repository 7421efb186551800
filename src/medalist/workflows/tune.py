"""`medalist tune`: an Optuna study whose trials are medalist runs.

Each trial trains the folds `tune.metric_folds` of the config with the sampled values as
overrides, into its own run directory `runs/<study>-trialNNN/` (with `trial.json`), and reports
the competition metric to the pruner every epoch. The study lives in an RDB storage (SQLite in
the project by default, PostgreSQL to share one study between machines) with a heartbeat, so
the trial of a killed worker is failed and retried and the study goes on. At the end: the best
trial, the parameter importances, plots and `configs/<study>-best.yaml`.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from medalist.config import Config, config_to_dict, load_config
from medalist.config.space import grid_of, parse_space
from medalist.console import console
from medalist.errors import UserError
from medalist.io import atomic_write, write_text
from medalist.runs.rundir import NAME_RE
from medalist.workflows.tune_trial import (
    TrialJob,
    open_storage,
    optuna_quiet,
    param_overrides,
    run_trials,
    short_value,
    shown_url,
    trial_run_name,
    worker_main,
    write_trial_file,
)

if TYPE_CHECKING:
    import optuna

    from medalist.tasks.metrics import Metric


@dataclass
class TuneResult:
    """What `medalist tune` prints: the study's state after this invocation."""

    study: str
    storage: str  # as shown: the password hidden
    metric: str
    direction: str
    counts: dict[str, int]
    best: dict[str, Any] | None  # number, value, params, run
    importances: dict[str, float] | None
    importance_note: str
    plots: list[Path]
    best_config: Path | None
    dashboard: str
    worker_exits: list[int] = field(default_factory=list)


def tune(
    config: str | Path,
    overrides: list[str] = (),
    *,
    trials: int,
    timeout: float | None = None,
    study: str | None = None,
    storage: str | None = None,
    workers: int = 1,
) -> TuneResult:
    """Run `trials` more trials of the study (created on first use), then sum the study up."""
    from medalist.tasks.metrics import get_metric
    from medalist.workflows.train import prepare

    config, overrides = Path(config), list(overrides)
    source = f"config {config}"
    cfg = load_config(config, overrides)
    space = parse_space(cfg, source)
    check_tune(cfg, source, trials=trials, workers=workers, timeout=timeout)
    name = study or config.stem
    if not NAME_RE.match(name):
        raise UserError(f"--study {name!r}: use letters, digits, '.', '_' and '-' only")
    url = storage or default_storage(cfg.root)
    metric = get_metric(cfg.competition.metric, cfg.competition.metric_direction)
    the_study = open_study(open_storage(url, cfg.tune), cfg, name, metric)
    prepare(cfg)  # the data and the model, checked once rather than failing every trial
    if "model.backbone" in space:
        from medalist.models.factory import check_backbone

        for choice in getattr(space["model.backbone"], "choices", ()):
            check_backbone(str(choice))
    n_before = len(the_study.trials)
    k = min(workers, trials)
    gpus = _visible_gpus() if k > 1 else []
    threads = None if gpus or cfg.train.threads else max(1, (os.cpu_count() or 1) // k)
    jobs = [
        TrialJob(
            config=config,
            overrides=overrides,
            study=name,
            storage=url,
            trials=trials // k + (i < trials % k),
            timeout=timeout,
            seed=_worker_seed(cfg.tune.seed, i, n_before),
            worker=i,
            workers=k,
            gpu=gpus[i % len(gpus)] if gpus else None,
            threads=threads if k > 1 else None,
        )
        for i in range(k)
    ]
    exits = run_jobs(jobs)
    return summarize(the_study, cfg, config, overrides, url, metric.name, exits)


def check_tune(
    cfg: Config, source: str, *, trials: int, workers: int, timeout: float | None
) -> None:
    """Everything about the `tune` section and the options that can be checked without data."""
    import importlib.util

    t, n = cfg.tune, cfg.cv.n_splits
    bad = [f for f in t.metric_folds if not 0 <= f < n]
    if bad:
        raise UserError(
            f"{source}: tune.metric_folds: fold {bad[0]} does not exist (cv.n_splits is {n})"
        )
    if len(set(t.metric_folds)) != len(t.metric_folds):
        raise UserError(f"{source}: tune.metric_folds {t.metric_folds} names a fold twice")
    if t.sampler == "cmaes" and importlib.util.find_spec("cmaes") is None:
        raise UserError(
            f"{source}: tune.sampler = cmaes needs the cmaes package: pip install cmaes "
            "(or use tpe)"
        )
    if t.sampler == "grid":
        grid_of(parse_space(cfg, source), source)
    if trials < 1:
        raise UserError(f"--trials {trials}: give 1 or more")
    if workers < 1:
        raise UserError(f"--workers {workers}: give 1 or more")
    if timeout is not None and timeout <= 0:
        raise UserError(f"--timeout {timeout}: give a number of seconds above 0")


def default_storage(root: Path) -> str:
    """The study's storage when none is given: a SQLite file in the project."""
    return f"sqlite:///{(root / 'optuna.db').resolve()}"


def open_study(
    storage: optuna.storages.RDBStorage, cfg: Config, name: str, metric: Metric
) -> optuna.Study:
    """The study `name` (made on first use); one that scores another way is an error."""
    import optuna

    direction = "maximize" if metric.higher_is_better else "minimize"
    shown = shown_url(storage.url)
    with optuna_quiet():
        study = optuna.create_study(
            study_name=name, storage=storage, direction=direction, load_if_exists=True
        )
    if study.direction.name.lower() != direction:
        raise UserError(
            f"study {name} in {shown} was made to {study.direction.name.lower()}, but "
            f"{metric.name} is to {direction}: use another --study"
        )
    for key, value in {"metric": metric.name, "metric_folds": cfg.tune.metric_folds}.items():
        stored = study.user_attrs.get(key)
        if stored is None:
            study.set_user_attr(key, value)
        elif stored != value:
            raise UserError(
                f"study {name} in {shown} has {key} = {stored}, this config {value}: "
                "their values would not compare; use another --study"
            )
    run = cfg.root / "runs" / trial_run_name(name, len(study.trials))
    if run.exists():
        raise UserError(
            f"{run} exists but is not a trial of study {name} in {shown} (a study of that name "
            "whose storage is gone?): use another --study"
        )
    return study


def run_jobs(jobs: list[TrialJob]) -> list[int]:
    """One job runs here; several run as worker processes. Returns the workers' exit codes."""
    if len(jobs) == 1:
        run_trials(jobs[0])
        return [0]
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=worker_main, args=(job,), daemon=False) for job in jobs]
    console.print(f"{len(procs)} workers, {', '.join(str(j.trials) for j in jobs)} trials each")
    try:
        for p in procs:
            p.start()
        for p in procs:
            p.join()
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
                p.join()
    return [p.exitcode if p.exitcode is not None else -1 for p in procs]


def summarize(
    study: optuna.Study,
    cfg: Config,
    config: Path,
    overrides: list[str],
    url: str,
    metric: str,
    exits: list[int],
) -> TuneResult:
    """The best trial, the importances, plots and the best config of the whole study."""
    import optuna

    shown = shown_url(url)
    with optuna_quiet():
        optuna.storages.fail_stale_trials(study)
    trials = study.get_trials(deepcopy=False)
    for t in trials:
        write_trial_file(cfg.root, study, t, shown)
    counts = dict(Counter(t.state.name.lower() for t in trials))
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    best = best_config = None
    if done:
        bt = study.best_trial
        best = {"number": bt.number, "value": bt.value, "params": bt.params}
        best["run"] = bt.user_attrs.get("run")
        best_config = write_best_config(cfg, config, overrides, bt, study.study_name, metric)
    importances, note = param_importances(study, len(done))
    plots = save_plots(study, cfg.root / "plots", metric, importances is not None) if done else []
    return TuneResult(
        study=study.study_name,
        storage=shown,
        metric=metric,
        direction=study.direction.name.lower(),
        counts=counts,
        best=best,
        importances=importances,
        importance_note=note,
        plots=plots,
        best_config=best_config,
        dashboard=f"optuna-dashboard {shown}",
        worker_exits=exits,
    )


def write_best_config(
    cfg: Config,
    config: Path,
    overrides: list[str],
    best: optuna.trial.FrozenTrial,
    study: str,
    metric: str,
) -> Path:
    """`configs/<study>-best.yaml`: the whole config with the best values, for every fold."""
    best_cfg = load_config(config, [*overrides, *param_overrides(best.params)])
    data = config_to_dict(best_cfg)
    data.pop("tune", None)
    params = ", ".join(f"{k}={short_value(v)}" for k, v in best.params.items())
    path = cfg.root / "configs" / f"{study}-best.yaml"
    header = (
        f"# Best of study {study}: trial {best.number}, {metric} {best.value:.4f} on folds "
        f"{list(cfg.tune.metric_folds)} (run runs/{best.user_attrs.get('run')}).\n"
        f"# Searched: {params}\n"
        f"# Train it on every fold: medalist train {path.relative_to(cfg.root)}\n"
    )
    return write_text(path, header + yaml.safe_dump(data, sort_keys=False))


def param_importances(study: optuna.Study, n_done: int) -> tuple[dict[str, float] | None, str]:
    """Optuna's parameter importances, or None and why not."""
    import optuna

    if n_done < 2:
        return None, f"importances need 2 or more completed trials (the study has {n_done})"
    try:
        with optuna_quiet():
            found = optuna.importance.get_param_importances(study)
    except (ValueError, RuntimeError) as exc:
        return None, f"importances not available ({exc})"
    return {k: float(v) for k, v in found.items()}, ""


def save_plots(study: optuna.Study, folder: Path, metric: str, importances: bool) -> list[Path]:
    """Optimisation history, every trial's learning curve and the importances as PNG files."""
    import functools

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as om

    makers = {
        "history": functools.partial(om.plot_optimization_history, target_name=metric),
        "curves": om.plot_intermediate_values,
    }
    if importances:
        makers["importances"] = functools.partial(om.plot_param_importances, target_name=metric)
    paths = []
    for label, make in makers.items():
        with optuna_quiet():
            fig = make(study).figure
        path = folder / f"{study.study_name}-{label}.png"
        save = functools.partial(fig.savefig, format="png", dpi=110, bbox_inches="tight")
        atomic_write(path, save, mode="wb")
        plt.close(fig)
        paths.append(path)
    return paths


def _visible_gpus() -> list[str]:
    """The GPUs local workers share out, one each in turn."""
    import torch

    n = torch.cuda.device_count()
    if n < 2:
        return []
    listed = [g for g in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if g.strip()]
    return listed[:n] if listed else [str(i) for i in range(n)]


def _worker_seed(seed: int | None, worker: int, n_before: int) -> int | None:
    """A seed per worker and per invocation: workers (and a continued study) don't repeat draws."""
    if seed is None:
        return None
    import numpy as np

    return int(np.random.SeedSequence([seed, worker, n_before]).generate_state(1)[0])
