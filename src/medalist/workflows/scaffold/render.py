"""The text of the files `medalist new` writes: the baseline config (YAML with a comment per
section and TODO marks on guesses, validated before it is written), the readme, .gitignore."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from medalist.config.load import validate_config
from medalist.errors import UserError
from medalist.models.hub import pretrained_default
from medalist.workflows.scaffold.found import DataPath, Found
from medalist.workflows.scaffold.video import scheme_comment, video_lines

GROUP_COMMENT = "# patient, photographer, date...: kept in one fold"

TODO = "# TODO: medalist could not infer this; check it"
KEY_ORDER = (
    *(
        f"competition.{k}"
        for k in (
            "task", "target_type", "train_csv", "test_csv", "image_dir", "test_image_dir",
            "sample_submission", "id_column", "image_column", "image_ext", "image_pattern",
            "target_column", "submission_by",
            "label_separator", "classes", "group_column", "metric", "mask_dir", "rle_order",
            "class_column", "mask_mode", "ignore_index", "mask_pattern", "id_class_separator",
            "box_format", "box_normalized", "sequence_column", "frame_column",
        )
    ),
    "cv.scheme",
    "data.image_size",
)  # fmt: skip

GITIGNORE = """\
# medalist: the data, run outputs, tracker files and caches stay out of git.
# /data (no slash) also matches data when it is a link to the competition folder.
/data
data/
runs/
folds/
mlruns.db
mlartifacts/
.cache/
*.ckpt
# tracker files (track.backends): W&B, Comet, Neptune offline data, TensorBoard, CSV
wandb/
comet/
.neptune/
tb/
tracking/
.ipynb_checkpoints/
"""


def key_rank(key: str) -> int:
    """Where `key` comes in the config (and so in the report)."""
    return KEY_ORDER.index(key) if key in KEY_ORDER else len(KEY_ORDER)


def as_written(value: Any, prefix: str) -> Any:
    """`value` as the config holds it: a DataPath under `prefix` (data, or the absolute path)."""
    if isinstance(value, DataPath):
        return f"{prefix}/{value}" if value else prefix
    return value


def show(value: Any) -> str:
    """`value` as the report prints it."""
    if value is None:
        return "null"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, str) and value.strip() != value:
        return repr(value)  # a separator such as " " reads as nothing unquoted
    return str(value)


_PLAIN = re.compile(r"[A-Za-z0-9_./][A-Za-z0-9_./+-]*")


def _yaml(value: Any) -> str:
    """One YAML flow value that reads back as `value`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        mantissa, e, exponent = text.partition("e")
        if e and "." not in mantissa:  # PyYAML reads 1e-05 as a string, 1.0e-05 as a float
            text = f"{mantissa}.0e{exponent}"
        return text
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_yaml(k)}: {_yaml(v)}" for k, v in value.items()) + "}"
    text = str(value)
    if _PLAIN.fullmatch(text) and yaml.safe_load(text) == text:
        return text
    return json.dumps(text, ensure_ascii=False)


def _line(key: str, value: Any, comment: str = "", todo: bool = False) -> str:
    text = f"  {key}: {_yaml(value)}"
    comment = TODO if todo else comment
    if not comment:
        return text
    return text + " " * max(2, 30 - len(text)) + comment


