"""Does the grouping `medalist new` infers make a CV that predicts the score on unseen groups?

Not a speed bench: a quality figure for the group search (medalist.data.groups). The data set
is built from real photos, scikit-learn's two sample photos (china.jpg, flower.jpg) and
matplotlib's grace_hopper.jpg: each photo is cut into a 4 x 4 grid of regions, and each region
is a scene, a group: `--crops` random square crops of it (55-100% of the region's shorter
side, flipped at random), saved at 48 x 48 and named `<photo>-<row><col>_<k>.png`. The label is
the half of the photo the region lies in (top or bottom): partly learnable from what the
picture shows (sky, hair, ground), and memorisable from the scene. One region per row of each
photo (12 of the 48 scenes) is held out as the test set, so the test holds only unseen scenes,
as in a competition whose test set comes from other drives, patients or sessions.

`medalist new` writes the project (its inferred `cv.scheme` and `competition.group_column`,
see configs/baseline.yaml), then medalist's own train workflow trains two runs with a tiny
config (resnet18 from scratch at 32 px, `--epochs` epochs, 5 folds, one torch thread): the
config as written (group folds from the inferred grouping) and the same with random stratified
folds. Each run predicts the held-out scenes. The figure: how far each CV is from the held-out
accuracy; the inferred-group CV must be the closer.

    .venv/bin/python bench/groups.py [--crops 24] [--epochs 6] [--seed 0]
                                     [--out bench/results/groups.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine  # noqa: E402

GRID = 4
SAVE = 48
TINY = [
    "model.backbone=resnet18",
    "model.pretrained=false",
    "data.image_size=32",
    "data.cache=true",
    "data.num_workers=0",
    "train.batch_size=64",
    "train.lr=3.0e-3",
    "train.warmup_epochs=0",
    "train.threads=1",
    "track.backends=[none]",
]


def photos() -> dict[str, np.ndarray]:
    """The three photos that ship with scikit-learn and matplotlib, as RGB arrays."""
    import matplotlib
    from sklearn.datasets import load_sample_image

    hopper = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    return {
        "china": load_sample_image("china.jpg"),
        "flower": load_sample_image("flower.jpg"),
        "hopper": np.asarray(Image.open(hopper).convert("RGB")),
    }


def build(root: Path, private: Path, crops: int, seed: int) -> dict[str, int]:
    """The competition folder (train/, test/, csvs) and the held-out labels under `private`."""
    rng = np.random.default_rng(seed)
    for d in (root / "train", root / "test", private):
        d.mkdir(parents=True, exist_ok=True)
    train_rows, test_rows = [], []
    for name, img in photos().items():
        h, w = img.shape[:2]
        for r in range(GRID):
            held_col = int(rng.integers(GRID))  # one unseen scene per row of each photo
            for c in range(GRID):
                y0, y1, x0, x1 = (
                    r * h // GRID,
                    (r + 1) * h // GRID,
                    c * w // GRID,
                    (c + 1) * w // GRID,
                )
                side = min(y1 - y0, x1 - x0)
                for k in range(crops):
                    s = int(rng.integers(int(0.55 * side), side + 1))
                    y, x = int(rng.integers(y0, y1 - s + 1)), int(rng.integers(x0, x1 - s + 1))
                    tile = Image.fromarray(img[y : y + s, x : x + s]).resize((SAVE, SAVE))
                    if rng.random() < 0.5:
                        tile = tile.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
                    image_id = f"{name}-{r}{c}_{k:03d}"
                    row = {"id": image_id, "label": "top" if r < GRID // 2 else "bottom"}
                    held = c == held_col
                    tile.save(root / ("test" if held else "train") / f"{image_id}.png")
                    (test_rows if held else train_rows).append(row)
    pd.DataFrame(train_rows).to_csv(root / "train.csv", index=False)
    test = pd.DataFrame(test_rows)
    test[["id"]].to_csv(root / "test.csv", index=False)
    test.assign(label="top")[["id", "label"]].to_csv(root / "sample_submission.csv", index=False)
    test.to_csv(private / "test_labels.csv", index=False)
    return {"train_images": len(train_rows), "test_images": len(test_rows)}


def held_out_accuracy(private: Path, submission: Path) -> tuple[float, float]:
    """Accuracy on the held-out scenes, and its standard error across scenes (a scene tends
    to be all right or all wrong, so the scenes, not the images, are the sample)."""
    truth = pd.read_csv(private / "test_labels.csv")
    sub = pd.read_csv(submission).merge(truth, on="id", suffixes=("_pred", ""))
    right = (sub["label_pred"] == sub["label"]).groupby(sub["id"].str.split("_").str[0]).mean()
    return float((sub["label_pred"] == sub["label"]).mean()), float(right.sem())


def infer(comp: Path, project: Path) -> tuple[Path, dict]:
    """`medalist new` on the competition: the config path and what it inferred about groups."""
    from medalist.config import load_config
    from medalist.workflows.scaffold import create_project

    t0 = time.perf_counter()
    report = create_project(project, comp)
    seconds = time.perf_counter() - t0
    cfg = load_config(report.config_path)
    inferred = {
        "scheme": cfg.cv.scheme,
        "group_column": cfg.competition.group_column,
        "why": report.reasons.get("competition.group_column", ""),
        "config_comments": config_comments(report.config_path),
        "seconds": round(seconds, 1),
    }
    print(f"medalist new ({seconds:.1f} s): cv.scheme {inferred['scheme']}, "
          f"group_column {inferred['group_column']}\n  {inferred['why']}")  # fmt: skip
    return report.config_path, inferred


def train_and_score(config: Path, private: Path, epochs: int) -> dict[str, dict]:
    """Both runs (inferred group folds, random folds): CV, and accuracy on the held-out scenes."""
    from medalist.workflows.predict import predict
    from medalist.workflows.train import train

    common = [*TINY, f"train.epochs={epochs}"]
    variants = {
        "inferred_groups": common,
        "random_folds": [*common, "cv.scheme=stratified", "competition.group_column=null"],
    }
    rows = {}
    for name, overrides in variants.items():
        t0 = time.perf_counter()
        summary = train(config, overrides, name=name)
        held, held_se = held_out_accuracy(private, predict(summary.run.path).path)
        rows[name] = {
            "cv": float(summary.scores["mean"]),
            "cv_std": float(summary.scores["std"]),
            "fold_scores": summary.scores["folds"],
            "held_out": held,
            "held_out_scene_se": held_se,
            "gap": float(summary.scores["mean"]) - held,
            "seconds": round(time.perf_counter() - t0, 1),
        }
        r = rows[name]
        print(f"{name:<16} CV {r['cv']:.4f} +- {r['cv_std']:.4f}  "
              f"held-out {held:.4f} +- {held_se:.4f} (scenes' s.e.)  "
              f"gap {r['gap']:+.4f}  ({r['seconds']:.0f} s)")  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crops", type=int, default=24, help="crops per scene (48 scenes)")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0, help="crops and held-out scenes")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results/groups.json")
    args = ap.parse_args()
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    import torch

    torch.set_num_threads(1)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        comp, private = Path(tmp) / "competition", Path(tmp) / "private"
        sizes = build(comp, private, args.crops, args.seed)
        config, inferred = infer(comp, Path(tmp) / "project")
        rows = train_and_score(config, private, args.epochs)
    # One held-out score (both runs' models are trained alike; only their folds differ).
    held_out = float(np.mean([r["held_out"] for r in rows.values()]))
    err = {k: abs(r["cv"] - held_out) for k, r in rows.items()}
    closer = err["inferred_groups"] < err["random_folds"]
    figures = {
        "data": sizes | {"scenes": 3 * GRID * GRID, "crops_per_scene": args.crops},
        "inferred": inferred,
        "runs": rows,
        "held_out_mean": held_out,
        "cv_error": err,
        "inferred_groups_closer": closer,
        "settings": {"epochs": args.epochs, "seed": args.seed, "overrides": TINY},
        "seconds": round(time.perf_counter() - start, 1),
        "machine": machine(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    print(f"written: {args.out}")
    print(
        f"|CV - held-out|: inferred groups {err['inferred_groups']:.4f}, random folds "
        f"{err['random_folds']:.4f} (held-out {held_out:.4f}): inferred groups closer: {closer}"
    )


def config_comments(config: Path) -> list[str]:
    """The comment lines `medalist new` wrote about the groupings it found."""
    return [line.strip() for line in config.read_text().splitlines() if line.startswith("  #")]


if __name__ == "__main__":
    main()
