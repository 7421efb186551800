"""Video frames stacked as channels ("2.5D" inputs, `data.frame_offsets`).

Each row's input is its own video's frames at the configured offsets, counted in frame order
within the video (`competition.sequence_column`, `frame_column`); an offset past the first or
last frame repeats that frame. The frames come from the one-image-per-row source (and its cache),
so a stacked sample is assembled on access: memory and disk do not grow with the offsets.
Augmentation draws once per sample and applies the same parameters to every frame
(albumentations' `images` target).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from medalist.config.schema import Config
from medalist.data.images import ImageSource
from medalist.errors import UserError, first_line

if TYPE_CHECKING:
    from medalist.tasks.base import Task


def table_path(cfg: Config, what: str) -> Path:
    """The file a table of `what` ("train" or "test") was read from, for messages."""
    comp = cfg.competition
    if what == "train":
        return cfg.path(comp.train_csv)
    test = cfg.path(comp.test_csv) if comp.test_csv is not None else None
    if test is not None and test.is_file():
        return test
    return cfg.path(comp.sample_submission) or Path("test table")


def frame_neighbours(
    table: pd.DataFrame, sequence: str, frame: str, offsets: list[int], path: Path
) -> np.ndarray:
    """(rows, offsets) row numbers of each row's frames at `offsets` within its own sequence,
    in frame order; positions past either end repeat the first or last frame. A duplicate
    (sequence, frame) pair or a missing sequence is a UserError naming the lines."""
    seq = table[sequence]
    if seq.isna().any():
        first = int(np.flatnonzero(seq.isna().to_numpy())[0])
        raise UserError(
            f"{path} line {first + 2}: no {sequence!r} (the video of the frame); fill it or "
            "drop the row"
        )
    codes = pd.factorize(seq)[0]
    numbers = pd.to_numeric(table[frame], errors="coerce").to_numpy(dtype=np.float64)
    order = np.lexsort((numbers, codes))
    c, f = codes[order], numbers[order]
    same = np.flatnonzero((c[1:] == c[:-1]) & (f[1:] == f[:-1]))
    if len(same):
        a, b = sorted(int(r) + 2 for r in order[same[0] : same[0] + 2])
        raise UserError(
            f"{path} lines {a} and {b}: video {str(seq.iloc[a - 2])!r} has frame "
            f"{table[frame].iloc[a - 2]} twice; stacked frames need one row per frame"
        )
    n = len(order)
    pos = np.arange(n)
    new = np.r_[True, c[1:] != c[:-1]]
    start = np.maximum.accumulate(np.where(new, pos, 0))
    last = np.r_[c[1:] != c[:-1], True]
    end = np.minimum.accumulate(np.where(last, pos, n)[::-1])[::-1]
    at = np.clip(pos[:, None] + np.asarray(offsets)[None, :], start[:, None], end[:, None])
    out = np.empty((n, len(offsets)), dtype=np.int64)
    out[order] = order[at]
    return out


class FrameTransform:
    """A task's albumentations pipeline applied to a stack of frames with one random draw:
    the (H, W, frames x C) stack goes in as albumentations' `images` target (with any mask), and
    comes out as one (frames x C, H, W) tensor, frame after frame."""

    def __init__(self, compose: Any, frames: int, channels: int) -> None:
        self.compose = compose
        self.frames = frames
        self.channels = channels

    def set_random_seed(self, seed: int) -> None:
        self.compose.set_random_seed(seed)

    def __call__(self, *, image: np.ndarray, **targets: Any) -> dict[str, Any]:
        h, w = image.shape[:2]
        stack = image.reshape(h, w, self.frames, self.channels).transpose(2, 0, 1, 3)
        out = self.compose(images=np.ascontiguousarray(stack), **targets)
        frames = out.pop("images")
        if isinstance(frames, np.ndarray):  # a pipeline without ToTensorV2: (H, W, channels)
            k, fh, fw, ch = frames.shape
            out["image"] = frames.transpose(1, 2, 0, 3).reshape(fh, fw, k * ch)
        else:  # (frames, C, H, W) tensor
            out["image"] = frames.reshape(-1, *frames.shape[2:])
        return out


class FrameStack(ImageSource):
    """Images by row as stacks of frames: row i is the frames `neighbours[i]` of `frames`
    (the one-image-per-row source) concatenated along the channels."""

    def __init__(
        self,
        frames: ImageSource,
        neighbours: np.ndarray,
        rows: np.ndarray | None = None,
    ) -> None:
        """`rows`: the row of `frames` each stack belongs to (its id and path); None: row i."""
        self.frames = frames
        self.neighbours = np.asarray(neighbours)
        own = np.arange(len(self.neighbours)) if rows is None else np.asarray(rows)
        self.paths = [frames.paths[r] for r in own]
        self.ids = [frames.ids[r] for r in own]
        self.size = frames.size
        self.keep_aspect = frames.keep_aspect
        self.channels = frames.channels * self.neighbours.shape[1]
        self.cached = None  # the frames' source holds the cache

    def __len__(self) -> int:
        return len(self.neighbours)

    def __getitem__(self, i: int) -> np.ndarray:
        rows = self.neighbours[i]
        if self.frames.cached is not None:
            stack = np.asarray(self.frames.cached[rows])
        else:
            stack = np.stack([self.frames[int(r)] for r in rows])
        k, h, w, c = stack.shape
        return np.ascontiguousarray(stack.transpose(1, 2, 0, 3)).reshape(h, w, k * c)

    def sample_transform(self, transform: Any) -> FrameTransform:
        return FrameTransform(transform, self.neighbours.shape[1], self.frames.channels)

    def verify(self, workers: int | None = None) -> None:
        self.frames.verify(workers)


def table_neighbours(cfg: Config, table: pd.DataFrame, what: str) -> np.ndarray:
    """`frame_neighbours` of a train or test table with the config's columns, checked."""
    from medalist.data.tables import check_sequence_columns

    comp = cfg.competition
    path = table_path(cfg, what)
    check_sequence_columns(cfg, table, path)
    return frame_neighbours(
        table, comp.sequence_column, comp.frame_column, cfg.data.frame_offsets, path
    )


