"""The structure docs/architecture.md describes: every task follows the Task protocol, shared code
never asks which task it holds, and only runs/layout.py spells a run directory's file names."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from medalist.tasks import TASKS, task_class
from medalist.tasks.base import Task

SRC = Path(__file__).resolve().parent.parent / "src" / "medalist"


def _protocol_members() -> set[str]:
    """The protocol's methods, properties and declared attributes."""
    return {n for n in vars(Task) if not n.startswith("_")} | set(Task.__annotations__)


def _config_of(task: str) -> SimpleNamespace:
    """What `task_class` reads of a config."""
    return SimpleNamespace(competition=SimpleNamespace(task=task))


@pytest.mark.parametrize("name", TASKS)
def test_every_registered_task_has_every_member_of_the_protocol(name: str) -> None:
    cls = task_class(_config_of(name))
    missing = sorted(m for m in _protocol_members() if not hasattr(cls, m))
    # Instance attributes of the dataclass (kind, classes, metric, id_column) count as present.
    fields = set(getattr(cls, "__dataclass_fields__", {}))
    assert [m for m in missing if m not in fields] == []
    assert cls.name == name


def _python_files_outside(*folders: str) -> list[Path]:
    skip = [SRC / f for f in folders]
    return [p for p in SRC.rglob("*.py") if not any(p.is_relative_to(s) for s in skip)]


def test_no_code_outside_tasks_asks_which_task_or_target_kind_it_holds() -> None:
    pattern = re.compile(r'kind == "mask"|targets\.ndim|task: Any|hasattr\(task|\.spatial\b')
    found = [
        f"{p.relative_to(SRC)}:{i}: {line.strip()}"
        for p in _python_files_outside("tasks")
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert found == []


RUN_FILES = (
    "result.json|best.ckpt|last.ckpt|task.json|scores.json|history.csv|oof_masks.npy|"
    "provenance.json|diagnosis.json|ensemble.json|trial.json|diff.patch"
)


def test_only_the_run_layout_spells_the_file_names_of_a_run_directory() -> None:
    pattern = re.compile(rf'"({RUN_FILES})"|f"fold_\{{[a-z]+\}}/\w+\.(json|csv|ckpt|npy)')
    found = [
        f"{p.relative_to(SRC)}:{i}: {line.strip()}"
        for p in _python_files_outside("workflows/layout_templates")
        if p != SRC / "runs" / "layout.py"
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert found == []


def test_a_task_medalist_lacks_is_a_user_error_that_names_the_tasks_it_has() -> None:
    from medalist.errors import UserError

    with pytest.raises(UserError, match="'pose' is not available yet; use classify or segment"):
        task_class(_config_of("pose"))
