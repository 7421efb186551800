"""Kaggle credentials: KAGGLE_USERNAME/KAGGLE_KEY, else kaggle.json, found without `import kaggle`.

The key is kept out of every repr, message and file medalist writes; `redact` scrubs it from any
text that came back from a library before it is shown.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path

from medalist.errors import UserError

TOKEN_PAGE = "kaggle.com/settings (API, Create New Token)"


@dataclass(frozen=True)
class Credentials:
    """A Kaggle user name and API key, and where they were found."""

    username: str
    key: str = field(repr=False)
    source: str = "environment"

    def __str__(self) -> str:
        return f"{self.username} (from {self.source})"


def kaggle_config_dir() -> Path:
    """Where the kaggle package looks for kaggle.json: $KAGGLE_CONFIG_DIR, ~/.kaggle or XDG."""
    configured = os.environ.get("KAGGLE_CONFIG_DIR")
    if configured:
        return Path(configured).expanduser()
    home = Path.home() / ".kaggle"
    if sys.platform.startswith("linux") and not home.exists():
        xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        return Path(xdg) / "kaggle"
    return home


def kaggle_json_path() -> Path:
    return kaggle_config_dir() / "kaggle.json"


def permission_warning(path: Path) -> str | None:
    """A warning when `path` is readable or writable by anyone but its owner (wider than 600)."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return (
            f"{path} has permissions {mode:o}: other users of this machine can read your "
            f"Kaggle key; run chmod 600 {path}"
        )
    return None


def _from_file(path: Path) -> Credentials:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(
            f"{path}: not readable JSON ({exc.__class__.__name__}); download a fresh "
            f"kaggle.json from {TOKEN_PAGE}"
        ) from None
    if not isinstance(data, dict) or not data.get("username") or not data.get("key"):
        raise UserError(
            f'{path}: needs both "username" and "key"; download a fresh kaggle.json '
            f"from {TOKEN_PAGE}"
        )
    return Credentials(str(data["username"]), str(data["key"]), str(path))


def find_credentials(*, warnings: list[str] | None = None) -> Credentials:
    """The Kaggle credentials this process would use; a UserError saying how to add them if none.

    Permission warnings about kaggle.json are appended to `warnings` when given.
    """
    user, key = os.environ.get("KAGGLE_USERNAME"), os.environ.get("KAGGLE_KEY")
    if user and key:
        return Credentials(user, key, "KAGGLE_USERNAME/KAGGLE_KEY")
    if bool(user) != bool(key):
        have, missing = (
            ("KAGGLE_USERNAME", "KAGGLE_KEY") if user else ("KAGGLE_KEY", "KAGGLE_USERNAME")
        )
        raise UserError(
            f"{have} is set but {missing} is not: set both, or neither to use kaggle.json"
        )
    path = kaggle_json_path()
    if path.is_file():
        note = permission_warning(path)
        if note and warnings is not None:
            warnings.append(note)
        return _from_file(path)
    raise UserError(
        f"no Kaggle credentials: set KAGGLE_USERNAME and KAGGLE_KEY, or save kaggle.json from "
        f"{TOKEN_PAGE} as {path} (chmod 600)"
    )


def find_username() -> str | None:
    """The Kaggle user name from the environment or kaggle.json, without needing a key."""
    if os.environ.get("KAGGLE_USERNAME"):
        return os.environ["KAGGLE_USERNAME"]
    path = kaggle_json_path()
    try:
        name = json.loads(path.read_text()).get("username") if path.is_file() else None
    except (OSError, ValueError, AttributeError):
        return None
    return str(name) if name else None


def redact(text: str, secrets: list[str] | tuple[str, ...]) -> str:
    """`text` with every secret (of 4 characters or more) replaced by ***."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text
