"""Image classification as a task: targets, loss, activation, OOF columns and submission format.

Kinds: multiclass and binary (softmax over K classes), multilabel (sigmoid per label, per-label
thresholds fitted on the out-of-fold predictions), regression (one output, standardised target).
Shared code talks to it through the `Task` protocol (`medalist.tasks.base`).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from medalist.config.schema import Config
from medalist.data.dataset import transform_image
from medalist.errors import UserError
from medalist.tasks.base import AnalysisPage, ModelOutputs
from medalist.tasks.metrics import Metric, get_metric, partial_auc_tpr, ranked_k
from medalist.tasks.mixing import BatchMixer


def competition_metric(cfg: Config) -> Metric:
    """The configured metric; a "module:function" metric may live in the project folder."""
    if ":" in cfg.competition.metric and str(cfg.root) not in sys.path:
        sys.path.insert(0, str(cfg.root))
    return get_metric(cfg.competition.metric, cfg.competition.metric_direction)


def infer_kind(cfg: Config, train: pd.DataFrame) -> str:
    if cfg.competition.label_separator is not None:
        return "multilabel"  # labels joined in one column (the config's validator checks it)
    kind = cfg.competition.target_type
    if kind != "auto":
        return "multiclass" if kind == "binary" else kind
    if len(cfg.target_columns) > 1:
        return "multilabel"
    values = train[cfg.target_columns[0]]
    if cfg.competition.metric == "rmse":
        return "regression"
    if pd.api.types.is_float_dtype(values) and not np.all(np.mod(values.to_numpy(), 1) == 0):
        return "regression"
    return "multiclass"


CLASSIFY_LOSSES = ("auto", "ce", "focal", "weighted_ce", "bce", "mse")


def chance_loss(kind: str, n_classes: int, loss: str, focal_gamma: float) -> float | None:
    """The training loss of a constant guess, where it is known (None otherwise)."""
    if kind == "regression":
        return 1.0  # the standardised MSE of predicting the mean
    if kind != "multiclass" or n_classes < 2:
        return None
    ce = math.log(n_classes)
    if loss == "focal":
        return (1 - 1 / n_classes) ** focal_gamma * ce
    return ce if loss in ("auto", "ce", "weighted_ce") else None


def sum_then_divide(preds: Iterable[np.ndarray]) -> np.ndarray:
    """The plain mean of predictions streamed one at a time (float16 summed in float32), so
    folds never have to be in memory together."""
    total, count = None, 0
    for p in preds:
        p = p if p.dtype == np.float64 else p.astype(np.float32)
        total, count = (p if total is None else total + p), count + 1
    if total is None:
        raise UserError("no fold weights to predict with")
    return total / count


def weighted_mean(preds: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """The weighted average of several runs' predictions (weights need not sum to 1)."""
    from medalist.tasks.blend import blend

    return blend(preds, weights)


def combine_arrays(
    preds: Iterable[np.ndarray], weights: Sequence[float] | None = None
) -> np.ndarray:
    """The streamed mean of prediction arrays, or their weighted mean when weights are given."""
    if weights is None:
        return sum_then_divide(preds)
    return weighted_mean(list(preds), weights)


