"""What inference found in the competition folder: a value per config key, with the reason it
was read from the data or, for a guess, the sentence that tells the user what to check."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class DataPath(str):
    """A path relative to the data folder; written as data/<path> or as an absolute path."""


@dataclass
class Found:
    """Config key -> value, and for each key either why it was inferred or what to check."""

    values: dict[str, Any] = field(default_factory=dict)  # config key -> value
    inferred: dict[str, str] = field(default_factory=dict)  # config key -> reason
    unresolved: dict[str, str] = field(default_factory=dict)  # config key -> sentence

    def ok(self, key: str, value: Any, why: str = "") -> None:
        """Record a value read from the data (`why`: where it came from, "" for no reason)."""
        self.values[key] = value
        self.inferred[key] = why
        self.unresolved.pop(key, None)

    def guess(self, key: str, value: Any, sentence: str) -> None:
        """Record a best guess; `sentence` tells the user what to check and how to fix it."""
        self.values[key] = value
        self.inferred.pop(key, None)
        self.unresolved[key] = sentence


def rel(path: Path, data_dir: Path) -> DataPath:
    """`path` inside `data_dir` as a DataPath ("" for the data folder itself)."""
    text = path.relative_to(data_dir).as_posix()
    return DataPath("" if text == "." else text)
