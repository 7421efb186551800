"""Specification of the leaderboard ledger and `medalist lb`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from conftest import assert_drawn_png, medalist

from medalist.runs.leaderboard import (
    import_submissions,
    leaderboard_path,
    match_run,
    read_leaderboard,
    record_score,
)


def clone_run(run: Path, name: str) -> Path:
    dest = run.parent / name
    shutil.copytree(run, dest)
    return dest


def test_public_then_private_scores_land_in_one_row_per_run(trained_run: Path):
    project = trained_run.parent.parent
    record_score(project, "base", 0.81, comment="first")
    board = record_score(project, "base", 0.79, private=True)
    assert len(board) == 1
    row = read_leaderboard(project).iloc[0]
    assert (row["run"], row["public"], row["private"], row["comment"]) == (
        "base",
        0.81,
        0.79,
        "first",
    )
    assert [p.name for p in project.iterdir() if p.name.startswith(".leaderboard")] == []


def test_match_run_takes_the_longest_whole_word_name():
    names = ["base", "base-lr", "effnet"]
    assert match_run("base-lr with tta", names) == "base-lr"
    assert match_run("retry of base", names) == "base"
    assert match_run("baseline model", names) is None


def test_import_reads_kaggle_submissions_and_keeps_the_latest_complete_score(
    trained_run: Path, tmp_path: Path
):
    project = trained_run.parent.parent
    clone_run(trained_run, "base-lr")
    csv = tmp_path / "subs.csv"
    pd.DataFrame(
        {
            "fileName": ["submission.csv"] * 5,
            "date": [
                "2026-01-01 10:00:00",
                "2026-01-02 10:00:00",
                "2026-01-03 10:00:00",
                "2026-01-04 10:00:00",
                "2026-01-05 10:00:00",
            ],  # fmt: skip
            "description": ["base", "base again", "base-lr tta", "something else", "base-lr"],
            "status": [
                "SubmissionStatus.COMPLETE",
                "SubmissionStatus.COMPLETE",
                "SubmissionStatus.COMPLETE",
                "SubmissionStatus.COMPLETE",
                "SubmissionStatus.PENDING",
            ],  # fmt: skip
            "publicScore": ["0.70", "0.72", "0.75", "0.5", ""],
            "privateScore": ["", "0.71", "", "", ""],
        }
    ).to_csv(csv, index=False)
    result = import_submissions(project, csv)
    assert [r for r, _ in result.matched] == ["base", "base", "base-lr"]
    assert result.unmatched == ["something else"] and len(result.skipped) == 1
    board = read_leaderboard(project).set_index("run")
    assert board.loc["base", "public"] == 0.72 and board.loc["base", "private"] == 0.71
    assert board.loc["base-lr", "public"] == 0.75


def test_lb_without_arguments_shows_cv_against_lb_with_correlations_and_a_plot(trained_run: Path):
    project = trained_run.parent.parent
    cv, public = [0.80, 0.85, 0.90], [0.70, 0.72, 0.80]  # ranked alike, not on one line
    for k, (c, score) in enumerate(zip(cv, public, strict=True)):
        run = trained_run if k == 0 else clone_run(trained_run, f"r{k}")
        scores = json.loads((run / "scores.json").read_text())
        (run / "scores.json").write_text(json.dumps({**scores, "mean": c}))
        record_score(project, run.name, score)
    r = medalist("lb", "--project", str(project))
    assert r.returncode == 0, r.stderr
    pearson = np.corrcoef(cv, public)[0, 1]  # 0.94
    assert f"CV vs public LB: Pearson {pearson:.2f}, Spearman 1.00 over 3 run(s)" in r.stdout
    assert_drawn_png(project / "plots" / "cv_vs_lb.png")


def test_lb_records_a_score_for_a_run_directory(trained_run: Path):
    r = medalist("lb", str(trained_run), "0.8", "--comment", "tta")
    assert r.returncode == 0, r.stderr
    board = read_leaderboard(trained_run.parent.parent)
    assert board.iloc[0]["public"] == 0.8 and board.iloc[0]["comment"] == "tta"


def test_lb_for_an_unknown_run_exits_2_and_suggests_the_nearest(trained_run: Path):
    r = medalist("lb", "bse", "0.8", "--project", str(trained_run.parent.parent))
    assert r.returncode == 2 and "did you mean base?" in r.stderr and "Traceback" not in r.stderr
    assert not leaderboard_path(trained_run.parent.parent).exists()


def test_lb_with_a_run_but_no_score_exits_2(trained_run: Path):
    r = medalist("lb", "base", "--project", str(trained_run.parent.parent))
    assert r.returncode == 2 and "give the SCORE" in r.stderr and "Traceback" not in r.stderr


def test_lb_import_of_a_csv_without_kaggle_columns_exits_2_and_keeps_the_ledger(
    trained_run: Path, tmp_path: Path
):
    project = trained_run.parent.parent
    record_score(project, "base", 0.8)
    before = leaderboard_path(project).read_text()
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    r = medalist("lb", "--import", str(bad), "--project", str(project))
    assert r.returncode == 2 and "'description'" in r.stderr and "Traceback" not in r.stderr
    assert leaderboard_path(project).read_text() == before


def test_lb_import_of_a_missing_file_exits_2(trained_run: Path, tmp_path: Path):
    r = medalist(
        "lb", "--import", str(tmp_path / "none.csv"), "--project", str(trained_run.parent.parent)
    )
    assert r.returncode == 2 and "file not found" in r.stderr and "Traceback" not in r.stderr


def test_a_corrupt_ledger_is_reported_not_overwritten(trained_run: Path):
    project = trained_run.parent.parent
    leaderboard_path(project).write_text("run,public\nbase,0.8\n")
    r = medalist("lb", "base", "0.9", "--project", str(project))
    assert r.returncode == 2 and "leaderboard.csv" in r.stderr and "Traceback" not in r.stderr
    assert leaderboard_path(project).read_text() == "run,public\nbase,0.8\n"
