"""The typed schema of a medalist config. Key names here are part of the public interface."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

MAX_AUTO_WORKERS = 8  # more DataLoader workers than this rarely feed one GPU faster


def number_or_auto(value: Any, low: float, high: float, integer: bool = False) -> Any:
    """`value` when it is "auto" or a number in [low, high] (text such as "1e-3" read as the
    number: YAML reads 1e-3 as text); else a ValueError that says what to give."""
    if value == "auto":
        return value
    kind = "a whole number" if integer else "a number"
    problem = ValueError(f"give auto or {kind} from {low:g} to {high:g}")
    if isinstance(value, bool):
        raise problem
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise problem from None
    if not isinstance(value, (int, float)) or not low <= value <= high:
        raise problem
    if integer:
        if value != int(value):
            raise problem
        return int(value)
    return value


class Section(BaseModel):
    """A config section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Competition(Section):
    name: str | None = None
    task: Literal["classify", "segment", "detect"] = "classify"
    target_type: Literal["auto", "multiclass", "binary", "multilabel", "regression"] = "auto"
    train_csv: str = "data/train.csv"
    test_csv: str | None = "data/test.csv"
    image_dir: str = "data/train"
    test_image_dir: str | None = "data/test"
    sample_submission: str | None = "data/sample_submission.csv"
    id_column: str = "id"
    image_column: str | None = None
    image_ext: str = ".png"
    # Images in subfolders named by other columns (train_images/<patient_id>/<image_id>.png):
    # each row's file under image_dir, its columns in braces, e.g. "{patient_id}/{image_id}.png".
    image_pattern: str | None = None
    # Images stored in the tables, a column per pixel (Digit Recognizer's pixel0 ... pixel783,
    # row after row): the columns' prefix, and the images' [height, width] (None: a square).
    pixel_columns: str | None = None  # "" for columns named by the number alone (0 ... 783)
    image_shape: list[int] | None = Field(None, min_length=2, max_length=2)
    target_column: str | list[str] = "label"
    # The target column holds several labels joined by this (Planet's "clear primary", Human
    # Protein Atlas's "0 5 25"): a multilabel target, a submission of labels joined the same way.
    label_separator: str | None = None
    classes: list[str | int] | None = None
    group_column: str | None = None
    groups_csv: str | None = None
    sequence_column: str | None = None  # video: which sequence a frame belongs to
    frame_column: str | None = None  # and its position in it (a number)
    # Segmentation: a folder of mask images (same file name stem as the image; non-zero pixels
    # are the object), or else target_column holds run-length encodings (empty = no object).
    mask_dir: str | None = None
    class_column: str | None = None  # several classes: one row per image and class (long format)
    mask_ext: str = ".png"
    rle_order: Literal["column", "row"] = "column"  # pixels counted down columns, or along rows
    # sigmoid: a sigmoid per class (classes may overlap); index: mask PNGs hold class indices
    # (mutually exclusive classes, softmax), with `ignore_index` the void pixels' value (or the
    # void class's name in `classes`), left out of the loss and the metric.
    mask_mode: Literal["sigmoid", "index"] = "sigmoid"
    ignore_index: int | str | None = None
    # A mask file per image and class in mask_dir, e.g. "{id}_{class}.png" (sigmoid per class).
    mask_pattern: str | None = None
    # Ids that join image and class in one column (Severstal's ImageId_ClassId: "_").
    id_class_separator: str | None = Field(None, min_length=1)
    metric: str = "accuracy"
    metric_direction: Literal["maximize", "minimize"] | None = None
    # Detection (docs/detect.md): a box table, one row per box, or COCO JSON (`annotations`).
    box_format: Literal["xywh", "xyxy", "cxcywh"] | None = None  # None: from the column names
    box_normalized: bool | None = None  # coordinates as fractions of the image; None: inferred
    box_columns: list[str] | None = Field(None, min_length=4, max_length=4)  # else by name
    annotations: str | None = None  # COCO JSON instead of a box table
    include_unlabeled_images: bool = True  # images without a row are negatives
    clip_boxes: bool = False  # clip boxes that cross the image border instead of refusing
    prediction_format: str | None = None  # one box of the submission; None: by class count
    empty_prediction: str = ""  # the submission text of an image without a box
    # A submission row per group of images (a patient, a breast): a column of the tables, or a
    # pattern of their columns ("{patient_id}_{laterality}"); the images' predictions combine
    # by their mean or their max (a group is positive when any of its images is).
    submission_by: str | None = Field(None, min_length=1)
    submission_reduce: Literal["mean", "max"] = "mean"

    @field_validator("submission_by")
    @classmethod
    def _submission_by(cls, spec: str | None, info: ValidationInfo) -> str | None:
        if spec is not None and info.data.get("task", "classify") != "classify":
            raise ValueError(
                "a submission row per group of images is for classification; masks and boxes "
                "are submitted per image"
            )
        if spec is not None and "{" in spec:
            from medalist.data.tables import pattern_columns

            if not pattern_columns(spec):
                raise ValueError('name the columns in braces, e.g. "{patient_id}_{laterality}"')
        return spec

    @field_validator("mask_mode")
    @classmethod
    def _index_needs_files(cls, mode: str, info: ValidationInfo) -> str:
        if mode == "index" and info.data.get("mask_dir") is None:
            raise ValueError("index masks are PNG files: set competition.mask_dir too")
        return mode

    @field_validator("ignore_index")
    @classmethod
    def _ignore_for_index(cls, value: int | str | None, info: ValidationInfo) -> Any:
        if value is None:
            return value
        if info.data.get("mask_mode") != "index":
            raise ValueError("an ignored pixel value is for competition.mask_mode: index")
        if isinstance(value, int) and not 0 <= value <= 255:
            raise ValueError("give the void pixels' value (0 to 255) or the void class's name")
        return value

    @field_validator("image_pattern")
    @classmethod
    def _image_pattern(cls, pattern: str | None, info: ValidationInfo) -> str | None:
        if pattern is None:
            return pattern
        from medalist.data.tables import pattern_columns

        if not pattern_columns(pattern):
            raise ValueError(
                'name the columns in braces, e.g. "{patient_id}/{image_id}.png" (or use '
                "competition.image_column for a column of file names)"
            )
        if info.data.get("image_column") is not None:
            raise ValueError("set image_column or image_pattern, not both")
        return pattern

    @field_validator("pixel_columns")
    @classmethod
    def _pixel_columns(cls, prefix: str | None, info: ValidationInfo) -> str | None:
        if prefix is not None:
            for key in ("image_column", "image_pattern"):
                if info.data.get(key) is not None:
                    raise ValueError(f"set {key} or pixel_columns, not both")
        return prefix

    @field_validator("image_shape")
    @classmethod
    def _image_shape(cls, shape: list[int] | None, info: ValidationInfo) -> list[int] | None:
        if shape is not None:
            if min(shape) < 1:
                raise ValueError("give the images' [height, width] in pixels, both at least 1")
            if info.data.get("pixel_columns") is None:
                raise ValueError("image_shape is for images stored as pixel_columns: set that too")
        return shape

    @field_validator("mask_pattern")
    @classmethod
    def _pattern(cls, pattern: str | None, info: ValidationInfo) -> str | None:
        if pattern is None:
            return pattern
        if info.data.get("mask_dir") is None:
            raise ValueError("a mask file pattern needs competition.mask_dir (the folder)")
        if info.data.get("mask_mode") == "index":
            raise ValueError("index masks hold every class in one file: drop mask_pattern")
        if "{id}" not in pattern or "{class}" not in pattern:
            raise ValueError('name both the image and the class, e.g. "{id}_{class}.png"')
        return pattern

    @field_validator("id_class_separator")
    @classmethod
    def _separator(cls, sep: str | None, info: ValidationInfo) -> str | None:
        if sep is not None and info.data.get("class_column") is None:
            raise ValueError(
                "set competition.class_column too: it names the class column that splitting "
                "the ids gives"
            )
        return sep


