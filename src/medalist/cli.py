"""The command line: parse, call one workflow, print. Heavy libraries are imported lazily."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from medalist.cli_app import app, quiet_libraries
from medalist.errors import UserError

_quiet_libraries = quiet_libraries  # the name the commands below use


def _fmt(x: float | None) -> str:
    return "-" if x is None or x != x else f"{x:.4f}"


@app.command()
def new(
    dest: Annotated[Path, typer.Argument(help="the project folder to create")],
    data: Annotated[Path, typer.Option("--data", help="the competition's data folder")],
    layout: Annotated[
        str, typer.Option(help="script (src/, scripts/) | notebook | hybrid (both)")
    ] = "script",
) -> None:
    """Make a project folder and a baseline config inferred from the data."""
    from medalist.console import console
    from medalist.workflows.scaffold import create_project, render_report

    report = create_project(dest, data, layout=layout)
    console.print(render_report(report), markup=False)


@app.command()
def folds(
    config: Annotated[Path, typer.Argument(help="config file")],
    overrides: Annotated[list[str] | None, typer.Argument(help="section.key=value")] = None,
) -> None:
    """Write the folds file and print a per-fold table."""
    from medalist.config import load_config
    from medalist.console import console
    from medalist.workflows.train import print_fold_table, run_folds

    cfg = load_config(config, overrides or [])
    path, summary = run_folds(cfg)
    print_fold_table(summary)
    console.print(f"folds written to {path}")


@app.command()
def train(
    config: Annotated[Path | None, typer.Argument(help="config file")] = None,
    overrides: Annotated[list[str] | None, typer.Argument(help="section.key=value ...")] = None,
    name: Annotated[str | None, typer.Option(help="run name (default: config-date-time)")] = None,
    folds: Annotated[str | None, typer.Option(help="folds to train, e.g. 0,2")] = None,
    resume: Annotated[Path | None, typer.Option(help="a run directory to finish")] = None,
    seeds: Annotated[
        int | None, typer.Option(help="repeat with N seeds (folds fixed) to measure seed noise")
    ] = None,
    require_clean: Annotated[
        bool, typer.Option("--require-clean", help="refuse to run on a dirty git tree")
    ] = False,
    merge: Annotated[
        Path | None,
        typer.Option(help="assemble oof.csv and scores.json of a run whose folds ran apart"),
    ] = None,
) -> None:
    """Train one model per fold into a new run directory (or finish one with --resume)."""
    _quiet_libraries()
    from medalist.console import console
    from medalist.workflows.train import train as run_train

    if config is not None and config.is_dir() and resume is None:
        resume, config = config, None
    if config is not None and (resume is not None or merge is not None):
        flag = "--resume" if resume is not None else "--merge"
        raise UserError(
            f"{flag} {resume or merge} keeps the run's own config: drop {config} (and any "
            "section.key=value), or train it as a new run without " + flag
        )
    if merge is not None:
        from medalist.workflows.train import merge_run

        summary = merge_run(merge)
        config, resume = None, None
    extra = list(overrides or [])
    if merge is not None:
        pass
    elif seeds is not None:
        extra.append(f"train.seeds={seeds}")
    if merge is None:
        summary = run_train(
            config, extra, name=name, folds=folds, resume=resume, require_clean=require_clean
        )
    s = summary.scores
    if s:
        console.print(
            f"CV {s['metric']}: {s['mean']:.4f} +- {s['std']:.4f} "
            f"(folds: {', '.join(f'{x:.4f}' for x in s['folds'])})"
        )
        if "seed_scores" in s:
            console.print(
                f"seeds {s['seeds']}: {', '.join(f'{x:.4f}' for x in s['seed_scores'])} "
                f"(mean {s['seed_mean']:.4f}, std {s['seed_std']:.4f})"
            )
    else:
        console.print(f"folds done: {summary.folds_done}; the CV appears when every fold is done")
    console.print(f"run directory: {summary.run.path}")


@app.command()
def predict(
    run: Annotated[Path, typer.Argument(help="run directory")],
    tta: Annotated[
        list[str] | None, typer.Option(help="test-time augmentation: hflip, vflip")
    ] = None,
    smooth: Annotated[
        int | None, typer.Option(help="moving average over W video frames (see medalist smooth)")
    ] = None,
) -> None:
    """Average the folds' predictions on the test set into RUN/submission.csv (checked)."""
    _quiet_libraries()
    from medalist.console import console
    from medalist.workflows.predict import predict as run_predict

    for t in tta or []:
        if t not in ("hflip", "vflip"):
            raise UserError(f"--tta {t!r}: use hflip or vflip")
    result = run_predict(run, tta=tta, smooth=smooth)
    console.print(
        f"submission: {result.path} ({len(result.submission)} rows, checked against the sample)"
    )


