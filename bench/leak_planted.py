"""Precision and recall of `medalist leak` on planted near duplicates of real images.

Builds a competition from the Fashion-MNIST test images (``apt-get install
dataset-fashion-mnist``; IDX files under /usr/share/datasets/fashion-mnist), upscaled to
64x64: all 10,000 go to train; a known subset is copied with one change each (JPEG
re-encoding, resizing, a crop of 1-3 pixels per side, a shift of 1-3 pixels, a brightness
change, or crop + brightness + JPEG together), half of the copies into train and half into
test; test also gets 1,000 other Fashion-MNIST images that are not copies. Then runs the
`medalist leak` workflow and scores its pairs against the planted ones. Every pair that is not
planted counts as a false positive, even where Fashion-MNIST itself holds two near-identical
items (the script counts those separately).

    .venv/bin/python bench/leak_planted.py [--copies 2400] [--out bench/results/leak_planted.json]
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageEnhance

FMNIST = Path("/usr/share/datasets/fashion-mnist")
SIZE = 64
KINDS = ("jpeg", "resize", "crop", "shift", "brightness", "crop+brightness+jpeg")
THRESHOLDS = (0.003, 0.004, 0.005, 0.006, 0.007, 0.008, 0.01, 0.015, 0.02, 0.03)

CONFIG = """\
competition:
  image_ext: .png
  metric: accuracy
