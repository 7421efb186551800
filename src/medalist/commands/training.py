"""The core loop: `medalist folds`, `medalist train` (one model per fold), `medalist predict`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from medalist.cli_app import app
from medalist.errors import UserError
from medalist.logs import quiet_libraries


def print_group_cv(metric: str, g: dict) -> None:
    """The CV a submission with a row per group is scored by (`competition.submission_by`)."""
    from rich.markup import escape

    from medalist.console import console

    console.print(
        escape(
            f"CV {metric} per {g['by']} (the submission's rows: {g['groups']} groups, "
            f"{g['reduce']} of their images): {g['mean']:.4f} +- {g['std']:.4f} "
            f"(folds: {', '.join(f'{x:.4f}' for x in g['folds'])})"
        )
    )
    if g["groups_in_several_folds"]:
        console.print(
            escape(
                f"warning: {g['groups_in_several_folds']} of the groups have images in several "
                "folds, so a model saw a sibling of the image it scored and this CV is "
                "optimistic: set cv.scheme: group and competition.group_column to the group's "
                "column"
            ),
            style="yellow",
        )


@app.command()
def folds(
    config: Annotated[Path, typer.Argument(help="config file")],
    overrides: Annotated[list[str] | None, typer.Argument(help="section.key=value")] = None,
) -> None:
    """Write the folds file and print a per-fold table."""
    from medalist.config import load_config
    from medalist.console import console
    from medalist.workflows.folds import print_fold_table, run_folds

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
    exclude: Annotated[
        Path | None,
        typer.Option(help="train without the rows of this CSV's id column (medalist labels)"),
    ] = None,
) -> None:
    """Train one model per fold into a new run directory (or finish one with --resume)."""
    quiet_libraries()
    from medalist.console import console
    from medalist.workflows.train import merge_run
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
        if exclude is not None:
            raise UserError("--merge assembles folds already trained: drop --exclude")
        summary = merge_run(merge)
    else:
        extra = list(overrides or [])
        if seeds is not None:
            extra.append(f"train.seeds={seeds}")
        summary = run_train(
            config,
            extra,
            name=name,
            folds=folds,
            resume=resume,
            require_clean=require_clean,
            exclude=exclude,
        )
    s = summary.scores
    if s:
        console.print(
            f"CV {s['metric']}: {s['mean']:.4f} +- {s['std']:.4f} "
            f"(folds: {', '.join(f'{x:.4f}' for x in s['folds'])})"
        )
        if "by_group" in s:
            print_group_cv(s["metric"], s["by_group"])
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
    smooth_filter: Annotated[
        str | None,
        typer.Option(help="the --smooth filter: mean, gaussian or median; boost for detect"),
    ] = None,
) -> None:
    """Average the folds' predictions on the test set into RUN/submission.csv (checked)."""
    quiet_libraries()
    from medalist.console import console
    from medalist.workflows.predict import predict as run_predict

    for t in tta or []:
        if t not in ("hflip", "vflip"):
            raise UserError(f"--tta {t!r}: use hflip or vflip")
    result = run_predict(run, tta=tta, smooth=smooth, smooth_filter=smooth_filter)
    console.print(
        f"submission: {result.path} ({len(result.submission)} rows, checked against the sample)"
    )
    scored = result.run.config().predict.tta
    if tta is not None and result.run.ensemble() is None and sorted(tta) != sorted(scored):
        from rich.markup import escape

        wanted = escape(f"[{', '.join(tta)}]")
        console.print(
            f"note: the CV was scored with {tta_views(scored)}, this submission with "
            f"{tta_views(tta)}; set predict.tta: {wanted} in the config and train again to "
            "score it"
        )


def tta_views(views: list[str]) -> str:
    return f"TTA {', '.join(views)}" if views else "no TTA"
