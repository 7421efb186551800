"""Average a run's folds on the test set into runs/<name>/submission.csv, checked against
sample_submission.csv.

    python src/predict.py runs/<name> [--tta hflip vflip]

Written by `medalist new`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from medalist.errors import UserError
from medalist.logs import quiet_libraries
from medalist.workflows.predict import predict


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write RUN/submission.csv.")
    parser.add_argument("run", type=Path, help="a run folder, e.g. runs/baseline-20260101-1200")
    parser.add_argument("--tta", nargs="*", choices=["hflip", "vflip"], default=None)
    args = parser.parse_args(argv)
    quiet_libraries()
    try:
        result = predict(args.run, tta=args.tta)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"submission: {result.path} ({len(result.submission)} rows, checked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
