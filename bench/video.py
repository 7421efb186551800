"""Does a 2.5D input (neighbouring video frames stacked as channels) beat one frame when the
label needs motion to read? And what does stacking cost the loader?

Not a speed bench first: a quality figure for `data.frame_offsets`. The data set is made from
scikit-learn's handwritten digits (real scans, 8x8, scaled to 12x12): each video is `--frames`
frames of 32x32 in which one digit drifts 1-2 px per frame in one of four directions over a
noisy textured background, while a second digit wanders at random as a distractor (the two may
overlap). Each frame's label is the direction of the first digit's motion (left, right, up,
down): one frame can't tell it (chance is 0.25), its neighbours can.

Three runs through medalist's own train workflow, the same backbone, size, epochs and folds
(grouped by video, so a video's frames never straddle the split), `--seeds` seeds each: one
frame, `frame_offsets: [-1, 0, 1]` and `[-2, -1, 0, 1, 2]` (grey frames, so 1, 3 and 5 input
channels). Each stacked run is judged against the single frame with `medalist compare`'s rule.
Then the loader: images per second of the training dataset (augmentation on, images cached,
`num_workers` 0) with 5 stacked frames against 1.

    .venv/bin/python bench/video.py [--videos 48] [--frames 8] [--epochs 5] [--seeds 2]
                                    [--out bench/results/video.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, machine  # noqa: E402

SIZE = 32
DIRECTIONS = {"left": (0, -1), "right": (0, 1), "up": (-1, 0), "down": (1, 0)}
CONFIG = """\
competition:
  train_csv: data/train.csv
  test_csv: null
  image_dir: data/train
  test_image_dir: null
  sample_submission: null
  id_column: id
  target_column: label
  group_column: video
  sequence_column: video
  frame_column: frame
  metric: accuracy
cv:
  scheme: stratified_group
  n_splits: 3
  seed: 42
model:
  backbone: resnet10t
  pretrained: false
data:
  image_size: 32
  num_workers: 0
  frames_grey: true
  mean: [0.5]
  std: [0.25]
  augment:
    - {name: Affine, translate_percent: [-0.05, 0.05], p: 0.5}
    - {name: RandomBrightnessContrast, p: 0.5}
train:
  epochs: 5
  batch_size: 32
  lr: 3.0e-3
  scheduler: onecycle
  weight_decay: 0.05
  threads: 2
track:
  backends: [none]
"""


def digit_images() -> np.ndarray:
    """scikit-learn's digits as 12x12 uint8 pictures."""
    import cv2
    from sklearn.datasets import load_digits

    digits = load_digits().images  # (1797, 8, 8), 0-16
    return np.stack(
        [cv2.resize((d * 15.9).astype(np.uint8), (12, 12), interpolation=cv2.INTER_LINEAR)
         for d in digits]
    )  # fmt: skip


def make_videos(root: Path, videos: int, frames: int, seed: int = 0) -> pd.DataFrame:
    """The videos' frames as PNG files under root/data/train and their table."""
    rng = np.random.default_rng(seed)
    digits = digit_images()
    folder = root / "data" / "train"
    folder.mkdir(parents=True, exist_ok=True)
    names = list(DIRECTIONS)
    rows = []
    for v in range(videos):
        label = names[v % len(names)]
        dy, dx = DIRECTIONS[label]
        speed = int(rng.integers(1, 3))
        item, other = digits[rng.integers(len(digits), size=2)]
        span = min((frames - 1) * speed, SIZE - 12)
        speed = span // max(frames - 1, 1)

        def start(d: int, span: int = span) -> int:  # the whole path inside the frame
            return int(rng.integers(span if d < 0 else 0, SIZE - 12 - (span if d > 0 else 0) + 1))

        y, x = start(dy), start(dx)
        oy, ox = rng.integers(0, SIZE - 12, size=2)
        texture = rng.integers(0, 70, (SIZE, SIZE)).astype(np.float32)
        for t in range(frames):
            img = texture + rng.normal(0, 12, (SIZE, SIZE))
            oy = int(np.clip(oy + rng.integers(-2, 3), 0, SIZE - 12))
            ox = int(np.clip(ox + rng.integers(-2, 3), 0, SIZE - 12))
            img[oy : oy + 12, ox : ox + 12] = np.maximum(img[oy : oy + 12, ox : ox + 12], other)
            py, px = y + dy * speed * t, x + dx * speed * t
            img[py : py + 12, px : px + 12] = np.maximum(img[py : py + 12, px : px + 12], item)
            name = f"v{v:03d}_{t:02d}"
            Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(folder / f"{name}.png")
            rows.append({"id": name, "video": f"v{v:03d}", "frame": t, "label": label})
    table = pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    table.to_csv(root / "data" / "train.csv", index=False)
    return table


