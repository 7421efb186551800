"""Does the temporal boost (boxes that neighbouring frames confirm score higher, isolated
low-score boxes dropped) beat single-frame boxes on a detection video? And do 3 stacked frames
beat one as the detector's input?

A quality figure for `medalist smooth` on a detection run and `data.frame_offsets` for detect.
The set is made from scikit-learn's handwritten digits (real scans, 8x8, scaled to 16x16): each
video is `--frames` frames of 64x64 in which one or two digits drift 1-3 px per frame over a
noisy texture. About a third of the frames are hard, so one frame misses: the digit dimmed to
a third of its contrast, half of it covered by a patch of texture, or the whole frame under
heavy noise. One frame in three also shows a distractor for that frame only (a digit scan with
its pixels shuffled: bright strokes, no digit), which a single-frame detector may box.

Two runs through medalist's own train workflow (resnet18 FCOS from scratch, the same size,
epochs, folds grouped by video, one torch thread): one frame, and `frame_offsets: [-1, 0, 1]`.
On each, `evaluate_smoothing` (what `medalist smooth RUN` runs) scores the boost over windows
of 3 and 5 frames against no boost, fold by fold, with `compare`'s rule; the 3-frame run is
judged against the one-frame run with `medalist compare`'s rule.

    .venv/bin/python bench/video_detect.py [--videos 30] [--frames 8] [--epochs 8] [--folds 5]
                                           [--metric fbeta_iou] [--threads 1]
                                           [--out bench/results/video_detect.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, machine  # noqa: E402

SIZE, DIGIT = 64, 16
CONFIG = """\
competition:
  task: detect
  train_csv: data/train.csv
  test_csv: null
  image_dir: data/train
  test_image_dir: null
  sample_submission: null
  id_column: image_id
  sequence_column: video
  frame_column: frame
  group_column: video
  include_unlabeled_images: false
  metric: {metric}
cv:
  scheme: group
  n_splits: {folds}
model:
  backbone: resnet18
  pretrained: false
  fpn_channels: 64
data:
  image_size: 64
  num_workers: 0
  augment:
    - {{name: HorizontalFlip, p: 0.5}}
train:
  epochs: {epochs}
  batch_size: 8
  lr: 1.0e-3
  threads: {threads}
track:
  backends: [none]
"""


def digit_images() -> np.ndarray:
    """scikit-learn's digits as 16x16 uint8 pictures."""
    import cv2
    from sklearn.datasets import load_digits

    digits = load_digits().images  # (1797, 8, 8), 0-16
    return np.stack(
        [cv2.resize((d * 15.9).astype(np.uint8), (DIGIT, DIGIT), interpolation=cv2.INTER_LINEAR)
         for d in digits]
    )  # fmt: skip


def make_videos(root: Path, videos: int, frames: int, seed: int = 0) -> pd.DataFrame:
    """The videos' frames as PNG files under root/data/train and their box table (Global
    Wheat's layout: one row per box, a frame without a box has an empty one)."""
    rng = np.random.default_rng(seed)
    digits = digit_images()
    folder = root / "data" / "train"
    folder.mkdir(parents=True, exist_ok=True)
    rows, hard_frames = [], 0
    for v in range(videos):
        items = []
        for _ in range(int(rng.integers(1, 3))):
            pos = rng.uniform(0, SIZE - DIGIT, 2)
            speed = rng.uniform(1, 3) * rng.choice([-1, 1], 2)
            items.append((digits[rng.integers(len(digits))], pos, speed))
        texture = rng.integers(0, 60, (SIZE, SIZE)).astype(np.float32)
        for t in range(frames):
            img = texture + rng.normal(0, 10, (SIZE, SIZE))
            hard = rng.random() < 0.35
            kind = int(rng.integers(0, 3)) if hard else -1
            hard_frames += hard
            boxes = []
            for digit, pos, speed in items:
                p = pos + speed * t
                p = np.abs(np.mod(p, 2 * (SIZE - DIGIT)))  # bounce off the edges
                y, x = (int(c if c <= SIZE - DIGIT else 2 * (SIZE - DIGIT) - c) for c in p)
                patch = digit.astype(np.float32) * (0.33 if kind == 0 else 1.0)
                area = img[y : y + DIGIT, x : x + DIGIT]
                img[y : y + DIGIT, x : x + DIGIT] = np.maximum(area, patch)
                if kind == 1:  # half the digit under a patch of texture
                    img[y : y + DIGIT // 2, x : x + DIGIT] = texture[
                        y : y + DIGIT // 2, x : x + DIGIT
                    ]
                boxes.append((x, y))
            if kind == 2:
                img += rng.normal(0, 45, (SIZE, SIZE))
            if rng.random() < 0.33:  # a one-frame distractor: a digit's strokes, shuffled
                d = digits[rng.integers(len(digits))].flatten()
                fake = rng.permutation(d).reshape(DIGIT, DIGIT).astype(np.float32)
                y, x = (int(c) for c in rng.integers(0, SIZE - DIGIT, 2))
                area = img[y : y + DIGIT, x : x + DIGIT]
                img[y : y + DIGIT, x : x + DIGIT] = np.maximum(area, fake)
            name = f"v{v:03d}_{t:02d}"
            Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(folder / f"{name}.png")
            for x, y in boxes:
                rows.append({"image_id": name, "width": SIZE, "height": SIZE,
                             "bbox": f"[{x}, {y}, {DIGIT}, {DIGIT}]", "video": f"v{v:03d}",
                             "frame": t})  # fmt: skip
    table = pd.DataFrame(rows)
    table.to_csv(root / "data" / "train.csv", index=False)
    print(f"{videos} videos, {videos * frames} frames, {hard_frames} hard", flush=True)
    return table


