"""Segmentation: Dice per architecture at one budget, each post-processing step on against
off, and medalist's U-Net against a hand-written segmentation_models_pytorch loop.

The set: Fashion-MNIST items (the IDX files under /usr/share/datasets/fashion-mnist), shrunk to
16 px, pasted on 32x32 noisy canvases, none to three items each, and small bright speckles
scattered as distractors; the mask is the items' silhouettes (pixels above 40).

1. medalist trains `model.arch` = unet, fpn and linknet on timm's resnet10t (from scratch), the
   same config otherwise (3 folds, epochs, batch, lr; `medalist.workflows.train.train`, the
   code path of `medalist train`): the CV Dice at 0.5, at the fitted threshold and after the
   fitted post-processing.
2. Post-processing of the U-Net run: each step (threshold, min_area, min_total_area) with the
   gain it measured on the pooled OOF masks and `compare`'s verdict on the per-fold
   differences (scores.json), so a step that only fits noise is switched off.
3. A hand-written loop: smp.Unet on the same encoder (`tu-resnet10t`, no weights), AdamW at
   the same lr and weight decay with no schedule, BCE + Dice (smp's losses), no augmentation,
   the same epochs and batch on fold 0's split, Dice at 0.5 of fold 0's validation images
   after its last and its best epoch, against medalist's fold 0 (its best epoch).

Run: .venv/bin/python bench/segment.py  (a few minutes on two CPU cores)
Fold 0 is trained again with `--seeds` - 1 more seeds by both, for the seed noise, and by
medalist with the plain loop's recipe (no schedule, no warmup, no augmentation).

Last line: `unet X fpn Y linknet Z; medalist fold 0 A +- s vs plain loop B (best epoch C +- s)`.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402

FASHION = Path("/usr/share/datasets/fashion-mnist")
ARCHS = ("unet", "fpn", "linknet")

CONFIG = """\
competition:
  task: segment
  train_csv: data/train.csv
  test_csv: data/test.csv
  image_dir: data/train
  test_image_dir: data/test
  sample_submission: data/sample_submission.csv
  id_column: id
  target_column: rle
  metric: dice
cv:
  n_splits: {folds}
model:
  arch: {arch}
  backbone: {backbone}
data:
  image_size: {size}
  augment:
    - {{name: HorizontalFlip, p: 0.5}}
train:
  epochs: {epochs}
  batch_size: {batch}
  lr: {lr}
  threads: {threads}
track:
  backends: [none]
"""


def read_idx(path: Path) -> np.ndarray:
    """An IDX image file as (n, 28, 28) uint8."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[4:8], "big")
    return np.frombuffer(data, np.uint8, offset=16).reshape(n, 28, 28)


