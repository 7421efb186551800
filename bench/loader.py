"""Images per second from medalist's data pipeline against a torchvision ImageFolder baseline.

Data: the ELPV solar-cell scans (`pip install elpv-dataset`: 2,624 greyscale 300x300 PNGs;
non-commercial licence, so they are only copied to a temp folder here, never into the repo),
laid out as ImageFolder expects (one folder per cell type). Without elpv-dataset, Fashion-MNIST
(`apt-get install dataset-fashion-mnist`, 28x28) written as PNGs stands in, and the JSON says so.

Both sides deliver 224x224 RGB float batches, randomly flipped and normalised, through a
DataLoader with the same batch size, number of workers and shuffling (drop_last):

- baseline, what a user writes: `torchvision.datasets.ImageFolder` (PIL open, convert RGB) with
  `transforms.Compose([Resize(224), RandomHorizontalFlip(), ToTensor(), Normalize()])`.
- medalist: `ImageSource` + `build_cache` (decoded, resized uint8 images in one .npy file,
  memory-mapped) + `ImageDataset` with `create_transform([HorizontalFlip])` (albumentations) +
  `medalist.engine.fold_loop.make_loader`. Its epoch 1 includes building the cache.

The epochs run alternately (baseline 1, medalist 1, baseline 2, ...). Speedup = medalist's
images per second over epochs 2..N against the baseline's over the same epochs; target >= 3.
By default the seconds are CPU seconds of the process and its DataLoader workers (robust on this
shared 2-core sandbox, where wall time swings 2x between consecutive epochs); `--clock wall`
uses wall time. Both are always printed and stored.

Run: .venv/bin/python bench/loader.py  (about 2-4 minutes on 2 cores with the defaults)
Last line: `speedup: X.X`.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
FASHION = Path("/usr/share/datasets/fashion-mnist")


def elpv_files(dest: Path, limit: int | None) -> str | None:
    """Copy the ELPV PNGs into dest/<type>/ (ImageFolder layout); None when not installed."""
    try:
        import elpv_dataset
    except ImportError:
        return None
    data = Path(elpv_dataset.__file__).parent / "data"
    rows = [line.split() for line in (data / "labels.csv").read_text().splitlines() if line]
    for rel, _prob, kind in rows[:limit]:
        (dest / kind).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(data / rel, dest / kind / Path(rel).name)
    return "elpv-dataset (ELPV solar cells, 300x300 greyscale PNG)"


def fashion_files(dest: Path, limit: int | None) -> str | None:
    """Fashion-MNIST training images as PNGs in dest/<class>/; None when not installed."""
    import numpy as np
    from PIL import Image

    images_gz, labels_gz = (
        FASHION / "train-images-idx3-ubyte.gz",
        FASHION / "train-labels-idx1-ubyte.gz",
    )
    if not images_gz.is_file():
        return None
    with gzip.open(images_gz) as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(labels_gz) as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    n = min(limit or 2624, len(images))
    for i in range(n):
        folder = dest / f"class_{labels[i]}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[i]).save(folder / f"f{i:05d}.png")
    return "Fashion-MNIST (28x28 greyscale, written as PNG): elpv-dataset not installed"


def baseline_loader(root: Path, size: int, batch: int, workers: int) -> Any:
    """torchvision ImageFolder + transforms, as in the PyTorch tutorials."""
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    tf = transforms.Compose(
        [
            transforms.Resize(size),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(MEAN, STD),
        ]
    )
    ds = datasets.ImageFolder(str(root), transform=tf)
    return DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True)


def medalist_loader(
    paths: list[Path], labels: list[int], size: int, batch: int, workers: int, cache_dir: Path
) -> Any:
    """medalist's pipeline: image cache, ImageDataset with a flip, make_loader."""
    import numpy as np

    from medalist.config.schema import Config
    from medalist.data.dataset import ImageDataset, create_transform
    from medalist.data.images import ImageSource, build_cache
    from medalist.engine.fold_loop import make_loader

    cfg = Config.model_validate(
        {
            "data": {"image_size": size, "num_workers": workers},
            "train": {"batch_size": batch, "accelerator": "cpu"},
        }
    )
    cached = build_cache(paths, size, 3, cache_dir)
    source = ImageSource(paths, size, 3, cached=cached)
    tf = create_transform([{"name": "HorizontalFlip", "p": 0.5}], train=True)
    ds = ImageDataset(source, np.arange(len(paths)), np.asarray(labels), tf, seed=0)
    return make_loader(cfg, ds, train=True)


def drain(loader: Any, epoch: int) -> int:
    """Iterate one epoch; the number of images delivered."""
    sampler = getattr(loader, "sampler", None)
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)
    n = 0
    for x, _ in loader:
        n += len(x)
    return n


def cpu_seconds() -> float:
    """CPU time of this process (all threads) and of its finished (reaped) worker processes."""
    import resource

    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def timed(step: Any) -> dict[str, float]:
    """Wall and CPU seconds of `step()`, which returns the number of images it delivered.

    DataLoader workers end (and are reaped) at the end of each epoch, as persistent_workers
    is off on both sides, so their CPU time is in the figure.
    """
    t0, c0 = time.perf_counter(), cpu_seconds()
    n = step()
    return {"seconds": time.perf_counter() - t0, "cpu_seconds": cpu_seconds() - c0, "images": n}


