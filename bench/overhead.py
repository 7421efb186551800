"""Overhead of medalist's training path against a hand-written PyTorch loop, on the CPU.

Both sides train timm's resnet18 from scratch at 64x64 for one epoch on the same decoded images
(medalist's image cache, a uint8 .npy file, memory-mapped), the same fold split, batch size,
albumentations transform (HorizontalFlip, Normalize, ToTensorV2), AdamW (lr 1e-3, weight decay
0.01), torch threads and num_workers=0; each epoch ends with a pass over the validation fold and
a checkpoint on disk. They run alternately (A B A B ...) in one process after one warm-up run
each, and the medians are compared.

- medalist: `medalist.workflows.train.train(config, overrides, folds="0")`, the code path of
  `medalist train`. Its epoch is timed by a Lightning callback passed through `callbacks=`:
  from `on_train_epoch_start` to `on_train_end`, so it holds the training batches, the
  validation pass with the metric, the history file and both checkpoints (best.ckpt and the
  full-state last.ckpt that --resume needs).
- plain: model, AdamW, DataLoader(shuffle, drop_last); timed from the first batch to the end of
  `torch.save(model.state_dict())` after the validation pass.

Excluded from both epochs: imports, building the image cache (done by the warm-up run), model
and optimizer creation. medalist's per-fold set-up (input checks, run directory, provenance,
Trainer, reloading the best checkpoint and the out-of-fold prediction pass) is outside the
epoch; it is reported separately as `call_s`, against the plain loop's whole function.

The ratio compares process CPU time (user + system, all threads) by default: this sandbox's two
cores are shared with other jobs, and wall time swings 2-3x between consecutive epochs there;
with one torch thread CPU time is the work done, which on an idle machine is the wall time.
`--clock wall --threads 2` measures wall time on a quiet machine; both figures are always
printed and stored.

Run: .venv/bin/python bench/overhead.py  (about 3 minutes of CPU with the defaults)
Last line: `ratio: X.XX` (median medalist epoch / median plain epoch; target <= 1.05).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402

CONFIG = """\
competition:
  train_csv: data/train.csv
  test_csv: data/test.csv
  image_dir: data/train
  test_image_dir: data/test
  sample_submission: data/sample_submission.csv
  id_column: id
  target_column: label
  metric: accuracy
cv:
  scheme: stratified
  n_splits: 5
  seed: 42
model:
  backbone: resnet18
  in_chans: 3
data:
  image_size: {size}
  num_workers: 0
  augment:
    - {{name: HorizontalFlip, p: 0.5}}
train:
  epochs: 1
  batch_size: {batch}
  lr: 1.0e-3
  weight_decay: 0.01
  optimizer: adamw
  threads: {threads}
track:
  backends: [none]
"""

KEYS = (
    "epoch_s",
    "epoch_cpu_s",
    "train_s",
    "train_cpu_s",
    "val_save_s",
    "val_save_cpu_s",
    "call_s",
)
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def make_clock(max_batches: int | None = None) -> Any:
    """A Lightning callback that records when the epoch, its validation and the fit end.

    With `max_batches` it also ends the epoch after that many batches (the warm-up run).
    """
    from lightning.pytorch.callbacks import Callback

    class EpochClock(Callback):
        def __init__(self) -> None:
            self.t0 = self.t_val = self.t_end = self.cpu0 = self.cpu_val = self.cpu_end = 0.0

        def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            self.t0, self.cpu0 = time.perf_counter(), time.process_time()

        def on_train_batch_end(
            self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
        ) -> None:
            if max_batches is not None and batch_idx + 1 >= max_batches:
                trainer.should_stop = True

        def on_validation_epoch_start(self, trainer: Any, pl_module: Any) -> None:
            self.t_val, self.cpu_val = time.perf_counter(), time.process_time()

        def on_train_end(self, trainer: Any, pl_module: Any) -> None:
            self.t_end, self.cpu_end = time.perf_counter(), time.process_time()

    return EpochClock()


def run_medalist(config: Path, name: str, max_batches: int | None = None) -> dict[str, float]:
    """One epoch of fold 0 through `medalist train`'s workflow; its timings in seconds."""
    from medalist.workflows.train import train

    clock = make_clock(max_batches)
    start = time.perf_counter()
    summary = train(config, name=name, folds="0", callbacks=lambda fold: [clock])
    call = time.perf_counter() - start
    result = _common.read_fold_score(summary.run.path)
    return {
        "epoch_s": clock.t_end - clock.t0,
        "epoch_cpu_s": clock.cpu_end - clock.cpu0,
        "train_s": clock.t_val - clock.t0,
        "train_cpu_s": clock.cpu_val - clock.cpu0,
        "val_save_s": clock.t_end - clock.t_val,
        "val_save_cpu_s": clock.cpu_end - clock.cpu_val,
        "call_s": call,
        "score": result,
    }