def render_config(found: Found, name: str, prefix: str) -> str:
    """configs/baseline.yaml for what was found; data paths start with `prefix`."""

    def line(key: str, default: Any = None, comment: str = "") -> str:
        value = as_written(found.values.get(key, default), prefix)
        return _line(key.split(".", 1)[1], value, comment, key in found.unresolved)

    c = "competition."
    out = [
        f"# medalist config for {name}, written by `medalist new`.",
        "# Paths are relative to the project folder. Lines marked TODO were guesses: check them.",
        "",
        "# The competition: its files, columns and metric.",
        "competition:",
        _line("name", name),
        line(c + "task", "classify", "# classify | segment | detect"),
        line(c + "target_type", "auto", "# auto | multiclass | binary | multilabel | regression"),
        line(c + "train_csv"),
        line(c + "test_csv"),
        line(c + "image_dir"),
        line(c + "test_image_dir"),
        line(c + "sample_submission"),
        line(c + "id_column"),
        line(c + "image_column", None, "# the column of file names; null: id + image_ext"),
        line(c + "image_ext", ".png"),
        *(
            [line(c + "image_pattern", None, "# each row's file: its columns in braces")]
            if c + "image_pattern" in found.values
            else []
        ),
        *(
            [
                line(c + "pixel_columns", None, "# the images: a column per pixel, row after row"),
                line(c + "image_shape", None, "# [height, width]; null: a square"),
            ]
            if c + "pixel_columns" in found.values
            else []
        ),
        line(c + "target_column"),
        *(
            [
                line(c + "submission_by", None, "# a submission row per group of images"),
                line(c + "submission_reduce", "mean", "# mean | max: the group's images"),
            ]
            if c + "submission_by" in found.values
            else []
        ),
        *(
            [line(c + "label_separator", None, "# several labels a row, joined by this")]
            if c + "label_separator" in found.values
            else []
        ),
        line(c + "classes", None, "# null: taken from the target values"),
        *(
            found.groups.yaml_lines()
            if found.groups is not None
            else [line(c + "group_column", None, GROUP_COMMENT)]
        ),
        *video_lines(found, line),
        line(
            c + "metric",
            "accuracy",
            "# accuracy | f1 | roc_auc | log_loss | qwk | rmse | map@5 | pauc@0.8",
        ),
        *(
            [
                line(c + "mask_dir", None, "# masks named like the images; null: RLE column"),
                line(c + "rle_order", "column", "# column | row: how the RLE counts pixels"),
                line(c + "class_column", None, "# several classes: a row per image and class"),
                line(c + "mask_mode", "sigmoid", "# sigmoid: one per class | index: class PNGs"),
                *(
                    line(c + key, None, comment)
                    for key, comment in (
                        ("ignore_index", "# the void pixels' value, left out"),
                        ("mask_pattern", "# a mask file per image and class"),
                        ("id_class_separator", "# the ids join image and class"),
                    )
                    if c + key in found.values
                ),
            ]
            if found.values.get(c + "task") == "segment"
            else []
        ),
        *(
            [
                line(c + "box_format", "xywh", "# xywh | xyxy | cxcywh (x1 y1 or centre)"),
                line(c + "box_normalized", False, "# true: fractions of the image size"),
                line(c + "class_column", None, "# the class of each box; null: one class"),
                _line("prediction_format", None, "# null: by class count (docs/detect.md)"),
            ]
            if found.values.get(c + "task") == "detect"
            else []
        ),
        "",
        "# Validation folds (`medalist folds`).",
        "cv:",
        line(
            "cv.scheme",
            "stratified",
            scheme_comment(found, "# kfold | stratified | group | stratified_group | multilabel"),
        ),
        _line("n_splits", 5),
        _line("seed", 42),
        "",
        "# The network: any timm name; pretrained: true (timm's hub weights) | false | a path.",
        "model:",
        _line("backbone", "resnet18"),
        _line("pretrained", *pretrained_default("resnet18")),
        *(
            [_line("detector", "fcos", "# fcos | retinanet | faster_rcnn")]
            if found.values.get(c + "task") == "detect"
            else []
        ),
        "",
        "# Images: size (one side, or [height, width]), workers, cache, augmentation",
        "# (albumentations steps, applied in order to training images only).",
        "data:",
        line("data.image_size", 224),
        _line("num_workers", "auto", "# auto: the CPUs, at most 8"),
        _line("cache", True),
        *augment_lines(found),
        "",
        *train_lines(
            found.values.get(c + "task", "classify"),
            found.values.get("train.batch_size", BATCH_SIZES[0]),
        ),
        "",
        "# Tracking: the run directory is the truth; trackers mirror it.",
        "track:",
        _line("backends", ["mlflow"]),
        _line("experiment", name),
        "",
    ]
    return "\n".join(out)


