"""Kaggle over the `kaggle` package's API: upload the package, push the notebook, submit, fetch.

`import kaggle` authenticates when imported and touches the config folder, so it happens only
inside `connect()`, after `find_credentials` has said the credentials exist. Every refusal of the
server (HTTP 4xx) becomes a UserError with the server's own message; the key is scrubbed from
any text shown.

`MEDALIST_KAGGLE_ENDPOINT` (with `KAGGLE_API_ENVIRONMENT=LOCALHOST`, set before the import)
points the client at another server, e.g. the fake one the tests run on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from medalist.errors import UserError
from medalist.io import read_json, write_json
from medalist.kaggle.credentials import Credentials, find_credentials, redact

SUBMISSION_COLUMNS = [
    "ref",
    "fileName",
    "date",
    "description",
    "status",
    "publicScore",
    "privateScore",
]
LEADERBOARD_COLUMNS = ["teamId", "teamName", "submissionDate", "score"]


@dataclass
class Kaggle:
    """An authenticated KaggleApi and the credentials it uses."""

    api: Any
    credentials: Credentials

    @contextlib.contextmanager
    def calling(self, action: str) -> Iterator[None]:
        """Turn the client's failures while doing `action` into one-line UserErrors."""
        import requests

        secrets = (self.credentials.key,)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                yield
        except requests.HTTPError as exc:
            code = exc.response.status_code if exc.response is not None else "?"
            text = redact(server_message(exc), secrets)
            hint = " (check KAGGLE_USERNAME/KAGGLE_KEY or kaggle.json)" if code == 401 else ""
            raise UserError(f"Kaggle refused to {action}: {text} (HTTP {code}){hint}") from None
        except requests.ConnectionError:
            raise UserError(f"could not reach Kaggle to {action}: check the network") from None
        except ValueError as exc:  # the client's own checks of folders and metadata
            raise UserError(f"{action}: {redact(str(exc), secrets)}") from None


def server_message(exc: Any) -> str:
    """The message a Kaggle error response carries (JSON "message"), else the HTTP reason."""
    response = getattr(exc, "response", None)
    if response is not None:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("message"):
            return str(body["message"])
        if response.text and len(response.text) < 300:
            return response.text.strip()
    return str(exc).splitlines()[0] if str(exc) else "no message"


def _use_endpoint_override() -> None:
    url = os.environ.get("MEDALIST_KAGGLE_ENDPOINT")
    if url and os.environ.get("KAGGLE_API_ENVIRONMENT") == "LOCALHOST":
        from kagglesdk import kaggle_env

        kaggle_env._env_to_endpoint[kaggle_env.KaggleEnv.LOCAL] = url.rstrip("/")


def connect(warnings: list[str] | None = None) -> Kaggle:
    """An authenticated client; a UserError saying how to add credentials when there are none."""
    credentials = find_credentials(warnings=warnings)
    _use_endpoint_override()
    with contextlib.redirect_stdout(io.StringIO()):
        import kaggle  # noqa: F401 - authenticates on import
        from kaggle.api.kaggle_api_extended import KaggleApi

    # The client's verbose mode prints request headers, the Authorization header among them.
    KaggleApi.args = [a for a in KaggleApi.args if a not in ("--verbose", "-v")]
    api = KaggleApi()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            api.authenticate()
    except SystemExit:
        raise UserError("the kaggle package found no usable credentials: see kaggle.json") from None
    return Kaggle(api, credentials)


# ---- datasets -----------------------------------------------------------------------------------
@dataclass
class DatasetUpload:
    ref: str
    url: str | None
    created: bool


def dataset_folder(path: Path) -> Path:
    """The folder to upload: `path` itself, or `path/dataset` for a package folder."""
    for folder in (path / "dataset", path):
        if (folder / "dataset-metadata.json").is_file():
            return folder
    raise UserError(f"{path} has no dataset-metadata.json: give a folder from medalist package")


def upload_dataset(k: Kaggle, folder: Path, notes: str, *, public: bool = False) -> DatasetUpload:
    """Create the dataset of `folder`, or a new version when it exists (subfolders as zips)."""
    ref = read_json(folder / "dataset-metadata.json").get("id", "")
    with k.calling(f"look up dataset {ref}"):
        exists = _dataset_exists(k.api, ref)
    with k.calling(f"upload dataset {ref}"):
        if exists:
            resp = k.api.dataset_create_version(
                str(folder), notes, quiet=True, dir_mode="zip", convert_to_csv=False
            )
        else:
            resp = k.api.dataset_create_new(
                str(folder), public=public, quiet=True, dir_mode="zip", convert_to_csv=False
            )
    if getattr(resp, "error", None):
        raise UserError(f"Kaggle refused dataset {ref}: {redact(resp.error, (k.credentials.key,))}")
    return DatasetUpload(getattr(resp, "ref", None) or ref, getattr(resp, "url", None), not exists)


def _dataset_exists(api: Any, ref: str) -> bool:
    from requests import HTTPError

    try:
        api.dataset_status(ref)
    except HTTPError as exc:
        if exc.response is not None and exc.response.status_code == 404:
            return False
        raise
    return True


# ---- kernels ------------------------------------------------------------------------------------
@dataclass
class KernelPush:
    ref: str
    url: str | None
    version: int | None


def notebook_folder(path: Path) -> Path:
    """The folder to push: `path` itself, or `path/notebook` for a package folder."""
    for folder in (path / "notebook", path):
        if (folder / "kernel-metadata.json").is_file():
            return folder
    raise UserError(f"{path} has no kernel-metadata.json: give a folder from medalist package")


