"""Specification of `medalist select` and `medalist review`, and the validation story end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import medalist
from PIL import Image

from medalist.runs.leaderboard import record_score
from medalist.workflows.review import write_review
from medalist.workflows.select import MIN_POINTS, POOR_SPEARMAN, select_final


def scored_clone(run: Path, name: str, cv: float, *, clean: bool = True) -> Path:
    """A copy of `run` with CV `cv` (3 equal folds) and a clean (or unrecorded) git state."""
    dest = run.parent / name
    shutil.copytree(run, dest)
    scores = json.loads((dest / "scores.json").read_text())
    scores.update({"folds": [cv] * 3, "mean": cv, "std": 0.0})
    (dest / "scores.json").write_text(json.dumps(scores))
    prov = json.loads((dest / "provenance.json").read_text())
    prov["git"] = {"commit": "abc123" if clean else None, "dirty": False, "branch": "main"}
    prov["started_at"] = f"2026-01-01T00:00:{len(list(run.parent.iterdir())):02d}+00:00"
    (dest / "provenance.json").write_text(json.dumps(prov))
    return dest


@pytest.fixture
def runs(trained_run: Path) -> Path:
    """Four finished runs with CVs 0.70, 0.80, 0.75, 0.60 (the trained 'base' removed)."""
    for name, cv in (("a", 0.70), ("b", 0.80), ("c", 0.75), ("d", 0.60)):
        scored_clone(trained_run, name, cv)
    shutil.rmtree(trained_run)
    return trained_run.parent.parent


def test_select_trusts_cv_when_it_agrees_with_the_lb(runs: Path):
    for name, lb in (("a", 0.71), ("b", 0.79), ("c", 0.77), ("d", 0.62)):
        record_score(runs, name, lb)
    sel = select_final(runs)
    assert not sel.poor_agreement and sel.agreement["n"] == MIN_POINTS
    assert [p.run for p in sel.picks] == ["b", "c"]
    assert sel.picks[0].reason == "best CV"


def test_select_hedges_with_the_best_lb_when_cv_and_lb_disagree(runs: Path):
    for name, lb in (("a", 0.90), ("b", 0.60), ("c", 0.65), ("d", 0.85)):
        record_score(runs, name, lb)
    sel = select_final(runs)
    assert sel.poor_agreement and sel.agreement["spearman"] < POOR_SPEARMAN
    assert [p.run for p in sel.picks] == ["b", "a"]
    assert "best public LB" in sel.picks[1].reason


def test_select_with_few_lb_points_lets_cv_decide_and_says_so(runs: Path):
    record_score(runs, "d", 0.99)
    sel = select_final(runs)
    assert [p.run for p in sel.picks] == ["b", "c"]
    assert any("too few" in n for n in sel.notes)


def test_select_marks_runs_that_cannot_be_reproduced(runs: Path):
    scored_clone(runs / "runs" / "a", "e", 0.85, clean=False)
    sel = select_final(runs)
    assert sel.picks[0].run == "e" and not sel.picks[0].reproducible
    assert "no git commit" in sel.picks[0].missing
    assert sel.picks[1].reproducible


def test_select_prefers_a_reproducible_run_within_noise_of_the_best(runs: Path):
    e = scored_clone(runs / "runs" / "a", "e", 0.801, clean=False)
    scores = json.loads((e / "scores.json").read_text())
    scores.update({"folds": [0.78, 0.80, 0.823], "std": 0.02})
    (e / "scores.json").write_text(json.dumps(scores))
    sel = select_final(runs)
    assert sel.picks[0].run == "b" and "preferred to e" in sel.picks[0].reason


def test_select_without_finished_runs_exits_2(tmp_path: Path):
    r = medalist("select", "--project", str(tmp_path))
    assert r.returncode == 2 and "no finished run" in r.stderr and "Traceback" not in r.stderr


def test_review_writes_timeline_verdicts_lb_and_final_choice(runs: Path):
    record_score(runs, "b", 0.79)
    review = write_review(runs)
    text = (runs / "review.md").read_text()
    assert review.path == runs / "review.md"
    for name in ("a", "b", "c", "d"):
        assert f"`{name}`" in text
    assert text.index("`a`") < text.index("`d`")  # timeline is in start order
    assert "## Final choice" in text and "1. `b`: best CV" in text
    assert "Method: paired per-fold differences" in text


def test_review_without_runs_exits_2(tmp_path: Path):
    r = medalist("review", "--project", str(tmp_path))
    assert r.returncode == 2 and "Traceback" not in r.stderr


@pytest.mark.slow
def test_validation_story_end_to_end(trained_run: Path):
    """leak -> group folds from dup_group -> second run -> compare -> lb -> select -> review."""
    from medalist.workflows.train import train

    project = trained_run.parent.parent
    config = project / "configs" / "baseline.yaml"
    images = project / "data" / "train"
    Image.open(images / "img_0000.png").save(images / "img_0004.png")
    r = medalist("leak", str(config), cwd=project)
    assert r.returncode == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if "competition.groups_csv=" in x)
    override = [t for t in line.split() if t.startswith(("cv.", "competition."))]
    assert "cv.scheme=group" in override
    summary = train(config, override, name="grouped")
    folds = (summary.run.path / "folds.csv").read_text().splitlines()
    fold_of = dict(line.split(",") for line in folds[1:])
    assert fold_of["img_0000"] == fold_of["img_0004"]
    r = medalist("compare", "base", "grouped", "--project", str(project))
    assert r.returncode == 0, r.stderr
    assert "cv.scheme: 'stratified' -> 'group'" in r.stdout and "verdict:" in r.stdout
    for name, score in (("base", "0.7"), ("grouped", "0.65")):
        assert medalist("lb", name, score, "--project", str(project)).returncode == 0
    r = medalist("select", "--project", str(project))
    assert r.returncode == 0, r.stderr
    assert "1. " in r.stdout and "2. " in r.stdout
    r = medalist("review", "--project", str(project))
    assert r.returncode == 0, r.stderr
    text = (project / "review.md").read_text()
    assert "`grouped`" in text and "cv.scheme" in text and "## Final choice" in text
