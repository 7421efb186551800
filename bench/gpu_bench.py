"""Training throughput of resnet18 at 224x224 on a CUDA GPU: plain loops against medalist.

Three rows, each a fixed number of optimizer steps after a few warm-up steps, timed between
two `torch.cuda.synchronize()` calls, on synthetic data (AdamW, cross-entropy, 10 classes):

- plain fp32: a hand-written timm loop, float32, NCHW, batches already on the GPU.
- plain bf16 + channels_last: the same loop under `torch.autocast(dtype=bfloat16)` with the
  model and batches in channels_last.
- medalist: `medalist.engine.fold_loop.train_fold` with `train.precision: auto` (bf16-mixed
  where supported) and `train.channels_last: auto`, fed by its own data pipeline (uint8 images
  in memory -> ImageDataset with HorizontalFlip -> DataLoader with `data.num_workers` workers,
  pinned memory). Timed by a Lightning callback from the end of the last warm-up step to the
  end of the last step; the validation pass and checkpoints after the epoch are outside it.

cudnn.benchmark is on for every row (medalist's Trainer sets it on a GPU).

Run: bash bench/gpu.sh (sets up an environment, then runs this); or directly:
    python bench/gpu_bench.py [--steps 60] [--batch-size 128]
    python bench/gpu_bench.py --dry-run      # CPU, 2 tiny steps: checks the logic without a GPU
Writes gpu.json under $OUT when set, else bench/results/ (a dry run: a temp folder).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402

CLASSES = 10


class RepeatedImages:
    """An (n, size, size, 3) uint8 image array backed by `k` distinct images (index mod k)."""

    def __init__(self, n: int, size: int, k: int = 64, seed: int = 0) -> None:
        import numpy as np

        self.n = n
        self.base = np.random.default_rng(seed).integers(0, 256, (k, size, size, 3), np.uint8)
        self.shape = (n, size, size, 3)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> Any:
        return self.base[int(i) % len(self.base)]


def plain_throughput(
    device: Any, batch: int, size: int, steps: int, warmup: int, *, amp: bool
) -> dict[str, float]:
    """Images/s of a hand-written loop; `amp`: bf16 autocast and channels_last."""
    import timm
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    model = timm.create_model("resnet18", pretrained=False, num_classes=CLASSES).to(device)
    x = torch.randn(batch, 3, size, size, device=device)
    y = torch.randint(0, CLASSES, (batch,), device=device)
    if amp:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    model.train()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    seconds = time.perf_counter() - t0
    return {"images_per_s": steps * batch / seconds, "seconds": seconds, "steps": steps}


def sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def medalist_throughput(
    device: Any, batch: int, size: int, steps: int, warmup: int, workers: int, out: Path
) -> dict[str, Any]:
    """Images/s of medalist's fold loop (its Trainer, module, precision and data pipeline)."""
    import numpy as np
    import pandas as pd
    from lightning.pytorch.callbacks import Callback

    from medalist.config.schema import Config
    from medalist.data.images import ImageSource
    from medalist.engine.fold_loop import resolve_channels_last, resolve_precision, train_fold
    from medalist.tasks.classify import ClassifyTask

    cfg = Config.model_validate(
        {
            "model": {"backbone": "resnet18"},
            "data": {"image_size": size, "num_workers": workers},
            "train": {
                "epochs": 1,
                "batch_size": batch,
                "precision": "auto",
                "channels_last": "auto",
                "accelerator": "gpu" if device.type == "cuda" else "cpu",
                "warmup_epochs": 0,
            },
            "track": {"backends": ["none"]},
        }
    )
    n_train = (warmup + steps) * batch
    n = n_train + batch  # one validation batch
    ids = [f"s{i:06d}" for i in range(n)]
    labels = np.arange(n) % CLASSES
    images = ImageSource(
        [Path(f"{i}.png") for i in ids], size, 3, cached=RepeatedImages(n, size), ids=ids
    )
    task = ClassifyTask.from_config(cfg, pd.DataFrame({"id": ids, "label": labels}))
    y = task.encode(pd.DataFrame({"id": ids, "label": labels}))
    folds = np.zeros(n, dtype=int)
    folds[:n_train] = 1  # fold 0 (trained here) validates on the last batch alone

    class StepClock(Callback):
        def __init__(self) -> None:
            self.t0 = self.t1 = 0.0

        def on_train_batch_end(
            self, trainer: Any, pl_module: Any, outputs: Any, batch_: Any, batch_idx: int
        ) -> None:
            if batch_idx + 1 == warmup:
                sync(device)
                self.t0 = time.perf_counter()
            elif batch_idx + 1 == warmup + steps:
                sync(device)
                self.t1 = time.perf_counter()

    clock = StepClock()
    train_fold(cfg, task, images, y, folds, 0, out, seed=0, callbacks=[clock])
    seconds = clock.t1 - clock.t0
    return {
        "images_per_s": steps * batch / seconds,
        "seconds": seconds,
        "steps": steps,
        "precision": resolve_precision(cfg),
        "channels_last": resolve_channels_last(cfg),
        "num_workers": workers,
    }