def plain_data(project: Path, run_dir: Path) -> dict[str, Any]:
    """The decoded images (medalist's cache file), labels and fold split a plain loop reuses."""
    import numpy as np
    import pandas as pd

    caches = sorted((project / ".cache").glob("images-*.npy"))
    images = np.load(caches[-1], mmap_mode="r")
    labels = pd.read_csv(project / "data" / "train.csv")["label"].to_numpy()
    folds = pd.read_csv(run_dir / "folds.csv")["fold"].to_numpy()
    return {"images": images, "labels": labels, "folds": folds}


def run_plain(
    data: dict[str, Any], out: Path, batch: int, threads: int, max_batches: int | None = None
) -> dict[str, float]:
    """The loop a user writes by hand: same model, data, transform, optimizer and threads."""
    import albumentations as A
    import numpy as np
    import timm
    import torch
    import torch.nn.functional as F
    from albumentations.pytorch import ToTensorV2
    from torch.utils.data import DataLoader, Dataset

    class Images(Dataset):
        def __init__(self, rows: np.ndarray, transform: A.Compose) -> None:
            self.rows, self.transform = rows, transform

        def __len__(self) -> int:
            return len(self.rows)

        def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
            row = self.rows[i]
            image = self.transform(image=np.array(data["images"][row]))["image"]
            return image, int(data["labels"][row])

    start = time.perf_counter()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(False)  # a plain loop runs with torch's defaults
    torch.manual_seed(0)
    train_tf = A.Compose([A.HorizontalFlip(p=0.5), A.Normalize(MEAN, STD), ToTensorV2()])
    valid_tf = A.Compose([A.Normalize(MEAN, STD), ToTensorV2()])
    folds = data["folds"]
    train_ds = Images(np.flatnonzero(folds != 0), train_tf)
    valid_ds = Images(np.flatnonzero(folds == 0), valid_tf)
    train_loader = DataLoader(train_ds, batch_size=batch, shuffle=True, drop_last=True)
    valid_loader = DataLoader(valid_ds, batch_size=batch)
    n_classes = int(data["labels"].max()) + 1
    model = timm.create_model("resnet18", pretrained=False, num_classes=n_classes, in_chans=3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)

    t0, cpu0 = time.perf_counter(), time.process_time()
    model.train()
    total = 0.0
    for i, (x, y) in enumerate(train_loader):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        total += loss.item()
        if max_batches is not None and i + 1 >= max_batches:
            break
    t_val, cpu_val = time.perf_counter(), time.process_time()
    model.eval()
    correct = 0
    with torch.no_grad():
        for x, y in valid_loader:
            correct += int((model(x).argmax(1) == y).sum())
    torch.save(model.state_dict(), out / "best.pt")
    t_end, cpu_end = time.perf_counter(), time.process_time()
    return {
        "epoch_s": t_end - t0,
        "epoch_cpu_s": cpu_end - cpu0,
        "train_s": t_val - t0,
        "train_cpu_s": cpu_val - cpu0,
        "val_save_s": t_end - t_val,
        "val_save_cpu_s": cpu_end - cpu_val,
        "call_s": t_end - start,
        "score": correct / len(valid_ds),
    }


