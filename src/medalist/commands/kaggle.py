"""`medalist package` and `medalist kaggle ...`: ship runs to Kaggle and fetch what comes back."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from medalist.cli_app import app
from medalist.errors import UserError
from medalist.runs import layout

kaggle_app = typer.Typer(
    help="Kaggle over its API: upload the package, push the notebook, submit, fetch scores.",
    no_args_is_help=True,
)
app.add_typer(kaggle_app, name="kaggle")


def _mb(n: int) -> str:
    return f"{n / 2**20:.2f} MB"


@app.command()
def package(
    runs: Annotated[list[Path], typer.Argument(help="run directories (several: an ensemble)")],
    out: Annotated[Path | None, typer.Option(help="folder to write (packages/<slug>)")] = None,
    half: Annotated[bool, typer.Option("--half", help="store weights in half precision")] = False,
    slug: Annotated[str | None, typer.Option(help="dataset slug (<competition>-medalist)")] = None,
    user: Annotated[str | None, typer.Option(help="Kaggle user name (KAGGLE_USERNAME)")] = None,
    title: Annotated[str | None, typer.Option(help="dataset title")] = None,
    license_name: Annotated[str, typer.Option("--license", help="dataset licence")] = "CC0-1.0",
    competition: Annotated[
        str | None, typer.Option(help="competition slug (competition.name)")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="local folder Kaggle mounts as the competition")
    ] = None,
    extra_wheel: Annotated[
        list[str] | None,
        typer.Option(help="a package missing from the Kaggle image (name or .whl); repeat"),
    ] = None,
    weights: Annotated[Path | None, typer.Option(help="JSON of run weights")] = None,
    smooth: Annotated[
        int | None, typer.Option(help="moving average over W video frames (medalist smooth)")
    ] = None,
    smooth_filter: Annotated[
        str | None,
        typer.Option(help="the --smooth filter: mean, gaussian or median; boost for detect"),
    ] = None,
    gpu: Annotated[
        bool | None, typer.Option("--gpu/--no-gpu", help="notebook accelerator (from config)")
    ] = None,
    quick: Annotated[
        bool, typer.Option("--quick/--no-quick", help="the public-test quick path")
    ] = True,
    quick_rows: Annotated[
        int | None, typer.Option(help="quick path when the test set has <= N rows")
    ] = None,
    quick_mode: Annotated[str, typer.Option(help="quick path: sample or one-fold")] = "sample",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace --out")] = False,
    check: Annotated[
        bool, typer.Option("--check", help="run the notebook offline and compare")
    ] = False,
) -> None:
    """Package runs as a Kaggle dataset (weights, configs, wheels) with an offline notebook."""
    from medalist.logs import quiet_libraries

    quiet_libraries()
    from rich.table import Table

    from medalist.console import console
    from medalist.kaggle.package import PackageOptions, create_package

    if len(runs) == 1 and _package_root(runs[0]) is not None:
        if not check:
            raise UserError(f"{runs[0]} is a package: add --check to check it, or give run folders")
        _run_check(_package_root(runs[0]))
        return
    if quick_rows is not None and quick_rows < 0:
        raise UserError(f"--quick-rows {quick_rows}: give a number of rows >= 0")
    opts = PackageOptions(
        out=out,
        user=user,
        slug=slug,
        title=title,
        license_name=license_name,
        competition=competition,
        data_dir=data_dir,
        half=half,
        extra_wheels=extra_wheel or [],
        weights=weights,
        smooth=smooth,
        smooth_filter=smooth_filter,
        gpu=gpu,
        quick=quick,
        quick_rows=quick_rows,
        quick_mode=quick_mode,
        overwrite=overwrite,
    )
    result = create_package(runs, opts)
    table = Table(title="fold weights")
    for col in ("run", "fold", "checkpoint", "packaged"):
        table.add_column(col)
    for f in result.folds:
        table.add_row(f.run, str(f.fold), _mb(f.checkpoint_bytes), _mb(f.packaged_bytes))
    console.print(table)
    total = sum(f.packaged_bytes for f in result.folds) + sum(n for _, n in result.wheels)
    for name, size in result.wheels:
        console.print(f"wheel {name} ({_mb(size)})")
    console.print(f"dataset {result.dataset_id}: {result.dataset_dir} ({_mb(total)})")
    console.print(f"notebook {result.kernel_id}: {result.notebook}")
    _print_quick(result.quick)
    if check:
        _run_check(result.root)
    else:
        console.print(f"prove it offline: medalist package {result.root} --check")


def _print_quick(rule: dict[str, Any]) -> None:
    from medalist.console import console

    if not rule["enabled"]:
        console.print("quick path: off (the notebook always runs the full inference)")
        return
    when = (
        f"the test set has <= {rule['max_rows']} rows"
        if rule["max_rows"] is not None
        else f"the test ids are this public copy's ({rule['public_rows']} rows)"
    )
    console.print(
        f"quick path: when {when}, the notebook writes "
        f"{'the sample submission' if rule['mode'] == 'sample' else 'a one-fold prediction'}; "
        "use --no-quick for a competition scored on an uploaded file"
    )


def _run_check(root: Path) -> None:
    from medalist.console import console
    from medalist.kaggle.check import check_package

    console.print("checking: running the notebook offline in a Kaggle-like folder ...")
    r = check_package(root)
    console.print(f"network: {r.network}", markup=False)
    console.print(
        f"check passed: {r.rows} rows, columns {r.columns}; equal to medalist predict "
        f"(largest difference {r.max_abs_diff:.2g}, allowed {r.atol:g}); quick path: {r.quick}",
        markup=False,
    )
    console.print(f"executed notebook: {r.executed} ({r.seconds:.0f} s)", markup=False)


# ---- medalist kaggle ... ------------------------------------------------------------------------
def _connect() -> Any:
    from medalist.console import err_console
    from medalist.kaggle.api import connect

    warnings: list[str] = []
    k = connect(warnings)
    for w in warnings:
        err_console.print(f"[yellow]warning[/]: {w}", markup=True)
    return k


def _package_root(path: Path) -> Path | None:
    for p in (path, path.parent):
        if (p / "dataset" / "medalist-package.json").is_file():
            return p
    return None


def _manifest(path: Path) -> dict[str, Any] | None:
    from medalist.io import read_json

    root = _package_root(path)
    return read_json(root / "dataset" / "medalist-package.json") if root else None


def _kernel_ref(target: str) -> str:
    path = Path(target)
    if path.exists():
        from medalist.io import read_json
        from medalist.kaggle.api import notebook_folder

        return read_json(notebook_folder(path) / "kernel-metadata.json")["id"]
    if target.count("/") != 1:
        raise UserError(f"{target!r}: give a kernel as user/slug, or a package folder")
    return target


@kaggle_app.command()
def download(
    competition: Annotated[
        str, typer.Argument(metavar="SLUG", help="competition slug (or its kaggle.com URL)")
    ],
    to: Annotated[
        Path | None, typer.Option(help="folder to unzip into (kaggle-data/<slug>)")
    ] = None,
) -> None:
    """Download and unzip a competition's data (its rules must be accepted on kaggle.com)."""
    from medalist.console import console
    from medalist.kaggle.download import competition_slug, download_competition

    slug = competition_slug(competition)
    dest = to or Path("kaggle-data") / slug
    console.print(f"downloading {slug} into {dest} ...", markup=False)
    got = download_competition(slug, dest, _connect())
    names = ", ".join(p.name + ("/" if p.is_dir() else "") for p in got.entries[:8])
    more = f" and {len(got.entries) - 8} more" if len(got.entries) > 8 else ""
    console.print(f"{got.folder}: {names}{more} ({_mb(got.size)})", markup=False)
    console.print(f"next: medalist new PROJECT --data {got.folder}", markup=False)


