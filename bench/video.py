"""Do 2.5D inputs (neighbouring video frames stacked as channels) beat one frame when a frame's
label or mask needs its neighbours to read? Does smoothing over frames add to that? And what
does stacking cost the loader?

Not a speed bench first: quality figures for `data.frame_offsets` and `medalist smooth`. The
videos are made from real object scans: each is `--frames` grey frames of 32x32 in which one of
scikit-learn's handwritten digits (8x8 scans, scaled to 12x12) drifts 1-2 px per frame in one of
four directions over a noisy texture, while a Fashion-MNIST item (12x12) wanders at random in
front of it as a distractor, hiding the digit where they overlap; in about a quarter of the
frames (at random) the digit is faded to 30% of its contrast, close to the texture's. Two
settings on the same videos:

- `classify`: each frame's label is the direction of the digit's motion (left, right, up,
  down): one frame can't tell it (chance 0.25), its neighbours can.
- `segment`: each frame's mask is the digit's whole silhouette (a PNG per frame under
  data/masks, `competition.mask_dir`), also where it is faded or hidden by the item: one frame
  shows it dimly or not at all there, its neighbours show where it was and where it goes.

Per setting, three runs through medalist's own train workflow (the code path of `medalist
train`), the same backbone, size, epochs and folds (grouped by video, so a video's frames never
straddle the split), `--seeds` seeds each: one frame, `frame_offsets: [-1, 0, 1]` and
`[-2, -1, 0, 1, 2]` (1, 3 and 5 input channels). Each stacked run is judged against the single
frame with `medalist compare`'s rule. Then each run's post-processing on against off: `medalist
smooth`'s workflow (mean, Gaussian and median filters over windows of 3 to 15 frames within
each video, each judged against no smoothing with the same rule; for the segment runs each
pixel's probability is filtered before the 0.5 threshold). The smoothing is scored on the
run's out-of-fold predictions with its seeds averaged, so its "none" is that average's CV, not
the per-seed mean of the training arms. Last (`loader`), images per second of the training
dataset (augmentation on, images cached, `num_workers` 0) with 5 stacked frames against 1.

    .venv/bin/python bench/video.py [--settings classify,segment,loader] [--videos 48]
                                    [--frames 8] [--epochs 5] [--seeds 2] [--threads 1]
                                    [--out bench/results/video.json]

`--settings` picks what to run (all three by default); a setting not rerun keeps its last
figures in the results file.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS_DIR, machine  # noqa: E402

SIZE = 32
ITEM = 12  # the digit's and the distractor's side in pixels
FADED = 0.3  # a faded frame's digit contrast
HIDDEN = 0.25  # a frame whose item hides this share of the digit's mask or more is "hard"
FASHION = Path("/usr/share/datasets/fashion-mnist")
DIRECTIONS = {"left": (0, -1), "right": (0, 1), "up": (-1, 0), "down": (1, 0)}
ARMS = {"1 frame": "null", "3 frames": "[-1,0,1]", "5 frames": "[-2,-1,0,1,2]"}
SETTINGS = ("classify", "segment", "loader")
WINDOWS = (1, 3, 5, 9, 15)  # medalist smooth's defaults

COMMON = """\
  train_csv: data/train.csv
  test_csv: null
  image_dir: data/train
  test_image_dir: null
  sample_submission: null
  id_column: id
  group_column: video
  sequence_column: video
  frame_column: frame
"""
DATA = """\
model:
  backbone: resnet10t
  pretrained: false
data:
  image_size: 32
  num_workers: 0
  frames_grey: true
  mean: [0.5]
  std: [0.25]
"""
CONFIGS = {
    "classify": "competition:\n"
    + COMMON
    + """\
  target_column: label
  metric: accuracy
cv:
  scheme: stratified_group
  n_splits: 3
  seed: 42
"""
    + DATA
    + """\
  augment:
    - {name: Affine, translate_percent: [-0.05, 0.05], p: 0.5}
    - {name: RandomBrightnessContrast, p: 0.5}
