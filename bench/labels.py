"""Does `medalist labels` find flipped labels, and does training without them help?

Builds a competition from a stratified subset of the Fashion-MNIST training images (``apt-get
install dataset-fashion-mnist``; IDX files under /usr/share/datasets/fashion-mnist), 28x28 grey
PNGs, with a known share of the labels (3% by default) flipped to another class drawn at random,
and a held-out test set of Fashion-MNIST test images whose labels are untouched. Then, as a user
would, through the command line: `medalist train` (the original run), `medalist labels` on it,
`medalist train --exclude <its label_issues.csv>` (the cleaned run), `medalist compare`, and
`medalist predict` for both runs.

Figures: precision and recall of the flipped rows among the flagged rows (k = the number
flagged) and among the k = number-flipped rows of lowest self-confidence; the same for "the
model's argmax differs from the label" as the naive baseline; the verdict of `compare` (its
folds differ, since the cleaned run lacks rows, so it is Welch's test), a paired verdict on the
rows both runs validate (the original's folds re-scored without the excluded rows), and the
accuracy of both runs on the held-out test set, whose labels are clean.

    .venv/bin/python bench/labels.py [--images 4000] [--flip 0.03] [--epochs 8]
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import machine, write_result
from PIL import Image

FMNIST = Path("/usr/share/datasets/fashion-mnist")
CLASSES = [
    "tshirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "boot",
]

CONFIG = """\
competition:
  metric: accuracy
cv: {{scheme: stratified, n_splits: {folds}, seed: 42}}
model: {{backbone: {backbone}, in_chans: 1}}
data:
  image_size: {size}
  augment: []
train:
  epochs: {epochs}
  batch_size: 64
  lr: 3.0e-3
  warmup_epochs: 0
  threads: {threads}
track: {{backends: [none]}}
"""


def read_idx(name: str) -> np.ndarray:
    with gzip.open(FMNIST / name) as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def stratified(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    per = n // len(CLASSES)
    return np.sort(
        np.concatenate([rng.permutation(np.flatnonzero(y == c))[:per] for c in range(10)])
    )


def build(root: Path, n_train: int, n_test: int, flip: float, seed: int) -> pd.DataFrame:
    """The competition under root/data; returns the train rows with their true label."""
    rng = np.random.default_rng(seed)
    x, y = read_idx("train-images-idx3-ubyte.gz"), read_idx("train-labels-idx1-ubyte.gz")
    xt, yt = read_idx("t10k-images-idx3-ubyte.gz"), read_idx("t10k-labels-idx1-ubyte.gz")
    take, take_test = stratified(y, n_train, rng), stratified(yt, n_test, rng)
    data = root / "data"
    for sub in ("train", "test"):
        (data / sub).mkdir(parents=True)
    rows = pd.DataFrame({"id": [f"tr{i:05d}" for i in take], "true": y[take]})
    flipped = rng.choice(len(rows), size=round(flip * len(rows)), replace=False)
    given = rows["true"].to_numpy().copy()
    given[flipped] = (given[flipped] + rng.integers(1, 10, len(flipped))) % 10
    rows["label"] = [CLASSES[c] for c in given]
    rows["true"] = [CLASSES[c] for c in rows["true"]]
    rows["flipped"] = False
    rows.loc[flipped, "flipped"] = True
    for i, name in zip(take, rows["id"], strict=True):
        Image.fromarray(x[i], mode="L").save(data / "train" / f"{name}.png")
    test = pd.DataFrame({"id": [f"te{i:05d}" for i in take_test]})
    for i, name in zip(take_test, test["id"], strict=True):
        Image.fromarray(xt[i], mode="L").save(data / "test" / f"{name}.png")
    rows[["id", "label"]].to_csv(data / "train.csv", index=False)
    test.to_csv(data / "test.csv", index=False)
    test.assign(label=CLASSES[0]).to_csv(data / "sample_submission.csv", index=False)
    test.assign(label=[CLASSES[c] for c in yt[take_test]]).to_csv(
        root / "test_truth.csv", index=False
    )
    return rows


def medalist(*args: str, cwd: Path) -> str:
    """Run the CLI as a user would; its output (stops the bench on failure)."""
    cmd = [sys.executable, "-c", "from medalist.cli import main; main()", *args]
    t = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    print(f"  medalist {' '.join(args)}: exit {r.returncode}, {time.perf_counter() - t:.0f} s")
    if r.returncode != 0:
        sys.exit(f"medalist {' '.join(args)} failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    return r.stdout


def precision_recall(chosen: set[str], truth: set[str]) -> dict[str, float | int]:
    hit = len(chosen & truth)
    return {
        "k": len(chosen),
        "found": hit,
        "precision": round(hit / len(chosen), 4) if chosen else float("nan"),
        "recall": round(hit / len(truth), 4) if truth else float("nan"),
    }


def detection(project: Path, rows: pd.DataFrame) -> dict:
    """Precision and recall of the flipped rows among the flagged and the top-ranked rows."""
    from medalist.analysis.labels import rank_all

    run = project / "runs" / "original"
    flipped = set(rows.loc[rows["flipped"], "id"])
    flagged = pd.read_csv(run / "analysis" / "label_issues.csv")
    oof = pd.read_csv(run / "oof.csv")
    classes = json.loads((run / "task.json").read_text())["classes"]
    probs = oof[[f"pred_{c}" for c in classes]].to_numpy()
    order = rank_all(oof["target"].to_numpy(), probs, "self_confidence")
    top = set(oof["id"].to_numpy()[order[: len(flipped)]])
    wrong = set(oof["id"][probs.argmax(axis=1) != oof["target"].to_numpy()])
    return {
        "flipped": len(flipped),
        "flagged": precision_recall(set(flagged["id"]), flipped),
        "top_k_flipped": precision_recall(top, flipped),
        "baseline_argmax_differs": precision_recall(wrong, flipped),
    }


def same_rows_verdict(project: Path) -> dict:
    """The original run's folds re-scored without the excluded rows, paired with the cleaned
    run's folds: the comparison on the rows both runs validate."""
    from medalist.analysis.compare import judge, paired_test

    runs = project / "runs"
    excluded = set(pd.read_csv(runs / "cleaned" / "excluded.csv")["id"].astype(str))
    oof = pd.read_csv(runs / "original" / "oof.csv")
    oof = oof[~oof["id"].astype(str).isin(excluded)]
    right = oof[[c for c in oof.columns if c.startswith("pred_")]].to_numpy().argmax(axis=1)
    per_fold = (pd.Series(right == oof["target"].to_numpy()).groupby(oof["fold"].to_numpy())).mean()
    cleaned = json.loads((runs / "cleaned" / "scores.json").read_text())["folds"]
    diffs = np.array(cleaned) - per_fold.to_numpy()
    mean, se, p = paired_test(diffs)
    verdict, reasons = judge(mean, p, None)
    return {
        "original_folds_on_kept_rows": [round(float(v), 4) for v in per_fold],
        "cleaned_folds": [round(float(v), 4) for v in cleaned],
        "mean_diff": round(mean, 4),
        "p_value": round(p, 4),
        "verdict": verdict,
        "reasons": reasons,
    }


