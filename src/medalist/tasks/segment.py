"""Binary segmentation as a task: masks from a folder or run-length encodings, a U-Net's loss,
per-image Dice, a threshold fitted on the out-of-fold masks, and run-length submissions.

Masks are resized to `data.image_size` (nearest) for training; predictions are probability
masks at that size, stored as float16 (a quarter of float64's memory), resized back to each test
image's own size before the threshold, and written as run-length encodings in Kaggle's format:
1-based start and length pairs, pixels counted down each column (`competition.rle_order:
column`, e.g. Airbus, Severstal, HuBMAP) or along each row (`row`, e.g. Carvana, UW-Madison).

Each fold writes its out-of-fold probability masks to `fold_<k>/oof_masks.npy` (rows in the
order of its `oof.csv`); `oof.csv` holds one row per image: its id, fold, the target's and the
prediction's area (a fraction of the image) and the image's Dice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from medalist.config.schema import Config
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


def image_shape(path: Path) -> tuple[int, int]:
    from medalist.data.images import open_image

    with open_image(path) as img:
        return img.height, img.width


def decode_row(cfg: Config, text: object, shape: tuple[int, int], line: int) -> np.ndarray:
    try:
        return rle_decode(text, shape, cfg.competition.rle_order)
    except ValueError as exc:
        raise UserError(
            f"{cfg.path(cfg.competition.train_csv)} line {line}: column "
            f"{cfg.competition.target_column!r} is not a valid run-length mask for a "
            f"{shape[0]}x{shape[1]} image ({exc}); fix the row, or check competition.rle_order"
        ) from None


def load_masks(cfg: Config, df: pd.DataFrame, image_paths: list[Path], size: int) -> np.ndarray:
    """(n, size, size) uint8 masks of the table's rows, from mask files or run-length text."""
    from medalist.console import progress

    out = np.zeros((len(df), size, size), dtype=np.uint8)
    if cfg.competition.mask_dir is not None:
        files = mask_paths(cfg, image_paths)
        with progress("reading masks", len(files)) as advance:
            for i, path in enumerate(files):
                out[i] = _resize_mask(read_mask_file(path), size)
                advance(1)
        return out
    texts = df[cfg.target_columns[0]].tolist()
    with progress("decoding masks", len(texts)) as advance:
        for i, (text, path) in enumerate(zip(texts, image_paths, strict=True)):
            mask = decode_row(cfg, text, image_shape(path), i + 2)
            out[i] = _resize_mask(mask, size)
            advance(1)
    return out


def mask_strata(cfg: Config, train: pd.DataFrame, image_paths: list[Path]) -> pd.Series:
    """What stratified folds balance for masks: empty or not, then quartiles of the area."""
    if cfg.competition.mask_dir is not None:
        area = pd.Series([int(read_mask_file(p).sum()) for p in mask_paths(cfg, image_paths)])
    else:
        area = train[cfg.target_columns[0]].map(rle_area).astype(float)
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
    """Binary cross-entropy plus soft Dice (segmentation_models_pytorch's), on logits."""

    def __init__(self) -> None:
        super().__init__()
        from segmentation_models_pytorch.losses import DiceLoss

        self.bce = nn.BCEWithLogitsLoss()
        self.dice = DiceLoss(mode="binary", from_logits=True)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = target.float().unsqueeze(1)
        return self.bce(logits, target) + self.dice(logits, target)


