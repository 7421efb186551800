"""A next step as diagnosis, error analysis and the tasks suggest it: what to try, and the
one override (or command) that tries it."""

from __future__ import annotations

from typing import Any


def step(text: str, override: str | None = None, command: str | None = None) -> dict[str, Any]:
    """One next step: what to do and, where one override tries it, the command."""
    if command is None and override:
        command = f"medalist train CONFIG {override}"
    return {"step": text, "override": override, "command": command}