def augment_lines(found: Found) -> list[str]:
    """data.augment as a block, one step a line, with the preset's reason as a comment."""
    from medalist.workflows.scaffold.augment import preset

    task = found.values.get("competition.task", "classify")
    steps = found.values.get("data.augment", preset("photo", task)[1])
    why = found.inferred.get("data.augment", "no image read: the photo preset")
    if not steps:
        return [f"  augment: []  # {why}"]
    return [f"  augment:  # {why}", *(f"    - {_yaml(step)}" for step in steps)]


MIN_UPDATES = 25  # optimizer updates an epoch the default batch keeps on a small data set
BATCH_SIZES = (64, 32, 16)  # the default batch: the largest of these that keeps MIN_UPDATES


def batch_for(n_images: int, n_splits: int = 5) -> tuple[int, str]:
    """(batch size, why): the largest of BATCH_SIZES whose epoch over a fold's training images
    still makes MIN_UPDATES updates (the smallest when none does). A baseline of a few epochs
    on a small set is short of updates, not of images per update (bench/recipe.py)."""
    train = n_images * (n_splits - 1) // n_splits
    size = next((b for b in BATCH_SIZES if train / b >= MIN_UPDATES), BATCH_SIZES[-1])
    updates = train // size
    return (
        size,
        f"{train} training images a fold: {updates} update{'s' if updates != 1 else ''} an epoch",
    )


def train_lines(task: str, batch: int = BATCH_SIZES[0]) -> list[str]:
    """The training recipe measured by bench/recipe.py (one-cycle, label smoothing, decay, a
    batch that keeps MIN_UPDATES updates an epoch)."""
    classify = task == "classify"
    return [
        "# Training: one-cycle to lr at 30% of the updates; `medalist lr` suggests an lr.",
        "train:",
        _line("epochs", 10),
        _line(
            "batch_size",
            batch,
            f"# per step; 16-64 for {MIN_UPDATES}+ updates an epoch",
        ),
        _line("accumulate_grad_batches", 1, "# steps per update (a larger effective batch)"),
        _line("lr", 3.0e-3, "# the peak; auto: the lr finder's pick on fold 0"),
        _line(
            "backbone_lr_mult",
            1.0,
            "# backbone lr = lr x this; pretrained, classes are objects like ImageNet's: try 0.1",
        ),
        _line("scheduler", "onecycle", "# onecycle | cosine (with warmup_epochs) | none"),
        _line("weight_decay", 0.05),
        *([_line("label_smoothing", 0.1)] if classify else []),
        *(
            [_line("mixup", 0.0, "# 0.2 with cutmix 1.0 pays off on long runs (50+ epochs)")]
            if classify
            else []
        ),
        _line("seed", 0),
    ]


def validated(text: str, name: str) -> str:
    """`text` if it loads as a config; a RuntimeError (a medalist bug, exit 1) if not."""
    try:
        validate_config(yaml.safe_load(text), source=f"the config written for {name}")
    except (UserError, yaml.YAMLError) as exc:  # our fault, not the user's: exit code 1
        raise RuntimeError(f"medalist new wrote a config that does not load: {exc}") from exc
    return text


def readme(name: str, data_dir: Path, linked: bool, how_to_run: str = "") -> str:
    """readme.md: what each folder holds, the layout's way to run, the commands, git."""
    data_line = (
        f"- `data/`: a link to `{data_dir}` (not in git)."
        if linked
        else f"- the data stays in `{data_dir}`; the config names it by absolute path."
    )
    return f"""# {name}

A Kaggle image competition project made by `medalist new` from `{data_dir}`.

- `configs/baseline.yaml`: the first config, inferred from the data; check lines marked TODO.
{data_line}
- `models/`: local weights files for `model.pretrained: <path>` (`true` takes timm's from the hub).
- `folds/`: the fold assignment, `runs/`: one folder per run (neither in git).

{how_to_run}
## The medalist commands

```
medalist folds configs/baseline.yaml     # make the validation folds
medalist train configs/baseline.yaml     # train every fold, out-of-fold predictions, CV
medalist predict runs/<name>             # submission.csv, checked against the sample
medalist runs                            # the ledger of every run
```

## Git

This folder is a git repository with nothing committed yet. Commit the code before each run
(`git add -A && git commit -m "what this run tries"`): each run records its commit, and the
diff when the tree was dirty. The data, runs and tracker files stay out of git (.gitignore).
"""
