"""The typed schema of a medalist config. Key names here are part of the public interface."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)


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
    target_column: str | list[str] = "label"
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


class CV(Section):
    scheme: Literal["kfold", "stratified", "group", "stratified_group", "multilabel"] = "stratified"
    n_splits: int = Field(5, ge=2, le=100)
    seed: int = 42


class Model(Section):
    backbone: str = "resnet18"
    pretrained: bool | str = False
    in_chans: int = Field(3, ge=1, le=64)
    drop_rate: float = Field(0.0, ge=0.0, lt=1.0)
    drop_path_rate: float = Field(0.0, ge=0.0, lt=1.0)
    # Detection: torchvision's detector on the timm backbone's feature pyramid.
    detector: Literal["fcos", "retinanet", "faster_rcnn"] = "fcos"
    fpn_channels: int = Field(256, ge=8, le=1024)
    freeze_bn: bool = False  # BatchNorm statistics fixed (small batches)
    detections_per_image: int = Field(100, ge=1, le=1000)


def _default_augment() -> list[dict[str, Any]]:
    return [{"name": "HorizontalFlip", "p": 0.5}]


class Data(Section):
    image_size: int | list[int] = 64  # detection may give [height, width]
    keep_aspect: bool | None = None  # letterbox to the size; None: for detection only
    num_workers: int = Field(0, ge=0, le=256)
    cache: bool = True
    mean: list[float] = Field(default_factory=lambda: [0.485, 0.456, 0.406])
    std: list[float] = Field(default_factory=lambda: [0.229, 0.224, 0.225])
    augment: list[dict[str, Any]] = Field(default_factory=_default_augment)

    @field_validator("augment")
    @classmethod
    def _each_step_named(cls, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for i, step in enumerate(steps):
            if not isinstance(step.get("name"), str):
                raise ValueError(
                    f"step {i} needs a 'name' (an albumentations transform, e.g. HorizontalFlip)"
                )
        return steps

    @field_validator("image_size")
    @classmethod
    def _size_in_range(cls, size: int | list[int]) -> int | list[int]:
        sizes = [size] if isinstance(size, int) else size
        if len(sizes) not in (1, 2) or not all(8 <= s <= 4096 for s in sizes):
            raise ValueError("give one size, or [height, width], each from 8 to 4096")
        return size


class Train(Section):
    epochs: int = Field(10, ge=1, le=10_000)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(1.0e-3, gt=0.0, le=10.0)
    weight_decay: float = Field(0.01, ge=0.0)
    optimizer: str = "adamw"
    scheduler: Literal["cosine", "none"] = "cosine"
    warmup_epochs: float = Field(1.0, ge=0.0)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    loss: Literal["auto", "ce", "focal", "weighted_ce", "bce", "mse"] = "auto"
    focal_gamma: float = Field(2.0, ge=0.0)
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
    batch_size: int | None = Field(None, ge=1)
    smooth_window: int = Field(1, ge=1, le=1001)  # centred moving average over frames; 1 = off
    # Detection: weighted boxes fusion of folds, TTA views, seeds and runs.
    wbf_iou_thr: float = Field(0.55, gt=0.0, lt=1.0)
    wbf_skip_box_thr: float = Field(0.0, ge=0.0, lt=1.0)

    @field_validator("smooth_window")
    @classmethod
    def _odd(cls, window: int) -> int:
        if window % 2 == 0:
            raise ValueError("give an odd number of frames (1 = off, 3, 5, ...), centred on each")
        return window


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
    def _two_sizes_for_detection(self) -> Config:
        size = self.data.image_size
        if isinstance(size, list) and len(size) == 2 and self.competition.task != "detect":
            raise ValueError(
                f"data.image_size = {size}: [height, width] is for competition.task: detect; "
                "give one number"
            )
        return self

    _root: Path = PrivateAttr(default_factory=Path.cwd)
    _source: Path | None = PrivateAttr(default=None)

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
        size = self.data.image_size
        return (size, size) if isinstance(size, int) else (size[0], size[-1])

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
