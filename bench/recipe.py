"""Does the baseline `medalist new` writes beat the training loop a person writes by hand?

On real data sets, with the same backbone, image size, epochs and validation fold
(fold 0 of the project's 5 folds, or with `--folds 5` every fold: the CV of all the
out-of-fold rows), from scratch:

- fashion: Fashion-MNIST (28x28 greyscale; `apt-get install dataset-fashion-mnist`);
- elpv: the ELPV electroluminescence scans of solar cells (greyscale, shrunk to 128 px; the
  class is the experts' defect probability, 4 classes; `pip install elpv-dataset`, a
  non-commercial licence: a bench-only download, never a medalist dependency);
- regions: random crops of three colour photos (scikit-learn's china.jpg and flower.jpg,
  matplotlib's grace_hopper.jpg) labelled by photo and region of a 3x3 grid (27 classes);
- objects: colour photos whose class is an object: Fashion-MNIST items, tinted, pasted at a
  random place and size on random crops of the three photos (10 classes);
- photos: random 32 px crops of scikit-learn's two photos labelled by photo (at the ceiling).
- sources: random small crops (4-10% of the side) of eleven colour photos (the three above and
  eight of scikit-image's) labelled by the photo they come from (11 classes; `pip install
  scikit-image`).

The arms:

- medalist: the config `medalist new` writes for the data, with only the backbone, size and
  epochs set to the shared values (and one CPU thread, no tracker); its batch is the one `new`
  chose for the data (32 for 1,000 images: 25 updates an epoch) unless `--batch` sets every
  arm's;
- plain loop: timm model, AdamW (lr 1e-3, torch's weight decay 0.01), cosine over the steps,
  no augmentation, plain cross-entropy, batch 64 (or `--batch`);
- tuned loop: the same with one-cycle (peak 3e-3), label smoothing 0.1, weight decay 0.05;
- `--variant NAME:key=value;key=value`: medalist with more overrides (ablations).

Each arm's score is its best epoch's accuracy on the fold (medalist keeps the best epoch's
weights, so the loops are scored the same way; over several folds, the accuracy of their
validation rows together), for each seed; the seed noise is the standard
deviation over seeds. Targets: medalist >= plain + 0.03, and not below tuned.

`--weights FILE` starts every arm from the same weights file instead of from scratch (the
fine-tuning a user with ImageNet weights runs; `bench/pretrain.py` makes a file on a source
set no fine-tuning set shares images with, for a machine that can't download any).

    .venv/bin/python bench/recipe.py --seeds 2 --train-images 1000 --epochs 15
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, write_result  # noqa: E402

FMNIST = Path("/usr/share/datasets/fashion-mnist")
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
LOOP_BATCH = 64  # the hand-written loops' batch unless --batch sets every arm's


def read_idx(name: str) -> np.ndarray:
    with gzip.open(FMNIST / name) as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def fashion(
    n: int, rng: np.random.Generator, split: str = "train"
) -> tuple[np.ndarray, np.ndarray]:
    """`n` Fashion-MNIST images (28x28 greyscale) of `split` ("train": the 60,000 training
    images, "t10k": the 10,000 test ones) and their classes, drawn at random."""
    if not FMNIST.is_dir():
        sys.exit("Fashion-MNIST is missing: apt-get install dataset-fashion-mnist")
    x, y = read_idx(f"{split}-images-idx3-ubyte.gz"), read_idx(f"{split}-labels-idx1-ubyte.gz")
    pick = rng.choice(len(x), n, replace=False)
    return x[pick], y[pick].astype(np.int64)


def photo_crops(n: int, rng: np.random.Generator, side: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Random `side`-pixel crops of china.jpg (class 0) and flower.jpg (class 1)."""
    from sklearn.datasets import load_sample_image

    photos = [load_sample_image("china.jpg"), load_sample_image("flower.jpg")]
    xs, ys = [], []
    for i in range(n):
        k = i % 2
        h, w = photos[k].shape[:2]
        r, c = int(rng.integers(0, h - side)), int(rng.integers(0, w - side))
        xs.append(photos[k][r : r + side, c : c + side])
        ys.append(k)
    return np.stack(xs), np.array(ys, dtype=np.int64)


