"""Where a run came from: git commit and dirty state (with the diff), library versions, device."""

from __future__ import annotations

import getpass
import platform
import socket
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

LIBRARIES = (
    "medalist",
    "torch",
    "torchvision",
    "lightning",
    "timm",
    "albumentations",
    "numpy",
    "pandas",
    "scikit-learn",
    "mlflow",
)


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def git_state(root: Path) -> dict[str, Any]:
    """Commit, branch and dirty flag of the repository holding `root` (None outside git)."""
    commit = _git(root, "rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "branch": None, "dirty": None}
    status = _git(root, "status", "--porcelain", "--untracked-files=no") or ""
    branch = (_git(root, "rev-parse", "--abbrev-ref", "HEAD") or "").strip() or None
    return {"commit": commit.strip(), "branch": branch, "dirty": bool(status.strip())}


def git_diff(root: Path) -> str:
    """Uncommitted changes to tracked files, as a patch."""
    return _git(root, "diff", "HEAD", "--binary") or ""


# What a commit of the "code" leaves out even where .gitignore does not say so.
NOT_CODE = ("data", "runs", "folds", ".cache", "mlartifacts", "mlruns.db", "packages", "checks")


def commit_code(root: Path, message: str) -> str:
    """Commit the project's code (tracked changes and new files, never data or runs); its hash."""
    from medalist.errors import UserError

    if git_state(root)["commit"] is None and _git(root, "rev-parse", "--git-dir") is None:
        raise UserError(f"track.commit_before_run: {root} is not a git repository; run git init")
    excluded = [f":(exclude){name}" for name in NOT_CODE]
    if _git(root, "add", "-A", "--", ".", *excluded) is None:
        raise UserError(f"track.commit_before_run: git add failed in {root}")
    staged = _git(root, "diff", "--cached", "--name-only") or ""
    if staged.strip():
        out = subprocess.run(
            [
                "git",
                "-C",
                str(root),
                "-c",
                "user.name=medalist",
                "-c",
                "user.email=medalist@localhost",
                "commit",
                "-q",
                "-m",
                message,
            ],
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            raise UserError(
                f"track.commit_before_run: git commit failed ({out.stderr.strip()[:120]})"
            )
    return (_git(root, "rev-parse", "HEAD") or "").strip()


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def device_info() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": torch.get_num_threads(),
        "cuda": torch.version.cuda,
        "gpus": [],
    }
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            info["gpus"].append({"name": p.name, "memory_gb": round(p.total_memory / 2**30, 1)})
    return info


def collect(root: Path, seeds: dict[str, Any]) -> dict[str, Any]:
    """The provenance record of a run started now from project `root`."""
    return {
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": sys.argv,
        "host": socket.gethostname(),
        "user": getpass.getuser(),
        "git": git_state(root),
        "versions": versions(),
        "device": device_info(),
        "seeds": seeds,
    }