train:
  batch_size: 32
  lr: 3.0e-3
  scheduler: onecycle
  weight_decay: 0.05
track:
  backends: [none]
""",
    "segment": "competition:\n  task: segment\n"
    + COMMON
    + """\
  mask_dir: data/masks
  metric: dice
cv:
  scheme: group
  n_splits: 3
  seed: 42
"""
    + DATA
    + """\
  augment:
    - {name: HorizontalFlip, p: 0.5}
    - {name: RandomBrightnessContrast, p: 0.5}
train:
  batch_size: 16
  lr: 3.0e-3
track:
  backends: [none]
""",
}


def digit_images() -> np.ndarray:
    """scikit-learn's digits as 12x12 uint8 pictures."""
    import cv2
    from sklearn.datasets import load_digits

    digits = load_digits().images  # (1797, 8, 8), 0-16
    return np.stack(
        [cv2.resize((d * 15.9).astype(np.uint8), (ITEM, ITEM), interpolation=cv2.INTER_LINEAR)
         for d in digits]
    )  # fmt: skip


def fashion_items(n: int = 2000) -> np.ndarray:
    """The first `n` Fashion-MNIST training items as 12x12 uint8 pictures."""
    import cv2

    with gzip.open(FASHION / "train-images-idx3-ubyte.gz", "rb") as f:
        data = f.read()
    items = np.frombuffer(data, np.uint8, offset=16).reshape(-1, 28, 28)[:n]
    return np.stack([cv2.resize(a, (ITEM, ITEM), interpolation=cv2.INTER_AREA) for a in items])


def make_videos(root: Path, videos: int, frames: int, seed: int = 0) -> pd.DataFrame:
    """The videos' frames as PNG files under root/data/train, the digit's masks under
    root/data/masks, and their table (root/data/train.csv)."""
    rng = np.random.default_rng(seed)
    digits, items = digit_images(), fashion_items()
    folder, masks = root / "data" / "train", root / "data" / "masks"
    folder.mkdir(parents=True, exist_ok=True)
    masks.mkdir(parents=True, exist_ok=True)
    names = list(DIRECTIONS)
    rows = []
    for v in range(videos):
        label = names[v % len(names)]
        dy, dx = DIRECTIONS[label]
        speed = int(rng.integers(1, 3))
        digit = digits[rng.integers(len(digits))].astype(np.float32)
        other = items[rng.integers(len(items))]
        span = min((frames - 1) * speed, SIZE - ITEM)
        speed = span // max(frames - 1, 1)

        def start(d: int, span: int = span) -> int:  # the whole path inside the frame
            return int(rng.integers(span if d < 0 else 0, SIZE - ITEM - (span if d > 0 else 0) + 1))

        y, x = start(dy), start(dx)
        oy, ox = rng.integers(0, SIZE - ITEM, size=2)
        texture = rng.integers(0, 70, (SIZE, SIZE)).astype(np.float32)
        faded = rng.random(frames) < 0.25
        for t in range(frames):
            img = texture + rng.normal(0, 12, (SIZE, SIZE))
            py, px = y + dy * speed * t, x + dx * speed * t
            patch = img[py : py + ITEM, px : px + ITEM]
            np.maximum(patch, digit * (FADED if faded[t] else 1.0), out=patch)
            mask = np.zeros((SIZE, SIZE), bool)
            mask[py : py + ITEM, px : px + ITEM] = digit > 64
            oy = int(np.clip(oy + rng.integers(-2, 3), 0, SIZE - ITEM))
            ox = int(np.clip(ox + rng.integers(-2, 3), 0, SIZE - ITEM))
            front = np.zeros((SIZE, SIZE), np.float32)
            front[oy : oy + ITEM, ox : ox + ITEM] = other
            on = front > 40  # the item is in front: it hides the digit where they overlap
            img[on] = front[on]
            hidden = float((mask & on).sum() / max(mask.sum(), 1))
            name = f"v{v:03d}_{t:02d}"
            Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(folder / f"{name}.png")
            Image.fromarray(mask.astype(np.uint8) * 255).save(masks / f"{name}.png")
            rows.append(
                {"id": name, "video": f"v{v:03d}", "frame": t, "label": label,
                 "hard": bool(faded[t] or hidden >= HIDDEN)}
            )  # fmt: skip
    table = pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    table.to_csv(root / "data" / "train.csv", index=False)
    return table


