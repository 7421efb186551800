"""The typer application every command module registers on (kept free of heavy imports)."""

from __future__ import annotations

import os

import typer

# Projects made by earlier versions of `medalist new` import it from here (src/train.py).
from medalist.logs import quiet_libraries  # noqa: F401

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

app = typer.Typer(
    help="medalist: folds, cross-validated training, out-of-fold predictions, submissions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