cv: {scheme: stratified, n_splits: 5, seed: 42}
model: {backbone: test_resnet}
track: {backends: [none]}
"""


def read_idx(name: str) -> np.ndarray:
    with gzip.open(FMNIST / name) as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def change(img: Image.Image, kind: str, rng: np.random.Generator) -> tuple[Image.Image, str]:
    """A copy of `img` with one planted change; returns (image, file extension)."""
    if kind == "jpeg":
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=int(rng.integers(60, 91)))
        return Image.open(io.BytesIO(buf.getvalue())), ".jpg"
    if kind == "resize":
        s = int(SIZE * rng.choice([0.75, 1.25, 1.5, 2.0]))
        return img.resize((s, s), Image.BILINEAR), ".png"
    if kind == "crop":
        left, top, right, bottom = (int(v) for v in rng.integers(1, 4, 4))
        return img.crop((left, top, SIZE - right, SIZE - bottom)), ".png"
    if kind == "shift":
        a = np.asarray(img)
        dx, dy = (int(v) for v in rng.integers(1, 4, 2) * rng.choice([-1, 1], 2))
        out = np.zeros_like(a)
        h, w = a.shape[:2]
        out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = a[
            max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
        ]
        return Image.fromarray(out), ".png"
    if kind == "brightness":
        return ImageEnhance.Brightness(img).enhance(
            float(rng.choice([0.8, 0.85, 1.15, 1.2]))
        ), ".png"
    img, _ = change(img, "crop", rng)
    img, _ = change(img, "brightness", rng)
    return change(img, "jpeg", rng)


def build(root: Path, n_copies: int, seed: int = 0) -> tuple[Path, pd.DataFrame]:
    """The planted competition under `root`; returns its config and the planted pairs."""
    rng = np.random.default_rng(seed)
    x, y = read_idx("t10k-images-idx3-ubyte.gz"), read_idx("t10k-labels-idx1-ubyte.gz")
    others = read_idx("train-images-idx3-ubyte.gz")[:1000]
    for d in ("data/train", "data/test", "configs"):
        (root / d).mkdir(parents=True, exist_ok=True)
    up = [Image.fromarray(a).resize((SIZE, SIZE), Image.BICUBIC) for a in x]
    train_rows = []
    for i, img in enumerate(up):
        img.save(root / f"data/train/o{i:05d}.png")
        train_rows.append({"id": f"o{i:05d}", "image": f"o{i:05d}.png", "label": int(y[i])})
    test_rows, planted = [], []
    for j, i in enumerate(rng.choice(len(up), n_copies, replace=False)):
        kind = KINDS[j % len(KINDS)]
        img, ext = change(up[i], kind, rng)
        split = "train" if j % 2 == 0 else "test"
        cid = f"c{j:05d}"
        img.save(root / f"data/{split}/{cid}{ext}")
        row = {"id": cid, "image": f"{cid}{ext}"}
        (train_rows if split == "train" else test_rows).append({**row, "label": int(y[i])})
        planted.append({"original": f"o{i:05d}", "copy": cid, "kind": kind, "split": split})
    for k, a in enumerate(others):
        Image.fromarray(a).resize((SIZE, SIZE), Image.BICUBIC).save(
            root / f"data/test/x{k:05d}.png"
        )
        test_rows.append({"id": f"x{k:05d}", "image": f"x{k:05d}.png", "label": 0})
    pd.DataFrame(train_rows).to_csv(root / "data/train.csv", index=False)
    test = pd.DataFrame(test_rows)
    test[["id", "image"]].to_csv(root / "data/test.csv", index=False)
    test[["id", "label"]].to_csv(root / "data/sample_submission.csv", index=False)
    cfg = root / "configs/baseline.yaml"
    cfg.write_text(CONFIG.replace("image_ext: .png", "image_column: image"))
    return cfg, pd.DataFrame(planted)


def score(pairs: pd.DataFrame, planted: pd.DataFrame, threshold: float) -> dict:
    found = pairs[pairs["distance"] <= threshold]
    keys = {frozenset(p) for p in zip(found["id_a"], found["id_b"], strict=True)}
    truth = {frozenset(p) for p in zip(planted["original"], planted["copy"], strict=True)}
    tp = len(keys & truth)
    hit = planted.apply(lambda r: frozenset((r["original"], r["copy"])) in keys, axis=1)
    false = [k for k in keys - truth]
    both_orig = sum(all(i.startswith("o") for i in k) for k in false)
    return {
        "threshold": threshold,
        "pairs_found": len(keys),
        "true_positives": tp,
        "false_positives": len(false),
        "false_positives_between_two_source_images": both_orig,
        "precision": tp / max(len(keys), 1),
        "recall": tp / len(truth),
        "recall_by_kind": {k: float(hit[planted["kind"] == k].mean()) for k in KINDS},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=2400)
    ap.add_argument("--workdir", type=Path, help="build (or reuse) the planted set here")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results/leak_planted.json")
    args = ap.parse_args()
    if not FMNIST.is_dir():
        sys.exit("Fashion-MNIST is missing: apt-get install dataset-fashion-mnist")
    from medalist.config import load_config
    from medalist.data.leak import DEFAULT_THRESHOLD
    from medalist.workflows.leak import find_leaks

    with tempfile.TemporaryDirectory() as tmp:
        root = args.workdir or Path(tmp) / "planted"
        if (root / "planted.csv").is_file():
            cfg_path, planted = root / "configs/baseline.yaml", pd.read_csv(root / "planted.csv")
        else:
            cfg_path, planted = build(root, args.copies)
            planted.to_csv(root / "planted.csv", index=False)
        cfg = load_config(cfg_path)
        t0 = time.perf_counter()
        report = find_leaks(cfg, threshold=max(THRESHOLDS))
        seconds = time.perf_counter() - t0
    n_images = report.counts["train_images"] + len(planted) // 2 + 1000
    curve = [score(report.pairs, planted, t) for t in THRESHOLDS]
    default = score(report.pairs, planted, DEFAULT_THRESHOLD)
    result = {
        "data": "Fashion-MNIST test images upscaled to 64x64, planted copies",
        "images": n_images,
        "planted_pairs": len(planted),
        "kinds": list(KINDS),
        "default_threshold": DEFAULT_THRESHOLD,
        "at_default": default,
        "curve": curve,
        "seconds": {"total": seconds, **report.seconds},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{n_images} images, {len(planted)} planted pairs, {seconds:.1f} s")
    print("threshold  found  TP     FP  (src-src)  precision  recall  " + "  ".join(KINDS))
    for r in curve:
        mark = " <- default" if r["threshold"] == DEFAULT_THRESHOLD else ""
        by_kind = "  ".join(f"{r['recall_by_kind'][k]:.3f}" for k in KINDS)
        print(
            f"{r['threshold']:<9}  {r['pairs_found']:<5}  {r['true_positives']:<5}  "
            f"{r['false_positives']:<4}  ({r['false_positives_between_two_source_images']:<4})    "
            f"{r['precision']:.3f}      {r['recall']:.3f}   {by_kind}{mark}"
        )
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
