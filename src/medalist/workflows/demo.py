"""`medalist demo`: a real competition built from scikit-learn's handwritten digits, end to end.

1,797 8x8 scans, written as 32x32 PNGs in the Kaggle layout, 20% held out as the test set
with its labels kept outside the data folder so the demo can score its own submission.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from medalist.console import console
from medalist.io import write_csv, write_text

DEMO_CONFIG = """\
# The demo's config: a resnet18 from scratch on 32x32 grey digits, 5 stratified folds.
extends: baseline.yaml
model:
  backbone: resnet18
  in_chans: 1
data:
  image_size: 32
  mean: [0.5]
  std: [0.5]
  augment:
    - {name: Affine, translate_px: [-2, 2], rotate: [-10, 10], scale: [0.9, 1.1], p: 0.7}
train:
  epochs: 6
  batch_size: 64
  lr: 3.0e-3
  warmup_epochs: 1
"""


def build_digits_competition(data_dir: Path, private_dir: Path, seed: int = 0) -> None:
    """Write train/test PNGs, train.csv, test.csv and sample_submission.csv (labels kept aside)."""
    from PIL import Image
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0 * 255.0).clip(0, 255).astype(np.uint8)
    ids = np.array([f"digit_{i:04d}" for i in range(len(images))])
    train_idx, test_idx = train_test_split(
        np.arange(len(images)), test_size=0.2, stratify=digits.target, random_state=seed
    )
    for split, idx in (("train", train_idx), ("test", test_idx)):
        folder = data_dir / split
        folder.mkdir(parents=True, exist_ok=True)
        for i in idx:
            img = Image.fromarray(images[i], mode="L").resize((32, 32), Image.BICUBIC)
            img.save(folder / f"{ids[i]}.png")
    write_csv(
        data_dir / "train.csv",
        pd.DataFrame({"id": ids[train_idx], "label": digits.target[train_idx]}),
    )
    write_csv(data_dir / "test.csv", pd.DataFrame({"id": ids[test_idx]}))
    write_csv(data_dir / "sample_submission.csv", pd.DataFrame({"id": ids[test_idx], "label": 0}))
    write_csv(
        private_dir / "test_labels.csv",
        pd.DataFrame({"id": ids[test_idx], "label": digits.target[test_idx]}),
    )


def run_demo(out: Path, overrides: list[str] | None = None) -> dict[str, float]:
    """Build (or reuse) the demo project under `out`, then leak search, folds, train, predict,
    score. `overrides` (section.key=value) change the demo config, e.g. fewer epochs."""
    from medalist.config import load_config
    from medalist.workflows.leak import find_leaks
    from medalist.workflows.predict import predict
    from medalist.workflows.train import train

    start = time.perf_counter()
    out = out.resolve()
    data_dir, private = out / "competition", out / "private"
    config = out / "configs" / "demo.yaml"
    if not config.is_file():
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            from medalist.errors import UserError

            raise UserError(f"{out} exists and is not a medalist demo: choose another --out")
        console.print(f"building the digits competition in {data_dir}")
        staging = out.parent / f".{out.name}-staging"
        build_digits_competition(staging / "competition", staging / "private")
        _scaffold(out, staging)
        write_text(config, DEMO_CONFIG)
    overrides = list(overrides or [])
    leaks = find_leaks(load_config(config, overrides)).counts
    console.print(
        f"leak search: {leaks['pairs']} near-duplicate pairs, {leaks['cross_fold']} across "
        f"folds, {leaks['train_test']} between train and test (leak/pairs.html)"
    )
    summary = train(config, overrides, name=f"demo-{time.strftime('%Y%m%d-%H%M%S')}")
    scores = summary.scores or {}
    result = predict(summary.run.path)
    truth = pd.read_csv(private / "test_labels.csv")
    merged = result.submission.merge(truth, on="id", suffixes=("_pred", ""))
    test_acc = float((merged["label_pred"].astype(int) == merged["label"]).mean())
    seconds = time.perf_counter() - start
    console.print()
    console.print(
        f"CV accuracy: {scores['mean']:.4f} +- {scores['std']:.4f} "
        f"over {len(scores['folds'])} folds"
    )
    console.print(f"held-out test accuracy: {test_acc:.4f} ({len(merged)} images)")
    console.print(f"time: {seconds:.0f}s")
    console.print(f"project: {out}")
    console.print(f"run: {summary.run.path}")
    console.print(f"submission: {result.path}")
    console.print("next: medalist runs --project " + str(out))
    return {
        "cv_mean": scores["mean"],
        "cv_std": scores["std"],
        "test_accuracy": test_acc,
        "seconds": seconds,
        "leak_pairs": leaks["pairs"],
    }


def _scaffold(out: Path, staging: Path) -> None:
    """A project like any other, with the competition moved inside it."""
    import shutil

    from medalist.workflows.scaffold import create_project

    create_project(out, staging / "competition", name="digits")
    shutil.move(str(staging / "competition"), str(out / "competition"))
    shutil.move(str(staging / "private"), str(out / "private"))
    shutil.rmtree(staging, ignore_errors=True)
    link = out / "data"
    if link.is_symlink():
        link.unlink()
        link.symlink_to("competition")
