"""How the near-duplicate search scales from 10k to 100k images, against faiss's index.

Data: Fashion-MNIST's 60,000 training images plus 40,000 of them mirrored (100,000 distinct
pictures, many of them near-identical items), upscaled to 64x64. Their fingerprints are made
once, in memory, by the code `medalist leak` runs after decoding a file
(`medalist.data.leak.fingerprint_grey`, in a thread pool); the hashing rate from PNG files
is measured on 2,000 of them through `fingerprint_images`. Then for n = 10k, 25k, 50k, 100k:

- hash search: pairs of 256-bit perceptual hashes within HASH_RADIUS bits, by medalist's
  multi-index hashing (`hamming_pairs`, median of 5 runs) and, side by side on the same
  codes, by faiss's `IndexBinaryMultiHash` (8 tables of 16 bits, range search; median of 3),
  the baseline it replaced;
- neighbours: each image's nearest spectra and nearest 8x8 thumbnails (the tight and the
  near tier of `candidate_pairs`; exact up to EXACT_KNN_MAX, HNSW above);
- verification of all candidate pairs (blurred-thumbnail cross-correlation) and the
  threshold from the data, i.e. everything `medalist leak` does after fingerprinting.

The growth exponent is log(t(100k) / t(10k)) / log(10): 1.0 is linear, 2.0 all-pairs.

    .venv/bin/python bench/leak.py [--sizes 10000,25000,50000,100000]
                                   [--out bench/results/leak.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from leak_planted import read_idx
from PIL import Image


def faiss_mih_pairs(codes: np.ndarray, radius: int) -> int:
    """The baseline: faiss's multi-index hashing range search; returns the pair count."""
    import faiss

    n, nbytes = codes.shape
    index = faiss.IndexBinaryMultiHash(nbytes * 8, 8, 16)
    index.add(codes)
    lims, _, ids = index.range_search(codes, radius + 1)
    rows = np.repeat(np.arange(n), np.diff(lims).astype(np.int64))
    return int(((rows != ids) & (rows < ids)).sum())


def knn_both(fp) -> np.ndarray:
    """The two neighbour searches of `candidate_pairs`: spectra and 8x8 thumbnails."""
    from medalist.data import leak as L

    return np.concatenate(
        [
            L.knn_pairs(fp.spectra, L.SPECTRUM_K, L.SPECTRUM_RADIUS, L.NEAR_K, L.NEAR_RADIUS),
            L.knn_pairs(fp.lowres, L.LOWRES_K, L.LOWRES_RADIUS, L.NEAR_K, L.NEAR_RADIUS),
        ]
    )


def timed(fn, *args, repeats: int = 1):
    """(median seconds over `repeats` calls, the last result)."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn(*args)
        times.append(time.perf_counter() - t)
    return float(np.median(times)), out


def exponent(rows: list[dict], key: str) -> float | None:
    first, last = rows[0], rows[-1]
    if first[key] <= 0 or last["n"] == first["n"]:
        return None
    return math.log(last[key] / first[key]) / math.log(last["n"] / first["n"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,25000,50000,100000")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results/leak.json")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    from medalist.data import leak as L
    from medalist.data.leak_match import choose_threshold

    x = read_idx("train-images-idx3-ubyte.gz")
    x = np.concatenate([x, x[:, :, ::-1]])[: max(sizes)]
    up = [Image.fromarray(a).resize((64, 64), Image.BICUBIC) for a in x[:2000]]
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, img in enumerate(up):
            paths.append(Path(tmp) / f"{i}.png")
            img.save(paths[-1])
        seconds, _ = timed(L.fingerprint_images, paths)
        file_rate = len(paths) / seconds
    print(f"hashing rate: {file_rate:.0f} images/s from 64x64 PNG files ({os.cpu_count()} cores)")

    scale = L.SPECTRUM_SIZE / 64

    def one(a: np.ndarray):
        return L.fingerprint_grey(Image.fromarray(a).resize((64, 64), Image.BICUBIC), scale)

    t = time.perf_counter()
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        parts = list(pool.map(one, x, chunksize=256))
    memory_rate = len(x) / (time.perf_counter() - t)
    print(f"hashing rate: {memory_rate:.0f} images/s from decoded arrays")
    fp = L.Fingerprints(
        hashes=np.stack([p[0] for p in parts]),
        spectra=np.stack([p[1] for p in parts]),
        thumbs=np.stack([p[2] for p in parts]),
        lowres=np.stack([p[3] for p in parts]),
        sizes=np.array([p[4] for p in parts]),
    )
    del parts

    rows = []
    header = (
        f"{'n':>7}  {'hash (medalist)':>15}  {'hash (faiss MIH)':>16}  {'kNN (2 indexes)':>15}  "
        f"{'verify':>8}  {'search total':>12}  candidates"
    )
    print(header)
    for n in sizes:
        sub = L.Fingerprints(
            fp.hashes[:n], fp.spectra[:n], fp.thumbs[:n], fp.lowres[:n], fp.sizes[:n]
        )
        t_hash, hp = timed(L.hamming_pairs, sub.hashes, L.HASH_RADIUS, repeats=5)
        codes = np.ascontiguousarray(sub.hashes)
        t_faiss, n_faiss = timed(faiss_mih_pairs, codes, L.HASH_RADIUS, repeats=3)
        t_knn, kp = timed(knn_both, sub)
        cand = L._unique_pairs(*np.concatenate([hp, kp]).T)
        t_verify, dist = timed(L.verify_pairs, sub, cand)
        threshold = choose_threshold(n, cand, dist)
        row = {
            "n": n,
            "hash_search_s": t_hash,
            "hash_pairs": len(hp),
            "faiss_mih_s": t_faiss,
            "faiss_mih_pairs": n_faiss,
            "knn_s": t_knn,
            "knn_pairs": len(kp),
            "spectrum_index": "exact" if n <= L.EXACT_KNN_MAX else "pca+hnsw",
            "candidates": len(cand),
            "verify_s": t_verify,
            "threshold": threshold.value,
            "duplicates_at_default": int((dist <= threshold.value).sum()),
            "search_total_s": t_hash + t_knn + t_verify,
        }
        rows.append(row)
        print(
            f"{n:>7}  {t_hash:>13.3f} s  {t_faiss:>14.3f} s  {t_knn:>13.2f} s  "
            f"{t_verify:>6.1f} s  {row['search_total_s']:>10.1f} s  {len(cand)} "
            f"({len(hp)} hash, {len(kp)} kNN, {row['spectrum_index']}), "
            f"threshold {threshold.value:.4f}"
        )
    growth = {
        k: exponent(rows, k)
        for k in ("hash_search_s", "faiss_mih_s", "knn_s", "verify_s", "search_total_s")
    }
    print(
        f"growth exponent {sizes[0]}->{sizes[-1]} (1 = linear, 2 = all pairs): "
        + ", ".join(f"{k.removesuffix('_s')} {v:.2f}" for k, v in growth.items() if v)
    )
    result = {
        "data": "Fashion-MNIST train + mirrored copies, 64x64",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "rows": rows,
        "growth_exponent": growth,
        "fingerprint_files_per_s": file_rate,
        "fingerprint_arrays_per_s": memory_rate,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