def main(argv: list[str] | None = None) -> float:
    """Run both pipelines for `--epochs` epochs each and return the speedup from epoch 2 on."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=None, help="use only the first N images")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--threads", type=int, default=2, help="torch threads in the main process")
    p.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="what the speedup compares: images per CPU-second (process and workers; robust on "
        "a shared machine) or images per wall-second",
    )
    p.add_argument("--out", type=Path, default=None, help="results folder (bench/results)")
    args = p.parse_args(argv)
    if args.epochs < 2:
        p.error("--epochs must be at least 2 (the speedup is measured from epoch 2 on)")

    import torch

    import medalist.engine.fold_loop  # noqa: F401  (imports are set-up, outside every timing)

    began = time.perf_counter()
    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="medalist-bench-loader-"))
    try:
        root = tmp / "images"
        source = elpv_files(root, args.images) or fashion_files(root, args.images)
        if source is None:
            sys.exit("no data: pip install elpv-dataset (or apt-get install dataset-fashion-mnist)")
        base = baseline_loader(root, args.size, args.batch_size, args.workers)
        paths = [Path(s) for s, _ in base.dataset.samples]
        labels = [t for _, t in base.dataset.samples]
        print(
            f"data: {len(paths)} images, {source}; {args.size}x{args.size}, "
            f"batch {args.batch_size}, {args.workers} workers, {args.epochs} epochs"
        )
        rows: dict[str, list[dict[str, float]]] = {"baseline": [], "medalist": []}
        holder: dict[str, Any] = {}

        def medalist_epoch(epoch: int) -> int:
            if "loader" not in holder:  # epoch 1 builds the cache, inside the timing
                holder["loader"] = medalist_loader(
                    paths, labels, args.size, args.batch_size, args.workers, tmp / "cache"
                )
            return drain(holder["loader"], epoch)

        for epoch in range(args.epochs):
            rows["baseline"].append(timed(lambda e=epoch: drain(base, e)))
            rows["medalist"].append(timed(lambda e=epoch: medalist_epoch(e)))
            for side in ("baseline", "medalist"):
                r = rows[side][-1]
                print(
                    f"  epoch {epoch + 1} {side:8s} wall {r['seconds']:7.2f}s "
                    f"{r['images'] / r['seconds']:6.0f} img/s | cpu {r['cpu_seconds']:7.2f}s "
                    f"{r['images'] / r['cpu_seconds']:6.0f} img/cpu-s"
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def rate(side: str, epochs: slice, key: str) -> float:
        sel = rows[side][epochs]
        return sum(r["images"] for r in sel) / sum(r[key] for r in sel)

    summary: dict[str, Any] = {}
    for side in rows:
        summary[side] = {
            "epoch1_img_s": round(rate(side, slice(0, 1), "seconds"), 1),
            "later_img_s": round(rate(side, slice(1, None), "seconds"), 1),
            "epoch1_img_cpu_s": round(rate(side, slice(0, 1), "cpu_seconds"), 1),
            "later_img_cpu_s": round(rate(side, slice(1, None), "cpu_seconds"), 1),
            "epochs": [{k: round(v, 3) for k, v in r.items()} for r in rows[side]],
        }

    def ratio(key: str) -> float:
        return summary["medalist"][key] / summary["baseline"][key]

    unit = "img_cpu_s" if args.clock == "cpu" else "img_s"
    speedup = ratio(f"later_{unit}")
    print(f"{'':9s} {'epoch 1':>9s} {'epochs 2+':>10s}  (images per wall-second | per CPU-second)")
    for side in rows:
        s = summary[side]
        print(
            f"{side:9s} {s['epoch1_img_s']:9.0f} {s['later_img_s']:10.0f}  | "
            f"{s['epoch1_img_cpu_s']:9.0f} {s['later_img_cpu_s']:10.0f}"
        )
    print(
        f"medalist / baseline: epochs 2+ wall x{ratio('later_img_s'):.2f}, "
        f"cpu x{ratio('later_img_cpu_s'):.2f}; epoch 1 (medalist builds its cache) "
        f"wall x{ratio('epoch1_img_s'):.2f}, cpu x{ratio('epoch1_img_cpu_s'):.2f}"
    )
    path = _common.write_result(
        "loader",
        {
            "bench": "loader",
            "command": " ".join(["python bench/loader.py", *(argv or sys.argv[1:])]),
            "data": source,
            "settings": {
                "images": len(paths),
                "size": args.size,
                "batch_size": args.batch_size,
                "num_workers": args.workers,
                "epochs": args.epochs,
                "torch_threads": args.threads,
                "clock": args.clock,
                "order": "baseline and medalist epochs alternately",
            },
            "rates": summary,
            "speedup": round(speedup, 3),
            "wall_speedup": round(ratio("later_img_s"), 3),
            "cpu_speedup": round(ratio("later_img_cpu_s"), 3),
            "epoch1_wall_speedup": round(ratio("epoch1_img_s"), 3),
            "epoch1_cpu_speedup": round(ratio("epoch1_img_cpu_s"), 3),
            "target": "speedup >= 3 from epoch 2 on",
            "bench_seconds": round(time.perf_counter() - began, 1),
            "machine": _common.machine(),
        },
        args.out,
    )
    print(f"wrote {path} ({time.perf_counter() - began:.0f}s)")
    print(f"speedup: {speedup:.1f}")
    return speedup


if __name__ == "__main__":
    main()
