"""Segmentation as a task: masks (one class, or several with a sigmoid each) from a folder or
run-length text, a U-Net's loss, per-image Dice, thresholds fitted on the out-of-fold masks, and
run-length submissions.

Masks are resized to `data.image_size` (nearest) for training; predictions are probability
masks at that size ((n, H, W) for one class, (n, C, H, W) for several), stored as float16 (a
quarter of float64's memory), resized back to each test image's own size before the threshold,
and written as run-length encodings in Kaggle's format: 1-based start and length pairs, pixels
counted down each column (`competition.rle_order: column`, as in most competitions) or
along each row (`row`).

Each fold writes its out-of-fold probability masks to `fold_<k>/oof_masks.npy` (rows in the
order of its `oof.csv`); `oof.csv` holds one row per image: its id, fold, the target's and the
prediction's area (a fraction of the image) and score per class, and the image's score.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn

from medalist.config.schema import Config
from medalist.data.dataset import transform_with_mask
from medalist.data.images import image_size
from medalist.data.masks import load_masks, mask_layout, mask_strata
from medalist.data.rle import rle_decode, rle_encode  # noqa: F401 - the codec of this task
from medalist.errors import UserError, first_line
from medalist.io import read_ids_csv
from medalist.runs import layout
from medalist.tasks.base import AnalysisPage, ModelOutputs
from medalist.tasks.classify import combine_arrays, competition_metric
from medalist.tasks.metrics import Metric
from medalist.tasks.segment_losses import check_loss, create_mask_loss
from medalist.tasks.segment_metrics import per_image_scores

if TYPE_CHECKING:
    from medalist.data.tables import Tables

MASK_METRICS = ("dice", "iou")
PNG_NEEDS_INDEX = (
    "PNG mask files (predict.mask_format: png, or a sample of .png masks) hold class indices: "
    "they need competition.mask_mode: index; or set predict.mask_format: rle"
)
THRESHOLD_GRID = np.round(np.arange(0.2, 0.81, 0.05), 2)


def check_input_size(cfg: Config) -> None:
    """Each input the model sees (`data.image_size`, or the crop and the tile of large images)
    must be a multiple of the architecture's output stride (a U-Net, and most decoders, halve
    the image five times: 32)."""
    from medalist.tasks.segment_tiles import model_inputs

    for key, value, (height, width) in model_inputs(cfg):
        _check_side(cfg, key, value, height, width)


def _check_side(cfg: Config, key: str, value: Any, height: int, width: int) -> None:
    from medalist.models.factory import check_arch, create_segmenter

    check_arch(cfg.model.arch)
    if cfg.model.arch == "unet":
        stride, why = 32, "a U-Net halves the image five times"
    else:
        bare = cfg.model.model_copy(update={"pretrained": False})  # the shape, not the weights
        with torch.random.fork_rng():
            model = create_segmenter(cfg.model_copy(update={"model": bare}), 1, None)
        stride = int(getattr(model.encoder, "output_stride", 32))
        why = f"{cfg.model.arch} on {cfg.model.backbone} has an output stride of {stride}"
    for side in dict.fromkeys((height, width)):
        if side % stride:
            raise UserError(
                f"{key} = {value}: {why}, so it takes a multiple of "
                f"{stride}; use {max(stride, side // stride * stride)} or "
                f"{(side // stride + 1) * stride}"
                + (f" instead of {side}" if height != width else "")
            )
    if cfg.model.arch != "unet":  # some decoders pool further: one pass at the size tells
        try:
            with torch.no_grad():
                model.eval()(torch.zeros(1, cfg.model.in_chans, height, width))
        except RuntimeError as exc:
            raise UserError(
                f"{key} = {value} is too small for {cfg.model.arch} on "
                f"{cfg.model.backbone} ({first_line(exc)[:120]}); use a larger size"
            ) from None


def sample_images(sample: pd.DataFrame, id_column: str, known: set[str]) -> pd.Series:
    """The sample submission's image ids as text; one that no test image has is an error."""
    image = sample[id_column].astype(str)
    missing = ~image.isin(known)
    if missing.any():
        first = sample[id_column][missing].iloc[0]
        raise UserError(f"sample_submission id {first!r} is not among the test images")
    return image


def _by_class(a: np.ndarray, classes: int) -> np.ndarray:
    """(n, H, W) masks as (n, 1, H, W); (n, C, H, W) as they are."""
    return a[:, None] if classes == 1 else a


