"""Fingerprints of results, to show that a refactor changes none of them.

Runs the digits demo and the test suite's small competitions (classification with seeds, TTA
and an ensemble; segmentation with one class, and two classes in the long format) on the CPU,
then prints the sha256 of each run's `oof.csv` and `submission.csv` and writes them as JSON.
Run it before and after a change and compare:

    .venv/bin/python bench/result_hashes.py --out /tmp/h1 --json bench/results/hashes.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"


def fingerprint(run: Path) -> dict[str, str]:
    return {name: sha(run / name) for name in ("oof.csv", "submission.csv")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="an empty folder to work in")
    parser.add_argument("--json", type=Path, default=None, help="where to write the hashes")
    parser.add_argument("--skip-demo", action="store_true", help="leave out the digits demo")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from conftest import make_project
    from test_segment import make_seg_project, make_two_class_project

    from medalist.workflows.ensemble import make_ensemble
    from medalist.workflows.predict import predict
    from medalist.workflows.train import train

    out = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    hashes: dict[str, dict[str, str]] = {}

    if not args.skip_demo:
        from medalist.workflows.demo import run_demo

        run_demo(out / "demo")
        (run,) = sorted((out / "demo" / "runs").iterdir())
        hashes["demo"] = fingerprint(run)

    cfg = make_project(out / "classify")
    a = train(cfg, ["train.seeds=2"], name="seeds").run.path
    predict(a, tta=["hflip"])
    b = train(cfg, ["train.lr=1e-3"], name="other").run.path
    predict(b)
    ens = make_ensemble([a, b], name="blend").run.path
    predict(ens)
    for run in (a, b, ens):
        hashes[f"classify/{run.name}"] = fingerprint(run)

    for key, config in (
        ("segment/one-class", make_seg_project(out / "seg")),
        ("segment/long", make_two_class_project(out / "seg-long", long=True)),
    ):
        run = train(config, name="base").run.path
        predict(run, tta=["hflip"])
        hashes[key] = fingerprint(run)

    for key, files in hashes.items():
        for name, digest in files.items():
            print(f"{key:24s} {name:15s} {digest}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(hashes, indent=2) + "\n")


if __name__ == "__main__":
    main()
