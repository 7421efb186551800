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
