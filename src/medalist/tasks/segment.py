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

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn

from medalist.config.schema import Config
from medalist.data.images import image_size
from medalist.engine.metrics import Metric, per_image_scores
from medalist.errors import UserError
from medalist.tasks.classify import competition_metric

MASK_METRICS = ("dice", "iou")
THRESHOLD_GRID = np.round(np.arange(0.2, 0.81, 0.05), 2)
OOF_MASKS = "oof_masks.npy"


# ---- run-length encoding --------------------------------------------------------------------
def rle_decode(text: object, shape: tuple[int, int], order: str = "column") -> np.ndarray:
    """A (H, W) uint8 mask from Kaggle's run-length text ("start length ...", 1-based starts);
    an empty string or NaN is an empty mask. Raises ValueError on malformed text."""
    h, w = shape
    flat = np.zeros(h * w, dtype=np.uint8)
    if isinstance(text, str) and text.strip():
        try:
            numbers = np.asarray(text.split(), dtype=np.int64)
        except ValueError:
            raise ValueError("not a list of whole numbers") from None
        if len(numbers) % 2:
            raise ValueError("an odd count of numbers (it takes start and length pairs)")
        starts, lengths = numbers[0::2] - 1, numbers[1::2]
        if len(starts) and (starts.min() < 0 or lengths.min() < 1):
            raise ValueError("starts count from 1 and lengths from 1")
        ends = starts + lengths
        if len(ends) and ends.max() > h * w:
            raise ValueError(f"a run ends at pixel {int(ends.max())}, past the {h}x{w} image")
        # +1 at each start, -1 at each end, and a running sum marks the runs' pixels.
        marks = np.zeros(h * w + 1, dtype=np.int32)
        np.add.at(marks, starts, 1)
        np.add.at(marks, ends, -1)
        flat = (np.cumsum(marks[:-1]) > 0).astype(np.uint8)
    return flat.reshape((w, h)).T.copy() if order == "column" else flat.reshape((h, w))