class CV(Section):
    scheme: Literal["kfold", "stratified", "group", "stratified_group", "multilabel"] = "stratified"
    n_splits: int = Field(5, ge=2, le=100)
    seed: int = 42


class Model(Section):
    backbone: str = "resnet18"
    arch: str = "unet"  # segmentation: the decoder (segmentation_models_pytorch's), on the backbone
    pretrained: bool | str = False
    in_chans: int = Field(3, ge=1, le=64)
    drop_rate: float = Field(0.0, ge=0.0, lt=1.0)
    drop_path_rate: float = Field(0.0, ge=0.0, lt=1.0)
    # Detection: torchvision's detector on the timm backbone's feature pyramid.
    detector: Literal["fcos", "retinanet", "faster_rcnn"] = "fcos"
    fpn_channels: int = Field(256, ge=8, le=1024)
    freeze_bn: bool = False  # BatchNorm statistics fixed (small batches)
    detections_per_image: int = Field(100, ge=1, le=1000)
    grad_checkpointing: bool = False  # recompute activations in backward: less memory, slower
    freeze_stages: int = Field(0, ge=0, le=16)  # the stem and the first N stages never train


def _default_augment() -> list[dict[str, Any]]:
    return [{"name": "HorizontalFlip", "p": 0.5}]