@kaggle_app.command()
def dataset(
    path: Annotated[Path, typer.Argument(help="package folder (or its dataset/)")],
    notes: Annotated[str | None, typer.Option(help="version notes")] = None,
    public: Annotated[bool, typer.Option("--public", help="make a new dataset public")] = False,
) -> None:
    """Upload the package as a new dataset, or as a new version of it."""
    from medalist.console import console
    from medalist.kaggle.api import dataset_folder, describe_runs, upload_dataset

    folder = dataset_folder(path)
    manifest = _manifest(folder) or {}
    notes = notes or "medalist package: " + describe_runs(
        manifest.get("runs", []), manifest.get("weights")
    )
    console.print(f"uploading {folder} ...")
    up = upload_dataset(_connect(), folder, notes, public=public)
    what = "created" if up.created else "new version of"
    console.print(f"{what} dataset {up.ref}" + (f": {up.url}" if up.url else ""), markup=False)


@kaggle_app.command()
def push(
    path: Annotated[Path, typer.Argument(help="package folder (or its notebook/)")],
    accelerator: Annotated[
        str | None,
        typer.Option(help="Kaggle machine shape (e.g. NvidiaTeslaT4, NvidiaL4x1) or none"),
    ] = None,
) -> None:
    """Push the notebook: Kaggle saves and runs a new version."""
    from medalist.console import console
    from medalist.kaggle.api import notebook_folder, push_notebook

    pushed = push_notebook(_connect(), notebook_folder(path), accelerator)
    version = f" version {pushed.version}" if pushed.version else ""
    console.print(f"pushed {pushed.ref}{version}" + (f": {pushed.url}" if pushed.url else ""))
    console.print(f"follow it: medalist kaggle status {pushed.ref}")