def _rounded(row: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Measure the three rows, print the table, write the JSON; returns the results."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=60, help="timed optimizer steps per row")
    p.add_argument("--warmup", type=int, default=15, help="untimed steps before the timing")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--workers", type=int, default=min(12, os.cpu_count() or 1))
    p.add_argument("--dry-run", action="store_true", help="CPU, 2 tiny steps: test the logic")
    p.add_argument("--out", type=Path, default=None, help="results folder")
    args = p.parse_args(argv)

    import torch

    if args.dry_run:
        device = torch.device("cpu")
        args.steps, args.warmup, args.batch_size, args.size, args.workers = 2, 1, 4, 32, 0
    elif not torch.cuda.is_available():
        sys.exit(
            "gpu_bench: CUDA is not available to torch "
            f"{torch.__version__} (no GPU, or a CPU-only build); run it on a GPU machine, "
            "or pass --dry-run to check the script on the CPU"
        )
    else:
        device = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    out = args.out or (
        Path(os.environ["OUT"])
        if os.environ.get("OUT")
        else (Path(tempfile.mkdtemp()) if args.dry_run else _common.RESULTS_DIR)
    )
    work = Path(tempfile.mkdtemp(prefix="medalist-gpu-bench-"))
    started = time.perf_counter()
    rows: dict[str, dict[str, Any]] = {}
    shape = (args.batch_size, args.size, args.steps, args.warmup)
    rows["plain fp32"] = plain_throughput(device, *shape, amp=False)
    rows["plain bf16 + channels_last"] = plain_throughput(device, *shape, amp=True)
    rows["medalist (precision auto, channels_last auto)"] = medalist_throughput(
        device, *shape, args.workers, work
    )
    fp32 = rows["plain fp32"]["images_per_s"]
    amp = rows["plain bf16 + channels_last"]["images_per_s"]
    print(
        f"resnet18 {args.size}x{args.size}, batch {args.batch_size}, {args.steps} steps on {device}"
    )
    print(f"{'row':48s} {'img/s':>9s} {'vs fp32':>8s}")
    for name, r in rows.items():
        print(f"{name:48s} {r['images_per_s']:9.0f} {r['images_per_s'] / fp32:7.2f}x")
    medalist = rows["medalist (precision auto, channels_last auto)"]["images_per_s"]
    result = {
        "bench": "gpu",
        "command": " ".join(["python bench/gpu_bench.py", *(argv or sys.argv[1:])]),
        "dry_run": args.dry_run,
        "settings": {
            "model": "resnet18 (timm, from scratch)",
            "image_size": args.size,
            "batch_size": args.batch_size,
            "steps": args.steps,
            "warmup_steps": args.warmup,
            "medalist_num_workers": args.workers,
        },
        "rows": {k: _rounded(r) for k, r in rows.items()},
        "amp_speedup": round(amp / fp32, 3),
        "medalist_vs_plain_amp": round(medalist / amp, 3),
        "seconds_total": round(time.perf_counter() - started, 1),
        "machine": _common.machine(),
    }
    path = _common.write_result("gpu", result, out)
    print(f"wrote {path}")
    print(f"medalist / plain bf16: {medalist / amp:.2f}")
    return result


if __name__ == "__main__":
    main()
