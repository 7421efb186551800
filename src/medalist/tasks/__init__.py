"""The competition tasks, by their `competition.task` name.

`task_class(cfg)` is the class of a config's task, `load_run_task(run, cfg)` the task a run saved
(task.json). Adding a task: a module with a class that follows `medalist.tasks.base.Task`, and a
line in `_REGISTRY` below (see docs/architecture.md).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from medalist.errors import UserError
from medalist.tasks.base import Task

if TYPE_CHECKING:
    from medalist.config.schema import Config

# name -> (module, class); imported on first use, so the CLI starts without torch.
_REGISTRY: dict[str, tuple[str, str]] = {
    "classify": ("medalist.tasks.classify", "ClassifyTask"),
    "segment": ("medalist.tasks.segment", "SegmentTask"),
    "detect": ("medalist.tasks.detect", "DetectTask"),
}

__all__ = ["Task", "TASKS", "load_run_task", "load_task", "task_class"]
TASKS = tuple(_REGISTRY)


def task_class(cfg: Config) -> type[Task]:
    """The Task class of `competition.task`; a UserError for a task medalist lacks."""
    name = cfg.competition.task
    if name not in _REGISTRY:
        raise UserError(
            f"competition.task = {name!r} is not available yet; use {' or '.join(_REGISTRY)}"
        )
    module, attr = _REGISTRY[name]
    return getattr(importlib.import_module(module), attr)


def load_task(cfg: Config, state: dict[str, Any]) -> Task:
    """The task of `cfg` as a run saved it (a task.json state)."""
    return task_class(cfg).from_state(cfg, state)


def load_run_task(run: Any, cfg: Config | None = None) -> Task:
    """The task a run directory saved in its task.json."""
    cfg = cfg if cfg is not None else run.config()
    return load_task(cfg, run.task_state())
