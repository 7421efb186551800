"""Segmentation with mutually exclusive classes (`competition.mask_mode: index`): mask PNGs of
class indices, a softmax over the K classes, cross-entropy + Dice (multiclass) with the void
pixels (`competition.ignore_index`) left out, and Dice or IoU per image and class, void left
out too.

Targets are (n, H, W) channel indices (void = `IGNORE`); predictions are the softmax's (n, K,
H, W) class probabilities as float16 (what `fold_<k>/oof_masks.npy` holds: folds, seeds, TTA
views and runs average them as probabilities). The predicted class of a pixel is the argmax,
so there is no threshold to fit. The submission has a run-length mask per image and class, in
the sample's long (`competition.class_column`) or wide (a column per class) layout; the sample
may list a subset of the classes (background is rarely submitted).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from medalist.config.schema import Config
from medalist.data.index_masks import IGNORE, IndexLayout, index_layout, load_index_masks
from medalist.data.masks import mask_paths
from medalist.data.rle import rle_encode
from medalist.errors import UserError
from medalist.tasks.base import AnalysisPage
from medalist.tasks.classify import competition_metric
from medalist.tasks.segment import MASK_METRICS, SegmentTask, check_input_size, sample_images
from medalist.tasks.segment_metrics import overlap_scores

if TYPE_CHECKING:
    from medalist.data.tables import Tables

INDEX_LOSSES = ("auto", "ce_dice", "dice", "focal", "lovasz", "tversky", "jaccard")


def index_scores(y: np.ndarray, probs: np.ndarray, classes: int, kind: str = "dice") -> np.ndarray:
    """(n, K) Dice or IoU of each image and class between the true indices `y` (n, H, W) and
    the argmax of `probs` (n, K, H, W); void pixels (IGNORE) count for neither; a class absent
    from both scores 1."""
    out = np.empty((len(y), classes), dtype=np.float64)
    for start in range(0, len(y), 64):  # chunks bound the copies' memory
        t = y[start : start + 64].reshape(len(y[start : start + 64]), -1)
        p = np.asarray(probs[start : start + len(t)]).reshape(len(t), classes, -1).argmax(axis=1)
        p = np.where(t == IGNORE, IGNORE, p)  # the prediction on a void pixel is not scored
        for k in range(classes):
            out[start : start + len(t), k] = overlap_scores(t == k, p == k, kind)
    return out


def argmax_labels(probs: np.ndarray) -> np.ndarray:
    """(n, H, W) predicted channels of (n, K, H, W) class probabilities, a chunk at a time."""
    out = np.empty((len(probs), *probs.shape[2:]), dtype=np.uint8)
    for start in range(0, len(probs), 64):
        out[start : start + 64] = np.asarray(probs[start : start + 64]).argmax(axis=1)
    return out


class IndexMaskLoss(nn.Module):
    """Cross-entropy (torch's) plus an smp loss in multiclass mode, void pixels ignored by
    both; either part may be absent."""

    def __init__(self, loss: nn.Module | None, with_ce: bool) -> None:
        super().__init__()
        self.loss = loss
        self.ce = nn.CrossEntropyLoss(ignore_index=IGNORE) if with_ce else None

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = target.long()
        total = self.ce(logits, target) if self.ce is not None else 0.0
        return total + (self.loss(logits, target) if self.loss is not None else 0.0)


def check_index_loss(cfg: Config) -> None:
    if cfg.train.loss not in INDEX_LOSSES:
        raise UserError(
            f"train.loss = {cfg.train.loss!r} does not fit index masks (one class per pixel, "
            f"softmax); use one of {', '.join(INDEX_LOSSES)} (auto = ce_dice)"
        )


def create_index_loss(cfg: Config) -> nn.Module:
    """Cross-entropy + Dice (multiclass) by default, or smp's Dice, focal, Lovasz, Tversky or
    Jaccard loss in multiclass mode, each ignoring the void pixels."""
    from segmentation_models_pytorch import losses

    name, t = cfg.train.loss, cfg.train
    kw = {"mode": "multiclass", "ignore_index": IGNORE}
    if name in ("auto", "ce_dice"):
        return IndexMaskLoss(losses.DiceLoss(from_logits=True, **kw), with_ce=True)
    made = {
        "dice": lambda: losses.DiceLoss(from_logits=True, **kw),
        "focal": lambda: losses.FocalLoss(gamma=t.focal_gamma, **kw),
        "lovasz": lambda: losses.LovaszLoss(from_logits=True, **kw),
        "tversky": lambda: losses.TverskyLoss(
            from_logits=True, alpha=t.tversky_alpha, beta=t.tversky_beta, **kw
        ),
        "jaccard": lambda: losses.JaccardLoss(from_logits=True, **kw),
    }[name]()
    return IndexMaskLoss(made, with_ce=False)


@dataclass
class IndexSegmentTask(SegmentTask):
    """Segmentation with one class per pixel: index masks, softmax over the classes."""

    values: list[int] = field(default_factory=list)  # channel j's pixel value
    void: int | None = None
    kind: str = "index"

    @property
    def layout(self) -> IndexLayout:
        return IndexLayout(list(map(str, self.classes)), list(self.values), self.void)

    @classmethod
    def from_config(cls, cfg: Config, train: pd.DataFrame) -> IndexSegmentTask:
        from medalist.data.tables import image_paths

        metric = competition_metric(cfg)
        if metric.name not in MASK_METRICS:
            raise UserError(
                f"competition.metric = {cfg.competition.metric!r}: segmentation scores masks; "
                f"use {' or '.join(MASK_METRICS)}"
            )
        check_input_size(cfg)
        check_index_loss(cfg)
        paths = image_paths(cfg, train, cfg.path(cfg.competition.image_dir))
        found = index_layout(cfg, mask_paths(cfg, paths))
        return cls(
            cfg, metric, cfg.competition.id_column, found.classes, values=found.values,
            void=found.void,
        )  # fmt: skip

    def state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "classes": self.classes,
            "values": self.values,
            "void": self.void,
            "min_areas": self.min_areas,
            "min_total_areas": self.min_total_areas,
        }

    @classmethod
    def from_state(cls, cfg: Config, state: dict[str, Any]) -> IndexSegmentTask:
        return cls(
            cfg,
            competition_metric(cfg),
            cfg.competition.id_column,
            list(state["classes"]),
            values=[int(v) for v in state["values"]],
            void=state.get("void"),
            min_areas=[int(a) for a in state.get("min_areas") or []],
            min_total_areas=[int(a) for a in state.get("min_total_areas") or []],
        )

    @property
    def single(self) -> bool:
        return False

    def encode(self, df: pd.DataFrame) -> np.ndarray:
        """The training masks as channel indices at `data.image_size` (void = IGNORE)."""
        from medalist.data.tables import image_paths

        key = tuple(df[self.id_column].astype(str))
        if self._masks is None or self._masks[0] != key:
            paths = image_paths(self.cfg, df, self.cfg.path(self.cfg.competition.image_dir))
            masks = load_index_masks(
                self.cfg, mask_paths(self.cfg, paths), paths, self.cfg.data.image_size,
                self.layout,
            )  # fmt: skip
            self._masks = (key, masks)
        return self._masks[1]

    def create_loss(self, cfg: Config, y_train: np.ndarray) -> nn.Module:
        return create_index_loss(cfg)

    def create_transform(self, augment: list[dict[str, Any]], *, train: bool) -> Any:
        """The configured steps; those that pad (Affine, Rotate...) fill the mask with void,
        not with class 0, unless the step sets `fill_mask` itself."""
        import inspect

        import albumentations as A

        from medalist.data.dataset import create_transform

        def void_fill(step: dict[str, Any]) -> dict[str, Any]:
            cls = getattr(A, str(step.get("name")), None)
            takes = isinstance(cls, type) and "fill_mask" in inspect.signature(cls).parameters
            return {**step, "fill_mask": IGNORE} if takes and "fill_mask" not in step else step

        return create_transform([void_fill(s) for s in augment], train=train)

    def activate(self, out: torch.Tensor) -> torch.Tensor:
        """Logits (N, K, H, W) to class probabilities (softmax over K), float16."""
        return out.float().softmax(dim=1).to(torch.float16)

    def _kind(self) -> str:
        return "iou" if self.metric.name == "iou" else "dice"

    def score(self, y_true: np.ndarray, preds: np.ndarray) -> float:
        """The mean Dice (or IoU) over image-class pairs, void pixels left out."""
        return float(index_scores(y_true, preds, len(self.classes), self._kind()).mean())

    def _table_columns(self, y: np.ndarray, preds: np.ndarray) -> dict[str, np.ndarray]:
        """Per class: the true and predicted area (fractions of the image's scored pixels)
        and the score; the image's score (the mean over classes) last."""
        n, c = len(y), len(self.classes)
        scores = index_scores(y, preds, c, self._kind())
        flat = y.reshape(n, -1)
        valid = np.maximum((flat != IGNORE).sum(axis=1), 1)
        pred = np.asarray(preds).reshape(n, c, -1).argmax(axis=1)
        pred = np.where(flat == IGNORE, IGNORE, pred)
        out: dict[str, np.ndarray] = {}
        for j, name in enumerate(self.classes):
            out[f"target_area_{name}"] = (flat == j).sum(axis=1) / valid
            out[f"pred_area_{name}"] = (pred == j).sum(axis=1) / valid
            out[f"{self.metric.name}_{name}"] = scores[:, j]
        out[self.metric.name] = scores.mean(axis=1)
        return out

    def fit_postprocess(
        self, y: np.ndarray, preds: np.ndarray, folds: np.ndarray | None = None
    ) -> dict[str, Any]:
        """The pooled OOF score and each class's (the argmax needs no threshold); with the
        rows' folds, each class's minimum component and total area (`predict.postprocess`),
        each kept only where it beats noise."""
        scores = index_scores(y, preds, len(self.classes), self._kind())
        per_class = dict(zip(map(str, self.classes), scores.mean(axis=0).tolist(), strict=True))
        out = {"oof": float(scores.mean()), f"oof_{self.metric.name}_per_class": per_class}
        steps = list(self.cfg.predict.postprocess)
        if folds is not None and steps:
            out.update(self._fit_areas(y, preds, folds, steps))
        return out

    def _fit_areas(
        self, y: np.ndarray, preds: np.ndarray, folds: np.ndarray, steps: list[str]
    ) -> dict[str, Any]:
        """Per class but the first (background): the minimum component and total areas of
        its argmax pixels, fitted on the pooled OOF masks against its own score, void pixels
        counted for no class (`segment_postprocess.fit_class`); what they drop becomes
        background. `oof_postprocessed` is the mean score with all of them applied."""
        from medalist.tasks import segment_postprocess as postprocess

        label = argmax_labels(preds)
        valid = y != IGNORE
        fitted = {
            str(name): postprocess.fit_class(y == j, label == j, folds, self._kind(), steps, valid)
            for j, name in enumerate(self.classes)
            if j > 0
        }
        self.min_areas = [0, *(int(f["min_area"]) for f in fitted.values())]
        self.min_total_areas = [0, *(int(f["min_total_area"]) for f in fitted.values())]
        kept = np.stack([self.postprocess_labels(lab) for lab in label])
        one_hot = np.eye(len(self.classes), dtype=np.float16)[kept].transpose(0, 3, 1, 2)
        after = index_scores(y, one_hot, len(self.classes), self._kind())
        return {"postprocess": fitted, "oof_postprocessed": float(after.mean())}

    def postprocess_labels(self, label: np.ndarray) -> np.ndarray:
        """A class-index map with the fitted minimum areas applied (dropped pixels become the
        first class, background)."""
        from medalist.tasks.segment_postprocess import apply_labels

        return apply_labels(label, self.min_areas, self.min_total_areas)

    def label_map(self, prob: np.ndarray, width: int, height: int) -> np.ndarray:
        """An image's (H, W) channel indices at its own size: the post-processing at the
        training size (dropped pixels made background with certainty), the class
        probabilities resized (linear), the argmax."""
        import cv2

        planes = np.asarray(prob, dtype=np.float32)
        label = planes.argmax(axis=0)
        dropped = self.postprocess_labels(label) != label
        if dropped.any():
            planes = planes.copy()
            planes[:, dropped] = 0.0
            planes[0, dropped] = 1.0
        big = cv2.resize(planes.transpose(1, 2, 0), (width, height), interpolation=cv2.INTER_LINEAR)
        return big.reshape(height, width, -1).argmax(axis=2)

    def drawn_masks(self, truth: np.ndarray, prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where the truth and the argmax are a class other than the first (background)."""
        pred = np.asarray(prob).argmax(axis=0)
        return (truth > 0) & (truth != IGNORE), (pred > 0) & (truth != IGNORE)

    def describe_target(self, target: Any) -> str:
        t = np.asarray(target)
        return f"{len(set(np.unique(t).tolist()) - {IGNORE})} classes"

    def draw_target(self, picture: np.ndarray, target: Any) -> np.ndarray:
        """The pixels of any class but the first (background) drawn in red."""
        on = (np.asarray(target) > 0) & (np.asarray(target) != IGNORE)
        return super().draw_target(picture, on.astype(np.uint8))

    def error_analysis(self, page: AnalysisPage) -> None:
        """The lowest-scoring images (drawn), and `analysis/per_class.csv`: each class's mean
        score, the share of images that hold it and its share of the scored pixels."""
        from medalist.tasks.segment_analysis import mask_error_analysis

        mask_error_analysis(self, page)
        oof, metric = page.oof, self.metric.name
        rows = [
            {
                "class": name,
                metric: float(oof[f"{metric}_{name}"].mean()),
                "images_with_class": float((oof[f"target_area_{name}"] > 0).mean()),
                "pixel_share": float(oof[f"target_area_{name}"].mean()),
            }
            for name in map(str, self.classes)
        ]
        page.table("per_class.csv", pd.DataFrame(rows))

    def class_truth(self, y: np.ndarray, j: int) -> tuple[np.ndarray, np.ndarray | None]:
        """The pixels given class j, and the scored (non-void) pixels: `medalist labels`
        ranks each image-class pair on its softmax share, void left out."""
        return y == j, y != IGNORE

    def check_sample(self, tables: Tables) -> None:
        """A sample of PNG masks: its file names (none twice) and, when it is a folder or zip,
        each mask's size against its test image's, checked before any image is decoded.
        Skipped while a test image is missing (predict says which)."""
        from medalist.data import mask_files

        sample, test, paths = tables.sample, tables.test, tables.test_paths
        if sample is None or test is None or paths is None:
            return
        if not mask_files.wants_png(self.cfg, sample) or not all(p.is_file() for p in paths):
            return
        ids = test[self.id_column].astype(str)
        image = sample_images(sample, self.id_column, set(ids))
        mask_files.mask_targets(self.cfg, sample, image, dict(zip(ids, paths, strict=True)))

    def format_submission(
        self, ids: pd.Series, preds: np.ndarray, sample: pd.DataFrame
    ) -> pd.DataFrame:
        """The class probabilities resized to each test image's own size (linear), the argmax,
        and a run-length mask per image and class in the sample's rows and columns; or, when
        the sample asks for files (`predict.mask_format`), a PNG mask per image."""
        from medalist.data.mask_files import wants_png

        if wants_png(self.cfg, sample):
            return self._png_submission(ids, preds, sample)
        from medalist.data.images import image_size
        from medalist.data.joined_ids import join_ids, split_ids
        from medalist.data.tables import image_paths

        cfg, comp = self.cfg, self.cfg.competition
        frame = pd.DataFrame({self.id_column: ids.to_numpy()})
        paths = image_paths(cfg, frame, cfg.path(comp.test_image_dir))
        texts: dict[tuple[str, str], str] = {}
        for i, p, path in zip(ids.astype(str), preds, paths, strict=True):
            label = self.label_map(p, *image_size(path))
            for j, name in enumerate(self.classes):
                texts[(i, str(name))] = rle_encode(label == j, comp.rle_order)
        split = split_ids(cfg, sample, comp.sample_submission)
        sub = join_ids(cfg, fill_index_submission(self, split, texts, set(ids.astype(str))), sample)
        self.check_submission(sub, sample)
        return sub

    def _png_submission(
        self, ids: pd.Series, preds: np.ndarray, sample: pd.DataFrame
    ) -> pd.DataFrame:
        """A PNG of the training masks' class values per sample row, at its test image's size
        (the size of the sample's own mask, when the sample is files: checked)."""
        from medalist.data import mask_files
        from medalist.data.tables import image_paths

        cfg, comp = self.cfg, self.cfg.competition
        image = sample_images(sample, self.id_column, set(ids.astype(str)))
        frame = pd.DataFrame({self.id_column: ids.to_numpy()})
        found = image_paths(cfg, frame, cfg.path(comp.test_image_dir))
        paths = dict(zip(ids.astype(str), found, strict=True))
        which, names, sizes, column = mask_files.mask_targets(cfg, sample, image, paths)
        row = {v: k for k, v in enumerate(ids.astype(str))}
        values = np.asarray(self.values, dtype=np.uint8)
        masks = {
            name: values[self.label_map(preds[row[i]], w, h)]
            for i, name, (w, h) in zip(which, names, sizes, strict=True)
        }
        with_table = column is not None and column != mask_files.FILE_COLUMN
        return mask_files.mask_files(sample.copy(), masks, with_table)


def fill_index_submission(
    task: IndexSegmentTask, sample: pd.DataFrame, texts: dict, known: set[str]
) -> pd.DataFrame:
    """The sample with its mask cells filled: long (a row per image and class) or wide (a
    column per class); the sample may list a subset of the classes."""
    comp, where = task.cfg.competition, task.cfg.competition.sample_submission
    sub = sample.copy()
    image = sample_images(sample, task.id_column, known)
    names = [str(c) for c in task.classes]
    if comp.class_column is not None:
        cls = sample[comp.class_column].astype(str)
        rest = [c for c in sample.columns if c not in (task.id_column, comp.class_column)]
        unknown = ~cls.isin(names)
        if len(rest) != 1 or unknown.any():
            shown = cls[unknown].iloc[0] if unknown.any() else None
            raise UserError(
                f"{where}: a long-format segmentation submission has the id, "
                f"{comp.class_column!r} (one of {', '.join(names)}) and one mask column"
                + (f"; class {shown!r} is none of them" if shown is not None else "")
                + "; fix competition.classes or the sample"
            )
        sub[rest[0]] = [texts[(i, c)] for i, c in zip(image, cls, strict=True)]
        return sub
    rest = [c for c in sample.columns if c != task.id_column]
    unknown = [c for c in rest if c not in names]
    if not rest or unknown:
        raise UserError(
            f"{where}: its columns {rest} are not mask columns of the classes "
            f"({', '.join(names)}); set competition.class_column for a row per image and "
            "class, or fix competition.classes"
        )
    for c in rest:
        sub[c] = [texts[(i, c)] for i in image]
    return sub
