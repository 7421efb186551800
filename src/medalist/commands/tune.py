"""`medalist tune`: a hyperparameter search with Optuna over the config's `tune.space`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from medalist.cli_app import app
from medalist.logs import quiet_libraries


@app.command()
def tune(
    config: Annotated[Path, typer.Argument(help="config file with a tune: section")],
    overrides: Annotated[
        list[str] | None, typer.Argument(help="section.key=value for every trial")
    ] = None,
    trials: Annotated[int | None, typer.Option("--trials", help="trials to run now")] = None,
    timeout: Annotated[
        float | None, typer.Option(help="start no trial after this many seconds")
    ] = None,
    study: Annotated[
        str | None, typer.Option(help="study name (default: the config's name)")
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(help="sqlite:///file.db or postgresql://... (default: <project>/optuna.db)"),
    ] = None,
    workers: Annotated[int, typer.Option(help="local worker processes")] = 1,
) -> None:
    """Search the config's tune.space with Optuna; each trial is a run; saves the best config.

    Running it again continues the study. Workers on other machines join it with the same
    --study and a shared --storage.
    """
    quiet_libraries()
    from medalist.console import console, err_console
    from medalist.errors import UserError
    from medalist.workflows.tune import tune as run_tune
    from medalist.workflows.tune_trial import short_value

    if trials is None:
        raise UserError("--trials N: say how many trials to run now, e.g. --trials 20")
    result = run_tune(
        config,
        overrides or [],
        trials=trials,
        timeout=timeout,
        study=study,
        storage=storage,
        workers=workers,
    )
    for i, code in enumerate(result.worker_exits):
        if code != 0:
            err_console.print(
                f"[yellow]warning[/]: worker {i} stopped with exit code {code}; a trial it left "
                "running is failed (and retried) by the heartbeat"
            )
    counts = ", ".join(f"{n} {state}" for state, n in sorted(result.counts.items()))
    console.print()
    console.print(f"study {result.study} ({result.direction} {result.metric}): {counts}")
    console.print(f"storage: {result.storage}")
    if result.best is None:
        console.print("no trial has completed yet: no best config")
    else:
        b = result.best
        console.print(
            f"best: trial {b['number']}, {result.metric} {b['value']:.4f} (run runs/{b['run']})"
        )
        for key, value in b["params"].items():
            console.print(f"  {key} = {short_value(value)}")
    if result.importances:
        shown = ", ".join(f"{k} {v:.2f}" for k, v in result.importances.items())
        console.print(f"importances: {shown}")
    elif result.importance_note:
        console.print(result.importance_note)
    for path in result.plots:
        console.print(f"plot: {path}")
    if result.best_config is not None:
        console.print(f"best config: {result.best_config}")
        console.print(f"next: medalist train {result.best_config}")
    console.print(f"live view: {result.dashboard}  (pip install optuna-dashboard)")