def cpu_count() -> int:
    """The CPUs this process may use (its affinity mask where the system has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class Data(Section):
    # One side (square), or [height, width]; null (segmentation): the images' own size.
    image_size: int | list[int] | None = 64
    # Segmentation: train on random crops of this size; validation and prediction see the
    # whole image (`predict.tile_size` for sliding windows).
    crop_size: int | list[int] | None = None
    keep_aspect: bool | None = None  # letterbox to the size; None: for detection only
    # 0 by default (no worker processes: the cheapest for the tiny sets of tests and benches);
    # `medalist new` writes auto (the CPUs, at most 8). Results don't depend on it.
    num_workers: Annotated[int, Field(ge=0, le=256)] | Literal["auto"] = 0
    cache: bool = True
    mean: list[float] = Field(default_factory=lambda: [0.485, 0.456, 0.406])
    std: list[float] = Field(default_factory=lambda: [0.229, 0.224, 0.225])
    augment: list[dict[str, Any]] = Field(default_factory=_default_augment)
    # Video (docs/video.md): each row's input is its own video's frames at these offsets (in
    # frame order, 0 = the row's frame) stacked as channels; model.in_chans follows. None: one.
    frame_offsets: list[int] | None = None
    frames_grey: bool = False  # each stacked frame as one grey channel, else 3 colour channels

    @field_validator("frame_offsets")
    @classmethod
    def _offsets(cls, offsets: list[int] | None) -> list[int] | None:
        if offsets is None:
            return None
        if 0 not in offsets:
            raise ValueError("include 0 (the row's own frame), e.g. [-1, 0, 1]")
        if any(b <= a for a, b in zip(offsets, offsets[1:], strict=False)):
            raise ValueError("give distinct offsets in increasing order, e.g. [-2, -1, 0, 1, 2]")
        return offsets

    @field_validator("augment")
    @classmethod
    def _each_step_named(cls, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for i, step in enumerate(steps):
            if not isinstance(step.get("name"), str):
                raise ValueError(
                    f"step {i} needs a 'name' (an albumentations transform, e.g. HorizontalFlip)"
                )
        return steps

    @field_validator("num_workers", mode="before")
    @classmethod
    def _workers(cls, value: Any) -> Any:
        return number_or_auto(value, 0, 256, integer=True)

    @field_validator("image_size", "crop_size")
    @classmethod
    def _size(cls, size: int | list[int] | None) -> int | list[int] | None:
        if size is None:
            return size
        sides = [size] if isinstance(size, int) else size
        if len(sides) not in (1, 2):
            raise ValueError("give one number (a square side) or [height, width]")
        if any(not 8 <= s <= 4096 for s in sides):
            raise ValueError("each side must be between 8 and 4096 pixels")
        return size

    @property
    def height_width(self) -> tuple[int, int]:
        """The images' (height, width) in pixels, as the model's input sees them whole."""
        if self.image_size is None:
            raise ValueError("data.image_size is null: the task sets it from the images")
        if isinstance(self.image_size, int):
            return self.image_size, self.image_size
        return (self.image_size[0], self.image_size[-1])

    @property
    def train_height_width(self) -> tuple[int, int]:
        """The training input's (height, width): the crop when `crop_size` is set."""
        if self.crop_size is None:
            return self.height_width
        c = self.crop_size
        return (c, c) if isinstance(c, int) else (c[0], c[-1])

    def scaled_size(self, factor: float) -> str:
        """An override value for `data.image_size` with each side times `factor`."""
        h, w = (max(8, int(s * factor)) for s in self.height_width)
        return str(h) if isinstance(self.image_size, int) else f"[{h},{w}]"

    @property
    def workers(self) -> int:
        """DataLoader workers: `num_workers`, or for auto the CPUs (at most 8)."""
        if self.num_workers == "auto":
            return min(MAX_AUTO_WORKERS, cpu_count())
        return self.num_workers


