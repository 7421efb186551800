"""Train every fold of a config with medalist: your training entry point, a file to edit.

    python src/train.py configs/baseline.yaml [section.key=value ...] [--name NAME] [--folds 0,2]

Each run gets its own folder under runs/ (checkpoints, out-of-fold predictions, CV, plots);
`medalist runs` lists them. Written by `medalist new`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from medalist.errors import UserError
from medalist.logs import quiet_libraries
from medalist.workflows.train import train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train every fold of CONFIG.")
    parser.add_argument("config", type=Path, help="a config, e.g. configs/baseline.yaml")
    parser.add_argument("overrides", nargs="*", help="section.key=value, e.g. train.lr=3e-4")
    parser.add_argument("--name", help="run name (default: config-date-time)")
    parser.add_argument("--folds", help="folds to train, e.g. 0,2 (default: every fold)")
    args = parser.parse_intermixed_args(argv)
    quiet_libraries()
    try:
        summary = train(args.config, args.overrides, name=args.name, folds=args.folds)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    s = summary.scores
    if s:
        print(f"CV {s['metric']}: {s['mean']:.4f} +- {s['std']:.4f}")
    print(f"run directory: {summary.run.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