def loader(cfg_path: Path, offsets: str) -> Any:
    """The training dataset's loader (augmented, cached, `num_workers` 0), warmed once."""
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
    batches = torch.utils.data.DataLoader(ds, batch_size=64, num_workers=0)
    for _ in batches:  # warm the page cache and the memory map
        pass
    return batches


def loader_rates(cfg_path: Path, repeats: int = 20) -> dict[str, Any]:
    """Images (training samples) per second over whole passes, one frame and 5 stacked frames
    in turn (which goes first alternates), so a change in the machine's load hits both alike:
    the median of each and of the per-pair ratio."""
    loaders = {n: loader(cfg_path, ARMS[n]) for n in ("1 frame", "5 frames")}
    rates: dict[str, list[float]] = {n: [] for n in loaders}
    for r in range(repeats):
        for n in list(loaders)[:: 1 if r % 2 == 0 else -1]:
            batches = loaders[n]
            start = time.perf_counter()
            images = sum(len(x) for x, _ in batches)
            rates[n].append(images / (time.perf_counter() - start))
    ratios = np.array(rates["5 frames"]) / np.array(rates["1 frame"])
    return {
        **{n: round(float(np.median(r))) for n, r in rates.items()},
        "ratio_5_to_1": round(float(np.median(ratios)), 3),
        "ratio_range": [round(float(ratios.min()), 3), round(float(ratios.max()), 3)],
    }


def hard_and_clear(run_path: Path, table: pd.DataFrame) -> dict[str, Any]:
    """The run's metric (its own task's, on the out-of-fold predictions with seeds averaged)
    on the hard frames (digit faded, or a quarter of it or more hidden) and on the others."""
    from medalist.runs import layout
    from medalist.runs.rundir import open_run_dir
    from medalist.tasks import load_run_task

    run = open_run_dir(run_path)
    cfg = run.config()
    task = load_run_task(run, cfg)
    oof = pd.read_csv(run.file(layout.OOF))
    y, preds = task.preds_from_oof(oof, run.seed_fold_dirs(cfg.cv.n_splits, cfg.train.seeds))
    hard = oof["id"].astype(str).map(table.set_index("id")["hard"]).to_numpy(dtype=bool)
    return {
        "hard_frames": int(hard.sum()),
        "hard": round(float(task.score(y[hard], preds[hard])), 4),
        "clear": round(float(task.score(y[~hard], preds[~hard])), 4),
    }


def smoothing_figures(run_path: Path) -> dict[str, Any]:
    """`medalist smooth`'s judgement of the run: no smoothing, the recommended filter and
    window (None when none beats the noise), and the best-scoring one whatever its verdict."""
    from medalist.workflows.smooth import evaluate_smoothing

    result = evaluate_smoothing(run_path, WINDOWS)
    every = result.filters

    def row(r: pd.Series) -> dict[str, Any]:
        return {
            "filter": str(r["filter"]),
            "window": int(r["window"]),
            "cv": round(float(r["mean"]), 4),
            "cv_std": round(float(r["std"]), 4),
            "vs_none": round(float(r["mean_diff"]), 4),
            "p_value": None if pd.isna(r["p_value"]) else float(f"{r['p_value']:.3g}"),
            "verdict": str(r["verdict"]),
        }

    smoothed = every[every["window"] > 1]
    chosen = None
    if result.best > 1:
        pick = (smoothed["filter"] == result.best_filter) & (smoothed["window"] == result.best)
        chosen = row(smoothed[pick].iloc[0])
    return {
        "none": row(every[every["window"] == 1].iloc[0]),
        "recommended": chosen,
        "top": row(smoothed.loc[smoothed["mean_diff"].idxmax()]),
    }