def stack_frames(
    cfg: Config, source: ImageSource, table: pd.DataFrame | None, what: str
) -> ImageSource:
    """The source as stacks of frames when `data.frame_offsets` is set, else as it is."""
    if cfg.data.frame_offsets is None:
        return source
    if table is None:
        raise UserError(f"data.frame_offsets: the {what} table is needed to stack its frames")
    return FrameStack(source, table_neighbours(cfg, table, what))


def rows_source(
    cfg: Config, table: pd.DataFrame, paths: list[Path], rows: np.ndarray, ids: list[object]
) -> ImageSource:
    """The images of some `rows` of the train table (`medalist check`): with stacked frames,
    each row's stack, its neighbours read from the whole table."""
    from medalist.data.images import config_source

    rows = np.asarray(rows)
    if cfg.data.frame_offsets is None:
        return config_source(cfg, [paths[i] for i in rows], ids)
    every = config_source(cfg, paths, table[cfg.competition.id_column].astype(str).tolist())
    return FrameStack(every, table_neighbours(cfg, table, "train")[rows], rows)


def centre_frame(cfg: Config, picture: np.ndarray) -> np.ndarray:
    """An (H, W, channels) input's own frame (the offset 0) when frames are stacked."""
    if cfg.data.frame_offsets is None:
        return picture
    ch = cfg.image_channels
    at = cfg.data.frame_offsets.index(0) * ch
    return picture[:, :, at : at + ch]


def check_frame_augment(cfg: Config, task: Task) -> None:
    """Every `data.augment` step applies to a stack of frames (each with certain probability);
    a step that can't take one frame's channels is a UserError naming it."""
    if cfg.data.frame_offsets is None:
        return
    h, w = cfg.image_shape
    k, ch = len(cfg.data.frame_offsets), cfg.image_channels
    stack = np.zeros((h, w, k * ch), dtype=np.uint8)
    for i, spec in enumerate(cfg.data.augment):
        compose = copy.deepcopy(task.create_transform([spec], train=True))
        for step in compose.transforms:
            step.p = 1.0
        try:
            task.transform_sample(FrameTransform(compose, k, ch), stack, None)
        except Exception as exc:  # noqa: BLE001 - albumentations raises many kinds
            fix = " or set data.frames_grey: false" if cfg.data.frames_grey else ""
            raise UserError(
                f"data.augment[{i}] ({spec['name']}) can't be applied to stacked frames of "
                f"{ch} channel(s): {first_line(exc)}; remove it{fix}"
            ) from None


def check_frame_inputs(cfg: Config, train: pd.DataFrame, task: Task) -> None:
    """Before training: the train table's frames stack, and the augmentation applies."""
    if cfg.data.frame_offsets is None:
        return
    table_neighbours(cfg, train, "train")
    check_frame_augment(cfg, task)
