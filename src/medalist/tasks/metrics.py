"""Competition metrics by name, with their direction.

A metric takes `(y_true, y_pred)` in its task's representation (see the task's metrics module:
`classify_metrics` for labels, probabilities and values, `segment_metrics` for masks). A
competition's own metric is given as "module:function" and takes the same arguments.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from medalist.errors import UserError

MetricFn = Callable[[np.ndarray, np.ndarray], float]

RANKED = re.compile(r"map@(\d+)", re.IGNORECASE)  # mean average precision at k: "map@5"


PARTIAL_AUC = re.compile(r"pauc@(\d*\.?\d+)", re.IGNORECASE)  # ISIC 2024: "pauc@0.8"


def partial_auc_tpr(name: str) -> float | None:
    """The minimum true-positive rate of a "pauc@T" metric, else None."""
    match = PARTIAL_AUC.fullmatch(name.strip())
    return float(match.group(1)) if match else None


def scores_probabilities(name: str) -> bool:
    """Whether the metric scores probabilities, so the submission writes them, not labels."""
    return name in ("roc_auc", "log_loss") or partial_auc_tpr(name) is not None


def ranked_k(name: str) -> int | None:
    """k of a "map@k" metric (the submission then lists the k likeliest classes), else None."""
    match = RANKED.fullmatch(name.strip())
    return int(match.group(1)) if match else None


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
    k = ranked_k(name)
    if k is not None:
        if not 1 <= k <= 100:
            raise UserError(
                f"competition.metric = {name!r}: k must be 1 to 100 (the labels a submission "
                "row lists, as the competition's MAP@k says)"
            )
        from medalist.tasks.classify_metrics import map_at_k

        return Metric(name, functools.partial(map_at_k, k=k), direction != "minimize")
    tpr = partial_auc_tpr(name)
    if tpr is not None:
        if not 0 < tpr < 1:
            raise UserError(
                f"competition.metric = {name!r}: the minimum true-positive rate must be "
                "between 0 and 1 (ISIC 2024 scores pauc@0.8)"
            )
        from medalist.tasks.classify_metrics import partial_auc

        return Metric(name, functools.partial(partial_auc, min_tpr=tpr), direction != "minimize")
    if ":" not in name:
        raise UserError(
            f"competition.metric = {name!r}: unknown metric; use one of "
            f"{', '.join(builtin)}, map@K (K labels a row), pauc@T (the ROC area above a "
            "true-positive rate T) or 'module:function' for your own"
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