@kaggle_app.command()
def status(
    kernel: Annotated[str, typer.Argument(help="user/slug, or the package folder")],
) -> None:
    """The run status of the notebook on Kaggle."""
    from medalist.console import console
    from medalist.kaggle.api import kernel_status

    ref = _kernel_ref(kernel)
    state, failure = kernel_status(_connect(), ref)
    console.print(f"{ref}: {state}" + (f" ({failure})" if failure else ""), markup=False)
    if state == "complete":
        console.print(f"fetch it: medalist kaggle output {ref}")


@kaggle_app.command()
def output(
    kernel: Annotated[str, typer.Argument(help="user/slug, or the package folder")],
    out: Annotated[Path | None, typer.Option(help="where to save (kaggle-output/<slug>)")] = None,
) -> None:
    """Download the files the notebook's last run wrote, and its log."""
    from medalist.console import console
    from medalist.kaggle.api import kernel_output

    ref = _kernel_ref(kernel)
    dest = out or Path("kaggle-output") / ref.split("/", 1)[1]
    files = kernel_output(_connect(), ref, dest)
    for f in files:
        console.print(f"{f} ({_mb(f.stat().st_size) if f.is_file() else '?'})")
    if not any(f.name == "submission.csv" for f in files):
        console.print("[yellow]warning[/]: no submission.csv among the output", markup=True)


@kaggle_app.command()
def submit(
    target: Annotated[Path, typer.Argument(help="a run (file submission) or a package (code)")],
    file: Annotated[Path | None, typer.Option(help="file to submit (RUN/submission.csv)")] = None,
    version: Annotated[int | None, typer.Option(help="notebook version (code competition)")] = None,
    competition: Annotated[str | None, typer.Option(help="competition slug")] = None,
    message: Annotated[str | None, typer.Option(help="added to the description")] = None,
) -> None:
    """Submit a run's file, or a package's notebook version; the description names run and CV."""
    from medalist.console import console
    from medalist.kaggle.api import describe_runs, submit_code, submit_file

    manifest = _manifest(target)
    if manifest is not None:
        if file is not None:
            raise UserError("--file is for a run; a package submits its notebook's output")
        description = describe_runs(manifest["runs"], manifest["weights"])
        comp = competition or manifest["competition"]
        kernel = manifest["kernel_id"]
    else:
        from medalist.runs.rundir import open_run_dir

        run = open_run_dir(target)
        scores = run.scores() or {}
        description = describe_runs([{"name": run.name, "cv": scores}])
        comp = competition or run.config().competition.name
        if version is not None:
            raise UserError("--version is for a package's notebook; a run submits its file")
    if not comp:
        raise UserError("no competition name: pass --competition SLUG or set competition.name")
    if message:
        description = f"{description} | {message}"
    k = _connect()
    if manifest is not None:
        name = manifest.get("submission_file") or "submission.csv"
        reply = submit_code(k, comp, kernel, version, description, file_name=name)
    else:
        reply = submit_file(k, comp, file or _run_submission(run), description)
    console.print(f"submitted to {comp}: {description}", markup=False)
    console.print(f"Kaggle: {reply}", markup=False)


