"""Helpers shared by the benches: a digits competition, timing statistics, the results file.

The benches are scripts, not part of the package: they import medalist like a user would and
write their figures to bench/results/<name>.json.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"


def median(values: Sequence[float]) -> float:
    """The median of `values` (the figure every bench reports)."""
    return float(statistics.median(values))


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, min and max of a list of timings, rounded for the JSON file."""
    return {
        "median": round(median(values), 4),
        "min": round(float(min(values)), 4),
        "max": round(float(max(values)), 4),
        "runs": [round(float(v), 4) for v in values],
    }


def machine() -> dict[str, Any]:
    """What the figures were measured on: CPU count, load, library versions, date."""
    import torch

    info: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        info["load_average_1m"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    info["git"] = git_commit()
    return info


def git_commit() -> str | None:
    """The repository's commit, with "+dirty" when tracked files have uncommitted changes."""
    import subprocess

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", "-C", str(BENCH_DIR), *args], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "--short", "HEAD")
    if commit is None:
        return None
    return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def write_result(name: str, payload: dict[str, Any], out_dir: Path | None = None) -> Path:
    """Write `payload` as <out_dir or bench/results>/<name>.json (atomically, via medalist.io)."""
    from medalist.io import write_json

    path = (out_dir or RESULTS_DIR) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, payload)
    return path


def write_digits_competition(root: Path, n_images: int, size: int, seed: int = 0) -> Path:
    """A Kaggle-layout competition from scikit-learn's handwritten digits (real 8x8 scans).

    `n_images` digits (stratified sample) written as `size` x `size` greyscale PNGs under
    root/train with train.csv; a few test images, test.csv and sample_submission.csv complete
    the layout. Returns `root`.
    """
    import pandas as pd
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(digits.target))
    take = order[: min(n_images, len(order))]
    test = order[len(order) - 20 :]
    images = (digits.images / 16.0 * 255.0).clip(0, 255).astype(np.uint8)
    for split, idx in (("train", take), ("test", test)):
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        for i in idx:
            img = Image.fromarray(images[i], mode="L").resize((size, size), Image.BICUBIC)
            img.save(folder / f"d{i:04d}.png")
    ids = [f"d{i:04d}" for i in take]
    pd.DataFrame({"id": ids, "label": digits.target[take]}).to_csv(root / "train.csv", index=False)
    test_ids = [f"d{i:04d}" for i in test]
    pd.DataFrame({"id": test_ids}).to_csv(root / "test.csv", index=False)
    pd.DataFrame({"id": test_ids, "label": 0}).to_csv(root / "sample_submission.csv", index=False)
    return root


def read_fold_score(run_dir: Path, fold: int = 0) -> float:
    """The score of a finished fold, from its result.json."""
    from medalist.io import read_json

    return float(read_json(run_dir / f"fold_{fold}" / "result.json")["score"])
