"""`medalist demo` (README's first command), end to end on the digits, shortened for the suite."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from medalist.data.leak import DEFAULT_THRESHOLD
from medalist.workflows.demo import run_demo


@pytest.mark.slow
@pytest.mark.timeout(1800)  # the slowest test: about 15 minutes on two busy cores
def test_demo_builds_the_digits_competition_searches_leaks_trains_and_scores_its_submission(
    tmp_path: Path,
) -> None:
    out = tmp_path / "demo"
    figures = run_demo(out, ["cv.n_splits=2"])
    train = pd.read_csv(out / "competition" / "train.csv")
    test = pd.read_csv(out / "competition" / "test.csv")
    assert (len(train), len(test)) == (1437, 360)  # 1,797 digits, 20% held out
    # The figure is the search's own table: each row a pair of the competition's images
    # within the default distance.
    pairs = pd.read_csv(out / "leak" / "pairs.csv")
    assert figures["leak_pairs"] == len(pairs)
    ids = set(train["id"]) | set(test["id"])
    assert set(pairs["id_a"]) | set(pairs["id_b"]) <= ids
    assert (pairs["id_a"] != pairs["id_b"]).all() and (pairs["distance"] <= DEFAULT_THRESHOLD).all()
    (run,) = [p for p in (out / "runs").iterdir() if p.name.startswith("demo-")]
    sub = pd.read_csv(run / "submission.csv")
    assert list(sub["id"]) == list(test["id"]) and sub["label"].between(0, 9).all()
    assert 0.0 < figures["cv_mean"] <= 1.0
    assert figures["test_accuracy"] > 0.8  # 6 epochs on half the data; chance is 0.1