def _run_submission(run: Any) -> Path:
    """The run's submission.csv, or its submission.zip of mask files where only that (or a
    newer one) was written by `medalist predict`."""
    csv, files = run.file(layout.SUBMISSION), run.file(layout.SUBMISSION_FILES)
    if files.is_file() and (not csv.is_file() or files.stat().st_mtime > csv.stat().st_mtime):
        return files
    return csv


def _competition(competition: str | None, project: Path) -> str:
    from medalist.kaggle.api import find_competition

    name = competition or find_competition(project)
    if not name:
        raise UserError(
            f"no competition name in {project}: pass --competition SLUG or set competition.name"
        )
    return name


@kaggle_app.command()
def submissions(
    competition: Annotated[str | None, typer.Option(help="competition slug")] = None,
    project: Annotated[Path, typer.Option(help="project folder")] = Path("."),
    csv: Annotated[Path | None, typer.Option(help="CSV to write (kaggle/submissions.csv)")] = None,
) -> None:
    """Your submissions and their scores, saved as CSV and imported into the ledger (lb)."""
    from rich.table import Table
    from rich.text import Text

    from medalist.console import console
    from medalist.io import write_csv
    from medalist.kaggle.api import list_submissions

    comp = _competition(competition, project)
    table = list_submissions(_connect(), comp)
    path = csv or project / "kaggle" / "submissions.csv"
    write_csv(path, table)
    out = Table(title=f"submissions to {comp}")
    for col in ("date", "description", "status", "publicScore", "privateScore"):
        out.add_column(col)
    for row in table.itertuples():
        state = row.status.rsplit(".", 1)[-1].lower()
        out.add_row(row.date, Text(row.description), state, row.publicScore, row.privateScore)
    console.print(out)
    console.print(f"{len(table)} submissions written to {path}")
    _import_into_ledger(path, project)


def _import_into_ledger(path: Path, project: Path) -> None:
    """Record the scores in the project's leaderboard ledger (`medalist lb`), where it exists."""
    from medalist.console import console

    try:
        from medalist.runs.leaderboard import import_submissions
    except ImportError:  # a medalist without the ledger
        return
    result = import_submissions(project, path)
    console.print(
        f"ledger: {len(result.matched)} submission(s) matched to runs, "
        f"{len(result.unmatched)} unmatched; see medalist lb"
    )


@kaggle_app.command()
def leaderboard(
    competition: Annotated[str | None, typer.Option(help="competition slug")] = None,
    project: Annotated[Path, typer.Option(help="project folder")] = Path("."),
    top: Annotated[int, typer.Option(help="rows to show")] = 20,
) -> None:
    """The top of the competition's public leaderboard."""
    from rich.table import Table
    from rich.text import Text

    from medalist.console import console
    from medalist.kaggle.api import leaderboard as fetch

    if top < 1:
        raise UserError(f"--top {top}: give the number of rows to show, 1 or more")
    comp = _competition(competition, project)
    table = fetch(_connect(), comp, top)
    out = Table(title=f"{comp} public leaderboard")
    for col in ("rank", "team", "score", "date"):
        out.add_column(col)
    for i, row in enumerate(table.itertuples(), 1):
        out.add_row(str(i), Text(row.teamName), row.score, row.submissionDate)
    console.print(out)