class Train(Section):
    epochs: int = Field(10, ge=1, le=10_000)
    batch_size: int = Field(64, ge=1)  # per forward pass; an update sees x accumulate_grad_batches
    accumulate_grad_batches: int = Field(1, ge=1, le=1024)
    # auto: the learning-rate finder's suggestion on fold 0 (`medalist lr`), before the run
    lr: Annotated[float, Field(gt=0.0, le=10.0)] | Literal["auto"] = 1.0e-3
    backbone_lr_mult: float = Field(1.0, gt=0.0, le=1.0)  # backbone lr = head lr x this
    layer_decay: float | None = Field(None, gt=0.0, le=1.0)  # lr x this per layer from the top
    weight_decay: float = Field(0.01, ge=0.0)
    optimizer: str = "adamw"
    scheduler: Literal["cosine", "onecycle", "none"] = "cosine"
    warmup_epochs: float = Field(1.0, ge=0.0)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    loss: Literal[
        "auto", "ce", "focal", "weighted_ce", "bce", "mse",
        "bce_dice", "ce_dice", "dice", "lovasz", "tversky", "jaccard",
    ] = "auto"  # fmt: skip
    focal_gamma: float = Field(2.0, ge=0.0)
    tversky_alpha: float = Field(0.5, ge=0.0, le=1.0)  # weight of false positives
    tversky_beta: float = Field(0.5, ge=0.0, le=1.0)  # weight of false negatives
    mixup: float = Field(0.0, ge=0.0, le=10.0)  # timm Mixup's alpha; 0 = off
    cutmix: float = Field(0.0, ge=0.0, le=10.0)  # CutMix's alpha; 0 = off
    mix_prob: float = Field(1.0, ge=0.0, le=1.0)  # the share of batches mixed
    freeze_backbone_epochs: int = Field(0, ge=0)
    ema: bool = False
    ema_decay: float = Field(0.999, gt=0.0, lt=1.0)
    swa: bool = False
    swa_start: float = Field(0.75, ge=0.0, lt=1.0)
    grad_clip: float | None = Field(None, gt=0.0)
    precision: Literal["auto", "32", "16-mixed", "bf16-mixed"] = "auto"
    channels_last: bool | Literal["auto"] = "auto"
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = "auto"
    devices: int | str = 1
    strategy: str = "auto"
    threads: int | None = Field(None, ge=1)
    seed: int = 0
    seeds: int = Field(1, ge=1, le=100)

    @field_validator("lr", mode="before")
    @classmethod
    def _lr(cls, value: Any) -> Any:
        if value != "auto" and isinstance(value, (int, float)) and value <= 0:
            raise ValueError("give auto or a number above 0 (e.g. 1.0e-3)")
        return number_or_auto(value, 0.0, 10.0)

    @field_validator("layer_decay")
    @classmethod
    def _one_lr_split(cls, decay: float | None, info: ValidationInfo) -> float | None:
        if decay is not None and info.data.get("backbone_lr_mult", 1.0) != 1.0:
            raise ValueError(
                "train.backbone_lr_mult is set too: both lower the backbone's learning rate, "
                "keep one"
            )
        return decay

    @property
    def mixing(self) -> bool:
        """True when batches are mixed (mixup or cutmix)."""
        return (self.mixup > 0 or self.cutmix > 0) and self.mix_prob > 0

    @field_validator("swa")
    @classmethod
    def _one_weight_average(cls, swa: bool, info: ValidationInfo) -> bool:
        if swa and info.data.get("ema"):
            raise ValueError("train.ema is on too: both average the weights, set one to false")
        return swa

    @property
    def swa_first_epoch(self) -> int:
        """The first epoch (1-based) whose weights go into the SWA average."""
        return min(self.epochs, int(self.epochs * self.swa_start) + 1)

    @property
    def averaged_weights(self) -> str | None:
        """Which averaged copy of the model predicts: "ema", "swa" or None (the model)."""
        return "ema" if self.ema else "swa" if self.swa else None