# ---- the task ----------------------------------------------------------------------------
@dataclass
class SegmentTask(ModelOutputs):
    """What the fold loop needs to know about a mask target: one class (predictions (n, H, W))
    or several, each its own sigmoid (predictions (n, C, H, W))."""

    cfg: Config
    metric: Metric
    id_column: str
    classes: list[Any] = field(default_factory=lambda: ["mask"])
    columns: list[str] = field(default_factory=list)  # the train table's RLE columns
    thresholds: list[float] = field(default_factory=list)
    min_areas: list[int] = field(default_factory=list)  # post-processing per class, 0 = off
    min_total_areas: list[int] = field(default_factory=list)
    kind: str = "mask"
    name: ClassVar[str] = "segment"
    pred_dtype: ClassVar[Any] = np.float16
    collate: ClassVar[Any] = None
    check_caption: ClassVar[str] = " with their masks (red)"
    analysis_thresholds: ClassVar[dict[str, float]] = {}
    transform_sample = staticmethod(transform_with_mask)
    _masks: tuple[tuple[str, ...], np.ndarray] | None = None

    def __post_init__(self) -> None:
        if len(self.thresholds) != len(self.classes):
            self.thresholds = [0.5] * len(self.classes)
        for name in ("min_areas", "min_total_areas"):
            if len(getattr(self, name)) != len(self.classes):
                setattr(self, name, [0] * len(self.classes))

    @classmethod
    def from_config(cls, cfg: Config, train: pd.DataFrame) -> SegmentTask:
        if cfg.competition.mask_mode == "index":  # one class per pixel: softmax
            from medalist.tasks.segment_index import IndexSegmentTask

            return IndexSegmentTask.from_config(cfg, train)
        metric = competition_metric(cfg)
        if metric.name not in MASK_METRICS:
            raise UserError(
                f"competition.metric = {cfg.competition.metric!r}: segmentation scores masks; "
                f"use {' or '.join(MASK_METRICS)}"
            )
        from medalist.tasks.segment_tiles import check_large_images, resolve_image_size

        if cfg.predict.mask_format == "png":
            raise UserError(PNG_NEEDS_INDEX)
        resolve_image_size(cfg, train)
        check_large_images(cfg)
        check_input_size(cfg)
        check_loss(cfg)
        classes, columns = mask_layout(cfg, train)
        return cls(cfg, metric, cfg.competition.id_column, classes, columns)

    def state(self) -> dict[str, Any]:
        state = {
            "kind": self.kind,
            "classes": self.classes,
            "columns": self.columns,
            "thresholds": self.thresholds,
            "min_areas": self.min_areas,
            "min_total_areas": self.min_total_areas,
        }
        return {**state, "threshold": self.thresholds[0]} if self.single else state

    @classmethod
    def from_state(cls, cfg: Config, state: dict[str, Any]) -> SegmentTask:
        if state.get("kind") == "index":
            from medalist.tasks.segment_index import IndexSegmentTask

            return IndexSegmentTask.from_state(cfg, state)
        classes, columns = mask_layout(cfg)
        classes = list(state.get("classes") or classes)
        thresholds = state.get("thresholds") or [float(state.get("threshold", 0.5))]
        return cls(
            cfg,
            competition_metric(cfg),
            cfg.competition.id_column,
            classes,
            list(state.get("columns") or columns),
            [float(t) for t in thresholds],
            [int(a) for a in state.get("min_areas") or []],
            [int(a) for a in state.get("min_total_areas") or []],
        )

    def target_signature(self) -> tuple[Any, ...]:
        """The classes, and the masks' size: blended masks must be of one size."""
        h, w = self.cfg.data.height_width
        return (self.kind, list(self.classes), f"{h}x{w} px")

    @classmethod
    def fold_table(cls, cfg: Config, train: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
        """Masks stratify by emptiness and area quartile, not by their run-length text."""
        if cfg.cv.scheme not in ("stratified", "stratified_group"):
            return train, cfg.target_columns
        from medalist.data.tables import image_paths

        paths = image_paths(cfg, train, cfg.path(cfg.competition.image_dir))
        train = train.assign(mask_area_bin=mask_strata(cfg, train, paths).to_numpy())
        return train, ["mask_area_bin"]

    def create_model(self, cfg: Config) -> nn.Module:
        """A U-Net on the timm backbone, one output channel per class."""
        from medalist.models.factory import create_segmenter, pretrained_file

        return create_segmenter(cfg, self.num_outputs, pretrained_file(cfg))

    def create_transform(self, augment: list[dict[str, Any]], *, train: bool) -> Any:
        """The configured augmentations (training: after a random `data.crop_size` crop)."""
        from medalist.data.dataset import create_transform
        from medalist.tasks.segment_tiles import crop_augment

        return create_transform(crop_augment(self.cfg) + list(augment), train=train)

    def validation_batch(
        self, model: nn.Module, loss_fn: nn.Module, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole image's loss and masks (in sliding windows with `predict.tile_size`)."""
        from medalist.tasks.segment_tiles import whole_image

        out = whole_image(model, x, self.cfg)
        return loss_fn(out, y), self.activate(out)

    def predict_batch(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        from medalist.tasks.segment_tiles import whole_image

        return self.activate(whole_image(model, x, self.cfg))

    def chance_loss(self, cfg: Config) -> float | None:
        return None

    def create_mixer(self, cfg: Config) -> None:
        """Masks are not mixed: mixup and cutmix are for class targets."""
        if cfg.train.mixing:
            raise UserError(
                "train.mixup / train.cutmix: mixing images is for classification, not masks; "
                "set train.mixup: 0 and train.cutmix: 0"
            )
        return None

    @property
    def single(self) -> bool:
        return len(self.classes) == 1

    @property
    def threshold(self) -> float:
        return self.thresholds[0]

    @property
    def num_outputs(self) -> int:
        return len(self.classes)

    def encode(self, df: pd.DataFrame) -> np.ndarray:
        """The training masks at `data.image_size` (read once per table)."""
        from medalist.data.tables import image_paths

        key = tuple(df[self.id_column].astype(str))
        if self._masks is None or self._masks[0] != key:
            paths = image_paths(self.cfg, df, self.cfg.path(self.cfg.competition.image_dir))
            size = self.cfg.data.image_size
            masks = load_masks(self.cfg, df, paths, size, self.columns, self.classes)
            self._masks = (key, masks)
        return self._masks[1]

    def create_loss(self, cfg: Config, y_train: np.ndarray) -> nn.Module:
        return create_mask_loss(cfg, len(self.classes))

    def activate(self, out: torch.Tensor) -> torch.Tensor:
        """Logits (N, C, H, W) to probability masks: (N, H, W) for one class, else (N, C, H, W)."""
        p = out.float().sigmoid()
        return (p[:, 0] if self.single else p).to(torch.float16)

    def score(self, y_true: np.ndarray, preds: np.ndarray) -> float:
        return self.metric(y_true, preds)

    # ---- tables ---------------------------------------------------------------------------
    @property
    def pred_columns(self) -> list[str]:
        return ["pred_area"] if self.single else [f"pred_area_{c}" for c in self.classes]

    def _scores(self, y: np.ndarray, preds: np.ndarray, thresholds: list[float]) -> np.ndarray:
        """(n, C) per-image, per-class scores, each class at its threshold."""
        kind = "iou" if self.metric.name == "iou" else "dice"
        y, preds = _by_class(y, len(self.classes)), _by_class(preds, len(self.classes))
        return np.stack(
            [per_image_scores(y[:, j], preds[:, j], t, kind) for j, t in enumerate(thresholds)],
            axis=1,
        )

    def _table_columns(self, y: np.ndarray, preds: np.ndarray) -> dict[str, np.ndarray]:
        """Areas and scores per class at 0.5 (one set of columns per class when several), and
        the image's score (the mean over classes) last."""
        n, c = len(y), len(self.classes)
        yc, pc = _by_class(y, c), _by_class(preds, c)
        scores = self._scores(y, preds, [0.5] * c)
        out: dict[str, np.ndarray] = {}
        for j, name in enumerate(self.classes):
            suffix = "" if self.single else f"_{name}"
            out[f"target_area{suffix}"] = yc[:, j].reshape(n, -1).mean(axis=1)
            out[f"pred_area{suffix}"] = (pc[:, j].reshape(n, -1) >= 0.5).mean(axis=1)
            if not self.single:
                out[f"{self.metric.name}{suffix}"] = scores[:, j]
        out[self.metric.name] = scores.mean(axis=1)
        return out

    def oof_frame(
        self, ids: pd.Series, folds: np.ndarray, y: np.ndarray, preds: np.ndarray
    ) -> pd.DataFrame:
        table = {"id": ids.to_numpy(), "fold": folds, **self._table_columns(y, preds)}
        return pd.DataFrame(table)

    def write_fold_arrays(self, fold_dir: Path, preds: np.ndarray) -> None:
        from medalist.io import atomic_write

        atomic_write(
            fold_dir / layout.OOF_MASKS, lambda f: np.save(f, preds.astype(np.float16)), "wb"
        )

    def preds_from_oof(
        self, oof: pd.DataFrame, folds: list[list[Path]] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The training masks and the run's out-of-fold probability masks (seeds averaged),
        both in the rows of its merged oof.csv, read from `folds` (see `segment_blend`)."""
        if folds is None:
            raise ValueError("a segmentation run's OOF masks are read from its fold folders")
        from medalist.data.tables import load_train
        from medalist.tasks.segment_blend import read_oof_masks

        train = load_train(self.cfg)
        row = {v: i for i, v in enumerate(train[self.id_column].astype(str))}
        y = self.encode(train)[[row[str(i)] for i in oof["id"]]]
        preds = read_oof_masks(oof, folds, y.shape[-2:], len(self.classes))
        return y, preds

    def blend_oof(self, oof: pd.DataFrame, y: np.ndarray, preds: np.ndarray) -> pd.DataFrame:
        """The member's rows with the blend's per-image columns (areas, scores) as a run's."""
        fresh = self.oof_frame(oof["id"], oof["fold"].to_numpy(), y, preds)
        out = oof[[c for c in oof.columns if c in ("id", "fold") or c not in fresh.columns]].copy()
        for c in fresh.columns.drop(["id", "fold"]):
            out[c] = fresh[c].to_numpy()
        return out

    def finish_oof(self, oof: pd.DataFrame, folds: list[list[Path]]) -> dict[str, Any]:
        """Pool the folds' masks (each fold's seeds averaged, `folds[k]` its folders by seed):
        the OOF score at 0.5, and each class's threshold that maximises it. With several seeds
        the table's per-image columns are recomputed from the averaged masks."""
        from medalist.data.tables import load_train

        ids, parts = [], []
        for dirs in folds:
            ids.append(read_ids_csv(dirs[0] / layout.FOLD_OOF)["id"].astype(str))
            masks = [np.load(d / layout.OOF_MASKS) for d in dirs]
            mean = masks[0] if len(masks) == 1 else np.mean(masks, axis=0, dtype=np.float32)
            parts.append(mean.astype(np.float16))
        preds, order = np.concatenate(parts), pd.concat(ids).tolist()
        train = load_train(self.cfg)
        y_all = self.encode(train)
        row = {v: i for i, v in enumerate(train[self.id_column].astype(str))}
        y = y_all[[row[i] for i in order]]
        if len(folds[0]) > 1:
            where = {v: i for i, v in enumerate(order)}
            at = [where[str(v)] for v in oof["id"]]
            for name, values in self._table_columns(y[at], preds[at]).items():
                oof[name] = values
        fold_of = dict(zip(oof["id"].astype(str), oof["fold"], strict=True))
        return self.fit_postprocess(y, preds, np.array([fold_of[i] for i in order]))

    def fit_postprocess(
        self, y: np.ndarray, preds: np.ndarray, folds: np.ndarray | None = None
    ) -> dict[str, Any]:
        """Each class's threshold that maximises the pooled OOF score over a grid (ties to the
        one nearest 0.5); the score at 0.5 and at the fitted thresholds. With the rows' folds,
        then the minimum component and total areas (`predict.postprocess`), each kept only
        where it beats noise."""
        c = len(self.classes)
        # Each class's score at every threshold of the grid: (thresholds, classes).
        grid = np.stack([self._scores(y, preds, [t] * c).mean(axis=0) for t in THRESHOLD_GRID])
        closeness = -np.abs(THRESHOLD_GRID - 0.5)
        best = [int(np.lexsort((closeness, grid[:, j]))[-1]) for j in range(c)]
        self.thresholds = [float(THRESHOLD_GRID[i]) for i in best]
        at_half = int(np.flatnonzero(np.isclose(THRESHOLD_GRID, 0.5))[0])
        out: dict[str, Any] = {
            "oof": float(grid[at_half].mean()),
            "oof_at_threshold": float(np.mean([grid[i, j] for j, i in enumerate(best)])),
        }
        if self.single:
            out["threshold"] = self.thresholds[0]
        else:
            out["thresholds"] = dict(zip(map(str, self.classes), self.thresholds, strict=True))
        steps = list(self.cfg.predict.postprocess)
        if folds is not None and steps:
            out.update(self._fit_areas(y, preds, folds, steps))
        return out

    def _fit_areas(
        self, y: np.ndarray, preds: np.ndarray, folds: np.ndarray, steps: list[str]
    ) -> dict[str, Any]:
        """The minimum component and total areas of each class, fitted on the pooled OOF masks
        at the class's threshold (see `segment_postprocess`)."""
        from medalist.tasks.segment_postprocess import fit_class

        kind = "iou" if self.metric.name == "iou" else "dice"
        c = len(self.classes)
        yc, pc = _by_class(y, c), _by_class(preds, c)
        fitted = {
            str(name): fit_class(yc[:, j], pc[:, j] >= self.thresholds[j], folds, kind, steps)
            for j, name in enumerate(self.classes)
        }
        self.min_areas = [int(f["min_area"]) for f in fitted.values()]
        self.min_total_areas = [int(f["min_total_area"]) for f in fitted.values()]
        after = float(np.mean([f["after"] for f in fitted.values()]))
        return {"postprocess": fitted, "oof_postprocessed": after}

    # ---- combining predictions ------------------------------------------------------------
    def combine(
        self, preds: Iterable[np.ndarray], weights: Sequence[float] | None = None
    ) -> np.ndarray:
        """The mean of probability masks (summed in float32), or their weighted mean."""
        if weights is None:
            return combine_arrays(preds, weights)
        from medalist.tasks.segment_blend import weighted_masks

        return weighted_masks(list(preds), weights)

    def undo_view(self, pred: torch.Tensor, view: str) -> torch.Tensor:
        """A mask predicted on a flipped image, flipped back to the image's orientation."""
        return pred.flip(-1 if view == "hflip" else -2)

    @property
    def blend_objective(self) -> str:
        return f"mean {self.metric.name} at 0.5, best point of a simplex grid of weights"

    def fit_blend_weights(self, y: np.ndarray, preds: Sequence[np.ndarray]) -> np.ndarray:
        """The simplex grid point whose blended masks score best (`segment_blend`)."""
        from medalist.tasks.segment_blend import fit_mask_weights

        return fit_mask_weights(
            lambda t, p: self._scores(t, p, [0.5] * len(self.classes)), y, preds
        )

    # ---- looking at the run ----------------------------------------------------------------
    def error_analysis(self, page: AnalysisPage) -> None:
        from medalist.tasks.segment_analysis import mask_error_analysis

        mask_error_analysis(self, page)

    def next_step_overrides(self, verdict: str) -> list[tuple[str, str]]:
        return []

    def check_rows(self, y: np.ndarray, n: int, seed: int) -> np.ndarray:
        return np.random.default_rng(seed).permutation(len(y))[:n]

    def drawn_masks(self, truth: np.ndarray, prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(true, predicted) pixels of an image as the error analysis draws them: any class."""
        truth, pred = truth > 0, np.asarray(prob) >= 0.5
        if pred.ndim == 3:  # several classes: drawn together
            truth, pred = truth.any(axis=0), pred.any(axis=0)
        return truth, pred

    def describe_target(self, target: Any) -> str:
        return f"mask {float(np.asarray(target).mean()):.0%}"

    def draw_target(self, picture: np.ndarray, target: Any) -> np.ndarray:
        """The mask (any class) drawn in red on the picture."""
        pic = np.repeat(picture[:, :, :1], 3, axis=2) if picture.shape[2] == 1 else picture.copy()
        on = np.asarray(target) > 0
        on = on.any(axis=0) if on.ndim == 3 else on  # several classes: any of them
        pic[on] = (0.5 * pic[on] + [127, 0, 0]).astype(np.uint8)
        return pic

    # ---- labels that look wrong ------------------------------------------------------------
    def class_truth(self, y: np.ndarray, j: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Class j's given masks of encoded targets `y`, and the pixels that count (None:
        all): a sigmoid run's channel j."""
        return _by_class(y, len(self.classes))[:, j], None

    def find_label_issues(self, run_dir: Path, cfg: Config, filter_by: str, rank_by: str) -> Any:
        from medalist.tasks.segment_labels import mask_issues

        return mask_issues(self, run_dir, cfg)

    def draw_label_issues(self, run_dir: Path, cfg: Config, found: Any, rows: Any) -> list:
        from medalist.tasks.segment_labels import mask_overlays

        return mask_overlays(self, run_dir, cfg, found, rows)

    def label_issue_captions(self, rows: pd.DataFrame) -> list[str]:
        from medalist.tasks.segment_labels import captions

        return captions(rows)

    def check_sample(self, tables: Tables) -> None:
        """A sample of PNG mask files (a folder, a zip, or a CSV naming .png files) needs
        index masks: said before training, not when the submission is formatted."""
        from medalist.data.mask_files import wants_png

        if tables.sample is not None and wants_png(self.cfg, tables.sample):
            raise UserError(f"{self.cfg.competition.sample_submission}: {PNG_NEEDS_INDEX}")

    def check_submission(self, sub: pd.DataFrame, sample: pd.DataFrame) -> None:
        from medalist.tasks.submission import check_submission

        check_submission(self, sub, sample)

    def format_submission(
        self, ids: pd.Series, preds: np.ndarray, sample: pd.DataFrame
    ) -> pd.DataFrame:
        """Run-length masks at each test image's own size, in the sample's rows and columns:
        one mask column (one class), a column per class (wide), or a row per image and class
        (`competition.class_column`, long)."""
        import cv2

        from medalist.data.joined_ids import join_ids, split_ids
        from medalist.data.mask_files import wants_png
        from medalist.data.tables import image_paths
        from medalist.tasks import segment_postprocess as postprocess

        if wants_png(self.cfg, sample):
            raise UserError(f"{self.cfg.competition.sample_submission}: {PNG_NEEDS_INDEX}")

        cfg, comp = self.cfg, self.cfg.competition
        frame = pd.DataFrame({self.id_column: ids.to_numpy()})
        paths = image_paths(cfg, frame, cfg.path(comp.test_image_dir))
        texts: dict[tuple[str, str], str] = {}
        per_class = _by_class(preds, len(self.classes))
        for i, p, path in zip(ids.astype(str), per_class, paths, strict=True):
            w, h = image_size(path)
            for j, name in enumerate(self.classes):
                mask = postprocess.apply(
                    p[j], self.thresholds[j], self.min_areas[j], self.min_total_areas[j]
                )
                prob = cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
                texts[(i, str(name))] = rle_encode(prob >= self.thresholds[j], comp.rle_order)
        sub = self._fill(
            split_ids(cfg, sample, comp.sample_submission), texts, set(ids.astype(str))
        )
        sub = join_ids(cfg, sub, sample)  # ids that join image and class, as the sample's
        self.check_submission(sub, sample)
        return sub

    def _fill(self, sample: pd.DataFrame, texts: dict, known: set[str]) -> pd.DataFrame:
        """The sample with its mask cells replaced by the predictions."""
        comp, where = self.cfg.competition, self.cfg.competition.sample_submission
        sub = sample.copy()
        image = sample_images(sample, self.id_column, known)
        if comp.class_column is not None:  # long: a row per image and class
            cls = sample[comp.class_column].astype(str)
            rest = [c for c in sample.columns if c not in (self.id_column, comp.class_column)]
            unknown = ~cls.isin([str(c) for c in self.classes])
            if len(rest) != 1 or unknown.any():
                raise UserError(
                    f"{where}: a long-format segmentation submission has the id, "
                    f"{comp.class_column!r} (one of {', '.join(map(str, self.classes))}) and "
                    f"one mask column; fix competition.class_column or the sample"
                )
            sub[rest[0]] = [texts[(i, c)] for i, c in zip(image, cls, strict=True)]
            return sub
        rest = [c for c in sample.columns if c != self.id_column]
        if self.single and len(rest) == 1:
            sub[rest[0]] = [texts[(i, "mask")] for i in image]
            return sub
        if self.single or sorted(rest) != sorted(map(str, self.classes)):
            raise UserError(
                f"{where}: its columns {rest} are not one mask column per class "
                f"({', '.join(map(str, self.classes))})"
            )
        for c in rest:
            sub[c] = [texts[(i, c)] for i in image]
        return sub
