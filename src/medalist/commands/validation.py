"""Validation you can trust: `leak`, `compare`, `lb`, `select`, `review`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from medalist.cli_app import app
from medalist.commands._format import fmt
from medalist.errors import UserError
from medalist.runs import layout

ProjectOpt = Annotated[Path, typer.Option("--project", help="project folder")]


def _resolve_run(text: str, project: Path) -> Path:
    """A run given as a directory (runs/base) or as a name under <project>/runs."""
    as_path = Path(text)
    if (as_path / layout.CONFIG).is_file():
        return as_path
    named = project / "runs" / text
    if (named / layout.CONFIG).is_file():
        return named
    raise UserError(
        f"run {text!r} not found: give a run directory (runs/<name>) or a run name under "
        f"{project / 'runs'} (see medalist runs)"
    )


@app.command()
def leak(
    config: Annotated[Path, typer.Argument(help="config file")],
    overrides: Annotated[list[str] | None, typer.Argument(help="section.key=value")] = None,
    threshold: Annotated[
        float | None,
        typer.Option(help="max distance of a duplicate (0 = same picture); default: from the data"),
    ] = None,
    embeddings: Annotated[
        bool, typer.Option("--embeddings", help="also compare backbone embeddings (cosine)")
    ] = False,
    embed_similarity: Annotated[
        float, typer.Option(help="min cosine similarity of embeddings for --embeddings")
    ] = 0.97,
    merge_group: Annotated[
        str | None, typer.Option(help="join dup groups with this train column (e.g. patient)")
    ] = None,
) -> None:
    """Find near-duplicate images within train (across folds) and between train and test."""
    from medalist.config import load_config
    from medalist.console import console, err_console, progress
    from medalist.workflows.leak import find_leaks

    cfg = load_config(config, overrides or [])
    with progress("hashing images", None) as advance:
        report = find_leaks(
            cfg,
            threshold=threshold,
            embeddings=embeddings,
            embed_similarity=embed_similarity,
            merge_group=merge_group,
            progress=advance,
        )
    c = report.counts
    if report.folds_note:
        err_console.print(f"[yellow]warning[/]: {report.folds_note}")
    console.print(
        f"{c['pairs']} near-duplicate pair(s) at distance <= {report.threshold}: "
        f"{c['train_train']} within train ({c['cross_fold']} across folds, {c['same_fold']} in "
        f"one fold), {c['train_test']} train-test, {c['test_test']} within test"
    )
    console.print(
        f"{c['dup_groups']} duplicate group(s) covering {c['rows_in_dup_groups']} of "
        f"{c['train_images']} training images"
    )
    console.print(report.threshold_note, markup=False)
    for path in report.files.values():
        console.print(f"written: {path}")
    for line in report.grouping.lines(cfg.cv.scheme) if report.grouping else []:
        console.print(line, markup=False)  # groupings the user did not name (data/groups.py)
    if c["cross_fold"]:
        console.print(
            "duplicates cross your folds, so the CV is optimistic. Next: keep each group in one "
            f"fold with\n  medalist folds {config} {report.next_step()}\n"
            "(or put those keys in the config and train as usual)"
        )
    else:
        console.print(f"to make group folds from the duplicate groups: {report.next_step()}")


@app.command()
def compare(
    run_a: Annotated[str, typer.Argument(help="the reference run (directory or name)")],
    run_b: Annotated[str, typer.Argument(help="the run to judge against it")],
    project: ProjectOpt = Path("."),
) -> None:
    """What changed between two runs, the per-fold difference, and whether B beats noise."""
    from rich.table import Table

    from medalist.analysis.compare import METHOD, compare_runs
    from medalist.console import console

    c = compare_runs(_resolve_run(run_a, project), _resolve_run(run_b, project))
    if not c.changes:
        console.print("config: identical")
    else:
        console.print(f"config: {len(c.changes)} key(s) differ")
        for key, a, b in c.changes:
            console.print(f"  {key}: {a!r} -> {b!r}", markup=False)
    if c.several_changes:
        console.print(
            f"[yellow]note[/]: {len(c.training_changes)} training keys changed at once; the "
            "verdict cannot say which one did it"
        )
    table = Table(title=f"{c.metric} per fold ({'higher' if c.higher_is_better else 'lower'} "
                  "is better)")  # fmt: skip
    for col in ("fold", c.name_a, c.name_b, "B better by"):
        table.add_column(col, justify="right")
    for k, (a, b, d) in enumerate(zip(c.folds_a, c.folds_b, c.diffs, strict=False)):
        table.add_row(str(k), fmt(a), fmt(b), f"{d:+.4f}")
    table.add_row("mean", fmt(c.mean_a), fmt(c.mean_b), f"{c.mean_diff:+.4f}")
    console.print(table)
    console.print(
        f"mean difference {c.mean_diff:+.4f} +- {fmt(c.std_error)} (standard error); "
        f"{'; '.join(c.reasons)}; sign test p = {fmt(c.sign_p, 3)}"
    )
    console.print(f"verdict: [bold]{c.name_b} is {c.verdict}[/]" + (
        "" if c.verdict == "within noise" else f" than {c.name_a}"))  # fmt: skip
    console.print(METHOD, style="dim")


@app.command()
def lb(
    run: Annotated[str | None, typer.Argument(help="run directory or name")] = None,
    score: Annotated[float | None, typer.Argument(help="its leaderboard score")] = None,
    private: Annotated[bool, typer.Option("--private", help="SCORE is the private LB")] = False,
    comment: Annotated[str | None, typer.Option(help="a note kept with the score")] = None,
    import_csv: Annotated[
        Path | None,
        typer.Option("--import", help="CSV from `kaggle competitions submissions -v`"),
    ] = None,
    project: ProjectOpt = Path("."),
) -> None:
    """Record a leaderboard score, import Kaggle's list, or show CV against LB."""
    from medalist.console import console
    from medalist.runs.leaderboard import import_submissions, record_score

    if not project.is_dir():
        raise UserError(
            f"--project {project}: no such folder; give the project folder (with runs/)"
        )
    if import_csv is not None:
        if run is not None:
            raise UserError("--import reads scores from the file: drop RUN and SCORE")
        result = import_submissions(project, import_csv)
        console.print(f"matched {len(result.matched)} submission(s) to runs")
        for name, desc in result.matched:
            console.print(f"  {name} <- {desc!r}", markup=False)
        if result.unmatched:
            console.print(
                f"{len(result.unmatched)} submission(s) name no run in the description "
                f"(first: {result.unmatched[0]!r}); put the run name in the message"
            )
        if result.skipped:
            console.print(f"{len(result.skipped)} skipped (not complete or no score)")
    elif run is not None:
        if score is None:
            raise UserError(f"medalist lb {run}: give the SCORE too, e.g. medalist lb {run} 0.81")
        path = _resolve_run(run, project) if Path(run).is_dir() else None
        proj, name = (path.parent.parent, path.name) if path else (project, run)
        record_score(proj, name, score, private=private, comment=comment)
        console.print(f"recorded {'private' if private else 'public'} LB {score} for {name}")
        project = proj
    _print_lb(project)