class Predict(Section):
    tta: list[Literal["hflip", "vflip"]] = Field(default_factory=list)
    # Segmentation post-processing fitted on the OOF masks, each kept only where it beats noise:
    # a minimum component area (smaller blobs are emptied) and a minimum total area per image.
    postprocess: list[Literal["min_area", "min_total_area"]] = Field(
        default_factory=lambda: ["min_area", "min_total_area"]
    )
    # Segmentation with index masks: run-length text (rle), or a zip of PNG masks of class
    # indices (png); auto: png when the sample submission is a folder or zip of PNGs, or a
    # CSV whose column holds .png file names.
    mask_format: Literal["auto", "rle", "png"] = "auto"
    batch_size: int | None = Field(None, ge=1)
    smooth_window: int = Field(1, ge=1, le=1001)  # centred moving average over frames; 1 = off
    # Segmentation: predict the whole image in tiles of this size (one side or [height,
    # width]), overlapping by tile_overlap pixels, averaged; null: the whole image at once.
    tile_size: int | list[int] | None = None
    tile_overlap: int = Field(0, ge=0, le=4096)
    # Over those frames: mean, gaussian, median (classify, segment) or boost (detect: boxes
    # that neighbouring frames confirm score higher); null: mean, or boost for detect.
    smooth_filter: Literal["mean", "gaussian", "median", "boost"] | None = None
    boost_floor: float = Field(0.3, ge=0.0, le=1.0)  # boost drops unconfirmed boxes under this
    # Detection: weighted boxes fusion of folds, TTA views, seeds and runs.
    wbf_iou_thr: float = Field(0.55, gt=0.0, lt=1.0)
    wbf_skip_box_thr: float = Field(0.0, ge=0.0, lt=1.0)

    @field_validator("smooth_window")
    @classmethod
    def _odd(cls, window: int) -> int:
        if window % 2 == 0:
            raise ValueError("give an odd number of frames (1 = off, 3, 5, ...), centred on each")
        return window

    @field_validator("tile_size")
    @classmethod
    def _tile(cls, size: int | list[int] | None) -> int | list[int] | None:
        sides = [] if size is None else [size] if isinstance(size, int) else size
        if size is not None and len(sides) not in (1, 2):
            raise ValueError("give one number (a square side) or [height, width]")
        if any(not 8 <= s <= 4096 for s in sides):
            raise ValueError("each side must be between 8 and 4096 pixels")
        return size


TrackerName = Literal["mlflow", "wandb", "comet", "neptune", "tensorboard", "csv", "none"]


class Track(Section):
    """Trackers that mirror each run; several at once. The run directory never depends on them.

    `offline: true` (the default) keeps W&B, Comet and Neptune on this machine: they write
    their offline files in the project, for `wandb sync` / `comet upload` once the
    competition's rules allow uploading. MLflow, TensorBoard and CSV are local anyway.
    """

    backends: list[TrackerName] = Field(default_factory=lambda: ["mlflow"])
    tracking_uri: str | None = None  # MLflow; default: sqlite file mlruns.db in the project
    experiment: str | None = None  # experiment / project name; default: the project folder
    offline: bool = True
    commit_before_run: bool = False  # git-commit the project's code (not data) before each run


class Tune(Section):
    """`medalist tune`: what each trial trains and scores, the search space, sampler, pruner."""

    metric_folds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    space: dict[str, dict[str, Any]] = Field(default_factory=dict)
    sampler: Literal["tpe", "random", "cmaes", "grid"] = "tpe"
    pruner: Literal["median", "hyperband", "none"] = "median"
    n_startup_trials: int = Field(5, ge=0)
    pruner_startup_trials: int = Field(3, ge=0)
    n_warmup_epochs: int = Field(1, ge=0)
    seed: int | None = None
    heartbeat_interval: int = Field(30, ge=1)
    grace_period: int | None = Field(None, ge=1)
    max_retries: int = Field(1, ge=0)