def make_canvases(n: int, size: int, item: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(images (n, size, size, 3), masks (n, size, size)): items (resized to `item` px) pasted
    at random places."""
    import cv2

    items = read_idx(FASHION / "train-images-idx3-ubyte.gz")[:5000]
    items = np.stack([cv2.resize(a, (item, item), interpolation=cv2.INTER_AREA) for a in items])
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 60, (n, size, size, 3)).astype(np.uint8)
    masks = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        for _ in range(int(rng.choice([0, 1, 1, 2, 3]))):
            picture = items[rng.integers(len(items))]
            y0, x0 = rng.integers(0, size - item, 2)
            on = picture > 40
            patch = images[i, y0 : y0 + item, x0 : x0 + item]
            patch[on] = np.clip(picture[on, None].astype(int) + rng.integers(-20, 20, 3), 0, 255)
            masks[i, y0 : y0 + item, x0 : x0 + item] |= on
        for _ in range(int(rng.integers(0, 4))):  # distractor speckles, not in the mask
            y0, x0 = rng.integers(0, size - 3, 2)
            images[i, y0 : y0 + 2, x0 : x0 + 2] = rng.integers(150, 255)
    return images, masks


def make_photo_crops(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(images (n, size, size, 3), masks (n, size, size)): random crops of scikit-learn's two
    sample photos (china.jpg, flower.jpg) at a random zoom (1 to 3 times `size` resized down),
    mirrored or not; the mask is the red parts (red above green by 30 levels: the petals, the
    temple's roof and pillars), opened to drop single pixels. Real photos with a fixed rule."""
    import cv2
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images
    rng = np.random.default_rng(seed)
    images = np.zeros((n, size, size, 3), np.uint8)
    masks = np.zeros((n, size, size), np.uint8)
    kernel = np.ones((3, 3), np.uint8)
    for i in range(n):
        photo = photos[i % 2]
        side = int(size * rng.uniform(1.0, 3.0))
        y0 = rng.integers(0, photo.shape[0] - side)
        x0 = rng.integers(0, photo.shape[1] - side)
        crop = photo[y0 : y0 + side, x0 : x0 + side]
        crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
        red = crop[..., 0].astype(int) - crop[..., 1].astype(int) > 30
        masks[i] = cv2.morphologyEx(red.astype(np.uint8), cv2.MORPH_OPEN, kernel)
        images[i] = crop
    return images, masks


def write_competition(
    root: Path, n_train: int, n_test: int, size: int, item: int, data: str = "fashion"
) -> np.ndarray:
    """The competition in Kaggle's layout; returns the training masks."""
    import pandas as pd
    from PIL import Image

    from medalist.data.rle import rle_encode

    if data == "photos":
        images, masks = make_photo_crops(n_train + n_test, size, seed=0)
    else:
        images, masks = make_canvases(n_train + n_test, size, item, seed=0)
    data = root / "data"
    for sub in ("train", "test"):
        (data / sub).mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n_train):
        Image.fromarray(images[i]).save(data / "train" / f"c{i:04d}.png")
        rows.append({"id": f"c{i:04d}", "rle": rle_encode(masks[i])})
    pd.DataFrame(rows).to_csv(data / "train.csv", index=False)
    test = [f"t{j:04d}" for j in range(n_test)]
    for j, name in enumerate(test):
        Image.fromarray(images[n_train + j]).save(data / "test" / f"{name}.png")
    pd.DataFrame({"id": test}).to_csv(data / "test.csv", index=False)
    pd.DataFrame({"id": test, "rle": ""}).to_csv(data / "sample_submission.csv", index=False)
    return masks[:n_train]


def dice_at_half(y: np.ndarray, p: np.ndarray) -> float:
    from medalist.tasks.segment_metrics import mean_dice

    return mean_dice(y, p)