def _print_lb(project: Path) -> None:
    from rich.table import Table

    from medalist.console import console
    from medalist.workflows.select import lb_summary

    s = lb_summary(project)
    if s.table.empty:
        console.print(f"no leaderboard scores in {project / 'leaderboard.csv'} yet")
        return
    out = Table(title="CV against leaderboard")
    for col in ("run", f"CV ({s.metric})", "public", "private", "comment"):
        out.add_column(col)
    for r in s.table.itertuples():
        out.add_row(r.run, fmt(r.cv), fmt(r.public), fmt(r.private), r.comment or "")
    console.print(out)
    for label, corr in (("public", s.public), ("private", s.private)):
        if corr["n"]:
            console.print(
                f"CV vs {label} LB: Pearson {fmt(corr['pearson'], 2)}, Spearman "
                f"{fmt(corr['spearman'], 2)} over {corr['n']} run(s)"
                + (" (3 or more needed)" if corr["n"] < 3 else "")
            )
    if s.plot is not None:
        console.print(f"plot: {s.plot}")


@app.command()
def select(project: ProjectOpt = Path(".")) -> None:
    """Recommend the two final submissions, and say why."""
    from medalist.console import console
    from medalist.workflows.select import select_final

    sel = select_final(project)
    console.print(sel.rule, style="dim")
    a = sel.agreement
    if a["n"]:
        console.print(
            f"CV vs public LB: Spearman {fmt(a['spearman'], 2)}, Pearson "
            f"{fmt(a['pearson'], 2)} over {a['n']} run(s) -> "
            + ("poor agreement: hedging" if sel.poor_agreement else "trusting CV")
        )
    for note in sel.notes:
        console.print(f"note: {note}")
    for k, p in enumerate(sel.picks, 1):
        flag = "" if p.reproducible else f"  [red]NOT reproducible[/]: {p.missing}"
        console.print(
            f"{k}. [bold]{p.run}[/]: {p.reason} (CV {fmt(p.cv)}, public {fmt(p.public)}){flag}"
        )


@app.command()
def review(project: ProjectOpt = Path(".")) -> None:
    """Write <project>/review.md: timeline, what helped beyond noise, CV vs LB, final choice."""
    from medalist.console import console
    from medalist.workflows.review import write_review

    result = write_review(project)
    console.print(f"review written: {result.path}")
