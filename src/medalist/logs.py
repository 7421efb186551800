"""The one switch for the noise of the libraries medalist drives: Lightning's start-up banners
(GPU available, tips), MLflow's and its database migrations' info lines, Neptune's, and, in a
process medalist owns, their warnings.

Call it after the library is imported, too: Lightning sets its own logger back to INFO when it
is first imported, so the fold loop calls it again just before it builds a Trainer.
"""

from __future__ import annotations

import logging
import warnings

_LOGGERS = (
    "lightning",
    "lightning.pytorch",
    "lightning.fabric",
    "lightning.pytorch.utilities.rank_zero",
    "mlflow",
    "mlflow.store.db.utils",
    "alembic",
    "neptune",
)


def quiet_libraries(*, warnings_too: bool = True) -> None:
    """Keep only warnings and errors from the libraries' loggers; with `warnings_too`, ignore
    their Python warnings as well (for the CLI, a project script or a worker process; code that
    runs inside a user's own session passes False and leaves the warning filters alone)."""
    for name in _LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    if warnings_too:
        warnings.filterwarnings("ignore", module="lightning")
        warnings.filterwarnings("ignore", module="mlflow")
        warnings.filterwarnings("ignore", category=UserWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
