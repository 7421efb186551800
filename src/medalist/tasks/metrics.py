"""Competition metrics by name, with their direction.

A metric takes `(y_true, y_pred)` in its task's representation (see the task's metrics module:
`classify_metrics` for labels, probabilities and values, `segment_metrics` for masks). A
competition's own metric is given as "module:function" and takes the same arguments.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from medalist.errors import UserError

MetricFn = Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True)
class Metric:
    name: str
    fn: MetricFn
    higher_is_better: bool

    def __call__(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        return float(self.fn(np.asarray(y_true), np.asarray(y_pred)))

    def better(self, a: float, b: float) -> bool:
        """True when score `a` beats score `b`."""
        return a > b if self.higher_is_better else a < b

    @property
    def mode(self) -> str:
        return "max" if self.higher_is_better else "min"


def builtin_metrics() -> dict[str, tuple[MetricFn, bool]]:
    """Every built-in metric: name -> (function, higher is better), gathered from the tasks."""
    from medalist.tasks.classify_metrics import METRICS as CLASSIFY
    from medalist.tasks.detect_metrics import METRICS as DETECT
    from medalist.tasks.segment_metrics import METRICS as SEGMENT

    return {**CLASSIFY, **SEGMENT, **DETECT}


def get_metric(name: str, direction: str | None = None) -> Metric:
    """A built-in metric by name, or "module:function" with `direction` maximize|minimize."""
    builtin = builtin_metrics()
    if name in builtin:
        fn, higher = builtin[name]
        if direction is not None:
            higher = direction == "maximize"
        return Metric(name, fn, higher)
    if ":" not in name:
        raise UserError(
            f"competition.metric = {name!r}: unknown metric; use one of "
            f"{', '.join(builtin)} or 'module:function' for your own"
        )
    module_name, _, attr = name.partition(":")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise UserError(
            f"competition.metric = {name!r}: cannot import it ({exc}); put the module on "
            "PYTHONPATH or in the project folder"
        ) from None
    if direction is None:
        direction = "maximize" if getattr(fn, "greater_is_better", True) else "minimize"
    return Metric(name, fn, direction == "maximize")
