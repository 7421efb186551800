"""Object detection as a task: boxes from a box table or COCO JSON, torchvision's detectors on a
timm backbone, COCO mAP or a thresholded competition metric, boxes fused by weighted boxes
fusion, and one box string per image in the submission.

Targets are (n, M, 5) float32 arrays (x1 y1 x2 y2 class index, in the input's pixels after
the letterbox, NaN rows after an image's boxes; M is the most boxes of any training image),
predictions (n, K, 6) arrays (x1 y1 x2 y2 score class, K = `model.detections_per_image`).
Padding to fixed sizes lets torch's collate, the DDP gather and numpy carry them as they carry
classification's rows. The detector computes its own loss (a dict of parts, all kept in the
history). Each fold writes its out-of-fold boxes to `fold_<k>/oof_boxes.npz`; `oof.csv` holds
one row per image: its numbers of true and predicted boxes, matches at IoU 0.5, and its score.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn

from medalist.config.schema import Config
from medalist.data.boxes import BOXES, IMAGE_HEIGHT, IMAGE_WIDTH, LABELS, LINES, box_strata
from medalist.errors import UserError
from medalist.io import read_ids_csv
from medalist.runs import layout
from medalist.tasks import detect_ensemble
from medalist.tasks.base import AnalysisPage
from medalist.tasks.classify import competition_metric
from medalist.tasks.detect_fusion import (  # noqa: F401 - input_scales: the task's geometry
    box_transform,
    detection_rows,
    draw_boxes,
    fuse,
    input_scales,
    load_boxes,
    pad_boxes,
    save_boxes,
    transform_boxes,
    valid_rows,
)
from medalist.tasks.detect_metrics import (
    AT_THRESHOLD,
    METRICS,
    best_threshold,
    boxes_memorised,
    match_counts,
    unpad,
    wheat_image_scores,
)
from medalist.tasks.detect_submission import (
    ONE_CLASS_FORMAT,
    SEVERAL_CLASSES_FORMAT,
    check_format,
)
from medalist.tasks.detect_temporal import BOOST_FILTERS, boost_sequences
from medalist.tasks.metrics import Metric

if TYPE_CHECKING:
    from medalist.data.tables import Tables

DEFAULT_THRESHOLD = 0.3  # counts boxes in oof.csv before a threshold is fitted
CHECK_SCORE = 0.5  # medalist check: the boxes of the memorised batch score this or more


@dataclass
class DetectTask:
    """What the fold loop needs to know about boxes: classes, the detector, fusion, format."""

    cfg: Config
    metric: Metric
    id_column: str
    classes: list[str] = field(default_factory=lambda: ["object"])
    score_threshold: float = DEFAULT_THRESHOLD
    max_boxes: int = 1
    kind: str = "boxes"
    name: ClassVar[str] = "detect"
    pred_dtype: ClassVar[Any] = np.float32
    collate: ClassVar[Any] = None  # targets are padded: torch's collate stacks them
    check_caption: ClassVar[str] = " with their boxes (green)"
    analysis_thresholds: ClassVar[dict[str, float]] = {}
    blend_objective: ClassVar[str] = "the metric of the runs' boxes fused by WBF (grid search)"
    transform_sample = staticmethod(transform_boxes)

    # ---- construction and persistence -----------------------------------------------------
    @classmethod
    def from_config(cls, cfg: Config, train: pd.DataFrame) -> DetectTask:
        metric = competition_metric(cfg)
        if metric.name not in METRICS and ":" not in cfg.competition.metric:
            raise UserError(
                f"competition.metric = {cfg.competition.metric!r}: detection scores boxes; use "
                f"{', '.join(METRICS)} or 'module:function'"
            )
        check_format(cls._format(cfg, 2))
        ch = cfg.model.fpn_channels
        if cfg.model.detector == "fcos" and ch % 32:
            raise UserError(
                f"model.fpn_channels = {ch}: FCOS's heads use GroupNorm over 32 groups; use a "
                f"multiple of 32 (e.g. {max(32, ch // 32 * 32)})"
            )
        from medalist.models.detector import check_feature_backbone

        check_feature_backbone(cfg)
        found = sorted({c for labels in train[LABELS] for c in labels})
        classes = [str(c) for c in cfg.competition.classes] if cfg.competition.classes else found
        task = cls(cfg, metric, cfg.competition.id_column, classes or ["object"])
        task.max_boxes = max(1, int(train[BOXES].map(len).max()))
        task.label_index(train)  # every class known
        return task

    def state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "classes": self.classes,
            "score_threshold": self.score_threshold,
            "max_boxes": self.max_boxes,
        }

    @classmethod
    def from_state(cls, cfg: Config, state: dict[str, Any]) -> DetectTask:
        return cls(
            cfg,
            competition_metric(cfg),
            cfg.competition.id_column,
            [str(c) for c in state.get("classes", ["object"])],
            float(state.get("score_threshold", DEFAULT_THRESHOLD)),
            int(state.get("max_boxes", 1)),
        )

    def target_signature(self) -> tuple[Any, ...]:
        return (self.kind, list(self.classes), "input", list(self.shape))  # boxes' pixels

    @classmethod
    def fold_table(cls, cfg: Config, train: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
        """Stratified folds balance the number of boxes (binned) and the classes present."""
        if cfg.cv.scheme not in ("stratified", "stratified_group"):
            return train, []
        classes = sorted({c for labels in train[LABELS] for c in labels})
        return train.assign(box_stratum=box_strata(train, classes, cfg.cv.n_splits).to_numpy()), [
            "box_stratum"
        ]

    # ---- targets, model, loss -------------------------------------------------------------
    @property
    def num_outputs(self) -> int:
        return len(self.classes)

    @property
    def shape(self) -> tuple[int, int]:
        return self.cfg.image_shape

    def label_index(self, df: pd.DataFrame) -> list[np.ndarray]:
        """Each image's class indices; a class the task doesn't know is a UserError."""
        where = {c: i for i, c in enumerate(self.classes)}
        out = []
        for labels, lines in zip(df[LABELS], df[LINES], strict=True):
            unknown = [(c, n) for c, n in zip(labels, lines, strict=True) if c not in where]
            if unknown:
                c, n = unknown[0]
                raise UserError(
                    f"{self.cfg.competition.train_csv} line {n}: class {c!r} is not one this "
                    f"run trains on ({', '.join(self.classes)}); fix the row or "
                    "competition.classes, or start a new run"
                )
            out.append(np.array([where[c] for c in labels], dtype=np.float64))
        return out

    def encode(self, df: pd.DataFrame) -> np.ndarray:
        """The boxes of each image in the input's pixels, with their class index, padded."""
        scales = input_scales(self.cfg, df[IMAGE_WIDTH], df[IMAGE_HEIGHT])
        rows = []
        for boxes, labels, (sx, sy) in zip(df[BOXES], self.label_index(df), scales, strict=True):
            b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) * [sx, sy, sx, sy]
            rows.append(np.concatenate([b, labels[:, None]], axis=1))
        return pad_boxes(rows, max(self.max_boxes, max((len(r) for r in rows), default=1)), 5)

    def create_model(self, cfg: Config) -> nn.Module:
        from medalist.models.detector import create_detector
        from medalist.models.factory import pretrained_file

        return create_detector(cfg, self.num_outputs, pretrained_file(cfg))

    def create_loss(self, cfg: Config, y_train: np.ndarray) -> nn.Module:
        return nn.Identity()  # the detector computes its own losses

    def chance_loss(self, cfg: Config) -> float | None:
        return None

    def create_mixer(self, cfg: Config) -> None:
        """Boxes are not mixed: mixup and cutmix are for class targets."""
        if cfg.train.mixing:
            raise UserError(
                "train.mixup / train.cutmix: mixing images is for classification, not boxes; "
                "set train.mixup: 0 and train.cutmix: 0"
            )
        return None

    @property
    def _offset(self) -> int:
        return 1 if self.cfg.model.detector == "faster_rcnn" else 0  # its class 0: background

    def _targets(self, y: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        out = []
        for row in y:
            row = row[~torch.isnan(row[:, 0])]
            out.append({"boxes": row[:, :4].float(), "labels": row[:, 4].long() + self._offset})
        return out

    def training_loss(
        self, model: nn.Module, loss_fn: nn.Module, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The detector's loss dict in train mode: its sum, and each part."""
        parts = model(list(x), self._targets(y))
        return sum(parts.values()), {k.removeprefix("loss_"): v for k, v in parts.items()}

    def validation_batch(
        self, model: nn.Module, loss_fn: nn.Module, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Eval-mode boxes, and the loss dict's sum with BatchNorm in eval mode (one pass)."""
        from medalist.models.detector import loss_and_detections

        both = loss_and_detections(model, list(x), self._targets(y))
        if both is not None:
            return sum(both[0].values()), self.activate(both[1])
        preds = self.predict_batch(model, x)
        model.train()
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()  # the loss only: running statistics stay as they are
        try:
            loss = sum(model(list(x), self._targets(y)).values())
        finally:
            model.eval()
        return loss, preds

    def activate(self, out: Any) -> torch.Tensor:
        """torchvision's detections (a dict per image) as (N, K, 6) NaN-padded boxes."""
        return detection_rows(out, self.cfg.model.detections_per_image, self._offset)

    def forward_for_memory(self, model: nn.Module, x: torch.Tensor) -> Any:
        """The detector's training pass on images without boxes."""
        empty = {"boxes": torch.zeros((0, 4)), "labels": torch.zeros(0, dtype=torch.int64)}
        return model(list(x), [dict(empty) for _ in x])

    def predict_batch(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return self.activate(model(list(x)))

    def combine_views(self, views: list[torch.Tensor]) -> torch.Tensor:
        """TTA views fused box by box (weighted boxes fusion)."""
        if len(views) == 1:
            return views[0]
        fused = self._fuse([v.numpy() for v in views], None)
        return torch.from_numpy(fused)

    def create_transform(self, augment: list[dict[str, Any]], *, train: bool) -> Any:
        """The configured steps moving the boxes along, then the letterbox to the input."""
        return box_transform(augment, self.shape, train=train)

    # ---- scores, OOF, post-processing -----------------------------------------------------
    def score(self, y_true: np.ndarray, preds: np.ndarray) -> float:
        if self.metric.name in METRICS:
            return self.metric(y_true, preds)
        return float(self.metric.fn(unpad(y_true), unpad(preds)))  # boxes per image

    @property
    def pred_columns(self) -> list[str]:
        return ["n_pred"]

    def _table_columns(self, y: np.ndarray, preds: np.ndarray) -> dict[str, np.ndarray]:
        t = self.score_threshold
        matches = [
            int(match_counts(g, p[p[:, 4] >= t], np.array([0.5]))[0, 0])
            for g, p in zip(unpad(y), unpad(preds), strict=True)
        ]
        return {
            "n_true": np.array([len(g) for g in unpad(y)]),
            "n_pred": np.array([int((p[:, 4] >= t).sum()) for p in unpad(preds)]),
            "matched_50": np.array(matches),
            "image_score": wheat_image_scores(y, preds, t),
        }

    def oof_frame(
        self, ids: pd.Series, folds: np.ndarray, y: np.ndarray, preds: np.ndarray
    ) -> pd.DataFrame:
        return pd.DataFrame({"id": ids.to_numpy(), "fold": folds, **self._table_columns(y, preds)})

    def write_fold_arrays(self, fold_dir: Path, preds: np.ndarray) -> None:
        """The fold's boxes, compact: every image's rows one after another, and their counts."""
        save_boxes(fold_dir / layout.OOF_BOXES, preds)

    def oof_boxes(self, folds: list[list[Path]]) -> tuple[list[str], np.ndarray]:
        """(ids, boxes) pooled over the folds, each fold's seeds fused."""
        ids, parts, k = [], [], self.cfg.model.detections_per_image
        for dirs in folds:
            ids += read_ids_csv(dirs[0] / layout.FOLD_OOF)["id"].astype(str).tolist()
            parts.append(self._fuse([load_boxes(d / layout.OOF_BOXES, k) for d in dirs], None))
        width = max(p.shape[1] for p in parts)
        return ids, np.concatenate([pad_boxes(list(map(valid_rows, p)), width) for p in parts])

    def preds_from_oof(
        self, oof: pd.DataFrame, folds: list[list[Path]] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The true and pooled out-of-fold boxes of `oof`'s rows (read from `folds`)."""
        return detect_ensemble.pooled_oof(self, oof, folds)

    def blend_oof(self, oof: pd.DataFrame, y: np.ndarray, preds: np.ndarray) -> pd.DataFrame:
        return oof.assign(**self._table_columns(y, preds))  # at the fitted threshold

    def finish_oof(self, oof: pd.DataFrame, folds: list[list[Path]]) -> dict[str, Any]:
        """The pooled OOF boxes scored, and the score threshold of a threshold metric fitted
        on them; oof.csv's columns recomputed at that threshold (and from fused seeds)."""
        from medalist.data.tables import load_train

        order, preds = self.oof_boxes(folds)
        train = load_train(self.cfg)
        row = {v: i for i, v in enumerate(train[self.id_column].astype(str))}
        y = self.encode(train)[[row[i] for i in order]]
        out = self.fit_postprocess(y, preds)
        where = {v: i for i, v in enumerate(order)}
        at = [where[str(v)] for v in oof["id"]]
        for name, values in self._table_columns(y[at], preds[at]).items():
            oof[name] = values
        return out

    def fit_postprocess(
        self, y: np.ndarray, preds: np.ndarray, folds: np.ndarray | None = None
    ) -> dict[str, Any]:
        """A threshold metric's score threshold fitted on the pooled boxes, and the score."""
        if self.metric.name in AT_THRESHOLD:
            self.score_threshold, score = best_threshold(self.metric.name, y, preds)
            return {"oof": score, "score_threshold": self.score_threshold}
        return {"oof": self.score(y, preds)}

    # ---- video frames -----------------------------------------------------------------------
    smooth_filters: ClassVar[tuple[str, ...]] = BOOST_FILTERS

    def smooth_frames(
        self, preds: np.ndarray, sequences: np.ndarray, frames: np.ndarray, window: int, kind: str
    ) -> np.ndarray:
        """Boxes that neighbouring frames confirm boosted, isolated ones under
        `predict.boost_floor` dropped (`medalist.tasks.detect_temporal`)."""
        return boost_sequences(preds, sequences, frames, window, self.cfg.predict.boost_floor)

    # ---- combining predictions ------------------------------------------------------------
    def _fuse(self, preds: Sequence[np.ndarray], weights: Sequence[float] | None) -> np.ndarray:
        p = self.cfg.predict
        return fuse(preds, weights, self.shape, p.wbf_iou_thr, p.wbf_skip_box_thr)

    def combine(
        self, preds: Iterable[np.ndarray], weights: Sequence[float] | None = None
    ) -> np.ndarray:
        """Folds, seeds or runs (`weights`) fused by weighted boxes fusion (`predict.wbf_*`)."""
        return self._fuse(list(preds), weights)

    def undo_view(self, pred: torch.Tensor, view: str) -> torch.Tensor:
        """Boxes predicted on a flipped input, flipped back."""
        h, w = self.shape
        out = pred.clone()
        if view == "hflip":
            out[..., 0], out[..., 2] = w - pred[..., 2], w - pred[..., 0]
        else:
            out[..., 1], out[..., 3] = h - pred[..., 3], h - pred[..., 1]
        return out

    def fit_blend_weights(self, y: np.ndarray, preds: Sequence[np.ndarray]) -> np.ndarray:
        return detect_ensemble.fit_box_weights(self, y, preds)

    # ---- looking at the run ---------------------------------------------------------------
    def error_analysis(self, page: AnalysisPage) -> None:
        from medalist.tasks.detect_analysis import box_error_analysis

        box_error_analysis(self, page)

    def next_step_overrides(self, verdict: str) -> list[tuple[str, str]]:
        return []

    def check_memorised(
        self, loss: float, threshold: float, y: torch.Tensor, predict: Callable[[], torch.Tensor]
    ) -> bool:
        """Each true box found at IoU 0.5, no other box (FCOS's loss never nears 0)."""
        return boxes_memorised(y.detach().cpu().numpy(), predict().numpy(), CHECK_SCORE)

    def check_goal(self, threshold: float) -> str:
        return f"every true box found at IoU 0.5 (score {CHECK_SCORE:g}+) and no other box"

    def check_rows(self, y: np.ndarray, n: int, seed: int) -> np.ndarray:
        return np.random.default_rng(seed).permutation(len(y))[:n]

    def describe_target(self, target: Any) -> str:
        k = int((~np.isnan(np.asarray(target, dtype=float)[:, 0])).sum())
        return f"{k} box{'es' if k != 1 else ''}"

    def draw_target(self, picture: np.ndarray, target: Any) -> np.ndarray:
        """The true boxes drawn in green."""
        return draw_boxes(picture, np.asarray(target, dtype=float), (0, 220, 0))

    # ---- submission -----------------------------------------------------------------------
    @staticmethod
    def _format(cfg: Config, n_classes: int) -> str:
        fmt = cfg.competition.prediction_format
        return fmt or (ONE_CLASS_FORMAT if n_classes == 1 else SEVERAL_CLASSES_FORMAT)

    def format_submission(
        self, ids: pd.Series, preds: np.ndarray, sample: pd.DataFrame
    ) -> pd.DataFrame:
        from medalist.tasks.detect_submission import format_detect_submission

        return format_detect_submission(self, ids, preds, sample)

    def find_label_issues(self, run_dir: Path, cfg: Config, filter_by: str, rank_by: str) -> Any:
        raise UserError(
            "medalist labels reads class and mask targets; suspect boxes of a detection run "
            "are not searched yet: read analysis/most_missed.csv and plots/most_missed.png"
        )

    def draw_label_issues(self, run_dir: Path, cfg: Config, found: Any, rows: Any) -> list:
        return []

    def label_issue_captions(self, rows: pd.DataFrame) -> list[str]:
        return []

    def check_sample(self, tables: Tables) -> None:
        """Nothing: the sample's table is checked when the submission is formatted."""

    def check_submission(self, sub: pd.DataFrame, sample: pd.DataFrame) -> None:
        from medalist.tasks.detect_submission import check_detect_submission

        check_detect_submission(self, sub, sample)
