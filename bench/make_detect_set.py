"""A detection set from real scans: scikit-learn's handwritten digits pasted onto larger canvases.

Each canvas (`size` x `size`, grey noise) holds 0 to 4 digits (about one canvas in eight has
none: a negative), each scaled to a side drawn log-uniformly from 10 to 48 px, so about half
the objects are under 32x32 (COCO's "small"), and placed at random, overlapping at most a
little. The box of a digit is the tight box of its ink. One class ("digit"), Global Wheat's
layout: train.csv with image_id, width, height, bbox "[x, y, w, h]"; test images with their
true boxes in test_boxes.csv (for scoring a submission), and sample_submission.csv.

Run: .venv/bin/python bench/make_detect_set.py OUT [--train 240 --test 60 --size 128]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

SIDES = (10, 48)


def _digit(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One digit scan (8x8, 0-16) as a uint8 picture of a random side, cropped to its ink."""
    scan = images[int(rng.integers(len(images)))]
    side = int(round(np.exp(rng.uniform(np.log(SIDES[0]), np.log(SIDES[1])))))
    pic = Image.fromarray((scan / 16 * 255).astype(np.uint8)).resize((side, side), Image.BICUBIC)
    arr = np.asarray(pic)
    ys, xs = np.nonzero(arr > 40)
    return arr[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def canvas(
    images: np.ndarray, rng: np.random.Generator, size: int
) -> tuple[np.ndarray, list[tuple]]:
    """A noisy canvas with its digits, and their x, y, w, h boxes."""
    img = rng.integers(0, 40, (size, size)).astype(np.float32)
    n = 0 if rng.random() < 0.125 else int(rng.integers(1, 5))
    boxes: list[tuple] = []
    for _ in range(n * 5):  # tries: a digit that overlaps another much is drawn again
        if len(boxes) == n:
            break
        d = _digit(images, rng)
        h, w = d.shape
        x, y = int(rng.integers(0, size - w)), int(rng.integers(0, size - h))
        if any(_iou((x, y, w, h), b) > 0.1 for b in boxes):
            continue
        img[y : y + h, x : x + w] = np.maximum(img[y : y + h, x : x + w], d)
        boxes.append((x, y, w, h))
    return np.repeat(img.clip(0, 255).astype(np.uint8)[:, :, None], 3, axis=2), boxes


def _iou(a: tuple, b: tuple) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def make_set(root: Path, n_train: int, n_test: int, size: int = 128, seed: int = 0) -> Path:
    """Write the competition under `root`; returns root."""
    from sklearn.datasets import load_digits

    images = load_digits().images
    rng = np.random.default_rng(seed)
    tables: dict[str, list[dict]] = {"train": [], "test": []}
    for split, n in (("train", n_train), ("test", n_test)):
        (root / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            name = f"{split[:2]}{i:04d}"
            img, boxes = canvas(images, rng, size)
            Image.fromarray(img).save(root / split / f"{name}.png")
            for x, y, w, h in boxes:
                tables[split].append(
                    dict(image_id=name, width=size, height=size, bbox=f"[{x}, {y}, {w}, {h}]")
                )
    pd.DataFrame(tables["train"]).to_csv(root / "train.csv", index=False)
    pd.DataFrame(tables["test"]).to_csv(root / "test_boxes.csv", index=False)
    test_ids = [f"te{i:04d}" for i in range(n_test)]
    pd.DataFrame({"image_id": test_ids, "PredictionString": ""}).to_csv(
        root / "sample_submission.csv", index=False
    )
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--train", type=int, default=240)
    parser.add_argument("--test", type=int, default=60)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    make_set(args.out, args.train, args.test, args.size, args.seed)
    boxes = pd.read_csv(args.out / "train.csv")
    sides = boxes["bbox"].str.strip("[]").str.split(",", expand=True).astype(float)
    small = float(((sides[2] * sides[3]) < 32 * 32).mean())
    print(f"{args.train} training canvases, {len(boxes)} boxes, {small:.0%} under 32x32")


if __name__ == "__main__":
    main()
