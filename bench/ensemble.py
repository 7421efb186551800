"""What `medalist ensemble` gains on real data, and how optimistic in-sample weights would be.

Not a speed bench: a quality figure for the ensemble command. On the demo's digits competition
(1,437 training images at 32x32, 5 stratified folds, the demo config: 6 epochs from scratch)
it trains three different runs, blends them with weights fitted on the OOF rows, and prints
each member's CV, the equal blend's, the fitted blend's in-sample score (weights chosen on the
rows they score) and its honest nested CV, the verdict against the best member, and the
held-out test accuracy of the best member and of the blend (test labels kept aside).

    .venv/bin/python bench/ensemble.py [--workdir DIR] [--out bench/results/ensemble.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

MEMBERS = {
    "resnet18": [],
    "resnet18-seed1": ["train.seed=1"],
    "mobilenetv3": ["model.backbone=mobilenetv3_small_100", "train.lr=0.01"],
}


def test_accuracy(project: Path, submission: Path) -> float:
    truth = pd.read_csv(project / "private" / "test_labels.csv")
    sub = pd.read_csv(submission).merge(truth, on="id", suffixes=("_pred", ""))
    return float((sub["label_pred"].astype(int) == sub["label"]).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, help="build (or reuse) the project here")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results/ensemble.json")
    args = ap.parse_args()
    from medalist.workflows.demo import DEMO_CONFIG, _scaffold, build_digits_competition
    from medalist.workflows.ensemble import make_ensemble
    from medalist.workflows.predict import predict
    from medalist.workflows.train import train

    with tempfile.TemporaryDirectory() as tmp:
        project = (args.workdir or Path(tmp) / "digits").resolve()
        config = project / "configs" / "demo.yaml"
        if not config.is_file():
            staging = project.parent / f".{project.name}-staging"
            build_digits_competition(staging / "competition", staging / "private")
            _scaffold(project, staging)
            config.write_text(DEMO_CONFIG)
        start = time.perf_counter()
        runs, tests = [], {}
        for name, overrides in MEMBERS.items():
            run = project / "runs" / name
            if not (run / "scores.json").is_file():
                train(config, overrides, name=name)
            tests[name] = test_accuracy(project, predict(run).path)
            runs.append(run)
        name = f"ens-{time.strftime('%H%M%S')}"
        result = make_ensemble(runs, name=name)
        tests["ensemble"] = test_accuracy(project, predict(result.run.path).path)
        seconds = time.perf_counter() - start
    rows = {
        m: {"cv_mean": float(np.mean(f)), "cv_std": float(np.std(f)), "test": tests[m]}
        for m, f in result.member_folds.items()
    }
    figures = {
        "members": rows,
        "weights": result.weights,
        "equal_weights_cv": float(np.mean(result.equal_folds)),
        "in_sample": result.in_sample,
        "honest_cv_mean": result.mean,
        "honest_cv_std": result.std,
        "best_member": result.best_member,
        "mean_diff_vs_best": result.mean_diff,
        "p_value": result.p_value,
        "verdict": result.verdict,
        "ensemble_test": tests["ensemble"],
        "seconds": seconds,
    }
    for m, r in rows.items():
        print(
            f"{m:<16} CV {r['cv_mean']:.4f} +- {r['cv_std']:.4f}  test {r['test']:.4f}  "
            f"weight {result.weights[m]:.3f}"
        )
    print(f"equal blend      CV {figures['equal_weights_cv']:.4f}")
    print(f"fitted blend     in-sample {result.in_sample:.4f} (optimistic)")
    print(
        f"fitted blend     honest CV {result.mean:.4f} +- {result.std:.4f}  "
        f"test {tests['ensemble']:.4f}"
    )
    print(
        f"against {result.best_member}: {result.mean_diff:+.4f} per fold, p = "
        f"{result.p_value:.3g}: {result.verdict}  ({seconds:.0f} s)"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