def push_notebook(k: Kaggle, folder: Path, accelerator: str | None = None) -> KernelPush:
    """Push (save and run) the notebook; `accelerator` is a Kaggle machine shape, or "none"."""
    meta = read_json(folder / "kernel-metadata.json")
    with tempfile.TemporaryDirectory(prefix="medalist-push-") as tmp:
        if accelerator and accelerator.lower() in ("none", "cpu"):
            shutil.copytree(folder, tmp, dirs_exist_ok=True)
            write_json(Path(tmp) / "kernel-metadata.json", {**meta, "enable_gpu": False})
            folder, accelerator = Path(tmp), None
        with k.calling(f"push notebook {meta.get('id')}"):
            resp = k.api.kernels_push(str(folder), acc=accelerator)
    invalid = [
        f"{what} {', '.join(items)}"
        for what, items in (
            ("dataset", getattr(resp, "invalid_dataset_sources", None)),
            ("competition", getattr(resp, "invalid_competition_sources", None)),
        )
        if items
    ]
    if getattr(resp, "error", None) or invalid:
        why = resp.error or "unknown sources: " + "; ".join(invalid)
        raise UserError(f"Kaggle refused notebook {meta.get('id')}: {why}")
    return KernelPush(meta["id"], resp.url, resp.version_number)


def kernel_status(k: Kaggle, ref: str) -> tuple[str, str | None]:
    """The kernel's run status (queued, running, complete, error...) and its failure message."""
    with k.calling(f"get the status of {ref}"):
        resp = k.api.kernels_status(ref)
    status = getattr(resp.status, "name", str(resp.status)).lower()
    return status, resp.failure_message or None


def kernel_output(k: Kaggle, ref: str, dest: Path) -> list[Path]:
    """Download the files the kernel's last run wrote (and its log) into `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    with k.calling(f"download the output of {ref}"):
        files, _ = k.api.kernels_output(ref, str(dest), force=True, quiet=True)
    return [Path(f) for f in files]


# ---- competitions -------------------------------------------------------------------------------
def submit_file(k: Kaggle, competition: str, path: Path, message: str) -> str:
    """Upload a submission file; the server's reply."""
    if not path.is_file():
        raise UserError(f"submission file {path} not found: run medalist predict first")
    with k.calling(f"submit {path.name} to {competition}"):
        resp = k.api.competition_submit(str(path), message, competition, quiet=True)
    if resp.message == k.api.COMPETITION_SUBMIT_UPLOAD_FAILED_MESSAGE:
        raise UserError(f"the upload of {path} to {competition} failed: try again")
    return resp.message or "submitted"


def submit_code(
    k: Kaggle,
    competition: str,
    kernel: str,
    version: int | None,
    message: str,
    file_name: str = "submission.csv",
) -> str:
    """Submit a notebook version's output file to a code competition; the server's reply."""
    with k.calling(f"submit notebook {kernel} to {competition}"):
        resp = k.api.competition_submit_code(
            file_name, message, competition, kernel=kernel, kernel_version=version, quiet=True
        )
    return resp.message or "submitted"


def _field(item: Any, name: str) -> str:
    import re

    value = getattr(item, re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower(), None)
    return "" if value is None else str(value)


def list_submissions(k: Kaggle, competition: str) -> pd.DataFrame:
    """The user's submissions, in the columns `kaggle competitions submissions -v` writes."""
    with k.calling(f"list the submissions to {competition}"):
        items = k.api.competition_submissions(competition) or []
    return pd.DataFrame(
        [[_field(i, c) for c in SUBMISSION_COLUMNS] for i in items], columns=SUBMISSION_COLUMNS
    )


def leaderboard(k: Kaggle, competition: str, top: int = 20) -> pd.DataFrame:
    """The top of the public leaderboard."""
    with k.calling(f"read the leaderboard of {competition}"):
        items = k.api.competition_leaderboard_view(competition, page_size=top) or []
    return pd.DataFrame(
        [[_field(i, c) for c in LEADERBOARD_COLUMNS] for i in items], columns=LEADERBOARD_COLUMNS
    )


# ---- what a submission says ---------------------------------------------------------------------
def describe_runs(entries: list[dict[str, Any]], weights: dict[str, float] | None = None) -> str:
    """ "base: CV accuracy 0.9123 +- 0.0100", one part per run: the submission's description."""
    parts = []
    for e in entries:
        cv = e.get("cv") or {}
        score = (
            f"CV {cv['metric']} {cv['mean']:.4f} +- {cv['std']:.4f}"
            if cv.get("mean") is not None
            else "CV unknown"
        )
        w = f" x{weights[e['name']]:.2f}" if weights and len(entries) > 1 else ""
        parts.append(f"{e['name']}{w}: {score}")
    return "; ".join(parts)


def find_competition(project: Path) -> str | None:
    """competition.name from the project's runs, configs or packages (the newest first)."""
    import yaml

    found = [
        *sorted((project / "runs").glob("*/config.yaml"), key=_mtime, reverse=True),
        *sorted((project / "configs").glob("*.yaml"), key=_mtime, reverse=True),
    ]
    for path in found:
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        name = (data.get("competition") or {}).get("name") if isinstance(data, dict) else None
        if name:
            return str(name)
    for path in sorted((project / "packages").glob("*/dataset/medalist-package.json")):
        return str(read_json(path)["competition"])
    return None


def _mtime(path: Path) -> float:
    return path.stat().st_mtime
