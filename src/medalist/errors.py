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
