"""How the near-duplicate search scales: hash search and candidate search for 10k..100k images,
verification throughput, and the hashing rate in images per second.

Hashes and spectra for the scale runs come from real Fashion-MNIST images (train set, 60,000,
plus flipped copies to reach 100,000), fingerprinted once; the search timings then grow n.

    .venv/bin/python bench/leak.py [--out bench/results/leak.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from leak_planted import read_idx
from PIL import Image

SIZES = (10_000, 25_000, 50_000, 100_000)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results/leak.json")
    args = ap.parse_args()
    from medalist.data import leak as L

    x = read_idx("train-images-idx3-ubyte.gz")
    x = np.concatenate([x, x[:, :, ::-1]])[: max(SIZES)]
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i in range(2000):
            p = Path(tmp) / f"{i}.png"
            Image.fromarray(x[i]).resize((64, 64), Image.BICUBIC).save(p)
            paths.append(p)
        t = time.perf_counter()
        fp = L.fingerprint_images(paths)
        rate = len(paths) / (time.perf_counter() - t)
    # Fingerprints of all 100k without files (same code path after decoding).
    scale = L.SPECTRUM_SIZE / 64
    hashes, spectra = [], []
    import imagehash

    t = time.perf_counter()
    for a in x:
        img = Image.fromarray(a).resize((64, 64), Image.BICUBIC)
        hashes.append(np.packbits(imagehash.phash(img, hash_size=L.HASH_SIZE).hash.ravel()))
        spectra.append(L.spectrum(np.asarray(img), scale))
    in_memory_rate = len(x) / (time.perf_counter() - t)
    hashes, spectra = np.stack(hashes), np.stack(spectra)
    rows = []
    for n in SIZES:
        t = time.perf_counter()
        hp = L.hamming_pairs(hashes[:n], L.HASH_RADIUS)
        t_hash = time.perf_counter() - t
        t = time.perf_counter()
        kp = L.knn_pairs(spectra[:n], L.SPECTRUM_K, L.SPECTRUM_RADIUS)
        t_knn = time.perf_counter() - t
        rows.append(
            {"n": n, "hash_search_s": t_hash, "hash_pairs": len(hp), "spectrum_knn_s": t_knn,
             "spectrum_pairs": len(kp), "index": "flat" if n <= L.EXACT_KNN_MAX else "hnsw"}
        )  # fmt: skip
        print(
            f"n={n:>7}: hash search {t_hash:6.2f} s ({len(hp)} pairs), spectrum kNN "
            f"{t_knn:6.2f} s ({len(kp)} candidate pairs, {rows[-1]['index']})"
        )
    cand = L.candidate_pairs(fp)
    t = time.perf_counter()
    L.verify_pairs(fp, cand)
    verify_rate = len(cand) / max(time.perf_counter() - t, 1e-9)
    print(
        f"hashing rate: {rate:.0f} images/s from 64x64 PNG files ({in_memory_rate:.0f}/s in memory)"
    )
    print(f"verification: {verify_rate:.0f} candidate pairs/s")
    result = {
        "rows": rows,
        "fingerprint_images_per_s": rate,
        "fingerprint_in_memory_per_s": in_memory_rate,
        "verify_pairs_per_s": verify_rate,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
