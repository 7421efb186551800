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
    groups: Any = None  # medalist.workflows.group_search.NewProjectGroups
    # The tables' file names in the data folder, for the reasons and the guesses' sentences.
    train_name: str = "train.csv"
    test_name: str = "test.csv"
    sub_name: str = "sample_submission.csv"
    folder_table: Any = None  # the training table made from class folders (a DataFrame)

    def ok(self, key: str, value: Any, why: str = "") -> None:
        """Record a value read from the data (`why`: where it came from, "" for no reason)."""
        self.values[key] = value
        self.inferred[key] = why
        self.unresolved.pop(key, None)

    def ok_groups(self, data_dir: Path, train: Any, test: Any) -> None:
        """Groupings the user did not name (file names, EXIF, sizes, clusters): group folds."""
        from medalist.workflows.group_search import GROUPS_CSV, suggest_for_new

        c = "competition."
        if self.values.get(c + "group_column") or c + "image_dir" in self.unresolved:
            return
        comp = {k.split(".", 1)[1]: v for k, v in self.values.items() if k.startswith(c)}
        tid = comp["id_column"] if test is not None and comp["id_column"] in test else None
        test_ids = test[tid].tolist() if tid else []
        self.groups = suggest_for_new(data_dir, train, test_ids, comp, self.values["cv.scheme"])
        if self.groups is not None and self.groups.column is not None:
            why = self.groups.why()
            self.ok(c + "group_column", self.groups.column, why)
            self.ok(c + "groups_csv", GROUPS_CSV, "written by medalist new")
            self.ok("cv.scheme", self.groups.scheme, "groups inferred from the images")

    def guess(self, key: str, value: Any, sentence: str) -> None:
        """Record a best guess; `sentence` tells the user what to check and how to fix it."""
        self.values[key] = value
        self.inferred.pop(key, None)
        self.unresolved[key] = sentence


def rel(path: Path, data_dir: Path) -> DataPath:
    """`path` inside `data_dir` as a DataPath ("" for the data folder itself)."""
    text = path.relative_to(data_dir).as_posix()
    return DataPath("" if text == "." else text)
