"""A tiny detection competition: bright squares on noise, boxes in Kaggle's layouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

DETECT_CONFIG = """\
competition:
  task: detect
  train_csv: data/train.csv
  test_csv: null
  image_dir: data/train
  test_image_dir: data/test
  sample_submission: data/sample_submission.csv
  id_column: image_id
  metric: map50
cv:
  scheme: stratified
  n_splits: 2
model:
  backbone: test_resnet
  fpn_channels: 32
  detections_per_image: 20
data:
  image_size: 64
  augment:
    - {name: HorizontalFlip, p: 0.5}
train:
  epochs: 1
  batch_size: 4
  lr: 1.0e-3
  warmup_epochs: 0
  threads: 1
track:
  backends: [none]
"""


def picture(
    rng: np.random.Generator, h: int, w: int, n: int, apart: bool = False
) -> tuple[np.ndarray, list]:
    """Noise with `n` bright squares; their x1 y1 x2 y2 boxes and classes (0 square, 1 bar).
    `apart`: squares only, 12 to 20 px, none touching another (each box visible on its own)."""
    img = rng.integers(0, 50, (h, w, 3)).astype(np.uint8)
    boxes = []
    for _ in range(n):
        s = int(rng.integers(12 if apart else 8, 20))
        x, y = int(rng.integers(0, w - s)), int(rng.integers(0, h - s))
        kind = 0 if apart else int(rng.integers(0, 2))
        bw = s if kind == 0 else max(4, s // 3)
        if apart and any(
            x < b[2] + 3 and b[0] < x + s + 3 and y < b[3] + 3 and b[1] < y + s + 3 for b in boxes
        ):
            continue
        img[y : y + s, x : x + bw] = 230
        boxes.append((x, y, x + bw, y + s, kind))
    return img, boxes


def make_detect_competition(
    root: Path,
    n_train: int = 16,
    n_test: int = 4,
    seed: int = 0,
    negatives: int = 2,
    apart: bool = False,
) -> Path:
    """train/ and test/ images, train.csv (Global Wheat's layout: image_id, width, height,
    bbox, plus a class column), sample_submission.csv; `negatives` training images without
    a row; `apart`: separate squares only (see `picture`). Returns root."""
    rng = np.random.default_rng(seed)
    for sub in ("train", "test"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n_train):
        h, w = (48, 64) if i % 3 == 0 else (64, 64)
        img, boxes = picture(rng, h, w, 0 if i < negatives else int(rng.integers(1, 4)), apart)
        Image.fromarray(img).save(root / "train" / f"im{i:03d}.png")
        for x1, y1, x2, y2, k in boxes:
            rows.append(
                dict(
                    image_id=f"im{i:03d}",
                    width=w,
                    height=h,
                    bbox=f"[{x1}, {y1}, {x2 - x1}, {y2 - y1}]",
                    cls=["square", "bar"][k],
                )
            )
    pd.DataFrame(rows).to_csv(root / "train.csv", index=False)
    ids = []
    for j in range(n_test):
        img, _ = picture(rng, 64, 48 if j % 2 else 64, 2)
        Image.fromarray(img).save(root / "test" / f"t{j:02d}.png")
        ids.append(f"t{j:02d}")
    pd.DataFrame({"image_id": ids, "PredictionString": ""}).to_csv(
        root / "sample_submission.csv", index=False
    )
    return root


def make_detect_project(root: Path, config: str = DETECT_CONFIG, **kw: object) -> Path:
    """A project with data/ and configs/baseline.yaml; returns the config path."""
    make_detect_competition(root / "data", **kw)
    (root / "configs").mkdir(parents=True, exist_ok=True)
    path = root / "configs" / "baseline.yaml"
    path.write_text(config)
    return path