def elpv(n: int, rng: np.random.Generator, side: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """`n` ELPV electroluminescence scans of solar cells (300x300 greyscale), shrunk to `side`
    pixels; the class is the experts' defect probability (0, 1/3, 2/3, 1 -> 0..3)."""
    try:
        from elpv_dataset.utils import load_dataset
    except ImportError:
        sys.exit(
            "the ELPV scans are missing: pip install elpv-dataset (non-commercial licence; "
            "a bench-only download, not a medalist dependency)"
        )
    images, proba, _ = load_dataset()
    pick = rng.choice(len(images), n, replace=False)
    x = np.stack(
        [np.asarray(Image.fromarray(images[i]).resize((side, side), Image.BILINEAR)) for i in pick]
    )
    return x, np.rint(proba[pick] * 3).astype(np.int64)


def backgrounds() -> list[np.ndarray]:
    """The colour photos at hand: scikit-learn's china.jpg and flower.jpg, matplotlib's
    grace_hopper.jpg."""
    import matplotlib
    from sklearn.datasets import load_sample_image

    hopper = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    return [
        load_sample_image("china.jpg"),
        load_sample_image("flower.jpg"),
        np.asarray(Image.open(hopper).convert("RGB")),
    ]


def random_tile(area: np.ndarray, crop: int, side: int, rng: np.random.Generator) -> np.ndarray:
    """A `crop`-pixel square at a random place in `area`, shrunk to `side` pixels."""
    r = int(rng.integers(0, area.shape[0] - crop + 1))
    c = int(rng.integers(0, area.shape[1] - crop + 1))
    tile = Image.fromarray(area[r : r + crop, c : c + crop])
    return np.asarray(tile.resize((side, side), Image.BILINEAR))


def photo_regions(
    n: int, rng: np.random.Generator, side: int = 32, grid: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Random crops of scikit-learn's china.jpg and flower.jpg and matplotlib's
    grace_hopper.jpg, labelled by photo and region (3 photos x `grid` x `grid` regions: 27
    classes at grid 3). Each crop is a square of 30-60% of the region's shorter side, shrunk
    to `side` pixels: the class rests on texture and colour, and neighbouring regions share
    both, so the set is not at the ceiling like two whole photos."""
    photos = backgrounds()
    xs, ys = [], []
    classes = len(photos) * grid * grid
    for i in range(n):
        k = i % classes
        photo = photos[k // (grid * grid)]
        row, col = divmod(k % (grid * grid), grid)
        rh, rw = photo.shape[0] // grid, photo.shape[1] // grid
        crop = int(rng.integers(min(rh, rw) * 3 // 10, min(rh, rw) * 6 // 10 + 1))
        region = photo[row * rh : (row + 1) * rh, col * rw : (col + 1) * rw]
        xs.append(random_tile(region, crop, side, rng))
        ys.append(k)
    return np.stack(xs), np.array(ys, dtype=np.int64)


def objects(
    n: int, rng: np.random.Generator, side: int = 32, split: str = "train"
) -> tuple[np.ndarray, np.ndarray]:
    """Colour photos whose class is an object: a Fashion-MNIST item (10 classes; of `split`),
    tinted a random colour (its shading kept), shrunk to 65-95% of the side and pasted at a
    random place on a random crop of a colour photo. A mirror keeps the class (as in most
    competitions); the place and the background don't carry it."""
    items, labels = fashion(n, rng, split)
    photos = backgrounds()
    xs = []
    for item in items:
        photo = photos[int(rng.integers(len(photos)))]
        crop = int(rng.integers(side * 2, min(photo.shape[:2]) // 2))
        r = int(rng.integers(0, photo.shape[0] - crop))
        c = int(rng.integers(0, photo.shape[1] - crop))
        canvas = np.asarray(
            Image.fromarray(photo[r : r + crop, c : c + crop]).resize((side, side), Image.BILINEAR),
            dtype=np.float32,
        )
        k = int(rng.integers(side * 65 // 100, side * 95 // 100 + 1))
        shade = np.asarray(Image.fromarray(item).resize((k, k), Image.BILINEAR), np.float32) / 255
        alpha = np.clip(shade * 3, 0, 1)  # the silhouette opaque, its dark seams too
        tint = rng.uniform(40, 255, 3).astype(np.float32)
        top, left = (int(v) for v in rng.integers(0, side - k + 1, 2))
        patch = canvas[top : top + k, left : left + k]
        fg = tint * (0.4 + 0.6 * shade[..., None])
        patch[:] = patch * (1 - alpha[..., None]) + fg * alpha[..., None]
        xs.append(np.clip(canvas, 0, 255).astype(np.uint8))
    return np.stack(xs), labels


def sources(n: int, rng: np.random.Generator, side: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Random crops of eleven colour photos, labelled by the photo they come from: the three of
    `backgrounds()` and scikit-image's astronaut, coffee, chelsea (a cat), rocket, ihc
    (stained tissue), hubble_deep_field, motorcycle_left and retina. Each crop is a square of
    4-10% of the photo's shorter side at a random place, shrunk to `side` pixels: the class
    rests on texture and colour, and a mirror, a shift or a zoom keeps it (unlike the regions,
    whose class is a place)."""
    try:
        import skimage.data as sk
    except ImportError:
        sys.exit("the scikit-image photos are missing: pip install scikit-image (bench only)")
    photos = backgrounds() + [
        sk.astronaut(),
        sk.coffee(),
        sk.chelsea(),
        sk.rocket(),
        sk.immunohistochemistry(),
        sk.hubble_deep_field(),
        sk.retina(),
        sk.stereo_motorcycle()[0],
    ]
    xs, ys = [], []
    for i in range(n):
        k = i % len(photos)
        photo = photos[k]
        short = min(photo.shape[:2])
        crop = int(rng.integers(short // 25, short // 10 + 1))
        xs.append(random_tile(photo, crop, side, rng))
        ys.append(k)
    return np.stack(xs), np.array(ys, dtype=np.int64)


DATASETS = {
    "fashion": fashion,
    "photos": photo_crops,
    "elpv": elpv,
    "regions": photo_regions,
    "objects": objects,
    "sources": sources,
}


def write_competition(root: Path, x: np.ndarray, y: np.ndarray) -> Path:
    """A Kaggle-layout folder: train/*.png, train.csv, a small test set and its sample."""
    (root / "train").mkdir(parents=True)
    (root / "test").mkdir()
    ids = [f"img_{i:05d}" for i in range(len(x))]
    for i, img in zip(ids, x, strict=True):
        Image.fromarray(img).save(root / "train" / f"{i}.png")
    pd.DataFrame({"id": ids, "label": y}).to_csv(root / "train.csv", index=False)
    test = [f"t_{i:03d}" for i in range(8)]
    for i, img in zip(test, x[:8], strict=True):
        Image.fromarray(img).save(root / "test" / f"{i}.png")
    pd.DataFrame({"id": test}).to_csv(root / "test.csv", index=False)
    pd.DataFrame({"id": test, "label": y[0]}).to_csv(root / "sample_submission.csv", index=False)
    return root


def medalist_arm(
    project: Path,
    args: argparse.Namespace,
    seed: int,
    variant: str = "",
    extra: list[str] | None = None,
) -> dict[str, Any]:
    """The first `--folds` folds of the config `medalist new` wrote, with the shared backbone,
    size and epochs (and the `extra` overrides of the variant named `variant`)."""
    from medalist.engine.fold_loop import read_fold_result
    from medalist.workflows.train import train

    overrides = [
        f"model.backbone={args.backbone}",
        f"data.image_size={args.size}",
        f"train.epochs={args.epochs}",
        *([f"train.batch_size={args.batch}"] if args.batch else []),  # else new's own
        f"train.seed={seed}",
        "train.threads=1",
        "data.num_workers=0",
        "track.backends=[none]",
        *([f"model.pretrained={args.weights}"] if args.weights else []),
        *args.medalist_override,
        *(extra or []),
    ]
    run = f"s{seed}-{variant}" if variant else f"s{seed}"
    folds = list(range(args.folds))
    summary = train(
        project / "configs" / "baseline.yaml",
        overrides,
        name=run,
        folds=",".join(map(str, folds)),
    )
    scores = [read_fold_result(summary.run.path, k).score for k in folds]
    return {"score": pooled(project, scores)}


def pooled(project: Path, scores: list[float]) -> float:
    """The accuracy over the validation rows of the first len(scores) folds together (each
    fold's accuracy weighted by its size): with every fold, the CV of the out-of-fold rows."""
    sizes = pd.read_csv(next((project / "folds").glob("*.csv"))).fold.value_counts()
    weights = [int(sizes[k]) for k in range(len(scores))]
    return float(np.average(scores, weights=weights))


def loop_arm(project: Path, args: argparse.Namespace, seed: int, tuned: bool) -> dict[str, Any]:
    """The hand-written timm loop on the same images and folds (fold 0, or the first
    `--folds`), each fold's best epoch."""
    import torch

    from medalist.data.images import load_resized

    torch.manual_seed(seed)
    folds = pd.read_csv(next((project / "folds").glob("*.csv")))
    table = pd.read_csv(project / "data" / "train.csv").merge(folds, on="id")
    x = normalised(
        np.stack(
            [load_resized(project / "data" / "train" / f"{i}.png", args.size, 3) for i in table.id]
        )
    )
    y = torch.tensor(table.label.to_numpy())
    folds = torch.tensor(table.fold.to_numpy())
    scores = [loop_fold(args, x, y, folds == k, tuned) for k in range(args.folds)]
    return {"score": pooled(project, scores)}


def loop_fold(args: argparse.Namespace, x: Any, y: Any, valid: Any, tuned: bool) -> float:
    """The hand-written loop trained on the rows outside `valid`: its best epoch's accuracy on
    the rows inside."""
    import timm
    import torch

    xt, yt, xv, yv = x[~valid], y[~valid], x[valid], y[valid]
    model = timm.create_model(args.backbone, num_classes=int(y.max()) + 1, **loop_start(args))
    batch = args.batch or LOOP_BATCH
    steps = args.epochs * (len(xt) // batch)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05 if tuned else 0.01)
    if tuned:
        sched: Any = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    else:
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    best = 0.0
    for _ in range(args.epochs):
        fit_epoch(model, opt, sched, xt, yt, batch, smoothing=0.1 * tuned)
        best = max(best, accuracy(model, xv, yv))
    return best


def normalised(x: np.ndarray) -> Any:
    """uint8 images (N, H, W, 3) as the float (N, 3, H, W) tensor ImageNet's statistics scale."""
    import torch

    t = torch.tensor(x).permute(0, 3, 1, 2).float().div(255)
    return (t - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def fit_epoch(
    model: Any,
    opt: Any,
    sched: Any,
    x: Any,
    y: Any,
    batch: int,
    *,
    smoothing: float = 0.0,
    augment: Any = None,
) -> None:
    """One epoch of a hand-written loop: shuffled full batches (`augment(batch)` on each),
    cross-entropy, the schedule stepped after every update."""
    import torch
    import torch.nn.functional as F

    model.train()
    order = torch.randperm(len(x))
    for b in range(len(x) // batch):
        rows = order[b * batch : (b + 1) * batch]
        inputs = x[rows] if augment is None else augment(x[rows])
        loss = F.cross_entropy(model(inputs), y[rows], label_smoothing=smoothing)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()


def accuracy(model: Any, x: Any, y: Any) -> float:
    """The share of `x` whose predicted class is `y`, in batches of 256."""
    import torch

    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(x[i : i + 256]).argmax(1) for i in range(0, len(x), 256)])
    return float((pred == y).float().mean())


def loop_start(args: argparse.Namespace) -> dict[str, Any]:
    """timm's arguments for the loops' start: from scratch, or `--weights` (timm drops the
    file's classifier when its class count differs, as it does for `model.pretrained`)."""
    if not args.weights:
        return {}
    return {"pretrained": True, "pretrained_cfg_overlay": {"file": str(args.weights)}}


ARMS = {"medalist": "medalist", "plain": "plain loop", "tuned": "tuned loop"}


def summary(scores: list[float]) -> dict[str, Any]:
    return {
        "mean": round(statistics.mean(scores), 4),
        "std": round(statistics.stdev(scores), 4) if len(scores) > 1 else 0.0,
        "runs": [round(s, 4) for s in scores],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1"
    )
    parser.add_argument("--train-images", type=int, default=1200, help="images per data set")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument(
        "--batch",
        type=int,
        default=None,
        help="every arm's batch (default: the loops 64, medalist the batch `new` wrote)",
    )
    parser.add_argument("--backbone", default="resnet10t")
    parser.add_argument(
        "--folds", type=int, default=1, help="train the first N folds of 5 (5: the whole CV)"
    )
    parser.add_argument("--datasets", default="fashion,elpv,regions", help=",".join(DATASETS))
    parser.add_argument("--arms", default="medalist,plain,tuned", help=",".join(ARMS))
    parser.add_argument(
        "--weights",
        default=None,
        help="a weights file every arm starts from (bench/pretrain.py); default: from scratch",
    )
    parser.add_argument("--out", default=None, help="the result JSON (default bench/results)")
    parser.add_argument(
        "--medalist-override", action="append", default=[], help="section.key=value"
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="another medalist arm, NAME:section.key=value;section.key=value (ablations)",
    )
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from medalist.config import load_config
    from medalist.workflows.folds import run_folds
    from medalist.workflows.scaffold.create import create_project

    variants = {
        name: overrides.split(";") for name, overrides in (v.split(":", 1) for v in args.variant)
    }
    results: dict[str, Any] = {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="medalist-recipe-") as tmp:
        for name in args.datasets.split(","):
            rng = np.random.default_rng(0)
            x, y = DATASETS[name](args.train_images, rng)
            data = write_competition(Path(tmp) / name / "data", x, y)
            project = Path(tmp) / name / "project"
            create_project(project, data)
            run_folds(load_config(project / "configs" / "baseline.yaml"))
            arms: dict[str, list[float]] = {ARMS[a]: [] for a in args.arms.split(",") if a}
            arms.update({f"medalist {v}": [] for v in variants})
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                for arm in arms:
                    if arm == "medalist" or arm.startswith("medalist "):
                        variant = arm.removeprefix("medalist").strip()
                        extra = variants.get(variant, [])
                        score = medalist_arm(project, args, seed, variant, extra)["score"]
                    else:
                        score = loop_arm(project, args, seed, tuned=arm == "tuned loop")["score"]
                    arms[arm].append(score)
                print(name, seed, {k: v[-1] for k, v in arms.items()}, flush=True)
            results[name] = {k: summary(v) for k, v in arms.items()}
            results[name]["config"] = (project / "configs" / "baseline.yaml").read_text()
    for name, r in results.items():
        line = [f"{name}:"]
        for arm in r:
            if arm != "config":
                line.append(f"{arm} {r[arm]['mean']:.4f} +- {r[arm]['std']:.4f}")
        if "medalist" in r:
            m = r["medalist"]["mean"]
            for arm in ("plain loop", "tuned loop"):
                if arm in r:
                    line.append(f"medalist - {arm.split()[0]} {m - r[arm]['mean']:+.4f}")
        print(" | ".join(line))
    settings = {k: v for k, v in vars(args).items()}
    payload = {"settings": settings, "results": results, "seconds": time.perf_counter() - start}
    write_result("recipe", {**payload, "machine": machine()}, Path(args.out) if args.out else None)


if __name__ == "__main__":
    main()