class FocalLoss(nn.Module):
    """Softmax focal loss (Lin et al.), optionally class-weighted."""

    def __init__(self, gamma: float, weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.gamma = gamma
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logp = F.log_softmax(logits, dim=1)
        ce = F.nll_loss(logp, target, weight=self.weight, reduction="none")
        pt = logp.gather(1, target[:, None]).squeeze(1).exp()
        return ((1 - pt) ** self.gamma * ce).mean()


class SigmoidFocalLoss(nn.Module):
    def __init__(self, gamma: float) -> None:
        super().__init__()
        self.gamma = gamma

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        from torchvision.ops import sigmoid_focal_loss

        return sigmoid_focal_loss(logits, target, gamma=self.gamma, reduction="mean")


class StandardisedMSE(nn.Module):
    def __init__(self, mean: float, std: float) -> None:
        super().__init__()
        self.mean, self.std = mean, std

    def forward(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(out.squeeze(-1), (target.float() - self.mean) / self.std)


@dataclass
class ClassifyTask(ModelOutputs):
    """What the fold loop needs to know about a classification or regression target."""

    kind: str
    target_columns: list[str]
    classes: list[Any]
    metric: Metric
    id_column: str
    thresholds: list[float] = field(default_factory=list)
    mean: float = 0.0
    std: float = 1.0
    separator: str | None = None  # multilabel: labels joined in one column by this
    never_empty: bool = False  # joined labels: every training row has one (a submission too)
    name: ClassVar[str] = "classify"
    pred_dtype: ClassVar[Any] = np.float64
    collate: ClassVar[Any] = None
    check_caption: ClassVar[str] = ""
    transform_sample = staticmethod(transform_image)

    # ---- construction and persistence -------------------------------------------------
    @classmethod
    def from_config(cls, cfg: Config, train: pd.DataFrame) -> ClassifyTask:
        if cfg.train.loss not in CLASSIFY_LOSSES:
            raise UserError(
                f"train.loss = {cfg.train.loss!r} is a mask loss; for classification use one of "
                f"{', '.join(CLASSIFY_LOSSES)}"
            )
        kind = infer_kind(cfg, train)
        metric = competition_metric(cfg)
        cols = cfg.target_columns
        if kind == "regression" and ranked_k(metric.name) is not None:
            raise UserError(
                f"competition.metric = {metric.name!r} ranks classes, but the target "
                f"{cols[0]!r} is a number (regression): use rmse, or set "
                "competition.target_type to multiclass"
            )
        if kind != "multiclass" and partial_auc_tpr(metric.name) is not None:
            raise UserError(
                f"competition.metric = {metric.name!r} scores a binary target, but {cols[0]!r} "
                f"is {kind}: use roc_auc, or set competition.target_type to binary"
            )
        task = cls(kind, cols, [], metric, cfg.competition.id_column)
        if kind == "multiclass" and len(cols) > 1:  # one 0/1 column per class
            from medalist.tasks.one_hot import class_index

            class_index(train, cols, str(cfg.competition.train_csv))
            configured = cfg.competition.classes
            if configured is not None and [str(c) for c in configured] != list(cols):
                raise UserError(
                    f"competition.classes {list(configured)[:4]} differ from the one-hot class "
                    f"columns {list(cols)[:4]}: remove competition.classes (the columns name "
                    "the classes)"
                )
            task.classes = list(cols)
        elif kind == "multiclass":
            values = train[cols[0]]
            if cfg.competition.classes is not None:
                task.classes = list(cfg.competition.classes)
            else:
                task.classes = sorted(values.unique().tolist(), key=lambda v: (str(type(v)), v))
            if len(task.classes) < 2:
                raise UserError(
                    f"{cfg.competition.train_csv}: target {cols[0]!r} has only one class "
                    f"({task.classes[0]!r}); a classifier needs two or more"
                )
            if partial_auc_tpr(metric.name) is not None and len(task.classes) != 2:
                raise UserError(
                    f"competition.metric = {metric.name!r} scores a binary target, but "
                    f"{cols[0]!r} has {len(task.classes)} classes: use roc_auc for several"
                )
        elif kind == "multilabel" and cfg.competition.label_separator is not None:
            from medalist.tasks.joined_labels import joined_classes, split_labels

            sep = cfg.competition.label_separator
            task.separator = sep
            task.classes = joined_classes(cfg.competition.classes, train[cols[0]], sep)
            if len(task.classes) < 2:
                raise UserError(
                    f"{cfg.competition.train_csv}: target {cols[0]!r} split at "
                    f"{sep!r} holds {len(task.classes)} label(s); a multilabel target needs two "
                    "or more: check competition.label_separator"
                )
            task.never_empty = all(split_labels(train[cols[0]], sep))
            task.thresholds = [0.5] * len(task.classes)
        elif kind == "multilabel":
            task.classes = list(cols)
            for c in cols:
                bad = ~train[c].isin([0, 1, 0.0, 1.0, True, False])
                if bad.any():
                    raise UserError(
                        f"{cfg.competition.train_csv}: multilabel target {c!r} must be 0/1, "
                        f"found {train[c][bad].iloc[0]!r}"
                    )
            task.thresholds = [0.5] * len(cols)
        else:
            y = train[cols[0]].astype(float).to_numpy()
            task.mean, task.std = float(y.mean()), float(y.std() or 1.0)
        return task

    def state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "target_columns": self.target_columns,
            "classes": self.classes,
            "thresholds": self.thresholds,
            "mean": self.mean,
            "std": self.std,
            "separator": self.separator,
            "never_empty": self.never_empty,
        }

    @classmethod
    def from_state(cls, cfg: Config, state: dict[str, Any]) -> ClassifyTask:
        metric = competition_metric(cfg)
        return cls(
            state["kind"],
            state["target_columns"],
            state["classes"],
            metric,
            cfg.competition.id_column,
            state.get("thresholds", []),
            state.get("mean", 0.0),
            state.get("std", 1.0),
            state.get("separator"),
            state.get("never_empty", False),
        )

    def target_signature(self) -> tuple[Any, ...]:
        return (self.kind, list(self.classes))

    @classmethod
    def fold_table(cls, cfg: Config, train: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
        """Stratified folds balance the target column(s) themselves; labels joined in one
        column are balanced as one 0/1 column per label (cv.scheme: multilabel), and one-hot
        class columns as one column of class names."""
        sep = cfg.competition.label_separator
        cols = cfg.target_columns
        if sep is None and len(cols) > 1 and cfg.competition.target_type == "multiclass":
            from medalist.tasks.one_hot import fold_column

            train, name = fold_column(train, cols, str(cfg.competition.train_csv))
            return train, [name]
        if sep is None:
            return train, cols
        from medalist.tasks.joined_labels import joined_classes, multi_hot

        column = cfg.target_columns[0]
        names = joined_classes(cfg.competition.classes, train[column], sep)
        y = multi_hot(train[column], sep, names, str(cfg.path(cfg.competition.train_csv)))
        if set(names) & set(train.columns):  # a label named like a column of the table
            names = [f"{column}:{c}" for c in names]
        wide = pd.DataFrame(y.astype(np.int64), columns=names, index=train.index)
        return pd.concat([train, wide], axis=1), names

    # ---- targets, loss, outputs -----------------------------------------------------------
    @property
    def num_outputs(self) -> int:
        return len(self.classes) if self.kind in ("multiclass", "multilabel") else 1

    def encode(self, df: pd.DataFrame) -> np.ndarray:
        """Targets as the model trains on them."""
        if self.kind == "multiclass" and len(self.target_columns) > 1:
            from medalist.tasks.one_hot import class_index

            return class_index(df, self.target_columns, "train table")
        if self.kind == "multiclass":
            from medalist.data.tables import first_outside

            index = {str(c): i for i, c in enumerate(self.classes)}
            values = df[self.target_columns[0]].astype(str)
            first = first_outside(values, index)
            if first is not None:
                raise UserError(
                    f"train table line {first + 2}: target {values.iloc[first]!r} is not among "
                    f"the classes the run was trained on"
                )
            return values.map(index).to_numpy(dtype=np.int64)
        if self.kind == "multilabel" and self.separator is not None:
            from medalist.tasks.joined_labels import multi_hot

            column = self.target_columns[0]
            return multi_hot(df[column], self.separator, self.classes, "train table")
        if self.kind == "multilabel":
            return df[self.target_columns].to_numpy(dtype=np.float32)
        return df[self.target_columns[0]].to_numpy(dtype=np.float32)

    def create_model(self, cfg: Config) -> nn.Module:
        """The configured timm classifier with one output per class, label or value."""
        from medalist.models.factory import create_model

        return create_model(cfg, self.num_outputs)

    def create_transform(self, augment: list[dict[str, Any]], *, train: bool) -> Any:
        from medalist.data.dataset import create_transform

        return create_transform(augment, train=train)

    def create_mixer(self, cfg: Config) -> BatchMixer | None:
        """Mixup / CutMix for single-label classes; a UserError for other targets."""
        if not cfg.train.mixing:
            return None
        if self.kind != "multiclass":
            raise UserError(
                f"train.mixup / train.cutmix: mixing needs single-label classes, this target "
                f"is {self.kind}; set train.mixup: 0 and train.cutmix: 0"
            )
        if cfg.train.loss == "focal":
            raise UserError(
                "train.mixup / train.cutmix give soft targets, which the focal loss does not "
                "take; use train.loss: ce or turn mixing off"
            )
        return BatchMixer(cfg, self.num_outputs)

    def chance_loss(self, cfg: Config) -> float | None:
        return chance_loss(self.kind, len(self.classes), cfg.train.loss, cfg.train.focal_gamma)

    def create_loss(self, cfg: Config, y_train: np.ndarray) -> nn.Module:
        name = cfg.train.loss
        if self.kind == "regression":
            return StandardisedMSE(self.mean, self.std)
        if self.kind == "multilabel":
            return (
                SigmoidFocalLoss(cfg.train.focal_gamma)
                if name == "focal"
                else nn.BCEWithLogitsLoss()
            )
        if name == "focal":
            return FocalLoss(cfg.train.focal_gamma)
        weight = None
        if name == "weighted_ce":
            # Inverse class frequency, normalised so a balanced set gets weight 1 everywhere.
            counts = np.bincount(y_train, minlength=self.num_outputs).astype(np.float64)
            w = len(y_train) / (self.num_outputs * np.maximum(counts, 1.0))
            weight = torch.tensor(w, dtype=torch.float32)
        return nn.CrossEntropyLoss(weight=weight, label_smoothing=cfg.train.label_smoothing)

    def activate(self, out: torch.Tensor) -> torch.Tensor:
        """Model outputs to predictions: probabilities, or values on the target's scale."""
        if self.kind == "multiclass":
            return out.float().softmax(dim=1)
        if self.kind == "multilabel":
            return out.float().sigmoid()
        return out.float().squeeze(-1) * self.std + self.mean

    def score(self, y_true: np.ndarray, preds: np.ndarray) -> float:
        return self.metric(y_true, preds)

    # ---- tables ---------------------------------------------------------------------------
    @property
    def pred_columns(self) -> list[str]:
        if self.kind in ("multiclass", "multilabel"):
            return [f"pred_{c}" for c in self.classes]
        return ["pred"]

    def oof_frame(
        self, ids: pd.Series, folds: np.ndarray, y: np.ndarray, preds: np.ndarray
    ) -> pd.DataFrame:
        df = pd.DataFrame({"id": ids.to_numpy(), "fold": folds})
        if self.kind == "multilabel":
            for j, c in enumerate(self.classes):
                df[f"target_{c}"] = y[:, j]
        else:
            df["target"] = y
        p = preds.reshape(len(df), -1)
        for j, c in enumerate(self.pred_columns):
            df[c] = p[:, j]
        return df

    def preds_from_oof(
        self, oof: pd.DataFrame, folds: list[list[Path]] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The table's target and prediction columns (it holds them all)."""
        preds = oof[self.pred_columns].to_numpy(dtype=np.float64)
        if self.kind == "multilabel":
            y = oof[[f"target_{c}" for c in self.classes]].to_numpy()
        else:
            y = oof["target"].to_numpy()
            preds = preds[:, 0] if self.kind == "regression" else preds
        return y, preds

    def blend_oof(self, oof: pd.DataFrame, y: np.ndarray, preds: np.ndarray) -> pd.DataFrame:
        """The member's rows with the blend's probabilities (or values) in its columns."""
        out = oof[[c for c in oof.columns if c not in self.pred_columns]].copy()
        out[self.pred_columns] = preds.reshape(len(out), -1)
        return out

    def write_fold_arrays(self, fold_dir: Path, preds: np.ndarray) -> None:
        """Nothing beside the fold's oof.csv: it holds the predictions."""

    def finish_oof(self, oof: pd.DataFrame, folds: list[list[Path]]) -> dict[str, Any]:
        """The score of the merged OOF table, and multilabel thresholds fitted on it."""
        y, preds = self.preds_from_oof(oof)
        return {"oof": self.score(y, preds), **self.fit_postprocess(y, preds)}

    def fit_postprocess(
        self, y: np.ndarray, preds: np.ndarray, folds: np.ndarray | None = None
    ) -> dict[str, Any]:
        """Multilabel: per-label thresholds that maximise each label's F1 on the OOF rows."""
        if self.kind != "multilabel":
            return {}
        from sklearn.metrics import f1_score

        grid = np.linspace(0.05, 0.95, 19)
        self.thresholds = [
            float(
                grid[
                    np.argmax([f1_score(y[:, j], preds[:, j] >= t, zero_division=0) for t in grid])
                ]
            )
            for j in range(y.shape[1])
        ]
        return {"thresholds": self.thresholds}

    # ---- combining predictions ------------------------------------------------------------
    def combine(
        self, preds: Iterable[np.ndarray], weights: Sequence[float] | None = None
    ) -> np.ndarray:
        """The mean (folds, seeds) or weighted mean (runs) of probability or value arrays."""
        return combine_arrays(preds, weights)

    def undo_view(self, pred: torch.Tensor, view: str) -> torch.Tensor:
        """A class or value prediction does not depend on the image's orientation."""
        return pred

    @property
    def blend_objective(self) -> str:
        return {"multiclass": "cross-entropy", "multilabel": "binary cross-entropy"}.get(
            self.kind, "squared error"
        )

    def fit_blend_weights(self, y: np.ndarray, preds: Sequence[np.ndarray]) -> np.ndarray:
        from medalist.tasks.blend import fit_weights

        return fit_weights(self.kind, y, preds)

    # ---- looking at the run ----------------------------------------------------------------
    def error_analysis(self, page: AnalysisPage) -> None:
        from medalist.tasks.classify_analysis import classify_error_analysis

        classify_error_analysis(self, page)

    @property
    def analysis_thresholds(self) -> dict[str, float]:
        from medalist.tasks.classify_analysis import THRESHOLDS

        return THRESHOLDS

    def next_step_overrides(self, verdict: str) -> list[tuple[str, str]]:
        if verdict == "overfits" and self.kind == "multiclass":
            return [("label smoothing", "train.label_smoothing=0.1")]
        return []

    def check_rows(self, y: np.ndarray, n: int, seed: int) -> np.ndarray:
        """`n` rows, spread over the classes (round-robin) so that a batch has to be told apart."""
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(y))
        if self.kind != "multiclass":
            return order[:n]
        by_class = [order[y[order] == c].tolist() for c in np.unique(y[order])]
        rows: list[int] = []
        while len(rows) < min(n, len(y)):
            for members in by_class:
                if members and len(rows) < n:
                    rows.append(members.pop(0))
        return np.asarray(rows)

    def describe_target(self, target: Any) -> str:
        """A target as a person reads it: class name, positive labels, or the value."""
        if self.kind == "multiclass":
            return str(self.classes[int(target)])
        if self.kind == "multilabel":
            on = [str(c) for c, v in zip(self.classes, np.asarray(target), strict=True) if v >= 0.5]
            return ",".join(on) or "(none)"
        return f"{float(target):.4g}"

    def draw_target(self, picture: np.ndarray, target: Any) -> np.ndarray:
        return picture

    # ---- labels that look wrong ------------------------------------------------------------
    def find_label_issues(self, run_dir: Path, cfg: Config, filter_by: str, rank_by: str) -> Any:
        from medalist.tasks.classify_labels import class_issues

        return class_issues(self, run_dir, filter_by, rank_by)

    def draw_label_issues(self, run_dir: Path, cfg: Config, found: Any, rows: Any) -> list:
        from medalist.tasks.classify_labels import thumbnails

        return thumbnails(cfg, rows)

    def label_issue_captions(self, rows: pd.DataFrame) -> list[str]:
        from medalist.tasks.classify_labels import captions

        return captions(rows)

    def score_groups(self, keys: pd.Series, y: np.ndarray, preds: np.ndarray, reduce: str) -> float:
        """The metric on a row per group: predictions combined as the submission combines them,
        the target a group's first label (a class) or its images' mean (a number) or max
        (labels)."""
        from medalist.data.submission_rows import combine_rows, first_per_key

        _, combined = combine_rows(keys, preds, reduce)
        if self.kind == "multiclass":
            target = first_per_key(keys, y)
        else:
            target = combine_rows(keys, y, "mean" if self.kind == "regression" else "max")[1]
            target = target.astype(y.dtype)
        return float(self.score(target, combined))

    # ---- submission ------------------------------------------------------------------------
    def check_submission(self, sub: pd.DataFrame, sample: pd.DataFrame) -> None:
        from medalist.tasks.submission import check_submission

        check_submission(self, sub, sample)

    def format_submission(
        self, ids: pd.Series, preds: np.ndarray, sample: pd.DataFrame
    ) -> pd.DataFrame:
        """Predictions in the sample submission's columns and row order, checked."""
        from medalist.tasks.submission import format_classify_submission

        return format_classify_submission(self, ids, preds, sample)
