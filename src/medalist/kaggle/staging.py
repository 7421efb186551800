"""A package folder is written whole in a staging folder beside it, then moved into place, so a
failed or killed `medalist package` never leaves a half package (or a damaged old one)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from medalist.errors import UserError
from medalist.kaggle.runtime import MANIFEST


def check_destination(final: Path, overwrite: bool) -> None:
    if not final.exists() or (final.is_dir() and not any(final.iterdir())):
        return
    if not (final / "dataset" / MANIFEST).is_file():
        raise UserError(f"--out {final} exists and is not a medalist package: choose another --out")
    if not overwrite:
        raise UserError(
            f"package {final} exists: pass --overwrite to replace it, or choose another --out"
        )


def move_into_place(staging: Path, final: Path) -> None:
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        final.rename(old)
        staging.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(final)
