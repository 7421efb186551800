"""The `Task` protocol: everything shared code asks of a competition task.

The fold loop, the Lightning module, prediction, the ensemble, the offline notebook, the
analysis and `medalist check` hold a `Task` and call these members; none of them asks which task
it holds or what shape its targets have. A task is a dataclass built from the config and the
training table (`from_config`) or from a run's `task.json` (`from_state`), registered by its
`competition.task` name in `medalist.tasks.TASKS`.

Targets and predictions are whatever the task says (class indices, probability rows, masks);
shared code only moves them between the task's own members. `docs/architecture.md` walks
through adding a task.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import albumentations as A
    import torch
    from torch import nn

    from medalist.config.schema import Config
    from medalist.data.tables import Tables
    from medalist.tasks.label_issues import LabelIssues
    from medalist.tasks.metrics import Metric


@dataclass
class AnalysisPage:
    """Where a task's error analysis writes, and what it found (for diagnosis.json).

    `plot(name, fn, *args, **kw)` calls a plotting function with `path=` the run's plots/<name>;
    `table(name, df)` writes analysis/<name>; `lookup` maps training ids to image paths."""

    run_dir: Path
    cfg: Config
    oof: pd.DataFrame
    folds: list[int]
    lookup: dict[str, Path]
    plot: Callable[..., None]
    table: Callable[[str, pd.DataFrame], None]
    skipped: dict[str, str] = field(default_factory=dict)
    suggestions: list[dict[str, Any]] = field(default_factory=list)


@runtime_checkable
class Task(Protocol):
    """A competition task: targets, model, loss, predictions, OOF, submission, analysis."""

    name: ClassVar[str]  # the competition.task value
    kind: str  # the target's kind within the task (multiclass, multilabel, regression, mask)
    classes: list[Any]
    metric: Metric
    id_column: str

    # ---- construction and persistence ----------------------------------------------------
    @classmethod
    def from_config(cls, cfg: Config, train: pd.DataFrame) -> Task:
        """The task of a config and its training table (checks the targets)."""
        ...

    @classmethod
    def from_state(cls, cfg: Config, state: dict[str, Any]) -> Task:
        """The task a run saved in task.json (its classes, thresholds, scaling)."""
        ...

    def state(self) -> dict[str, Any]:
        """What task.json keeps: enough for `from_state` to predict as the run did."""
        ...

    def target_signature(self) -> tuple[Any, ...]:
        """What two runs must share to be blended: the kind of target and its classes."""
        ...

    @classmethod
    def fold_table(cls, cfg: Config, train: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
        """The table and the columns that stratified folds balance."""
        ...

    # ---- targets, model, loss -----------------------------------------------------------
    def encode(self, df: pd.DataFrame) -> np.ndarray:
        """The targets of a table as the model trains on them (a row per image)."""
        ...

    @property
    def num_outputs(self) -> int:
        """The model's number of outputs (classes, labels, 1)."""
        ...

    def create_model(self, cfg: Config) -> nn.Module:
        """The configured model for this task."""
        ...

    def create_loss(self, cfg: Config, y_train: np.ndarray) -> nn.Module:
        """The training loss (it may look at the training targets, e.g. class weights)."""
        ...

    def activate(self, out: torch.Tensor) -> torch.Tensor:
        """Model outputs to predictions (probabilities, masks, values on the target's scale)."""
        ...

    def training_loss(
        self, model: nn.Module, loss_fn: nn.Module, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """A training batch's loss and its named parts (a detector's own losses; none else)."""
        ...

    def validation_batch(
        self, model: nn.Module, loss_fn: nn.Module, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A validation batch's (loss, predictions) from the model in eval mode."""
        ...

    def predict_batch(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """A batch's predictions (the activated outputs; a detector's padded boxes)."""
        ...

    def combine_views(self, views: list[torch.Tensor]) -> torch.Tensor:
        """One batch prediction from its TTA views (each already in the image's orientation)."""
        ...

    def forward_for_memory(self, model: nn.Module, x: torch.Tensor) -> Any:
        """One training-mode forward pass of a batch of images, as the memory estimate runs it
        (a detector needs targets: none)."""
        ...

    def create_mixer(self, cfg: Config) -> Callable[[Any, Any], tuple[Any, Any]] | None:
        """Batch mixing for training (`train.mixup` / `train.cutmix`): (x, y) -> (mixed x, soft
        y) that the loss accepts; None when off. A UserError where the targets can't be mixed."""
        ...

    collate: ClassVar[Callable[[list[Any]], Any] | None]  # the DataLoader's, None = torch's
    pred_dtype: ClassVar[Any]  # numpy dtype predictions are kept in

    def create_transform(self, augment: list[dict[str, Any]], *, train: bool) -> A.Compose:
        """The albumentations pipeline of `data.augment` (train) or none (validation, test)."""
        ...

    def transform_sample(
        self, transform: A.Compose, image: np.ndarray, target: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One augmented (image, target) pair; the target moves with the image when spatial."""
        ...

    # ---- scores, OOF, post-processing ----------------------------------------------------
    def score(self, y_true: np.ndarray, preds: np.ndarray) -> float:
        """The competition metric of one fold's (or any rows') predictions."""
        ...

    def chance_loss(self, cfg: Config) -> float | None:
        """The training loss of a constant guess, where it is known."""
        ...

    def oof_frame(
        self, ids: pd.Series, folds: np.ndarray, y: np.ndarray, preds: np.ndarray
    ) -> pd.DataFrame:
        """A fold's out-of-fold table: id, fold, and the task's target and prediction columns."""
        ...

    @property
    def pred_columns(self) -> list[str]:
        """The prediction columns of oof.csv (averaged over seeds)."""
        ...

    def write_fold_arrays(self, fold_dir: Path, preds: np.ndarray) -> None:
        """What a fold keeps beside its oof.csv (segmentation: the probability masks)."""
        ...

    def preds_from_oof(
        self, oof: pd.DataFrame, folds: list[list[Path]] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(targets, predictions) of a merged oof.csv's rows, for blending and smoothing; a task
        whose predictions lie beside the table (detection's boxes) reads them from `folds`
        (`folds[k]`: fold k's folders, one per seed)."""
        ...

    def blend_oof(self, oof: pd.DataFrame, y: np.ndarray, preds: np.ndarray) -> pd.DataFrame:
        """An ensemble's oof.csv: a member's rows (`oof`) with the blend's prediction columns."""
        ...

    def finish_oof(self, oof: pd.DataFrame, folds: list[list[Path]]) -> dict[str, Any]:
        """The pooled OOF score and the post-processing fitted on it (scores.json keys);
        `folds[k]` lists fold k's folders, one per seed."""
        ...

    def fit_postprocess(
        self, y: np.ndarray, preds: np.ndarray, folds: np.ndarray | None = None
    ) -> dict[str, Any]:
        """Fit the post-processing (thresholds, minimum areas) on OOF predictions (`folds`: each
        row's fold, to judge a step against noise); its scores.json keys."""
        ...

    # ---- video frames ---------------------------------------------------------------------
    smooth_filters: ClassVar[tuple[str, ...]]  # `medalist smooth`'s filters; the first: default

    def smooth_frames(
        self, preds: Any, sequences: np.ndarray, frames: np.ndarray, window: int, kind: str
    ) -> Any:
        """Predictions filtered over the `window` frames centred on each row within its
        sequence (`kind`: one of `smooth_filters`); the row order is kept."""
        ...

    # ---- combining predictions ------------------------------------------------------------
    def combine(self, preds: Sequence[np.ndarray], weights: Sequence[float] | None = None) -> Any:
        """One prediction from several (folds, TTA views, seeds, runs): the weighted mean."""
        ...

    def undo_view(self, pred: torch.Tensor, view: str) -> torch.Tensor:
        """A prediction on a flipped image (`hflip`, `vflip`) in the original orientation."""
        ...

    def fit_blend_weights(self, y: np.ndarray, preds: Sequence[np.ndarray]) -> np.ndarray:
        """Run weights on the simplex fitted on OOF rows (a smooth loss of the blend)."""
        ...

    blend_objective: ClassVar[str]  # what fit_blend_weights minimises, in words

    # ---- submission ----------------------------------------------------------------------------
    def format_submission(
        self, ids: pd.Series, preds: np.ndarray, sample: pd.DataFrame
    ) -> pd.DataFrame:
        """Predictions in the sample submission's rows and columns, checked."""
        ...

    def check_submission(self, sub: pd.DataFrame, sample: pd.DataFrame) -> None:
        """UserError unless `sub` has the sample's ids, order and columns and valid values."""
        ...

    def check_sample(self, tables: Tables) -> None:
        """UserError when the sample submission asks for a file this task can't write (read
        before training and before the test images are decoded, not after inference)."""
        ...

    # ---- looking at the run ----------------------------------------------------------------
    def error_analysis(self, page: AnalysisPage) -> None:
        """Plots, tables and suggestions of what the model gets wrong, from the OOF rows."""
        ...

    def next_step_overrides(self, verdict: str) -> list[tuple[str, str]]:
        """Task-specific (advice, override) pairs for a learning-curve verdict."""
        ...

    def check_rows(self, y: np.ndarray, n: int, seed: int) -> np.ndarray:
        """`n` rows for `medalist check` to memorise (spread over the classes)."""
        ...

    def check_memorised(
        self, loss: float, threshold: float, y: torch.Tensor, predict: Callable[[], torch.Tensor]
    ) -> bool:
        """Whether `medalist check`'s batch counts as memorised after a training step of this
        `loss` (`threshold`: the `--threshold` line; `predict()`: the model's predictions of
        the batch in eval mode, for a task that judges them)."""
        ...

    def check_goal(self, threshold: float) -> str:
        """What `check_memorised` asks, in words (the PASS line `medalist check` prints)."""
        ...

    def describe_target(self, target: Any) -> str:
        """A target as a person reads it (class name, labels, mask area)."""
        ...

    def draw_target(self, picture: np.ndarray, target: Any) -> np.ndarray:
        """An input picture with its target drawn on it, for `medalist check`'s grid."""
        ...

    check_caption: ClassVar[str]  # what the check grid's title says is drawn

    # ---- labels that look wrong ------------------------------------------------------------
    def find_label_issues(
        self, run_dir: Path, cfg: Config, filter_by: str, rank_by: str
    ) -> LabelIssues:
        """The training targets the run's OOF predictions confidently contradict, ranked."""
        ...

    def draw_label_issues(
        self, run_dir: Path, cfg: Config, found: LabelIssues, rows: pd.DataFrame
    ) -> list[np.ndarray | None]:
        """A picture of each suspect row (its image, or its masks drawn on it)."""
        ...

    def label_issue_captions(self, rows: pd.DataFrame) -> list[str]:
        """A caption for each suspect row's picture."""
        ...


class FrameFilters:
    """Smoothing over video frames of predictions that are arrays (probabilities, masks): a
    moving average, a Gaussian window or a median (`medalist.tasks.postprocess`)."""

    smooth_filters: ClassVar[tuple[str, ...]] = ("mean", "gaussian", "median")

    def smooth_frames(
        self, preds: Any, sequences: np.ndarray, frames: np.ndarray, window: int, kind: str
    ) -> Any:
        from medalist.tasks.postprocess import smooth_sequences

        return smooth_sequences(preds, sequences, frames, window, kind)


class ModelOutputs(FrameFilters):
    """The members of a task whose model maps a batch to outputs and a loss function scores
    them (classification, segmentation): the loss of the outputs, their activation, the mean
    of the views, and smoothing of those arrays over video frames."""

    def training_loss(
        self, model: nn.Module, loss_fn: nn.Module, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """`loss_fn(model(x), y)`, no parts."""
        return loss_fn(model(x), y), {}

    def validation_batch(
        self, model: nn.Module, loss_fn: nn.Module, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss of the outputs and their activation."""
        out = model(x)
        return loss_fn(out, y), self.activate(out)  # type: ignore[attr-defined]

    def predict_batch(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """The activated outputs."""
        return self.activate(model(x))  # type: ignore[attr-defined]

    def forward_for_memory(self, model: nn.Module, x: torch.Tensor) -> Any:
        """`model(x)`."""
        return model(x)

    def combine_views(self, views: list[torch.Tensor]) -> torch.Tensor:
        """The views summed in order, then divided by their number."""
        p = views[0]
        for v in views[1:]:
            p = p + v
        return p / len(views)

    def check_memorised(
        self, loss: float, threshold: float, y: torch.Tensor, predict: Callable[[], torch.Tensor]
    ) -> bool:
        """The training loss at or below `threshold` (a loss that can reach 0)."""
        return loss <= threshold

    def check_goal(self, threshold: float) -> str:
        return f"the loss at or below {threshold:g}"

    def check_sample(self, tables: Tables) -> None:
        """Nothing: the sample's table is checked when the submission is formatted."""