def loader_rate(cfg_path: Path, offsets: str, repeats: int = 3) -> float:
    """Images per second of the training dataset (augmented, cached) over whole passes."""
    import torch

    from medalist.config import load_config
    from medalist.data.dataset import ImageDataset, create_transform
    from medalist.data.tables import load_tables
    from medalist.workflows.train import image_source

    cfg = load_config(cfg_path, [f"data.frame_offsets={offsets}"])
    tables = load_tables(cfg)
    ids = tables.train[cfg.competition.id_column]
    images = image_source(cfg, tables.train_paths, ids, tables.train)
    ds = ImageDataset(images, np.arange(len(images)), None, create_transform(cfg.data.augment,
                      train=True))  # fmt: skip
    loader = torch.utils.data.DataLoader(ds, batch_size=64, num_workers=0)
    for _ in loader:  # warm the page cache and the memory map
        pass
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        n = sum(len(x) for x, _ in loader)
        rates.append(n / (time.perf_counter() - start))
    return float(np.median(rates))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=48)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "video.json")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(2)
    from medalist.analysis.compare import compare_runs
    from medalist.io import read_json
    from medalist.workflows.train import train

    start = time.time()
    root = Path(tempfile.mkdtemp(prefix="medalist-video-bench-"))
    make_videos(root, args.videos, args.frames)
    (root / "configs").mkdir()
    cfg = root / "configs" / "video.yaml"
    cfg.write_text(CONFIG)
    arms = {"1 frame": "null", "3 frames": "[-1,0,1]", "5 frames": "[-2,-1,0,1,2]"}
    runs, figures = {}, {}
    for name, offsets in arms.items():
        summary = train(
            cfg,
            [f"data.frame_offsets={offsets}", f"train.epochs={args.epochs}",
             f"train.seeds={args.seeds}"],
            name=name.replace(" ", "-"),
        )  # fmt: skip
        runs[name] = summary.run.path
        scores = read_json(summary.run.path / "scores.json")
        figures[name] = {
            "cv_mean": round(float(scores["mean"]), 4),  # folds' scores averaged over seeds
            "cv_std": round(float(scores["std"]), 4),
            "seed_scores": [round(float(s), 4) for s in scores.get("seed_scores", [])],
            "oof": round(float(scores["oof"]), 4),
            "seed_std": None if scores.get("seed_std") is None else round(scores["seed_std"], 4),
            "folds": [round(float(s), 4) for s in scores.get("folds", [])],
        }
        print(name, figures[name], flush=True)
    verdicts = {}
    for name in ("3 frames", "5 frames"):
        c = compare_runs(runs["1 frame"], runs[name])
        verdicts[name] = {
            "verdict": c.verdict,
            "mean_diff": round(c.mean_diff, 4),
            "p_value": float(f"{c.p_value:.3g}"),
        }
        print(f"{name} vs 1 frame: {verdicts[name]}", flush=True)
    rate_1 = loader_rate(cfg, "null")
    rate_5 = loader_rate(cfg, "[-2,-1,0,1,2]")
    result = {
        "bench": "video",
        "settings": vars(args) | {"out": str(args.out), "backbone": "resnet10t", "size": SIZE},
        "runs": figures,
        "against_one_frame": verdicts,
        "loader_images_per_s": {"1 frame": round(rate_1), "5 frames": round(rate_5)},
        "seconds": round(time.time() - start),
        "machine": machine(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"CV accuracy: 1 frame {figures['1 frame']['cv_mean']:.3f}, 3 frames "
        f"{figures['3 frames']['cv_mean']:.3f} ({verdicts['3 frames']['verdict']}), 5 frames "
        f"{figures['5 frames']['cv_mean']:.3f} ({verdicts['5 frames']['verdict']}); loader "
        f"{rate_5:.0f} images/s with 5 frames against {rate_1:.0f} with 1"
    )


if __name__ == "__main__":
    main()