def plain_loop(
    root: Path, train_idx: np.ndarray, valid_idx: np.ndarray, args: Any, seed: int = 0
) -> dict:
    """smp.Unet on tu-<backbone>, trained as a user writes it."""
    import segmentation_models_pytorch as smp
    import torch
    from PIL import Image

    torch.manual_seed(seed)
    names = sorted((root / "data" / "train").glob("*.png"))
    x_all = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in names])
    y_all = args.masks
    mean = np.array([0.485, 0.456, 0.406]) * 255
    std = np.array([0.229, 0.224, 0.225]) * 255

    def tensor(idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x = (x_all[idx] - mean) / std
        x = torch.tensor(x, dtype=torch.float32).permute(0, 3, 1, 2)
        return x, torch.tensor(y_all[idx], dtype=torch.float32)[:, None]

    model = smp.Unet(f"tu-{args.backbone}", encoder_weights=None, in_channels=3, classes=1)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    dice_loss = smp.losses.DiceLoss("binary")
    bce = torch.nn.BCEWithLogitsLoss()
    xv, _ = tensor(valid_idx)
    per_epoch = []
    rng = np.random.default_rng(seed)
    start = time.process_time()
    for _ in range(args.epochs):
        model.train()
        order = rng.permutation(train_idx)
        for b in range(0, len(order), args.batch):
            x, y = tensor(order[b : b + args.batch])
            out = model(x)
            loss = bce(out, y) + dice_loss(out, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            p = torch.cat([model(xv[i : i + 64]).sigmoid() for i in range(0, len(xv), 64)])
        per_epoch.append(dice_at_half(y_all[valid_idx], p[:, 0].numpy()))
    return {
        "last": per_epoch[-1],
        "best": max(per_epoch),
        "per_epoch": per_epoch,
        "cpu_s": time.process_time() - start,
    }


def new_baseline_fold0(work: Path, args: Any, extra: list[str] | None = None) -> list[float]:
    """Fold 0's best-epoch Dice, per seed, of the config `medalist new` writes for the bench's
    data (train.epochs, batch, encoder, size and the folds set to the bench's)."""
    from medalist.config import load_config
    from medalist.engine.fold_loop import read_fold_result
    from medalist.workflows.scaffold.create import create_project
    from medalist.workflows.train import train

    project = work / "new-project"
    if not project.exists():
        create_project(project, work / "data")
    bench_cv = load_config(work / "configs" / "unet.yaml").cv
    config = project / "configs" / "baseline.yaml"
    written = config.read_text()
    if extra is None:
        print("medalist new wrote:\n" + written, flush=True)
    shared = [
        f"model.backbone={args.backbone}",
        f"data.image_size={args.size}",
        f"train.epochs={args.epochs}",
        f"train.batch_size={args.batch}",
        f"train.threads={args.threads}",
        "data.num_workers=0",
        "track.backends=[none]",
        f"cv.scheme={bench_cv.scheme}",
        f"cv.n_splits={bench_cv.n_splits}",
        f"cv.seed={bench_cv.seed}",
    ]
    scores = []
    for seed in range(args.seeds):
        tag = "new-variant" if extra else "new"
        run = train(
            config, [*shared, *(extra or []), f"train.seed={seed}"], name=f"{tag}-s{seed}",
            folds="0",
        )  # fmt: skip
        scores.append(read_fold_result(run.run.path, 0).score)
    args.new_config = written
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=240)
    parser.add_argument("--test", type=int, default=20)
    parser.add_argument("--size", type=int, default=32, help="canvas side")
    parser.add_argument("--item", type=int, default=16, help="item side on the canvas")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--backbone", default="resnet10t")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=3, help="fold 0 seeds of both loops")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument(
        "--new-variant", action="append", default=[], metavar="KEY=VALUE",
        help="train the baseline medalist new writes again with this override (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--data", choices=("fashion", "photos"), default="fashion",
        help="fashion: items pasted on noise; photos: crops of scikit-learn's sample photos",
    )  # fmt: skip
    args = parser.parse_args()

    import pandas as pd
    import torch

    torch.set_num_threads(args.threads)
    from medalist.workflows.train import train

    work = Path(tempfile.mkdtemp(prefix="medalist-segment-bench-"))
    began = time.perf_counter()
    try:
        args.masks = write_competition(work, args.train, args.test, args.size, args.item, args.data)
        runs: dict[str, dict[str, Any]] = {}
        for arch in ARCHS:
            config = work / "configs" / f"{arch}.yaml"
            config.parent.mkdir(exist_ok=True)
            config.write_text(
                CONFIG.format(
                    folds=args.folds,
                    arch=arch,
                    backbone=args.backbone,
                    size=args.size,
                    epochs=args.epochs,
                    batch=args.batch,
                    lr=args.lr,
                    threads=args.threads,
                )  # fmt: skip
            )
            t0 = time.process_time()
            summary = train(config, name=arch)
            s = summary.scores
            runs[arch] = {
                "cv_dice": round(s["mean"], 4),
                "cv_std": round(s["std"], 4),
                "folds": [round(v, 4) for v in s["folds"]],
                "oof_at_0.5": round(s["oof"], 4),
                "threshold": s.get("threshold"),
                "oof_at_threshold": round(s["oof_at_threshold"], 4),
                "oof_postprocessed": round(s.get("oof_postprocessed", s["oof_at_threshold"]), 4),
                "postprocess": s.get("postprocess"),
                "cpu_s": round(time.process_time() - t0, 1),
                "run": str(summary.run.path),
            }
            print(
                f"{arch:8s} CV dice {s['mean']:.4f} +- {s['std']:.4f}; OOF at 0.5 {s['oof']:.4f}, "
                f"at threshold {s.get('threshold')} {s['oof_at_threshold']:.4f}, "
                f"post-processed {runs[arch]['oof_postprocessed']:.4f}",
                flush=True,
            )
        unet = runs["unet"]
        for name, step in (unet["postprocess"] or {}).items():
            print(
                f"unet post-processing ({name}): min_area {step['min_area']} "
                f"({step['min_area_verdict']}, {step['min_area_gain']:+.4f}), min_total_area "
                f"{step['min_total_area']} ({step['min_total_area_verdict']}, "
                f"{step['min_total_area_gain']:+.4f}); before {step['before']:.4f} after "
                f"{step['after']:.4f}"
            )
        folds = pd.read_csv(Path(unet["run"]) / "folds.csv")
        ids = sorted(p.stem for p in (work / "data" / "train").glob("*.png"))
        fold_of = folds.set_index("id").loc[ids, "fold"].to_numpy()
        valid_idx, train_idx = np.flatnonzero(fold_of == 0), np.flatnonzero(fold_of != 0)
        plain = plain_loop(work, train_idx, valid_idx, args)
        medalist_fold0 = unet["folds"][0]
        # Seed noise on fold 0: both trained again with other seeds (the folds fixed).
        seeds = {"medalist": [medalist_fold0], "plain_best": [plain["best"]]}
        seeds["plain_last"] = [plain["last"]]
        # medalist with the plain loop's recipe: what the pipeline itself gives.
        recipe = ["train.scheduler=none", "train.warmup_epochs=0", "data.augment=[]"]
        seeds["medalist_plain_recipe"] = []
        for seed in range(args.seeds):
            again = train(
                work / "configs" / "unet.yaml", [f"train.seed={seed}", *recipe],
                name=f"unet-recipe-seed{seed}", folds="0",
            )  # fmt: skip
            seeds["medalist_plain_recipe"].append(
                json.loads((again.run.fold_dir(0) / "result.json").read_text())["score"]
            )
        for seed in range(1, args.seeds):
            again = train(
                work / "configs" / "unet.yaml", [f"train.seed={seed}"], name=f"unet-seed{seed}",
                folds="0",
            )  # fmt: skip
            seeds["medalist"].append(
                json.loads((again.run.fold_dir(0) / "result.json").read_text())["score"]
            )
            other = plain_loop(work, train_idx, valid_idx, args, seed=seed)
            seeds["plain_best"].append(other["best"])
            seeds["plain_last"].append(other["last"])
        # The baseline `medalist new` writes for this data (its recipe and augmentation), with
        # only the shared encoder, size, epochs, batch and the bench's folds set: what a user
        # gets from `medalist new` + `medalist train`, against the loop they would write.
        seeds["medalist_new"] = new_baseline_fold0(work, args)
        if args.new_variant:
            seeds["medalist_new_variant"] = new_baseline_fold0(work, args, args.new_variant)
        noise = {
            k: {"runs": v, "mean": float(np.mean(v)), "std": float(np.std(v))}
            for k, v in seeds.items()
        }
        diffs = np.array(seeds["medalist_new"]) - np.array(seeds["plain_best"])
        noise["medalist_new_minus_plain_best"] = {
            "runs": diffs.tolist(), "mean": float(diffs.mean()), "std": float(diffs.std()),
        }  # fmt: skip
        print(
            f"fold 0 over {args.seeds} seeds: "
            + "; ".join(f"{k} {n['mean']:.4f} +- {n['std']:.4f}" for k, n in noise.items())
        )
        print(
            f"fold 0: medalist unet {medalist_fold0:.4f} against the plain smp loop "
            f"{plain['last']:.4f} (last epoch), {plain['best']:.4f} (best epoch)"
        )
        result = {
            "settings": {k: v for k, v in vars(args).items() if k not in ("masks", "new_config")},
            "new_config": getattr(args, "new_config", None),
            "archs": runs,
            "plain_loop": plain,
            "medalist_fold0": medalist_fold0,
            "fold0_seeds": noise,
            "seconds": round(time.perf_counter() - began, 1),
            "machine": _common.machine(),
        }
        out = _common.RESULTS_DIR / (
            "segment.json" if args.data == "fashion" else "segment_photos.json"
        )
        out.write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(
            " ".join(f"{a} {runs[a]['cv_dice']:.4f}" for a in ARCHS)
            + f"; medalist fold 0 {noise['medalist']['mean']:.4f} +- "
            f"{noise['medalist']['std']:.4f} vs plain loop {noise['plain_last']['mean']:.4f} "
            f"(best epoch {noise['plain_best']['mean']:.4f} +- {noise['plain_best']['std']:.4f})"
            f"; the baseline medalist new writes {noise['medalist_new']['mean']:.4f} +- "
            f"{noise['medalist_new']['std']:.4f} over {args.seeds} seeds"
        )
    finally:
        if args.keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
