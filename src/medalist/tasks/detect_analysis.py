"""The error analysis of a detection run: AP by object size and class, small-object recall,
the images with the most missed boxes, and the remedies as next commands."""

from __future__ import annotations

from typing import TYPE_CHECKING

from medalist.tasks.base import AnalysisPage

if TYPE_CHECKING:
    from medalist.tasks.detect import DetectTask


def box_error_analysis(task: DetectTask, page: AnalysisPage) -> None:
    """Tables, plots and suggestions of what the detector misses."""
    page.skipped["boxes"] = "not written yet"
