"""Every command, given wrong input, keeps the contract: exit code 2, one line on stderr that
names what is wrong, no traceback, and not a byte of the project changed.

One table: (command line, what the message must mention, the damage done first). Each case runs
the real CLI in a subprocess from inside a private copy of one tiny project (a finished run
`base`, its twin `twin`, an ensemble `ens` of the two, an unfinished run `half`) beside a
segmentation project `../seg`; the copy is snapshotted (every file's sha256, every folder)
after the damage and compared after the command.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_CONFIG, medalist
from PIL import Image

Damage = Callable[[Path], None]  # applied to the copy's root (proj/ and seg/) before the command

SEG_CONFIG = (
    TINY_CONFIG.replace("competition:\n", "competition:\n  task: segment\n")
    .replace("target_column: label", "target_column: rle")
    .replace("metric: accuracy", "metric: dice")
    .replace("n_splits: 3", "n_splits: 2")
    .replace("image_size: 16", "image_size: 32")
)


def make_seg_project(root: Path) -> None:
    """Eight training images of two sizes, their masks as run-length text and as PNG files."""
    from medalist.data.rle import rle_encode

    rng = np.random.default_rng(0)
    for sub in ("train", "test", "masks"):
        (root / "data" / sub).mkdir(parents=True)
    rows = []
    for i in range(8):
        h, w = (40, 36) if i % 2 else (32, 48)
        mask = np.zeros((h, w), dtype=np.uint8)
        mask[4 : 4 + h // 3, 6 : 6 + w // 4] = 1
        img = rng.integers(0, 60, (h, w, 3)).astype(np.uint8)
        img[mask == 1] = 220
        Image.fromarray(img).save(root / "data" / "train" / f"img_{i}.png")
        Image.fromarray(mask * 255).save(root / "data" / "masks" / f"img_{i}.png")
        rows.append({"id": f"img_{i}", "rle": rle_encode(mask)})
    pd.DataFrame(rows).to_csv(root / "data" / "train.csv", index=False)
    Image.fromarray(rng.integers(0, 60, (32, 48, 3)).astype(np.uint8)).save(
        root / "data" / "test" / "t_0.png"
    )
    pd.DataFrame({"id": ["t_0"]}).to_csv(root / "data" / "test.csv", index=False)
    pd.DataFrame({"id": ["t_0"], "rle": ""}).to_csv(
        root / "data" / "sample_submission.csv", index=False
    )
    (root / "configs").mkdir()
    (root / "configs" / "baseline.yaml").write_text(SEG_CONFIG)
    (root / "configs" / "masks.yaml").write_text(
        SEG_CONFIG.replace("  target_column: rle\n", "  mask_dir: data/masks\n")
    )


@pytest.fixture(scope="module")
def template(trained_run_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """proj/ (runs base, twin, ens, half) and seg/, built once for the module."""
    from medalist.workflows.ensemble import make_ensemble

    root = tmp_path_factory.mktemp("wrong-input")
    proj = root / "proj"
    shutil.copytree(trained_run_template.parent.parent, proj, symlinks=True)
    runs = proj / "runs"
    shutil.copytree(runs / "base", runs / "twin")
    make_ensemble([runs / "base", runs / "twin"], name="ens", method="mean")
    shutil.copytree(runs / "base", runs / "half")
    for name in ("scores.json", "oof.csv", "submission.csv"):
        (runs / "half" / name).unlink()
    for k in (1, 2):
        shutil.rmtree(runs / "half" / f"fold_{k}")
    make_seg_project(root / "seg")
    return root


@pytest.fixture(autouse=True)
def offline_kaggle(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Credentials that look real, and an endpoint where nothing listens: a check that let a
    command through to Kaggle fails on the network, not on a missing key."""
    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "LOCALHOST")
    monkeypatch.setenv("MEDALIST_KAGGLE_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("KAGGLE_USERNAME", "alice")
    monkeypatch.setenv("KAGGLE_KEY", "not-a-real-key")
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kaggle-config"))


def snapshot(root: Path) -> dict[str, str]:
    """Every folder and file under `root`: relative path -> "dir" or the file's sha256."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


# ---- the damage some cases do first (each labelled, for the test id) ----------------------------
def labelled(label: str, damage: Damage) -> Damage:
    damage.label = label  # type: ignore[attr-defined]
    return damage


def remove(rel: str) -> Damage:
    """Delete a file or a folder."""

    def damage(root: Path) -> None:
        path = root / rel
        shutil.rmtree(path) if path.is_dir() else path.unlink()

    return labelled(f"no {rel}", damage)


def write(rel: str, text: str) -> Damage:
    """Write (or overwrite) a file with `text`."""
    return labelled(f"{rel} = {text[:12]!r}", lambda root: (root / rel).write_text(text))


def cut_in_half(rel: str) -> Damage:
    """Keep the first half of a file's bytes, as an interrupted copy does."""

    def damage(root: Path) -> None:
        data = (root / rel).read_bytes()
        (root / rel).write_bytes(data[: len(data) // 2])

    return labelled(f"{rel} cut short", damage)


def set_rle(row: int, text: str) -> Damage:
    """Put `text` in the run-length column of one row of the segmentation train.csv."""

    def damage(root: Path) -> None:
        path = root / "seg" / "data" / "train.csv"
        df = pd.read_csv(path, dtype=str)
        df.loc[row, "rle"] = text
        df.to_csv(path, index=False)

    return labelled(f"rle row {row} = {text!r}", damage)


def small_mask(name: str) -> Damage:
    """Replace a segmentation mask file with a 10x10 one."""
    mask = Image.new("L", (10, 10))
    return labelled(f"10x10 {name}", lambda root: mask.save(root / "seg/data/masks" / name))


def case(
    *args: str, says: tuple[str, ...], damage: Damage | None = None, slow: bool = False
) -> Any:
    """One row of the table: the command line, the words its one line must hold, the damage."""
    name = " ".join(args) + (f" [{damage.label}]" if damage is not None else "")
    marks = [pytest.mark.slow] if slow else []
    return pytest.param(list(args), says, damage, id=name, marks=marks)


CFG = "configs/baseline.yaml"
SEG = "../seg/configs/baseline.yaml"
SEG_MASKS = "../seg/configs/masks.yaml"
KAG = ("--competition", "shapes")

# fmt: off
CASES = [
    # new
    case("new", "../fresh", "--data", "../nowhere", says=("../nowhere", "--data")),
    case("new", "../fresh", "--data", "data/train.csv", says=("data/train.csv", "not a folder")),
    case("new", "../fresh", "--data", "configs", says=("configs", "no train.csv")),
    case("new", "../fresh", "--data", "data", says=("train.csv", "not a readable CSV", "line 3"),
         damage=write("proj/data/train.csv", "id,label\nx,1\ny,2,3,4\n")),
    case("new", "../fresh", "--data", "data", "--layout", "weird", says=("--layout", "weird")),
    case("new", ".", "--data", "data", says=("not empty", "never overwrites")),
    # folds: the config as every command that takes one reads it
    case("folds", "../nowhere.yaml", says=("nowhere.yaml", "not found")),
    case("folds", "configs", says=("configs", "a folder")),
    case("folds", CFG, "cv.schem=group", says=("cv.schem", "did you mean cv.scheme")),
    case("folds", CFG, "cv.scheme=banana", says=("cv.scheme", "banana")),
    case("folds", CFG, "cv.n_splits=1", says=("cv.n_splits",)),
    case("folds", CFG, "cv.scheme=group", says=("competition.group_column",)),
    case("folds", CFG, "nonsense", says=("'nonsense'", "section.key=value")),
    case("folds", CFG, "competition.train_csv=data/no.csv", says=("no.csv", "train_csv")),
    case("folds", CFG, says=("train table", "train.csv", "not a readable CSV", "line 3"),
         damage=write("proj/data/train.csv", "id,label\nx,1\ny,2,3,4\n")),
    case("folds", CFG, "competition.id_column=image", says=("'image'", "id_column")),
    case("folds", "configs/bad.yaml", says=("bad.yaml", "not valid YAML"),
         damage=write("proj/configs/bad.yaml", "train:\n  lr: [1, 2\n")),
    case("folds", "configs/list.yaml", says=("list.yaml", "mapping"),
         damage=write("proj/configs/list.yaml", "- a\n- b\n")),
    case("folds", CFG, "competition.train_csv=data/empty.csv", says=("empty.csv", "no rows"),
         damage=write("proj/data/empty.csv", "id,label\n")),
    # train (tests/test_bad_input.py covers its data errors in depth)
    case("train", "../nowhere.yaml", says=("nowhere.yaml",)),
    case("train", says=("CONFIG", "--resume")),
    case("train", CFG, "--folds", "7", says=("--folds", "cv.n_splits is 3")),
    case("train", CFG, says=("folds file", "stratified-k3-s42.csv", "not a readable CSV",
                             "rerun `medalist folds"),
         damage=write("proj/folds/stratified-k3-s42.csv", "")),
    case("train", CFG, "--exclude", "data/bad.csv", says=("--exclude", "not a readable CSV",
                                                         "'id' column"),
         damage=write("proj/data/bad.csv", "")),
    case("train", CFG, "train.batchsize=4", says=("did you mean train.batch_size",)),
    case("train", CFG, "predict.smooth_filter=boost", says=("'boost' does not suit",)),
    case("train", CFG, "--name", "base", says=("already exists", "--resume")),
    case("train", CFG, "--name", "a/b", says=("--name", "letters")),
    case("train", "--resume", "runs/nowhere", says=("runs/nowhere", "not a run")),
    case("train", CFG, "--resume", "runs/half", says=("--resume", CFG)),
    case("train", "--merge", "data", says=("data", "not a run directory"), slow=True),
    # predict
    case("predict", "runs/nowhere", says=("runs/nowhere", "not a run directory")),
    case("predict", "data", says=("data", "not a run directory")),
    case("predict", "runs/base", "--tta", "rot90", says=("--tta", "rot90")),
    case("predict", "runs/base", "--smooth", "2", says=("--smooth 2", "odd")),
    case("predict", "runs/base", "--smooth", "3", "--smooth-filter", "boost",
         says=("'boost' is not a filter of a classify run", "mean or gaussian or median")),
    case("predict", "runs/base", "--smooth-filter", "blur", says=("--smooth-filter 'blur'",)),
    case("predict", "runs/ens", says=("twin", "missing"), damage=remove("proj/runs/twin")),
    case("predict", "runs/base", says=("fold_1", "best.ckpt", "missing"),
         damage=remove("proj/runs/base/fold_1/best.ckpt"), slow=True),
    case("predict", "runs/base", says=("fold_0", "best.ckpt", "unreadable"),
         damage=cut_in_half("proj/runs/base/fold_0/best.ckpt"), slow=True),
    case("predict", "runs/half", says=("no finished fold",),
         damage=remove("proj/runs/half/fold_0"), slow=True),
    # runs
    case("runs", "--project", "../nowhere", says=("../nowhere", "--project")),
    case("runs", "--project", "data/train.csv", says=("data/train.csv", "--project")),
    case("runs", "--nope", says=("--nope",)),
    case("runs", says=("scores.json", "JSON"), damage=write("proj/runs/twin/scores.json", "{")),
    # demo
    case("demo", "--out", ".", says=("not a medalist demo", "--out")),
    case("demo", "--out", "data/train.csv", says=("train.csv", "--out")),
    # check
    case("check", "../nowhere.yaml", says=("nowhere.yaml", "not found")),
    case("check", CFG, "--images", "0", says=("--images 0",)),
    case("check", CFG, "--steps", "1", says=("--steps 1",)),
    case("check", CFG, "--threshold", "0", says=("--threshold",)),
    case("check", CFG, "--images", "abc", says=("--images",)),
    case("check", CFG, "train.lr=abc", says=("train.lr", "'abc'")),
    # report
    case("report", "runs/nowhere", says=("runs/nowhere", "not a run directory")),
    case("report", "runs/base/fold_0", says=("fold_0", "not a run directory")),
    case("report", "runs/base", "runs/base", says=("given twice",)),
    case("report", "runs/base", "--out", "runs", says=("--out", "runs", "folder")),
    case("report", "runs/base", "--out", "data/train.csv", says=("--out", "train.csv", ".html")),
    # ensemble
    case("ensemble", "base", says=("two or more",)),
    case("ensemble", "base", "nowhere", says=("'nowhere'", "not found")),
    case("ensemble", "base", "base", says=("'base'", "twice"), slow=True),
    case("ensemble", "base", "twin", "--method", "median", says=("--method", "median")),
    case("ensemble", "base", "twin", "--name", "ens", says=("ens", "already exists"), slow=True),
    case("ensemble", "base", "half", says=("half", "not finished"), slow=True),
    case("ensemble", "base", "ens", says=("ens", "is an ensemble"), slow=True),
    case("ensemble", "base", "twin", says=("scores.json", "JSON"),
         damage=write("proj/runs/twin/scores.json", '{"metric": "accuracy",'), slow=True),
    # smooth
    case("smooth", "nowhere", says=("'nowhere'", "not found")),
    case("smooth", "base", "--windows", "a,b", says=("--windows", "a,b")),
    case("smooth", "base", "--windows", "2,4", says=("--windows", "odd")),
    case("smooth", "base", says=("competition.sequence_column",), slow=True),
    case("smooth", "half", says=("half", "oof.csv")),
    # doctor
    case("doctor", "--config", "../nowhere.yaml", says=("nowhere.yaml", "not found")),
    case("doctor", "--config", "configs/typo.yaml", says=("did you mean train.batch_size",),
         damage=write("proj/configs/typo.yaml", "extends: baseline.yaml\ntrain: {batchsize: 4}\n")),
    case("doctor", "--data", "../nowhere", says=("--data", "../nowhere")),
    case("doctor", "--project", "../nowhere", says=("--project", "../nowhere")),
    # docker
    case("docker", "--image", "", says=("--image",)),
    case("docker", "--out", "data/train.csv", says=("data/train.csv", "--force")),
    case("docker", "--out", "runs", says=("--out runs", "folder")),
    case("docker", "--shm-size", "lots", says=("--shm-size", "lots")),
    case("docker", "--name", "bad name!", says=("--name", "bad name!")),
    # cost
    case("cost", "--hours", "-5", says=("--hours -5",)),
    case("cost", "--months", "0", says=("--months 0",)),
    case("cost", "--example", "nope", says=("--example", "nope")),
    case("cost", "--price", "abc", says=("--price",)),
    case("cost", "--hourly", "3", says=("at least two",)),
    # package
    case("package", "runs/nowhere", *KAG, says=("runs/nowhere", "not a run directory")),
    case("package", "runs/base", says=("competition name", "--competition")),
    case("package", "runs/base", *KAG, "--quick-mode", "fast", says=("--quick-mode", "fast")),
    case("package", "runs/base", *KAG, "--quick-rows", "-1", says=("--quick-rows -1",)),
    case("package", "runs/base", *KAG, "--weights", "no.json", says=("--weights", "no.json")),
    case("package", "runs/base", *KAG, "--smooth", "2", says=("--smooth 2",)),
    case("package", "runs/base", *KAG, "--smooth", "3", "--smooth-filter", "boost",
         says=("'boost' is not a filter of a classify run",)),
    case("package", "runs/base", *KAG, "--extra-wheel", "../no.whl", says=("../no.whl",)),
    case("package", "runs/base", *KAG, "--out", "configs", says=("not a medalist package",)),
    case("package", "runs/base", *KAG, "--out", "data/train.csv", says=("--out", "train.csv")),
    case("package", "runs/ens", *KAG, says=("twin", "missing"), damage=remove("proj/runs/twin")),
    # tune
    case("tune", CFG, says=("--trials",)),
    case("tune", CFG, "--trials", "2", says=("tune.space", "empty")),
    case("tune", "../nowhere.yaml", "--trials", "2", says=("nowhere.yaml", "not found")),
    case("tune", CFG, "--trials", "2", "train.batchsize=4", says=("train.batch_size",)),
    # leak
    case("leak", "../nowhere.yaml", says=("nowhere.yaml", "not found")),
    case("leak", "runs/base", says=("runs/base", "a folder")),
    case("leak", CFG, "train.batchsize=4", says=("train.batch_size",)),
    case("leak", CFG, "--threshold", "2", says=("--threshold",)),
    case("leak", CFG, "--embed-similarity", "3", says=("--embed-similarity",)),
    case("leak", CFG, "--merge-group", "patient", says=("--merge-group", "'patient'")),
    case("leak", CFG, "competition.image_dir=data/none", says=("36 of 36", "image_dir")),
    # compare
    case("compare", "base", "nowhere", says=("'nowhere'", "not found")),
    case("compare", "base", "runs/base/fold_0", says=("fold_0", "not found")),
    case("compare", "base", "half", says=("half", "scores.json", "--resume")),
    case("compare", "base", "twin", says=("twin", "config.yaml", "YAML"),
         damage=write("proj/runs/twin/config.yaml", "model: [resnet\n")),
    case("compare", "base", "twin", says=("twin", "scores.json", "JSON"),
         damage=write("proj/runs/twin/scores.json", "{")),
    # lb
    case("lb", "base", says=("SCORE",)),
    case("lb", "base", "abc", says=("'score'",)),
    case("lb", "nowhere", "0.5", says=("'nowhere'", "runs")),
    case("lb", "--import", "no.csv", says=("--import", "no.csv", "not found")),
    case("lb", "--import", "data/train.csv", says=("'description'",)),
    case("lb", "--import", "data/bad.csv", says=("--import", "readable CSV", "submissions -v"),
         damage=write("proj/data/bad.csv", "id,label\nx,1\ny,2,3,4\n")),
    case("lb", "base", "0.5", "--import", "data/train.csv", says=("--import", "drop RUN")),
    case("lb", "--project", "../nowhere", says=("--project", "../nowhere")),
    # select, review
    case("select", "--project", "../nowhere", says=("../nowhere", "no finished run")),
    case("select", says=("ledger", "leaderboard.csv", "not a readable CSV", "fix or remove"),
         damage=write("proj/leaderboard.csv", "run,cv\nx,1\ny,2,3,4\n")),
    case("select", "--project", "data", says=("data", "no finished run")),
    case("review", "--project", "../nowhere", says=("../nowhere", "no finished run")),
    case("review", says=("scores.json", "JSON"), damage=write("proj/runs/base/scores.json", "{")),
    # kaggle ...
    case("kaggle", "nope", says=("nope",)),
    case("kaggle", "dataset", "runs/base", says=("runs/base", "medalist package")),
    case("kaggle", "push", "runs/base", says=("runs/base", "medalist package")),
    case("kaggle", "output", "runs/base", says=("runs/base", "medalist package")),
    case("kaggle", "submit", "../nowhere", says=("../nowhere", "not a run directory")),
    case("kaggle", "submit", "runs/base", "--version", "3", *KAG, says=("--version",)),
    case("kaggle", "submit", "runs/base", "--file", "no.csv", *KAG, says=("no.csv", "not found")),
    case("kaggle", "leaderboard", *KAG, "--top", "0", says=("--top 0",)),
    # segmentation input
    case("train", SEG, says=("line 4", "'rle'", "odd count"), damage=set_rle(2, "1 2 3"),
         slow=True),
    case("train", SEG, says=("line 5", "past the"), damage=set_rle(3, "5000 10"), slow=True),
    case("check", SEG, says=("line 3", "whole numbers"), damage=set_rle(1, "a b"), slow=True),
    case("train", SEG, "competition.metric=accuracy", says=("dice or iou",), slow=True),
    case("train", SEG, "data.image_size=40", says=("data.image_size",), slow=True),
    case("train", SEG, "competition.rle_order=diagonal", says=("rle_order",), slow=True),
    case("folds", SEG_MASKS, says=("img_5.png", "competition.mask_dir"),
         damage=remove("seg/data/masks/img_5.png"), slow=True),
    case("train", SEG_MASKS, says=("img_3.png", "10x10", "40x36"), damage=small_mask("img_3.png"),
         slow=True),
    case("train", SEG, "predict.mask_format=png", says=("predict.mask_format", "mask_mode: index"),
         slow=True),
    case("train", SEG, "competition.sample_submission=data/sub.zip",
         says=("sub.zip", "not a readable zip"), damage=write("seg/data/sub.zip", "not a zip"),
         slow=True),
]
# fmt: on


@pytest.mark.parametrize(("args", "says", "damage"), CASES)
def test_wrong_input_exits_2_with_one_line_and_changes_nothing(
    template: Path, tmp_path: Path, args: list[str], says: tuple[str, ...], damage: Damage | None
) -> None:
    root = tmp_path / "copy"
    shutil.copytree(template, root, symlinks=True)
    if damage is not None:
        damage(root)
    before = snapshot(root)
    proc = medalist(*args, cwd=root / "proj", timeout=300)
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].strip(), proc.stderr
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    for word in says:
        assert word in lines[0], (word, lines[0])
    after = snapshot(root)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"the failed command changed {changed}"
