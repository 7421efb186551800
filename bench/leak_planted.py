"""Precision and recall of `medalist leak` on planted near duplicates, against imagededup's PHash.

Two sets of real images, each with 2,400 planted copies (one change each, 300 per kind):

- grey: the 10,000 Fashion-MNIST test images (``apt-get install dataset-fashion-mnist``; IDX
  files under /usr/share/datasets/fashion-mnist), upscaled to 64x64, in train; test gets
  1,000 Fashion-MNIST training images that are not copies.
- colour: 11,000 crops of scikit-learn's two sample photos (``china.jpg``, ``flower.jpg``,
  each turned by 0, 90, 180 and 270 degrees; not mirrored, as a mirrored petal is the same
  petal): 32x32 squares at scales 1 and 0.75, 64x64 squares at those and 0.5 (so no crop
  covers the region of one of the other size), on a grid of a third of their side, so two
  crops overlap by two thirds at most. Crops that are mostly featureless (sky, blurred
  background: a grey standard deviation under 10, or a quarter of the crop under 2 once a
  Gaussian blur of one pixel is subtracted) are left out, as no one could tell two of them
  apart. 10,000 in train, 1,000 in test.

The kinds of change: JPEG re-encoding at quality 70-95 and, as its own kind, 50-70; a resize
(x0.75 to x2); a resize then JPEG 50-90; a crop of 1-3 pixels per side and a shift of 1-3
pixels (1-2 on 32-pixel images); a brightness change (x0.8 to x1.2); crop + brightness +
JPEG. Half of the copies go to train, half to test. The bench scores the pairs of the
`medalist leak` workflow at its default setting, the curve over fixed thresholds, and
imagededup's PHash at its defaults (``find_duplicates``, Hamming distance <= 10 of 64 bits)
on the same files. imagededup is not a dependency of medalist: the bench installs it into a
throwaway virtual environment (``pip install --no-deps imagededup``, the rest taken from the
running environment) and says so when it cannot. Every pair that is not planted counts as a
false positive, even where the source images themselves hold two near-identical pictures
(counted separately).

    .venv/bin/python bench/leak_planted.py [--sets grey,colour] [--copies 2400] [--workdir DIR]
                                           [--no-baseline] [--out bench/results/leak_planted.json]
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageEnhance

FMNIST = Path("/usr/share/datasets/fashion-mnist")
KINDS = (
    "jpeg 70-95",
    "jpeg 50-70",
    "resize",
    "resize+jpeg",
    "crop",
    "shift",
    "brightness",
    "crop+brightness+jpeg",
)
THRESHOLDS = (0.003, 0.005, 0.007, 0.01, 0.015, 0.02, 0.03, 0.05)
N_SOURCES, N_OTHERS = 10_000, 1_000
MIN_STD, MIN_DETAIL = 10.0, 2.0

CONFIG = """\
competition:
  image_column: image
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


def jpeg(img: Image.Image, lo: int, hi: int, rng: np.random.Generator) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=int(rng.integers(lo, hi + 1)))
    return Image.open(io.BytesIO(buf.getvalue()))


def change(img: Image.Image, kind: str, rng: np.random.Generator) -> tuple[Image.Image, str]:
    """A copy of `img` with one planted change; returns (image, file extension)."""
    w, h = img.size
    px = max(1, round(3 * min(w, h) / 64))  # 1-3 pixels at 64, 1-2 at 32
    if kind == "jpeg 70-95":
        return jpeg(img, 70, 95, rng), ".jpg"
    if kind == "jpeg 50-70":
        return jpeg(img, 50, 70, rng), ".jpg"
    if kind == "resize":
        f = float(rng.choice([0.75, 1.25, 1.5, 2.0]))
        return img.resize((round(w * f), round(h * f)), Image.BILINEAR), ".png"
    if kind == "resize+jpeg":
        img, _ = change(img, "resize", rng)
        return jpeg(img, 50, 90, rng), ".jpg"
    if kind == "crop":
        left, top, right, bottom = (int(v) for v in rng.integers(1, px + 1, 4))
        return img.crop((left, top, w - right, h - bottom)), ".png"
    if kind == "shift":
        a = np.asarray(img)
        dx, dy = (int(v) for v in rng.integers(1, px + 1, 2) * rng.choice([-1, 1], 2))
        out = np.zeros_like(a)
        out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = a[
            max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
        ]
        return Image.fromarray(out), ".png"
    if kind == "brightness":
        f = float(rng.choice([0.8, 0.85, 1.15, 1.2]))
        return ImageEnhance.Brightness(img).enhance(f), ".png"
    img, _ = change(img, "crop", rng)
    img, _ = change(img, "brightness", rng)
    return jpeg(img, 60, 90, rng), ".jpg"