class Config(Section):
    """A whole medalist config; `root` is the project folder its relative paths start from."""

    extends: str | None = None
    competition: Competition = Field(default_factory=Competition)
    cv: CV = Field(default_factory=CV)
    model: Model = Field(default_factory=Model)
    data: Data = Field(default_factory=Data)
    train: Train = Field(default_factory=Train)
    predict: Predict = Field(default_factory=Predict)
    track: Track = Field(default_factory=Track)
    tune: Tune = Field(default_factory=Tune)

    @model_validator(mode="after")
    def _large_images_are_segmentation(self) -> Config:
        """The keys for large images crop and tile masks: segmentation's alone."""
        if self.competition.task == "segment":
            return self
        for key, on in (
            ("data.image_size: null", self.data.image_size is None),
            ("data.crop_size", self.data.crop_size is not None),
            ("predict.tile_size", self.predict.tile_size is not None),
        ):
            if on:
                raise ValueError(
                    f"{key} is for segmentation (crops of large images, predicted in tiles); "
                    f"competition.task is {self.competition.task}: give data.image_size and "
                    "drop it"
                )
        return self

    _root: Path = PrivateAttr(default_factory=Path.cwd)
    _source: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _joined_labels(self) -> Config:
        """Labels joined in one column: one classification target that is multilabel."""
        comp = self.competition
        if comp.label_separator is None:
            return self
        if comp.label_separator == "":
            raise ValueError(
                'competition.label_separator is empty: give the text between labels (" " for '
                '"clear primary") or null for one label per row'
            )
        if comp.task != "classify" or not isinstance(comp.target_column, str):
            raise ValueError(
                "competition.label_separator splits one classification target column into "
                "labels: set competition.task: classify and one target_column, or remove it"
            )
        if comp.target_type not in ("auto", "multilabel"):
            raise ValueError(
                f"competition.label_separator makes a multilabel target, but target_type is "
                f"{comp.target_type}: set target_type: multilabel (or auto), or remove it"
            )
        return self

    @model_validator(mode="after")
    def _smooth_filter(self) -> Config:
        """Boxes are boosted over frames, arrays are filtered: the filter suits the task."""
        kind, task = self.predict.smooth_filter, self.competition.task
        if kind is not None and (kind == "boost") != (task == "detect"):
            fits = "boost" if task == "detect" else "mean, gaussian or median"
            raise ValueError(
                f"predict.smooth_filter = {kind!r} does not suit competition.task: {task}; "
                f"use {fits} (or leave it out)"
            )
        return self

    @model_validator(mode="after")
    def _stacked_frames(self) -> Config:
        """Stacked video frames need the video columns; model.in_chans follows the stack."""
        offsets = self.data.frame_offsets
        if offsets is None:
            return self
        comp = self.competition
        if comp.sequence_column is None or comp.frame_column is None:
            raise ValueError(
                "data.frame_offsets stacks frames of a video: set competition.sequence_column "
                "and competition.frame_column too, or remove data.frame_offsets"
            )
        channels = self.image_channels * len(offsets)
        if "in_chans" in self.model.model_fields_set and self.model.in_chans != channels:
            raise ValueError(
                f"model.in_chans = {self.model.in_chans} but data.frame_offsets stacks "
                f"{len(offsets)} frames of {self.image_channels} channel(s) = {channels}: remove "
                "model.in_chans (it follows the frames)"
            )
        self.model.in_chans = channels
        return self

    @property
    def image_channels(self) -> int:
        """The channels one image file is decoded to: model.in_chans, or with stacked frames
        one frame's (1 with data.frames_grey, else 3)."""
        if self.data.frame_offsets is None:
            return self.model.in_chans
        return 1 if self.data.frames_grey else 3

    @property
    def root(self) -> Path:
        return self._root

    @property
    def source(self) -> Path | None:
        return self._source

    def path(self, value: str | None) -> Path | None:
        """A config path made absolute against the project root."""
        if value is None:
            return None
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self._root / p)

    @property
    def image_shape(self) -> tuple[int, int]:
        """The model's input (height, width)."""
        return self.data.height_width

    @property
    def keep_aspect(self) -> bool:
        """Letterbox images to the input (scale the longer side, pad the rest) or stretch."""
        if self.data.keep_aspect is not None:
            return self.data.keep_aspect
        return self.competition.task == "detect"

    @property
    def target_columns(self) -> list[str]:
        if self.competition.task == "segment" and self.competition.mask_dir is not None:
            return []  # the masks are files, not columns
        if self.competition.task == "detect":
            return []  # the boxes are a table of their own (medalist.data.boxes)
        t = self.competition.target_column
        return [t] if isinstance(t, str) else list(t)