def main(argv: list[str] | None = None) -> float:
    """Run the comparison, print the table and return medalist / plain (median epoch)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=1200, help="digits used (5 folds; fold 0 trains)")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=1, help="torch threads, both sides")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per side after warm-up")
    p.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="what the ratio compares: process CPU time (robust on a shared machine) or wall",
    )
    p.add_argument("--out", type=Path, default=None, help="results folder (bench/results)")
    args = p.parse_args(argv)

    import torch

    from medalist.console import console, err_console

    began = time.perf_counter()
    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="medalist-bench-overhead-"))
    project = tmp / "proj"
    _common.write_digits_competition(project / "data", args.images, args.image_size)
    config = project / "configs" / "bench.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(
        CONFIG.format(size=args.image_size, batch=args.batch_size, threads=args.threads)
    )
    console.quiet = err_console.quiet = True  # medalist's own progress lines

    try:
        size = f"{args.image_size}x{args.image_size}"
        print(f"data: {args.images} digits as {size} PNGs in {project}")
        # Warm-up, excluded: builds the image cache, imports, first kernels, two batches each side.
        warm = run_medalist(config, "warmup", max_batches=2)
        data = plain_data(project, project / "runs" / "warmup")
        run_plain(data, tmp, args.batch_size, args.threads, max_batches=2)
        n_train = int((data["folds"] != 0).sum())
        print(
            f"fold 0: {n_train} train / {int((data['folds'] == 0).sum())} valid images, "
            f"batch {args.batch_size}, {args.threads} thread(s); warm-up done "
            f"(medalist call with cache build {warm['call_s']:.1f}s)"
        )
        med: list[dict[str, float]] = []
        plain: list[dict[str, float]] = []
        for r in range(args.repeats):
            med.append(run_medalist(config, f"bench-{r}"))
            plain.append(run_plain(data, tmp, args.batch_size, args.threads))
            for side, t in (("medalist", med[-1]), ("plain", plain[-1])):
                print(
                    f"  run {r + 1} {side:8s} epoch wall {t['epoch_s']:6.2f}s "
                    f"(train {t['train_s']:6.2f}s, val+save {t['val_save_s']:5.2f}s) "
                    f"cpu {t['epoch_cpu_s']:6.2f}s (train {t['train_cpu_s']:6.2f}s, "
                    f"val+save {t['val_save_cpu_s']:5.2f}s) call {t['call_s']:6.2f}s"
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # checkpoints of every run
    stats = {}
    for key in KEYS:
        stats[key] = {
            "medalist": _common.spread([t[key] for t in med]),
            "plain": _common.spread([t[key] for t in plain]),
        }

    def ratio_of(key: str) -> float:
        return stats[key]["medalist"]["median"] / stats[key]["plain"]["median"]

    key = "epoch_cpu_s" if args.clock == "cpu" else "epoch_s"
    ratio = ratio_of(key)
    paired = [m[key] / q[key] for m, q in zip(med, plain, strict=True)]
    print(f"{'median':14s} {'medalist':>9s} {'plain':>9s}  ratio")
    for k in KEYS:
        m, q = stats[k]["medalist"]["median"], stats[k]["plain"]["median"]
        print(f"{k:14s} {m:8.2f}s {q:8.2f}s  {m / q:.3f}")
    print(f"paired {key} ratios: {', '.join(f'{x:.3f}' for x in paired)}")
    print(
        f"epoch ratio by wall clock {ratio_of('epoch_s'):.3f}, by CPU time "
        f"{ratio_of('epoch_cpu_s'):.3f}; whole call (with per-fold set-up and OOF pass) "
        f"{ratio_of('call_s'):.3f}"
    )
    path = _common.write_result(
        "overhead",
        {
            "bench": "overhead",
            "command": " ".join(["python bench/overhead.py", *(argv or sys.argv[1:])]),
            "settings": {
                "model": "resnet18 (timm, from scratch)",
                "data": "scikit-learn digits as PNG, 5 stratified folds, fold 0",
                "images": args.images,
                "train_images": n_train,
                "image_size": args.image_size,
                "batch_size": args.batch_size,
                "threads": args.threads,
                "num_workers": 0,
                "repeats": args.repeats,
                "clock": args.clock,
                "order": "medalist, plain, alternately, after one warm-up each",
            },
            "excluded": [
                "imports",
                "image cache build (warm-up run)",
                "model and optimizer creation",
                "medalist per-fold set-up and OOF pass (reported as call_s)",
            ],
            "seconds": stats,
            "paired_ratios": [round(x, 4) for x in paired],
            "ratio": round(ratio, 4),
            "wall_ratio": round(ratio_of("epoch_s"), 4),
            "cpu_ratio": round(ratio_of("epoch_cpu_s"), 4),
            "call_ratio": round(ratio_of("call_s"), 4),
            "target": "ratio <= 1.05",
            "bench_seconds": round(time.perf_counter() - began, 1),
            "machine": _common.machine(),
        },
        args.out,
    )
    print(f"wrote {path} ({time.perf_counter() - began:.0f}s)")
    print(f"ratio: {ratio:.2f}")
    return ratio


if __name__ == "__main__":
    main()
