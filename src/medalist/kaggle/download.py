"""A competition's data, fetched and unzipped by the `kaggle` package: `medalist kaggle download
SLUG` into a folder, and `medalist new DIR --competition SLUG` into the new project's data/.

Kaggle serves the data only to an account that has accepted the competition's rules; it answers
HTTP 403 otherwise, which becomes one line saying so. An interrupted download leaves the
client's partial zip, which the same command resumes.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from medalist.errors import UserError

if TYPE_CHECKING:
    from medalist.kaggle.api import Kaggle
    from medalist.workflows.scaffold import ProjectReport

SLUG = re.compile(r"[a-z0-9][a-z0-9-]*")
URL = re.compile(r"(?:https?://)?(?:www\.)?kaggle\.com/(?:c|competitions)/([^/?#]+)[/?#]?.*")


@dataclass
class Download:
    """What `download_competition` fetched: the competition and the folder it unzipped into."""

    slug: str
    folder: Path
    entries: list[Path]  # the folder's top-level files and folders
    size: int  # bytes, every file under the folder


def competition_slug(text: str) -> str:
    """The competition's slug, from the slug itself or its kaggle.com address."""
    found = URL.fullmatch(text.strip())
    slug = found.group(1) if found else text.strip()
    if not SLUG.fullmatch(slug):
        raise UserError(
            f"competition {text!r}: not a Kaggle competition name; give the last part of its "
            "address, e.g. titanic for kaggle.com/competitions/titanic"
        )
    return slug


def download_competition(slug: str, to: Path, k: Kaggle | None = None) -> Download:
    """Fetch the competition's zip into `to` (absent, empty, or holding an interrupted
    download of it) and unzip it there."""
    slug = competition_slug(slug)
    to = Path(to).expanduser()
    _check_folder(to, slug)
    if k is None:
        k = _connect()
    # A refusal comes before the client makes the folder; a broken download leaves its partial.
    with k.calling(f"download the data of {slug}"), _rules_accepted(k, slug):
        k.api.competition_download_files(
            slug, path=str(to), quiet=not sys.stderr.isatty(), unzip=True
        )
    entries = sorted(to.iterdir())
    size = sum(f.stat().st_size for f in to.rglob("*") if f.is_file())
    return Download(slug, to, entries, size)


def _connect() -> Kaggle:
    from medalist.console import err_console
    from medalist.kaggle.api import connect

    warnings: list[str] = []
    k = connect(warnings)
    for w in warnings:  # e.g. a kaggle.json others can read
        err_console.print(f"[yellow]warning[/]: {w}", markup=True)
    return k


def _check_folder(to: Path, slug: str) -> None:
    if to.exists() and not to.is_dir():
        raise UserError(f"--to {to} is a file: give a new or empty folder")
    partial = {f"{slug}.zip", f"{slug}.zip.kaggle-partial"}  # the client resumes these
    others = [p.name for p in to.iterdir() if p.name not in partial] if to.is_dir() else []
    if others:
        raise UserError(
            f"--to {to} is not empty ({', '.join(sorted(others)[:3])}...): the archive would "
            "overwrite files there; give a new or empty folder"
        )


@contextlib.contextmanager
def _rules_accepted(k: Kaggle, slug: str) -> Iterator[None]:
    """Kaggle's 403 on a competition's data means its rules were not accepted: say that."""
    import requests

    from medalist.kaggle.api import server_message
    from medalist.kaggle.credentials import redact

    try:
        yield
    except requests.HTTPError as exc:
        if exc.response is None or exc.response.status_code != 403:
            raise
        text = redact(server_message(exc), (k.credentials.key,))
        raise UserError(
            f"Kaggle refused the data of {slug}: {text} (HTTP 403); accept the competition's "
            f"rules first at https://www.kaggle.com/competitions/{slug}/rules, signed in as "
            f"{k.credentials.username or 'the account of your key'}"
        ) from None


def create_competition_project(
    dest: Path,
    slug: str,
    *,
    layout: str = "script",
    k: Kaggle | None = None,
    train_csv: str | None = None,
) -> ProjectReport:
    """`medalist new DEST --competition SLUG`: the data downloaded into DEST/data, the config
    inferred from it, competition.name set to the slug."""
    from medalist.workflows.scaffold import create_project

    slug = competition_slug(slug)
    dest = Path(dest).expanduser().absolute()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UserError(
            f"{dest} already exists and is not empty: medalist new never overwrites; "
            "choose a new or empty project folder"
        )
    # Beside the project, so that create_project finds an empty folder and links data/ to it;
    # the download then moves into the project, where the config's data/ paths already point.
    staging = dest.parent / f".{dest.name}.{slug}.download"
    if not _holds_data(staging, slug):
        download_competition(slug, staging, k)
    try:
        report = create_project(dest, staging, name=slug, layout=layout, train_csv=train_csv)
    except UserError as exc:
        raise UserError(f"{exc} (the download is kept in {staging})") from None
    if report.data_linked:
        _move_into(report, staging, slug)
    return report


def _holds_data(folder: Path, slug: str) -> bool:
    """True when `folder` holds an earlier, complete download (a failed `new` kept it)."""
    partial = {f"{slug}.zip", f"{slug}.zip.kaggle-partial"}
    return folder.is_dir() and any(p.name not in partial for p in folder.iterdir())


def _move_into(report: ProjectReport, staging: Path, slug: str) -> None:
    """Replace the project's data/ link by the downloaded folder itself, and say so in the
    project's readme (it was written about the link)."""
    staged = staging.resolve()
    data = report.root / "data"
    data.unlink()
    staging.rename(data)
    readme = report.root / "readme.md"
    if readme.is_file():
        text = readme.read_text()
        text = text.replace(f"a link to `{staged}`", "the competition's data from Kaggle")
        text = text.replace(f"from `{staged}`", f"from the Kaggle competition `{slug}`")
        readme.write_text(text)
    report.data_dir = data