def smoothing_figures(run: Path) -> dict:
    """`medalist smooth`'s table of a run (windows 1, 3, 5), as plain numbers."""
    from medalist.workflows.smooth import evaluate_smoothing

    result = evaluate_smoothing(run, [1, 3, 5])
    out = {}
    for r in result.filters.itertuples():
        out[f"{r.filter} {r.window}"] = {
            "cv_mean": round(float(r.mean), 4),
            "cv_std": round(float(r.std), 4),
            "mean_diff": round(float(r.mean_diff), 4),
            "p_value": None if np.isnan(r.p_value) else float(f"{r.p_value:.3g}"),
            "verdict": r.verdict,
            "folds": r.folds,
        }
    out["recommended_window"] = result.best
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=30)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--metric", default="fbeta_iou")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-stack", action="store_true", help="skip the 3-frame run")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "video_detect.json")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from medalist.analysis.compare import compare_runs
    from medalist.io import read_json
    from medalist.workflows.train import train

    start = time.time()
    root = Path(tempfile.mkdtemp(prefix="medalist-video-detect-bench-"))
    try:
        make_videos(root, args.videos, args.frames)
        (root / "configs").mkdir()
        cfg = root / "configs" / "video.yaml"
        cfg.write_text(
            CONFIG.format(
                metric=args.metric, folds=args.folds, epochs=args.epochs, threads=args.threads
            )
        )
        arms = {"1 frame": "null"} if args.no_stack else {"1 frame": "null", "3 frames": "[-1,0,1]"}
        runs, figures = {}, {}
        for name, offsets in arms.items():
            summary = train(cfg, [f"data.frame_offsets={offsets}"], name=name.replace(" ", "-"))
            runs[name] = summary.run.path
            scores = read_json(summary.run.path / "scores.json")
            figures[name] = {
                "cv_mean": round(float(scores["mean"]), 4),
                "cv_std": round(float(scores["std"]), 4),
                "oof": round(float(scores["oof"]), 4),
                "folds": [round(float(s), 4) for s in scores.get("folds", [])],
                "smoothing": smoothing_figures(summary.run.path),
            }
            print(name, json.dumps(figures[name]), flush=True)
        stacked = None
        if "3 frames" in runs:
            c = compare_runs(runs["1 frame"], runs["3 frames"])
            stacked = {
                "verdict": c.verdict,
                "mean_diff": round(c.mean_diff, 4),
                "p_value": float(f"{c.p_value:.3g}"),
            }
            print(f"3 frames vs 1 frame: {stacked}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result = {
        "bench": "video_detect",
        "settings": vars(args) | {"out": str(args.out), "backbone": "resnet18", "size": SIZE},
        "runs": figures,
        "three_frames_against_one": stacked,
        "seconds": round(time.time() - start),
        "machine": machine(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    one = figures["1 frame"]
    line = (
        f"CV {args.metric}, 1 frame: no boost {one['smoothing']['none 1']['cv_mean']:.3f}, boost 3 "
        f"{one['smoothing']['boost 3']['cv_mean']:.3f} ({one['smoothing']['boost 3']['verdict']}),"
        f" boost 5 {one['smoothing']['boost 5']['cv_mean']:.3f} "
        f"({one['smoothing']['boost 5']['verdict']})"
    )
    if stacked is not None:
        line += f"; 3 stacked frames {figures['3 frames']['cv_mean']:.3f} ({stacked['verdict']})"
    print(line)


if __name__ == "__main__":
    main()
