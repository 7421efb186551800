"""The typer application every command module registers on (kept free of heavy imports)."""

from __future__ import annotations

import os

import typer

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

app = typer.Typer(
    help="medalist: folds, cross-validated training, out-of-fold predictions, submissions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def quiet_libraries() -> None:
    """Silence the banners and warnings of Lightning and MLflow that say nothing to a user."""
    import logging
    import warnings

    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="lightning")
    warnings.filterwarnings("ignore", module="mlflow")
    warnings.filterwarnings("ignore", category=UserWarning)