def rle_encode(mask: np.ndarray, order: str = "column") -> str:
    """Kaggle's run-length text of a (H, W) mask (non-zero = object); "" for an empty mask."""
    flat = (mask.T if order == "column" else mask).reshape(-1) > 0
    padded = np.concatenate([[False], flat, [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    starts, ends = edges[0::2], edges[1::2]
    return " ".join(f"{s + 1} {e - s}" for s, e in zip(starts, ends, strict=True))


def rle_area(text: object) -> int:
    """Pixels covered by a run-length text, without decoding it."""
    if not isinstance(text, str) or not text.strip():
        return 0
    return int(np.asarray(text.split(), dtype=np.int64)[1::2].sum())


# ---- masks of a table -----------------------------------------------------------------------
def _resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    import cv2

    if mask.shape == (size, size):
        return mask
    return cv2.resize(mask, (size, size), interpolation=cv2.INTER_NEAREST)


def mask_paths(cfg: Config, image_paths: list[Path]) -> list[Path]:
    folder = cfg.path(cfg.competition.mask_dir)
    return [folder / (p.stem + cfg.competition.mask_ext) for p in image_paths]


def read_mask_file(path: Path) -> np.ndarray:
    from medalist.data.images import open_image

    if not path.is_file():
        raise UserError(
            f"mask {path} not found: each training image needs a mask of the same name in "
            "competition.mask_dir (an empty mask for images without the object)"
        )
    with open_image(path) as img:
        return (np.asarray(img.convert("L")) > 0).astype(np.uint8)


def decode_row(
    cfg: Config, text: object, shape: tuple[int, int], row: int, column: str, image_id: object
) -> np.ndarray:
    try:
        return rle_decode(text, shape, cfg.competition.rle_order)
    except ValueError as exc:
        comp = cfg.competition
        where = (
            f"image {image_id!r}, class {column.removeprefix(f'{comp.target_column}_')!r}"
            if comp.class_column is not None
            else f"line {row + 2}, column {column!r}"
        )
        raise UserError(
            f"{cfg.path(comp.train_csv)} {where}: not a valid run-length mask for a "
            f"{shape[0]}x{shape[1]} image ({exc}); fix the row, or check competition.rle_order"
        ) from None


def mask_layout(cfg: Config, train: pd.DataFrame | None = None) -> tuple[list[str], list[str]]:
    """(classes, the train table's run-length columns, one per class) of a config; no columns
    for a mask folder. Several classes come from a list of target columns (one per class) or
    from `competition.class_column` (one row per image and class, pivoted by load_train)."""
    from medalist.data.tables import mask_column

    comp = cfg.competition
    if comp.mask_dir is not None:
        return ["mask"], []
    if comp.class_column is not None:
        classes = (train.attrs.get("mask_classes") if train is not None else None) or [
            str(c) for c in comp.classes or []
        ]
        return list(classes), [mask_column(comp.target_column, c) for c in classes]
    columns = cfg.target_columns
    return (["mask"] if len(columns) == 1 else list(columns)), list(columns)


def load_masks(
    cfg: Config, df: pd.DataFrame, image_paths: list[Path], size: int, columns: list[str]
) -> np.ndarray:
    """The table's masks at `size`: (n, size, size) for one class, (n, classes, size, size) for
    several, from mask files or run-length text."""
    from medalist.console import progress

    if cfg.competition.mask_dir is not None:
        out = np.zeros((len(df), size, size), dtype=np.uint8)
        files = mask_paths(cfg, image_paths)
        with progress("reading masks", len(files)) as advance:
            for i, path in enumerate(files):
                mask = read_mask_file(path)
                w, h = image_size(image_paths[i])
                if mask.shape != (h, w):
                    raise UserError(
                        f"mask {path} is {mask.shape[0]}x{mask.shape[1]} but its image "
                        f"{image_paths[i]} is {h}x{w} (height x width): a mask must be the size "
                        "of its image; fix the file or competition.mask_dir"
                    )
                out[i] = _resize_mask(mask, size)
                advance(1)
        return out
    out = np.zeros((len(df), len(columns), size, size), dtype=np.uint8)
    texts = df[columns].to_numpy()
    ids = df[cfg.competition.id_column].tolist()
    with progress("decoding masks", len(df)) as advance:
        for i, path in enumerate(image_paths):
            w, h = image_size(path)
            for j, column in enumerate(columns):
                mask = decode_row(cfg, texts[i, j], (h, w), i, column, ids[i])
                out[i, j] = _resize_mask(mask, size)
            advance(1)
    return out[:, 0] if len(columns) == 1 else out


def mask_strata(cfg: Config, train: pd.DataFrame, image_paths: list[Path]) -> pd.Series:
    """What stratified folds balance for masks: empty or not, then quartiles of the area (all
    classes together)."""
    if cfg.competition.mask_dir is not None:
        area = pd.Series([int(read_mask_file(p).sum()) for p in mask_paths(cfg, image_paths)])
    else:
        columns = mask_layout(cfg, train)[1]
        area = sum(train[c].map(rle_area).astype(float) for c in columns)
        area = pd.Series(np.asarray(area, dtype=float))
    strata = pd.Series(0, index=range(len(train)))
    full = area.to_numpy() > 0
    if full.sum() >= 4 * cfg.cv.n_splits:
        bins = pd.qcut(area[full], q=4, labels=False, duplicates="drop")
        strata[full] = bins.to_numpy() + 1
    else:
        strata[full] = 1
    # A stratum smaller than the fold count joins its neighbour (empty joins the smallest areas).
    while strata.nunique() > 1:
        counts = strata.value_counts().sort_index()
        if counts.min() >= cfg.cv.n_splits:
            break
        small = int(counts.idxmin())
        values = list(counts.index)
        i = values.index(small)
        strata[strata == small] = values[i + 1] if i + 1 < len(values) else values[i - 1]
    return strata


class DiceBCELoss(nn.Module):
    """Binary cross-entropy plus soft Dice (segmentation_models_pytorch's), on logits; one
    sigmoid per class when there are several (classes may overlap)."""

    def __init__(self, classes: int = 1) -> None:
        super().__init__()
        from segmentation_models_pytorch.losses import DiceLoss

        self.bce = nn.BCEWithLogitsLoss()
        self.dice = DiceLoss(mode="binary" if classes == 1 else "multilabel", from_logits=True)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = target.float()
        if target.ndim == 3:  # one class: (N, H, W)
            target = target.unsqueeze(1)
        return self.bce(logits, target) + self.dice(logits, target)


def _by_class(a: np.ndarray, classes: int) -> np.ndarray:
    """(n, H, W) masks as (n, 1, H, W); (n, C, H, W) as they are."""
    return a[:, None] if classes == 1 else a


# ---- the task ----------------------------------------------------------------------------
@dataclass
class SegmentTask:
    """What the fold loop needs to know about a mask target: one class (predictions (n, H, W))
    or several, each its own sigmoid (predictions (n, C, H, W))."""

    cfg: Config
    metric: Metric
    id_column: str
    classes: list[Any] = field(default_factory=lambda: ["mask"])
    columns: list[str] = field(default_factory=list)  # the train table's RLE columns
    thresholds: list[float] = field(default_factory=list)
    kind: str = "mask"
    spatial: ClassVar[bool] = True  # predictions are images: TTA flips them back
    pred_dtype: ClassVar[Any] = np.float16
    _masks: tuple[tuple[str, ...], np.ndarray] | None = None

    def __post_init__(self) -> None:
        if len(self.thresholds) != len(self.classes):
            self.thresholds = [0.5] * len(self.classes)

    @classmethod
    def from_config(cls, cfg: Config, train: pd.DataFrame) -> SegmentTask:
        metric = competition_metric(cfg)
        if metric.name not in MASK_METRICS:
            raise UserError(
                f"competition.metric = {cfg.competition.metric!r}: segmentation scores masks; "
                f"use {' or '.join(MASK_METRICS)}"
            )
        size = cfg.data.image_size
        if size % 32:
            raise UserError(
                f"data.image_size = {size}: a U-Net halves the image five times, so it takes a "
                f"multiple of 32; use {max(32, size // 32 * 32)} or {(size // 32 + 1) * 32}"
            )
        classes, columns = mask_layout(cfg, train)
        return cls(cfg, metric, cfg.competition.id_column, classes, columns)

    def state(self) -> dict[str, Any]:
        state = {
            "kind": self.kind,
            "classes": self.classes,
            "columns": self.columns,
            "thresholds": self.thresholds,
        }
        return {**state, "threshold": self.thresholds[0]} if self.single else state

    @classmethod
    def from_state(cls, cfg: Config, state: dict[str, Any]) -> SegmentTask:
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
        )

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
            self._masks = (key, load_masks(self.cfg, df, paths, size, self.columns))
        return self._masks[1]

    def create_loss(self, cfg: Config, y_train: np.ndarray) -> nn.Module:
        return DiceBCELoss(len(self.classes))

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

        atomic_write(fold_dir / OOF_MASKS, lambda f: np.save(f, preds.astype(np.float16)), "wb")

    def preds_from_oof(self, oof: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        raise UserError(
            "this is a segmentation run: its out-of-fold predictions are masks "
            "(fold_*/oof_masks.npy), and this command works on classification runs only"
        )

    def finish_oof(self, oof: pd.DataFrame, folds: list[list[Path]]) -> dict[str, Any]:
        """Pool the folds' masks (each fold's seeds averaged, `folds[k]` its folders by seed):
        the OOF score at 0.5, and each class's threshold that maximises it. With several seeds
        the table's per-image columns are recomputed from the averaged masks."""
        from medalist.data.tables import load_train

        ids, parts = [], []
        for dirs in folds:
            ids.append(pd.read_csv(dirs[0] / "oof.csv")["id"].astype(str))
            masks = [np.load(d / OOF_MASKS) for d in dirs]
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
        c = len(self.classes)
        # Each class's score at every threshold of the grid: (thresholds, classes).
        grid = np.stack([self._scores(y, preds, [t] * c).mean(axis=0) for t in THRESHOLD_GRID])
        # Ties go to the threshold nearest 0.5.
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
        return out

    def format_submission(
        self, ids: pd.Series, preds: np.ndarray, sample: pd.DataFrame
    ) -> pd.DataFrame:
        """Run-length masks at each test image's own size, in the sample's rows and columns:
        one mask column (one class), a column per class (wide), or a row per image and class
        (`competition.class_column`, long)."""
        import cv2

        from medalist.data.tables import image_paths
        from medalist.tasks.submission import check_submission

        cfg, comp = self.cfg, self.cfg.competition
        frame = pd.DataFrame({self.id_column: ids.to_numpy()})
        paths = image_paths(cfg, frame, cfg.path(comp.test_image_dir))
        texts: dict[tuple[str, str], str] = {}
        per_class = _by_class(preds, len(self.classes))
        for i, p, path in zip(ids.astype(str), per_class, paths, strict=True):
            w, h = image_size(path)
            for j, name in enumerate(self.classes):
                prob = cv2.resize(p[j].astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
                texts[(i, str(name))] = rle_encode(prob >= self.thresholds[j], comp.rle_order)
        sub = self._fill(sample, texts, set(ids.astype(str)))
        check_submission(self, sub, sample)
        return sub

    def _fill(self, sample: pd.DataFrame, texts: dict, known: set[str]) -> pd.DataFrame:
        """The sample with its mask cells replaced by the predictions."""
        comp, where = self.cfg.competition, self.cfg.competition.sample_submission
        sub = sample.copy()
        image = sample[self.id_column].astype(str)
        missing = ~image.isin(known)
        if missing.any():
            first = sample[self.id_column][missing].iloc[0]
            raise UserError(f"sample_submission id {first!r} is not among the test images")
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