def grey_sources() -> tuple[list[Image.Image], list[Image.Image], np.ndarray]:
    """Fashion-MNIST at 64x64: train originals, test-only others, labels of the originals."""
    x, y = read_idx("t10k-images-idx3-ubyte.gz"), read_idx("t10k-labels-idx1-ubyte.gz")
    others = read_idx("train-images-idx3-ubyte.gz")[:N_OTHERS]
    up = [Image.fromarray(a).resize((64, 64), Image.BICUBIC) for a in x]
    rest = [Image.fromarray(a).resize((64, 64), Image.BICUBIC) for a in others]
    return up, rest, y.astype(int)


def colour_sources(seed: int = 0) -> tuple[list[Image.Image], list[Image.Image], np.ndarray]:
    """Crops of scikit-learn's sample photos: train originals, test-only others, labels."""
    import cv2
    from sklearn.datasets import load_sample_images

    def textured(g: np.ndarray) -> bool:
        detail, h = g - cv2.GaussianBlur(g, (0, 0), 1.0), len(g) // 2
        quarters = [detail[i : i + h, j : j + h].std() for i in (0, h) for j in (0, h)]
        return g.std() >= MIN_STD and min(quarters) >= MIN_DETAIL

    crops, labels = [], []
    for k, photo in enumerate(load_sample_images().images):
        for quarter_turns in range(4):  # not mirrored: a mirrored petal is the same petal
            base = Image.fromarray(np.ascontiguousarray(np.rot90(photo, quarter_turns)))
            for scale in (1.0, 0.75, 0.5):
                im = base.resize((round(base.width * scale), round(base.height * scale)))
                a, grey = np.asarray(im), np.asarray(im.convert("L"), np.float32)
                # A 32-pixel crop at half scale would be a resized copy of a 64-pixel one.
                for s in (32, 64) if scale != 0.5 else (64,):
                    for y in range(0, a.shape[0] - s + 1, s // 3):
                        for x in range(0, a.shape[1] - s + 1, s // 3):
                            if textured(grey[y : y + s, x : x + s]):
                                crops.append(a[y : y + s, x : x + s])
                                labels.append(k)
    pick = np.random.default_rng(seed).permutation(len(crops))[: N_SOURCES + N_OTHERS]
    imgs = [Image.fromarray(np.ascontiguousarray(crops[i])) for i in pick]
    return imgs[:N_SOURCES], imgs[N_SOURCES:], np.array(labels)[pick[:N_SOURCES]]


def build(root: Path, which: str, n_copies: int, seed: int = 0) -> tuple[Path, pd.DataFrame]:
    """The planted competition under `root`; returns its config and the planted pairs."""
    rng = np.random.default_rng(seed)
    originals, others, y = grey_sources() if which == "grey" else colour_sources(seed)
    for d in ("data/train", "data/test", "configs"):
        (root / d).mkdir(parents=True, exist_ok=True)
    train_rows = []
    for i, img in enumerate(originals):
        img.save(root / f"data/train/o{i:05d}.png")
        train_rows.append({"id": f"o{i:05d}", "image": f"o{i:05d}.png", "label": int(y[i])})
    test_rows, planted = [], []
    for j, i in enumerate(rng.choice(len(originals), n_copies, replace=False)):
        kind = KINDS[j % len(KINDS)]
        img, ext = change(originals[i], kind, rng)
        split = "train" if (j // len(KINDS)) % 2 == 0 else "test"
        cid = f"c{j:05d}"
        img.save(root / f"data/{split}/{cid}{ext}")
        row = {"id": cid, "image": f"{cid}{ext}"}
        (train_rows if split == "train" else test_rows).append({**row, "label": int(y[i])})
        planted.append({"original": f"o{i:05d}", "copy": cid, "kind": kind, "split": split})
    for k, img in enumerate(others):
        img.save(root / f"data/test/x{k:05d}.png")
        test_rows.append({"id": f"x{k:05d}", "image": f"x{k:05d}.png", "label": 0})
    pd.DataFrame(train_rows).to_csv(root / "data/train.csv", index=False)
    test = pd.DataFrame(test_rows)
    test[["id", "image"]].to_csv(root / "data/test.csv", index=False)
    test[["id", "label"]].to_csv(root / "data/sample_submission.csv", index=False)
    cfg = root / "configs/baseline.yaml"
    cfg.write_text(CONFIG)
    return cfg, pd.DataFrame(planted)


def score(keys: set[frozenset], planted: pd.DataFrame) -> dict:
    """Precision, recall and recall per kind of a set of found pairs of ids."""
    truth = {frozenset(p) for p in zip(planted["original"], planted["copy"], strict=True)}
    hit = planted.apply(lambda r: frozenset((r["original"], r["copy"])) in keys, axis=1)
    false = keys - truth
    return {
        "pairs_found": len(keys),
        "true_positives": len(keys & truth),
        "false_positives": len(false),
        "false_positives_between_two_source_images": sum(
            all(i[0] in "ox" for i in k) for k in false
        ),
        "precision": len(keys & truth) / max(len(keys), 1),
        "recall": len(keys & truth) / len(truth),
        "recall_by_kind": {k: float(hit[planted["kind"] == k].mean()) for k in KINDS},
    }


BASELINE = """\
import json, sys
from pathlib import Path
from imagededup.methods import PHash
root, out = Path(sys.argv[1]), Path(sys.argv[2])
phash = PHash(verbose=False)
codes = {}
for split in ("train", "test"):
    enc = phash.encode_images(image_dir=root / "data" / split, num_enc_workers=1)
    codes.update({Path(k).stem: v for k, v in enc.items()})
dups = phash.find_duplicates(encoding_map=codes, num_dist_workers=1)
out.write_text(json.dumps([[a, b] for a, found in dups.items() for b in found if a < b]))
"""


def imagededup_env(where: Path) -> tuple[Path | None, str]:
    """A throwaway venv with imagededup (no deps; the rest seen from this interpreter)."""
    venv = where / "imagededup-venv"
    py = venv / "bin/python"
    if py.is_file():
        return py, "reused"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        where_site = [py, "-c", "import site; print(site.getsitepackages()[0])"]
        site = Path(subprocess.check_output(where_site, text=True).strip())
        # The venv sees this interpreter's packages (numpy, scipy, torch...) after its own.
        paths = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
        (site / "parent_env.pth").write_text("\n".join(sorted(paths)) + "\n")
        pip = [py, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps"]
        subprocess.run([*pip, "imagededup"], check=True, capture_output=True, text=True)
        check = subprocess.run([py, "-c", "import pywt"], capture_output=True)
        if check.returncode != 0:
            subprocess.run([*pip, "PyWavelets"], check=True, capture_output=True, text=True)
        subprocess.run(
            [py, "-c", "from imagededup.methods import PHash"], check=True, capture_output=True
        )
    except (subprocess.CalledProcessError, OSError) as exc:
        err = getattr(exc, "stderr", "") or ""
        err = err.decode() if isinstance(err, bytes) else err
        return None, f"{exc}; {err.strip().splitlines()[-1] if err.strip() else ''}"
    return py, "installed"


def run_imagededup(py: Path, root: Path) -> tuple[set[frozenset] | None, float, str]:
    """imagededup PHash's pairs at its default threshold, its seconds, and a note."""
    out = root / "imagededup_pairs.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    r = subprocess.run(
        [py, "-c", BASELINE, str(root), str(out)], capture_output=True, text=True, env=env
    )
    seconds = time.perf_counter() - t0
    if r.returncode != 0:
        return None, seconds, (r.stderr.strip().splitlines() or ["failed"])[-1]
    return {frozenset(p) for p in json.loads(out.read_text())}, seconds, "ok"


def medalist_run(root: Path, planted: pd.DataFrame) -> dict:
    """Fingerprints and search as `medalist leak` runs them; scores at the default and a curve."""
    from medalist.config import load_config
    from medalist.data.leak import fingerprint_images, near_duplicates
    from medalist.data.tables import load_tables

    tables = load_tables(load_config(root / "configs/baseline.yaml"))
    paths = list(tables.train_paths) + list(tables.test_paths)
    ids = np.array(tables.train["id"].tolist() + tables.test["id"].tolist(), dtype=object)
    t0 = time.perf_counter()
    fp = fingerprint_images(paths)
    t1 = time.perf_counter()
    near = near_duplicates(fp)
    t2 = time.perf_counter()
    cand, dist = near.candidates, near.distances

    def keys(t: float) -> set[frozenset]:
        keep = dist <= t
        return {frozenset(p) for p in zip(ids[cand[keep, 0]], ids[cand[keep, 1]], strict=True)}

    return {
        "threshold": near.threshold.value,
        "threshold_note": near.threshold.note,
        "at_default": score(keys(near.threshold.value), planted),
        "curve": [{"threshold": t, **score(keys(t), planted)} for t in THRESHOLDS],
        "candidates": len(cand),
        "seconds": {"fingerprint": t1 - t0, "search": t2 - t1},
    }


def one_set(which: str, root: Path, copies: int, py: Path | None) -> dict:
    """Build (or reuse) one planted set under `root`; medalist's and imagededup's scores."""
    if (root / "planted.csv").is_file():
        planted = pd.read_csv(root / "planted.csv")
    else:
        _, planted = build(root, which, copies)
        planted.to_csv(root / "planted.csv", index=False)
    out = {"images": N_SOURCES + N_OTHERS + len(planted), "planted_pairs": len(planted)}
    out["medalist"] = medalist_run(root, planted)
    if py is not None:
        found, seconds, note = run_imagededup(py, root)
        out["imagededup_phash"] = (
            {**score(found, planted), "seconds": seconds}
            if found is not None
            else {"available": False, "reason": note}
        )
    return out


def report(name: str, res: dict) -> None:
    """Print one set's table: medalist at its default, imagededup, then the curve."""
    m = res["medalist"]
    print(f"\n{name}: {res['images']} images, {res['planted_pairs']} planted pairs")
    print(m["threshold_note"])
    print(f"{'':18}{'precision':>10}{'recall':>8}  " + "  ".join(f"{k:>10}" for k in KINDS))
    rows = [(f"medalist {m['threshold']:.4f}", m["at_default"])]
    base = res.get("imagededup_phash")
    if base and base.get("available", True):
        rows.append(("imagededup PHash", base))
    for label, r in rows:
        kinds = "  ".join(f"{r['recall_by_kind'][k]:>10.3f}" for k in KINDS)
        print(f"{label:18}{r['precision']:>10.3f}{r['recall']:>8.3f}  {kinds}")
    if base and not base.get("available", True):
        print(f"imagededup PHash: not run ({base['reason']})")
    print("curve: " + ", ".join(
        f"{c['threshold']}: P {c['precision']:.3f} R {c['recall']:.3f}" for c in m["curve"]
    ))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default="grey,colour")
    ap.add_argument("--copies", type=int, default=2400)
    ap.add_argument("--workdir", type=Path, help="build (or reuse) the planted sets here")
    ap.add_argument("--no-baseline", action="store_true", help="skip imagededup")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results/leak_planted.json")
    args = ap.parse_args()
    sets = args.sets.split(",")
    if "grey" in sets and not FMNIST.is_dir():
        sys.exit("Fashion-MNIST is missing: apt-get install dataset-fashion-mnist")
    result = {"kinds": list(KINDS), "machine": f"{os.cpu_count()} cores", "sets": {}}
    with tempfile.TemporaryDirectory() as tmp:
        where = args.workdir or Path(tmp)
        py, note = (None, "skipped (--no-baseline)")
        if not args.no_baseline:
            py, note = imagededup_env(where)
        result["imagededup"] = note if py is None else f"imagededup PHash ({note})"
        if py is None:
            print(f"imagededup baseline unavailable: {note}")
        for which in sets:
            t0 = time.perf_counter()
            res = one_set(which, where / which, args.copies, py)
            res["seconds_total"] = time.perf_counter() - t0
            result["sets"][which] = res
            report(which, res)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