def test_accuracy(project: Path, name: str) -> float:
    truth = pd.read_csv(project / "test_truth.csv").set_index("id")["label"]
    sub = pd.read_csv(project / "runs" / name / "submission.csv").set_index("id")["label"]
    return round(float((sub.loc[truth.index] == truth).mean()), 4)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=4000)
    ap.add_argument("--test-images", type=int, default=2000)
    ap.add_argument("--flip", type=float, default=0.03)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--backbone", default="test_resnet")
    ap.add_argument("--image-size", type=int, default=28)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="folder for labels.json")
    args = ap.parse_args()
    if not FMNIST.is_dir():
        sys.exit("Fashion-MNIST is missing: apt-get install dataset-fashion-mnist")
    from medalist.analysis.compare import compare_runs

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="medalist-labels-") as tmp:
        project = Path(tmp) / "proj"
        rows = build(project, args.images, args.test_images, args.flip, args.seed)
        (project / "configs").mkdir()
        config = project / "configs" / "fmnist.yaml"
        config.write_text(
            CONFIG.format(
                folds=args.folds,
                backbone=args.backbone,
                size=args.image_size,
                epochs=args.epochs,
                threads=args.threads,
            )
        )
        print(f"{len(rows)} training images, {int(rows['flipped'].sum())} labels flipped")
        medalist("train", str(config), "--name", "original", cwd=project)
        medalist("labels", "runs/original", cwd=project)
        found = detection(project, rows)
        issues = "runs/original/analysis/label_issues.csv"
        medalist("train", str(config), "--name", "cleaned", "--exclude", issues, cwd=project)
        compare_text = medalist("compare", "runs/original", "runs/cleaned", cwd=project)
        cmp = compare_runs(project / "runs" / "original", project / "runs" / "cleaned")
        for name in ("original", "cleaned"):
            medalist("predict", f"runs/{name}", cwd=project)
        payload = {
            "settings": vars(args) | {"out": None},
            "detection": found,
            "cv": {"original": round(cmp.mean_a, 4), "cleaned": round(cmp.mean_b, 4)},
            "compare": {
                "verdict": cmp.verdict,
                "paired": cmp.paired,
                "mean_diff": round(cmp.mean_diff, 4),
                "p_value": round(cmp.p_value, 4),
                "reasons": cmp.reasons,
                "output_tail": compare_text.strip().splitlines()[-3:],
            },
            "same_rows": same_rows_verdict(project),
            "test_accuracy": {n: test_accuracy(project, n) for n in ("original", "cleaned")},
            "seconds": round(time.perf_counter() - start, 1),
            "machine": machine(),
        }
    path = write_result("labels", payload, args.out)
    f, t = found["flagged"], found["top_k_flipped"]
    print(f"results: {path}")
    print(
        f"flagged {f['k']}: precision {f['precision']:.3f}, recall {f['recall']:.3f}; top "
        f"{t['k']}: precision {t['precision']:.3f}; compare: {cmp.verdict}; same rows: "
        f"{payload['same_rows']['verdict']}; test accuracy {payload['test_accuracy']['original']}"
        f" -> {payload['test_accuracy']['cleaned']}"
    )


if __name__ == "__main__":
    main()