@app.command()
def runs(
    project: Annotated[Path, typer.Option(help="project folder")] = Path("."),
    csv: Annotated[bool, typer.Option("--csv", help="print the table as CSV")] = False,
    trials: Annotated[
        bool, typer.Option("--trials", help="list the runs `medalist tune` made too")
    ] = False,
) -> None:
    """List every run of the project: commit, backbone, CV mean +- std, folds done."""
    import pandas as pd
    from rich.table import Table

    from medalist.console import console
    from medalist.runs.rundir import ledger

    if not project.is_dir():
        raise UserError(
            f"--project {project}: no such folder; give the project folder (with runs/)"
        )
    table = ledger(project)
    hidden = 0 if trials else int((table["trial"] != "").sum())
    if hidden:
        table = table[table["trial"] == ""]
    if csv:
        sys.stdout.write(table.to_csv(index=False))
        return
    if table.empty and not hidden:
        console.print(f"no runs under {project / 'runs'}")
        return
    out = Table(title=f"runs in {project.resolve().name}")
    columns = ["name", "date", "commit", "dirty", "backbone", "epochs", "CV", "seeds", "folds"]
    for col in columns + (["trial"] if trials else []):
        out.add_column(col)
    for r in table.itertuples():
        has_cv = r.cv_mean is not None and r.cv_mean == r.cv_mean
        cv = f"{r.metric} {_fmt(r.cv_mean)} +- {_fmt(r.cv_std)}" if has_cv else "-"
        seeds = str(r.seeds) + (f" (sd {_fmt(r.seed_std)})" if r.seeds > 1 else "")
        out.add_row(
            r.name,
            r.date,
            r.commit or "-",
            str(r.dirty),
            r.backbone,
            "-" if pd.isna(r.epochs) else str(r.epochs),
            cv,
            seeds,
            r.folds_done,
            *([r.trial or "-"] if trials else []),
        )
    console.print(out)
    if hidden:
        console.print(f"{hidden} tune trial run(s) not shown: `medalist runs --trials` lists them")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="where to build the demo project")] = Path(
        "medalist-demo"
    ),
) -> None:
    """Build a competition from scikit-learn's digits and run it end to end."""
    _quiet_libraries()
    from medalist.workflows.demo import run_demo

    run_demo(out)


def main() -> None:
    import medalist.commands  # noqa: F401 - registers the commands of every area

    try:
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except UserError as exc:
        from rich.text import Text

        from medalist.console import err_console

        err_console.print(Text.assemble(("error", "red"), f": {exc}"))
        sys.exit(2)
    except (typer.Exit, SystemExit) as exc:
        code = getattr(exc, "exit_code", getattr(exc, "code", 0))
        sys.exit(code)
    except typer.Abort:
        sys.exit(130)
    except Exception as exc:
        # Usage errors (a missing option value, an unknown option): typer's own click copy and
        # click itself both give them show() and an exit code.
        if hasattr(exc, "show") and isinstance(getattr(exc, "exit_code", None), int):
            _usage_error(exc)
        raise


def _usage_error(exc: Exception) -> None:
    """A usage error (an unknown option, a value of the wrong type) in one line, as a UserError
    is; a command group called bare still shows its help."""
    from rich.text import Text

    from medalist.console import err_console

    if type(exc).__name__ == "NoArgsIsHelpError":
        exc.show()
        sys.exit(2)
    ctx = getattr(exc, "ctx", None)
    command = " ".join(["medalist", *(ctx.command_path.split()[1:] if ctx is not None else [])])
    message = " ".join(exc.format_message().split())
    err_console.print(Text.assemble(("error", "red"), f": {message} (see {command} --help)"))
    sys.exit(2)


if __name__ == "__main__":
    main()
