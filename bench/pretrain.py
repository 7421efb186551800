"""Weights to start from when no pretrained ones can be downloaded: a timm backbone trained on
a source set, saved as a weights file `model.pretrained: <path>` (and `bench/recipe.py
--weights`) loads, so the fine-tuning recipe can be measured on a machine with no internet.

The source set stands in for ImageNet: colour photos of objects, 10 classes (the 10,000
Fashion-MNIST *test* items, tinted and pasted on crops of three colour photos, as
`bench/recipe.py`'s `objects` set does with the training items, so none of the images the
fine-tuning sets draw is seen here). A plain timm loop (AdamW 1e-3, cosine, a mirror, and with
`--shift N` a random shift of up to N pixels, as ImageNet weights are trained with crops and
flips) trains it; the accuracy on a held-out tenth is printed and written with the file's hash.

    .venv/bin/python bench/pretrain.py --epochs 8 --out /tmp/resnet10t-objects.pth
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, write_result  # noqa: E402
from recipe import accuracy, fit_epoch, normalised, objects  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet10t")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--shift", type=int, default=0, help="random shift, pixels (0: none)")
    parser.add_argument("--out", required=True, help="the weights file to write")
    parser.add_argument("--result", default=None, help="the result JSON (default bench/results)")
    args = parser.parse_args()

    import timm
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    start = time.perf_counter()
    x, y = objects(10_000, np.random.default_rng(1), side=args.size, split="t10k")
    xt, yt = normalised(x), torch.tensor(y)
    held = torch.arange(len(xt)) % 10 == 0
    xtr, ytr, xva, yva = xt[~held], yt[~held], xt[held], yt[held]
    model = timm.create_model(args.backbone, num_classes=10)
    steps = args.epochs * (len(xtr) // args.batch)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)

    def augment(batch: torch.Tensor) -> torch.Tensor:
        flip = torch.rand(len(batch)) < 0.5
        batch[flip] = batch[flip].flip(-1)
        if not args.shift:
            return batch
        pad = F.pad(batch, [args.shift] * 4, mode="reflect")  # a random crop of each, padded
        at = torch.randint(0, 2 * args.shift + 1, (len(batch), 2)).tolist()
        crops = zip(pad, at, strict=True)
        return torch.stack([p[:, y : y + args.size, x : x + args.size] for p, (y, x) in crops])

    score = 0.0
    for epoch in range(args.epochs):
        fit_epoch(model, opt, sched, xtr, ytr, args.batch, smoothing=0.1, augment=augment)
        score = accuracy(model, xva, yva)
        print(f"epoch {epoch + 1}/{args.epochs}: held-out accuracy {score:.4f}", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), out)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    print(f"wrote {out} (sha256 {digest[:12]}), held-out accuracy {score:.4f}")
    payload = {
        "settings": vars(args),
        "held_out_accuracy": round(score, 4),
        "sha256": digest,
        "seconds": round(time.perf_counter() - start, 1),
    }
    write_result(
        "pretrain", {**payload, "machine": machine()}, Path(args.result) if args.result else None
    )


if __name__ == "__main__":
    main()
