"""Pruning in `medalist tune`: one search budget with the median pruner and without.

The demo's digits competition (scikit-learn's 8x8 scans as 32x32 PNGs, `medalist demo`), timm's
small `test_resnet` from scratch (the demo's resnet18 is ~3x slower per epoch on a CPU), fold 0
as each trial's metric fold, one torch thread. Both searches run the same
number of TPE trials from the same sampler seed over train.lr (log-uniform) and
train.weight_decay; one stops trials with the median pruner, the other trains every trial to
the end. Reported:

- the training epochs each search ran (every epoch reported to the pruner is one trained), and
  the fraction pruning saved;
- the best fold-0 accuracy each reached;
- the seed noise: the standard deviation of the fold-0 accuracy of the unpruned search's best
  values trained again with other `train.seed`s. Pruning is "within the noise" when its best
  is at most two of those standard deviations below the unpruned best.

Target: pruning saves >= 40% of the epochs and its best is within the seed noise.

Run: .venv/bin/python bench/tune.py [--trials 16] [--epochs 8] [--noise-seeds 3]
Writes bench/results/tune.json (or --out DIR/tune.json).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

RESULTS = Path(__file__).resolve().parent / "results"

CONFIG = """\
competition:
  train_csv: competition/train.csv
  test_csv: competition/test.csv
  image_dir: competition/train
  test_image_dir: competition/test
  sample_submission: competition/sample_submission.csv
  id_column: id
  target_column: label
  metric: accuracy
cv: {{scheme: stratified, n_splits: 5, seed: 42}}
model: {{backbone: {backbone}, in_chans: 1}}
data:
  image_size: 32
  mean: [0.5]
  std: [0.5]
  augment:
    - {{name: Affine, translate_px: [-2, 2], rotate: [-10, 10], scale: [0.9, 1.1], p: 0.7}}
train: {{epochs: {epochs}, batch_size: 64, lr: 3.0e-3, warmup_epochs: 1, threads: {threads}}}
track: {{backends: [none]}}
tune:
  metric_folds: [0]
  space:
    train.lr: {{type: float, low: 1.0e-5, high: 1.0e-1, log: true}}
    train.weight_decay: {{type: float, low: 0.0, high: 0.3}}
  sampler: tpe
  pruner: median
  n_startup_trials: {startup}
  n_warmup_epochs: 1
  seed: {seed}
"""


def make_project(root: Path, args: argparse.Namespace) -> Path:
    """The digits competition inside a project, and its config with a tune section."""
    from medalist.workflows.demo import build_digits_competition

    build_digits_competition(root / "competition", root / "private")
    config = root / "configs" / "bench.yaml"
    config.parent.mkdir(parents=True)
    text = CONFIG.format(
        backbone=args.backbone,
        epochs=args.epochs,
        startup=args.startup,
        seed=args.seed,
        threads=args.threads,
    )
    config.write_text(text)
    return config


def run_search(config: Path, study: str, pruner: str, trials: int) -> dict[str, Any]:
    """One search; its epochs, best score and trials, read back from the Optuna storage."""
    import optuna

    from medalist.workflows.tune import tune

    start = time.perf_counter()
    result = tune(config, [f"tune.pruner={pruner}"], trials=trials, study=study)
    seconds = time.perf_counter() - start
    storage = f"sqlite:///{config.parent.parent / 'optuna.db'}"
    found = optuna.load_study(study_name=study, storage=storage)
    rows = [
        {
            "number": t.number,
            "state": t.state.name.lower(),
            "value": t.value,
            "epochs": len(t.intermediate_values),
            "params": t.params,
        }
        for t in found.get_trials(deepcopy=False)
    ]
    return {
        "pruner": pruner,
        "trials": len(rows),
        "pruned": sum(r["state"] == "pruned" for r in rows),
        "epochs": sum(r["epochs"] for r in rows),
        "best": result.best["value"],
        "best_params": result.best["params"],
        "seconds": round(seconds, 1),
        "per_trial": rows,
    }


def seed_noise(config: Path, params: dict[str, Any], first: float, seeds: int) -> dict[str, Any]:
    """Fold-0 accuracy of the best values under other train seeds (the first is seed 0's)."""
    from medalist.engine.fold_loop import read_fold_result
    from medalist.workflows.train import train
    from medalist.workflows.tune_trial import param_overrides

    scores = [first]
    for seed in range(1, seeds + 1):
        overrides = [*param_overrides(params), f"train.seed={seed}"]
        summary = train(config, overrides, name=f"noise-seed{seed}", folds="0")
        scores.append(read_fold_result(summary.run.path, 0).score)
    return {"scores": scores, "std": statistics.stdev(scores), "mean": statistics.mean(scores)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--startup", type=int, default=4, help="tune.n_startup_trials")
    parser.add_argument("--backbone", default="test_resnet")
    # One thread: on a shared 2-core machine two torch threads thrash (15x slower epochs).
    parser.add_argument("--threads", type=int, default=1, help="train.threads")
    parser.add_argument("--seed", type=int, default=0, help="tune.seed (the sampler's)")
    parser.add_argument("--noise-seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    import torch

    from medalist.console import console
    from medalist.io import write_json

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="medalist-bench-tune-") as tmp:
        config = make_project(Path(tmp) / "proj", args)
        console.quiet = True  # the epoch lines of ~200 epochs; the figures are printed below
        try:
            unpruned = run_search(config, "unpruned", "none", args.trials)
            pruned = run_search(config, "median", "median", args.trials)
            noise = seed_noise(config, unpruned["best_params"], unpruned["best"], args.noise_seeds)
        finally:
            console.quiet = False
    saved = 1 - pruned["epochs"] / unpruned["epochs"]
    gap = unpruned["best"] - pruned["best"]
    result = {
        "command": "python bench/tune.py " + " ".join(sys.argv[1:]),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "unpruned": unpruned,
        "median": pruned,
        "epochs_saved_fraction": round(saved, 4),
        "best_gap": gap,
        "seed_noise": noise,
        "within_seed_noise": gap <= 2 * noise["std"],
        "target": {"epochs_saved_at_least": 0.4, "best_gap_at_most": "2 x seed-noise std"},
        "seconds": round(time.perf_counter() - start, 1),
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "load_average_1m": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "date": time.strftime("%Y-%m-%d %H:%M"),
        },
    }
    path = write_json(args.out / "tune.json", result)
    for name, s in (("no pruning", unpruned), ("median pruner", pruned)):
        print(
            f"{name:14s} {s['trials']} trials, {s['pruned']:2d} pruned, {s['epochs']:3d} epochs, "
            f"best accuracy {s['best']:.4f}, {s['seconds']:.0f}s"
        )
    print(f"epochs saved by pruning: {saved:.1%} (target >= 40%)")
    print(
        f"best gap {gap:+.4f}; seed noise std {noise['std']:.4f} over {len(noise['scores'])} "
        f"seeds: {'within' if result['within_seed_noise'] else 'outside'} the noise"
    )
    print(f"total {result['seconds']:.0f}s; written to {path}")


if __name__ == "__main__":
    main()
