"""Pruning in `medalist tune`: one search budget with the median pruner and without.

The demo's digits competition (scikit-learn's 8x8 scans as 32x32 PNGs, `medalist demo`), timm's
small `test_resnet` from scratch (the demo's resnet18 is ~3x slower per epoch on a CPU), fold 0
as each trial's metric fold, no learning-rate warm-up (so the pruner may judge a trial from its
first epoch), one torch thread per process. For each sampler seed, both searches run the same
number of TPE trials (`tune.seed` = that seed) over train.lr (log-uniform, 1e-5..1e-1) and
train.weight_decay (0..0.3); one stops trials with the median pruner, the other trains every
trial to the end. Two sampler seeds run side by side, one process each. Reported, per seed
and pooled:

- the training epochs each search ran (every epoch reported to the pruner is one trained), and
  the fraction pruning saved;
- the best fold-0 accuracy each reached;
- the seed noise: the standard deviation of the fold-0 accuracy of the unpruned search's best
  values trained again with other `train.seed`s. Pruning is "within the noise" when its best
  is at most two of those standard deviations below the unpruned best.

Target: pruning saves >= 40% of the epochs and its best is within the seed noise.

Run: .venv/bin/python bench/tune.py [--trials 24] [--epochs 6] [--seeds 0,1] [--jobs 2]
Writes bench/results/tune.json (or --out DIR/tune.json). About 7 minutes on 2 cores.
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
train:
  epochs: {epochs}
  batch_size: 64
  lr: 3.0e-3
  warmup_epochs: {lr_warmup}
  threads: {threads}
track: {{backends: [none]}}
tune:
  metric_folds: [0]
  space:
    train.lr: {{type: float, low: 1.0e-5, high: 1.0e-1, log: true}}
    train.weight_decay: {{type: float, low: 0.0, high: 0.3}}
  sampler: tpe
  pruner: median
  n_startup_trials: {startup}
  pruner_startup_trials: {pruner_startup}
  n_warmup_epochs: {warmup}
  seed: {seed}
"""


def make_project(root: Path, args: argparse.Namespace, seed: int) -> Path:
    """The digits competition inside a project, and its config with a tune section."""
    from medalist.workflows.demo import build_digits_competition

    build_digits_competition(root / "competition", root / "private")
    config = root / "configs" / "bench.yaml"
    config.parent.mkdir(parents=True)
    text = CONFIG.format(
        backbone=args.backbone,
        epochs=args.epochs,
        startup=args.startup,
        pruner_startup=args.pruner_startup,
        warmup=args.warmup,
        lr_warmup=args.lr_warmup,
        seed=seed,
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


def bench_one_seed(seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Both searches and the seed noise for one sampler seed, in a project of their own."""
    from medalist.console import console

    with tempfile.TemporaryDirectory(prefix="medalist-bench-tune-") as tmp:
        config = make_project(Path(tmp) / "proj", args, seed)
        console.quiet = True  # the epoch lines of a few hundred epochs
        unpruned = run_search(config, "unpruned", "none", args.trials)
        pruned = run_search(config, "median", "median", args.trials)
        noise = seed_noise(config, unpruned["best_params"], unpruned["best"], args.noise_seeds)
    gap = unpruned["best"] - pruned["best"]
    return {
        "sampler_seed": seed,
        "unpruned": unpruned,
        "median": pruned,
        "epochs_saved_fraction": round(1 - pruned["epochs"] / unpruned["epochs"], 4),
        "best_gap": gap,
        "seed_noise": noise,
        "within_seed_noise": gap <= 2 * noise["std"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seeds", default="0,1", help="sampler seeds (tune.seed), one each")
    parser.add_argument("--jobs", type=int, default=2, help="seeds benched at once")
    parser.add_argument("--startup", type=int, default=4, help="tune.n_startup_trials")
    parser.add_argument("--pruner-startup", type=int, default=2, help="tune.pruner_startup_trials")
    parser.add_argument("--warmup", type=int, default=0, help="tune.n_warmup_epochs")
    parser.add_argument("--lr-warmup", type=float, default=0.0, help="train.warmup_epochs")
    parser.add_argument("--backbone", default="test_resnet")
    # One thread per process: two torch threads on a busy 2-core machine thrash (15x slower).
    parser.add_argument("--threads", type=int, default=1, help="train.threads")
    parser.add_argument("--noise-seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    seeds = [int(x) for x in args.seeds.split(",")]

    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from medalist.io import write_json

    start = time.perf_counter()
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=ctx) as pool:
        runs = list(pool.map(bench_one_seed, seeds, [args] * len(seeds)))
    unpruned = sum(r["unpruned"]["epochs"] for r in runs)
    pruned = sum(r["median"]["epochs"] for r in runs)
    result = {
        "command": "python bench/tune.py " + " ".join(sys.argv[1:]),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "epochs_saved_fraction": round(1 - pruned / unpruned, 4),
        "within_seed_noise": all(r["within_seed_noise"] for r in runs),
        "target": {"epochs_saved_at_least": 0.4, "best_gap_at_most": "2 x seed-noise std"},
        "seconds": round(time.perf_counter() - start, 1),
        "machine": machine(args),
        "per_seed": runs,
    }
    path = write_json(args.out / "tune.json", result)
    for r in runs:
        print(f"sampler seed {r['sampler_seed']}:")
        for name in ("unpruned", "median"):
            s = r[name]
            print(
                f"  {name:8s} {s['trials']} trials, {s['pruned']:2d} pruned, {s['epochs']:3d} "
                f"epochs, best accuracy {s['best']:.4f}, {s['seconds']:.0f}s"
            )
        noise = r["seed_noise"]
        print(
            f"  epochs saved {r['epochs_saved_fraction']:.1%}; best gap {r['best_gap']:+.4f}, "
            f"seed noise std {noise['std']:.4f} ({len(noise['scores'])} train seeds): "
            f"{'within' if r['within_seed_noise'] else 'outside'} the noise"
        )
    print(
        f"all seeds: {unpruned} epochs without pruning, {pruned} with: "
        f"{result['epochs_saved_fraction']:.1%} saved (target >= 40%); best within the seed "
        f"noise: {result['within_seed_noise']}"
    )
    print(f"total {result['seconds']:.0f}s; written to {path}")


def machine(args: argparse.Namespace) -> dict[str, Any]:
    """What the figures were measured on."""
    import torch

    return {
        "cpu_count": os.cpu_count(),
        "processes": args.jobs,
        "torch_threads_each": args.threads,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }


if __name__ == "__main__":
    main()