# ---- the task ----------------------------------------------------------------------------
@dataclass
class SegmentTask:
    """What the fold loop needs to know about a binary mask target."""

    cfg: Config
    metric: Metric
    id_column: str
    threshold: float = 0.5
    kind: str = "mask"
    classes: list[Any] = field(default_factory=lambda: ["mask"])
    target_columns: list[str] = field(default_factory=list)
    spatial: bool = True  # predictions are images: TTA flips them back
    pred_dtype: Any = np.float16
    _masks: tuple[tuple[str, ...], np.ndarray] | None = None

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
        return cls(cfg, metric, cfg.competition.id_column, target_columns=cfg.target_columns)

    def state(self) -> dict[str, Any]:
        return {"kind": self.kind, "classes": self.classes, "threshold": self.threshold}

    @classmethod
    def from_state(cls, cfg: Config, state: dict[str, Any]) -> SegmentTask:
        return cls(
            cfg,
            competition_metric(cfg),
            cfg.competition.id_column,
            float(state.get("threshold", 0.5)),
            target_columns=cfg.target_columns,
        )

    @property
    def num_outputs(self) -> int:
        return 1

    def encode(self, df: pd.DataFrame) -> np.ndarray:
        """The training masks at `data.image_size` (read once per table)."""
        from medalist.data.tables import image_paths

        key = tuple(df[self.id_column].astype(str))
        if self._masks is None or self._masks[0] != key:
            paths = image_paths(self.cfg, df, self.cfg.path(self.cfg.competition.image_dir))
            self._masks = (key, load_masks(self.cfg, df, paths, self.cfg.data.image_size))
        return self._masks[1]

    def create_loss(self, cfg: Config, y_train: np.ndarray) -> nn.Module:
        return DiceBCELoss()

    def activate(self, out: torch.Tensor) -> torch.Tensor:
        """Logits (N, 1, H, W) to probability masks (N, H, W)."""
        return out.float().sigmoid()[:, 0].to(torch.float16)

    def score(self, y_true: np.ndarray, preds: np.ndarray) -> float:
        return self.metric(y_true, preds)

    # ---- tables ---------------------------------------------------------------------------
    @property
    def pred_columns(self) -> list[str]:
        return ["pred_area"]

    def oof_frame(
        self, ids: pd.Series, folds: np.ndarray, y: np.ndarray, preds: np.ndarray
    ) -> pd.DataFrame:
        n = len(ids)
        kind = "iou" if self.metric.name == "iou" else "dice"
        return pd.DataFrame(
            {
                "id": ids.to_numpy(),
                "fold": folds,
                "target_area": y.reshape(n, -1).mean(axis=1),
                "pred_area": (preds.reshape(n, -1) >= self.threshold).mean(axis=1),
                self.metric.name: per_image_scores(y, preds, self.threshold, kind),
            }
        )

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
        the OOF score at 0.5, and the threshold that maximises it. With several seeds the
        table's per-image columns are recomputed from the averaged masks."""
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
        kind = "iou" if self.metric.name == "iou" else "dice"
        if len(folds[0]) > 1:
            where = {v: i for i, v in enumerate(order)}
            at = [where[str(v)] for v in oof["id"]]
            oof["pred_area"] = (preds[at] >= 0.5).reshape(len(at), -1).mean(axis=1)
            oof[self.metric.name] = per_image_scores(y[at], preds[at], 0.5, kind)
        by_t = {float(t): float(per_image_scores(y, preds, t, kind).mean()) for t in THRESHOLD_GRID}
        self.threshold = max(by_t, key=lambda t: (by_t[t], -abs(t - 0.5)))
        return {
            "oof": by_t[0.5],
            "threshold": self.threshold,
            "oof_at_threshold": by_t[self.threshold],
        }

    def format_submission(
        self, ids: pd.Series, preds: np.ndarray, sample: pd.DataFrame
    ) -> pd.DataFrame:
        """One run-length mask per test image, at the image's own size, in the sample's order."""
        import cv2

        from medalist.data.tables import image_paths
        from medalist.tasks.submission import check_submission

        cfg = self.cfg
        frame = pd.DataFrame({self.id_column: ids.to_numpy()})
        paths = image_paths(cfg, frame, cfg.path(cfg.competition.test_image_dir))
        texts = []
        for p, path in zip(preds, paths, strict=True):
            h, w = image_shape(path)
            prob = cv2.resize(p.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
            texts.append(rle_encode(prob >= self.threshold, cfg.competition.rle_order))
        columns = [c for c in sample.columns if c != self.id_column]
        if len(columns) != 1:
            raise UserError(
                f"{cfg.competition.sample_submission}: a segmentation submission has the id and "
                f"one mask column; this one has {len(columns)} besides the id"
            )
        sub = pd.DataFrame({self.id_column: ids.to_numpy(), columns[0]: texts})
        order = pd.Index(sub[self.id_column].astype(str)).get_indexer(
            sample[self.id_column].astype(str)
        )
        if (order < 0).any():
            first = sample[self.id_column].iloc[int(np.flatnonzero(order < 0)[0])]
            raise UserError(f"sample_submission id {first!r} is not among the test images")
        sub = sub.iloc[order].reset_index(drop=True)
        check_submission(self, sub, sample)
        return sub
