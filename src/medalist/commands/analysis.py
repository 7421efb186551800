"""Commands that look at what a model is doing: `medalist check` and `medalist report`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from medalist.cli_app import app
from medalist.logs import quiet_libraries


@app.command()
def check(
    config: Annotated[Path, typer.Argument(help="config file")],
    overrides: Annotated[list[str] | None, typer.Argument(help="section.key=value ...")] = None,
    images: Annotated[int, typer.Option(help="how many images to memorise")] = 8,
    steps: Annotated[int, typer.Option(help="most training steps before FAIL")] = 300,
    threshold: Annotated[
        float, typer.Option(help="PASS when the loss stays at or below (detection: by its boxes)")
    ] = 0.05,
) -> None:
    """Sanity check: train on one small batch until the loss is near zero (PASS) or not (FAIL).

    A pipeline that can't overfit a handful of images has a bug. A detector passes when its
    boxes of the batch match every true box at IoU 0.5 (its loss never nears 0). Also draws the
    augmented training inputs as the model sees them (plots/input_batch.png). Exit 1 on FAIL.
    """
    from medalist.config import load_config
    from medalist.errors import UserError

    if images < 1:
        raise UserError(f"--images {images}: give 1 or more images to memorise")
    if steps < 3:
        raise UserError(f"--steps {steps}: give at least 3 steps")
    if not threshold > 0:
        raise UserError(f"--threshold {threshold}: give a loss above 0, e.g. 0.05")
    load_config(config, overrides or [])  # fail fast on a bad config, before torch loads
    quiet_libraries()
    from medalist.console import console
    from medalist.workflows.check import run_check, trajectory

    result = run_check(
        config, overrides or [], n_images=images, max_steps=steps, threshold=threshold
    )
    console.print(f"training on {result.n_images} images, one batch, no augmentation:")
    for step, loss in trajectory(result.losses):
        console.print(f"  step {step:>4}  loss {loss:.4f}")
    verdict = "[bold green]PASS[/]" if result.passed else "[bold red]FAIL[/]"
    console.print(f"{verdict}: {result.reason}")
    console.print(f"inputs as the model sees them: {result.input_batch}")
    console.print(f"check written to {result.out_dir} ({result.seconds:.1f}s)")
    if not result.passed:
        raise SystemExit(1)  # cli.main passes SystemExit codes through (typer.Exit is swallowed)


@app.command()
def report(
    runs: Annotated[list[Path], typer.Argument(help="one run directory, or several to compare")],
    out: Annotated[Path | None, typer.Option(help="write the HTML here instead")] = None,
) -> None:
    """One self-contained HTML page (opens from disk): verdicts, plots, error analysis, config.

    With several runs it is a comparison: config differences, per-fold scores, overlaid curves.
    """
    quiet_libraries()
    from medalist.analysis.report import write_report
    from medalist.console import console

    path = write_report(runs, out)
    console.print(f"report: {path}")