def run_setting(
    setting: str, root: Path, table: pd.DataFrame, args: argparse.Namespace
) -> dict[str, Any]:
    """The three arms of one setting, each against one frame, each with its smoothing."""
    from medalist.analysis.compare import compare_runs
    from medalist.io import read_json
    from medalist.workflows.train import train

    start = time.time()
    cfg = root / "configs" / f"{setting}.yaml"
    cfg.write_text(CONFIGS[setting])
    runs, figures = {}, {}
    for name, offsets in ARMS.items():
        summary = train(
            cfg,
            [f"data.frame_offsets={offsets}", f"train.epochs={args.epochs}",
             f"train.seeds={args.seeds}", f"train.threads={args.threads}"],
            name=f"{setting}-{name.replace(' ', '-')}",
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
            "by_frame": hard_and_clear(summary.run.path, table),
            "smoothing": smoothing_figures(summary.run.path),
        }
        print(setting, name, figures[name], flush=True)
    verdicts = {}
    for name in ("3 frames", "5 frames"):
        c = compare_runs(runs["1 frame"], runs[name])
        verdicts[name] = {
            "verdict": c.verdict,
            "mean_diff": round(c.mean_diff, 4),
            "p_value": float(f"{c.p_value:.3g}"),
        }
        print(f"{setting}: {name} vs 1 frame: {verdicts[name]}", flush=True)
    return {
        "metric": "accuracy" if setting == "classify" else "dice",
        "runs": figures,
        "against_one_frame": verdicts,
        "seconds": round(time.time() - start),
    }


def summary_line(setting: str, result: dict[str, Any]) -> str:
    runs, vs = result["runs"], result["against_one_frame"]
    arms = [f"1 frame {runs['1 frame']['cv_mean']:.3f}"] + [
        f"{n} {runs[n]['cv_mean']:.3f} ({vs[n]['verdict']})" for n in ("3 frames", "5 frames")
    ]
    smooth = []
    for name, r in runs.items():
        s = r["smoothing"]["recommended"]
        smooth.append(f"{name}: " + ("none" if s is None else f"{s['filter']} {s['window']}"))
    return f"{setting} CV {result['metric']}: {', '.join(arms)}; smoothing {', '.join(smooth)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--settings", default=",".join(SETTINGS), help="any of classify,segment,loader"
    )
    parser.add_argument("--videos", type=int, default=48)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "video.json")
    args = parser.parse_args()
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown or not settings:
        parser.error(
            f"--settings: {unknown[0] if unknown else '(empty)'}: use {', '.join(SETTINGS)}"
        )

    import torch

    torch.set_num_threads(args.threads)
    start = time.time()
    root = Path(tempfile.mkdtemp(prefix="medalist-video-bench-"))
    try:
        table = make_videos(root, args.videos, args.frames)
        (root / "configs").mkdir()
        results = {s: run_setting(s, root, table, args) for s in settings if s != "loader"}
        if "loader" in settings:
            cfg = root / "configs" / "classify.yaml"
            cfg.write_text(CONFIGS["classify"])
            rates = loader_rates(cfg)
            rates["load_average_1m"] = machine().get("load_average_1m")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
    kept = previous.get("by_setting", {})
    if "loader" not in settings:  # not rerun: its last figures stay
        rates = previous.get("loader_images_per_s")
    result = {
        "bench": "video",
        "settings": vars(args) | {"out": args.out.name, "backbone": "resnet10t", "size": SIZE},
        "by_setting": kept | results,  # a setting not rerun keeps its last figures
        "loader_images_per_s": rates,
        "seconds": round(time.time() - start),
        "machine": machine(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for s, figures in results.items():
        print(summary_line(s, figures))
    if "loader" in settings:
        print(
            f"loader {rates['5 frames']} images/s with 5 frames against {rates['1 frame']} with 1"
            f" ({rates['ratio_5_to_1']}x, pairs {rates['ratio_range'][0]}-"
            f"{rates['ratio_range'][1]}x)"
        )


if __name__ == "__main__":
    main()
