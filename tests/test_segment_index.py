"""Segmentation layouts beyond run-length text and one-class mask folders: index masks
(`competition.mask_mode: index`, one class per pixel, softmax, void pixels ignored), a mask
file per image and class (`competition.mask_pattern`), and ids that join image and class
(`competition.id_class_separator`, Severstal's ImageId_ClassId)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import medalist
from PIL import Image
from test_segment import SEG_CONFIG, decode_by_hand, dice

VOID = 255


def index_picture(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """A noisy image with a red rectangle (class 1) and a green one (class 2) that may touch
    (the later one wins: one class per pixel), and a void band (255) along the bottom edge of
    one image in two."""
    img = rng.integers(0, 60, (h, w, 3)).astype(np.uint8)
    mask = np.zeros((h, w), dtype=np.uint8)
    for value, channel in ((1, 0), (2, 1)):
        if rng.random() > 0.2:
            y0, x0 = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
            mask[y0 : y0 + h // 3, x0 : x0 + w // 3] = value
            img[y0 : y0 + h // 3, x0 : x0 + w // 3, channel] = 240
    if rng.random() > 0.5:
        mask[-3:, :] = VOID
    return img, mask


def make_index_project(root: Path, *, n_train: int = 16, n_test: int = 4, seed: int = 0) -> Path:
    """An index-mask competition: train.csv lists the ids, masks/ holds PNGs of 0 (background),
    1, 2 and 255 (void); the sample submission has a row per test image and class 1 and 2
    (background is not submitted). The test masks are kept in `root/truth/`."""
    rng = np.random.default_rng(seed)
    data = root / "data"
    for sub in ("train", "test", "masks"):
        (data / sub).mkdir(parents=True, exist_ok=True)
    ids = [f"img_{i:03d}" for i in range(n_train)]
    for i in ids:
        img, mask = index_picture(rng, 32, 40)
        Image.fromarray(img).save(data / "train" / f"{i}.png")
        Image.fromarray(mask).save(data / "masks" / f"{i}.png")
    pd.DataFrame({"id": ids}).to_csv(data / "train.csv", index=False)
    (root / "truth").mkdir(exist_ok=True)
    test_ids = [f"t_{j:03d}" for j in range(n_test)]
    for t in test_ids:
        img, mask = index_picture(rng, 40, 32)  # taller than wide
        Image.fromarray(img).save(data / "test" / f"{t}.png")
        Image.fromarray(mask).save(root / "truth" / f"{t}.png")
    pd.DataFrame({"id": test_ids}).to_csv(data / "test.csv", index=False)
    sample = [{"id": t, "class": c, "rle": ""} for t in test_ids[::-1] for c in (1, 2)]
    pd.DataFrame(sample).to_csv(data / "sample_submission.csv", index=False)
    (root / "configs").mkdir(parents=True, exist_ok=True)
    cfg = root / "configs" / "baseline.yaml"
    cfg.write_text(
        SEG_CONFIG.replace(
            "  target_column: rle\n",
            "  target_column: rle\n  mask_dir: data/masks\n  mask_mode: index\n"
            "  ignore_index: 255\n  classes: [0, 1, 2]\n  class_column: class\n",
        )
    )
    return cfg
