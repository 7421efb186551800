"""`medalist doctor`, `medalist docker`, `medalist cost`: the machine around the model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from medalist.cli_app import app
from medalist.envtools.cost import DEFAULT_EXAMPLE, EXAMPLES
from medalist.errors import UserError

STYLE = {"OK": "green", "WARN": "yellow", "FAIL": "bold red"}


@app.command()
def doctor(
    config_file: Annotated[
        Path | None, typer.Argument(metavar="CONFIG", help="a config (same as --config)")
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="the competition's data folder (size, read speed)")
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="a config: its data, workers and trackers are checked")
    ] = None,
    project: Annotated[Path | None, typer.Option(help="project folder (default: here)")] = None,
) -> None:
    """Check the machine: versions, GPUs, disk, shared memory, CPUs, trackers, credentials,
    and the pretrained weights of the backbones the config (else the project's configs/) names.

    Exit code 1 when something blocks training (a FAIL row).
    """
    from rich.table import Table

    from medalist.console import console
    from medalist.envtools.doctor import blocks_training, doctor_inputs, run_checks

    if config_file is not None and config is not None and config_file != config:
        raise UserError(f"{config_file} and --config {config}: give one config")
    checks = run_checks(doctor_inputs(project, data, config or config_file))
    table = Table(title="medalist doctor")
    for col in ("check", "status", "detail"):
        table.add_column(col)
    for c in checks:
        table.add_row(c.name, f"[{STYLE[c.status]}]{c.status}[/]", c.detail)
    console.print(table)
    if blocks_training(checks):
        console.print("[bold red]Something above blocks training[/]: fix the FAIL rows first.")
        raise typer.Exit(1)


@app.command()
def docker(
    image: Annotated[
        str, typer.Option(help="kaggle (Kaggle's GPU image), ngc (NVIDIA PyTorch) or an image")
    ] = "kaggle",
    out: Annotated[Path, typer.Option(help="the script to write")] = Path("scripts/docker_run.sh"),
    name: Annotated[
        str | None, typer.Option(help="container name (default: medalist-<project>)")
    ] = None,
    shm_size: Annotated[str, typer.Option(help="shared memory for DataLoader workers")] = "8G",
    force: Annotated[bool, typer.Option("--force", help="replace an existing script")] = False,
) -> None:
    """Write a script that runs this project in the Kaggle GPU image (or NGC PyTorch)."""
    from medalist.console import console
    from medalist.envtools.docker import write_docker_script

    path = write_docker_script(out, image, name=name, shm_size=shm_size, force=force)
    console.print(f"wrote {path}; run it from anywhere: {path} (or {path} nvidia-smi)")


@app.command()
def cost(
    hours: Annotated[float | None, typer.Option(help="hours of experiments to price")] = None,
    months: Annotated[float | None, typer.Option(help="months they are spread over")] = None,
    price: Annotated[float | None, typer.Option(help="owned machine: purchase price")] = None,
    power: Annotated[
        float | None, typer.Option(help="owned machine: electricity per 100 hours")
    ] = None,
    hourly: Annotated[float | None, typer.Option(help="hourly cloud: price per hour")] = None,
    monthly: Annotated[float | None, typer.Option(help="monthly cloud: fee per month")] = None,
    monthly_hours: Annotated[
        float | None, typer.Option(help="monthly cloud: hours included per month")
    ] = None,
    currency: Annotated[str | None, typer.Option(help="a label for the amounts")] = None,
    example: Annotated[
        str | None,
        typer.Option(help=f"start from an example's figures: {', '.join(EXAMPLES)}"),
    ] = None,
) -> None:
    """Owned GPU machine against hourly and monthly cloud: cost per 100 hours, break-even.

    Prices are plain numbers in any currency. --hours defaults to 100, --months to 1.
    With no prices it prints the example rtx4060ti-vs-g4dn (yen): a 16 GB RTX 4060 Ti PC at
    250,000 plus 1,000 of power per 100 hours, against AWS g4dn.xlarge at 8,000 per 100 hours.
    """
    from rich.table import Table

    from medalist.console import console
    from medalist.envtools.cost import (
        CostInputs,
        compare_costs,
        example_inputs,
        format_money,
        merge_inputs,
    )

    given = (price, power, hourly, monthly, monthly_hours)
    if example is None and all(v is None for v in given):
        example = DEFAULT_EXAMPLE  # nothing to compare was given: show what the table answers
    base = example_inputs(example) if example else CostInputs()
    inputs = merge_inputs(
        base,
        hours=hours,
        months=months,
        price=price,
        power_per_100h=power,
        hourly_rate=hourly,
        monthly_fee=monthly,
        monthly_hours=monthly_hours,
        currency=currency,
    )
    result = compare_costs(inputs)
    cur = inputs.currency
    table = Table(title=f"{inputs.hours:,.0f} hours of experiments over {inputs.months:g} month(s)")
    for col in ("option", "total", "per 100 h", "how"):
        table.add_column(col)
    for opt in result.options:
        table.add_row(
            opt.name, format_money(opt.total, cur), format_money(opt.per_100h, cur), opt.note
        )
    console.print(table)
    for b in result.break_even:
        console.print(f"break-even, {b.between}: {b.text}")
