"""The error type for "the user's input is wrong": exit code 2, one line, no traceback."""

from __future__ import annotations


class UserError(Exception):
    """Bad input: what is wrong, where, and how to fix it, in one line."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))
        self.message = " ".join(message.split())

    def __str__(self) -> str:
        return self.message


class TrainingDiverged(UserError):
    """A loss became NaN or infinite; the fold stops with advice."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type's name when it has none (an
    interrupt or a signal carries no text)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# Exceptions that mean "the run was stopped from outside", not "it failed": Ctrl-C, and the
# SIGTERM a scheduler, a preemptible cloud machine or `kill` sends (Lightning turns it into
# SIGTERMException), or a pruned Optuna trial.
STOPPED = {"KeyboardInterrupt", "SIGTERMException", "TrialPruned"}


def was_stopped(exc: BaseException) -> bool:
    """True when `exc` is one of STOPPED (by class name: the libraries are imported lazily)."""
    return bool({cls.__name__ for cls in type(exc).__mro__} & STOPPED)
