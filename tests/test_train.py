"""Training end to end on a tiny competition: the run directory, determinism, resume, predict."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import TINY_CONFIG, make_project, medalist

from medalist.workflows.predict import predict
from medalist.workflows.train import train


def test_run_directory_holds_everything_about_the_run(trained_run: Path) -> None:
    run = trained_run
    for name in (
        "config.yaml",
        "provenance.json",
        "task.json",
        "folds.csv",
        "oof.csv",
        "scores.json",
        "submission.csv",
    ):
        assert (run / name).is_file(), name
    for k in range(3):
        fold = run / f"fold_{k}"
        assert {"best.ckpt", "history.csv", "oof.csv", "result.json"} <= {
            p.name for p in fold.iterdir()
        }
        assert not (fold / "last.ckpt").exists(), (
            "the resume checkpoint is dropped when a fold ends"
        )
        history = pd.read_csv(fold / "history.csv")
        assert list(history["epoch"]) == [1, 2]
        assert {"train_loss", "val_loss", "accuracy", "lr", "time_s", "peak_mem_mb"} <= set(history)
    prov = json.loads((run / "provenance.json").read_text())
    assert {"git", "versions", "device", "seeds"} <= set(prov)
    assert prov["versions"]["torch"] and prov["seeds"]["train.seed"] == 0
    assert yaml.safe_load((run / "config.yaml").read_text())["model"]["backbone"] == "test_resnet"


def test_oof_covers_every_training_row_once_with_its_fold(trained_run: Path) -> None:
    oof = pd.read_csv(trained_run / "oof.csv")
    train = pd.read_csv(trained_run.parent.parent / "data" / "train.csv")
    folds = pd.read_csv(trained_run / "folds.csv")
    assert sorted(oof["id"]) == sorted(train["id"])
    merged = oof.merge(folds, on="id", suffixes=("", "_file"))
    assert (merged["fold"] == merged["fold_file"]).all()
    probs = oof[["pred_bar_h", "pred_bar_v", "pred_dot"]].to_numpy()
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_scores_are_the_fold_metrics_of_the_oof_predictions(trained_run: Path) -> None:
    scores = json.loads((trained_run / "scores.json").read_text())
    oof = pd.read_csv(trained_run / "oof.csv")
    classes = ["bar_h", "bar_v", "dot"]
    oof["pred_label"] = oof[[f"pred_{c}" for c in classes]].to_numpy().argmax(axis=1)
    per_fold = [
        float((g["pred_label"] == g["target"]).mean()) for _, g in oof.groupby("fold", sort=True)
    ]
    assert scores["metric"] == "accuracy" and scores["higher_is_better"] is True
    assert scores["folds"] == pytest.approx(per_fold)
    assert scores["mean"] == pytest.approx(np.mean(per_fold))
    assert scores["std"] == pytest.approx(np.std(per_fold))


def test_submission_matches_the_sample_ids_order_and_columns(trained_run: Path) -> None:
    sub = pd.read_csv(trained_run / "submission.csv")
    sample = pd.read_csv(trained_run.parent.parent / "data" / "sample_submission.csv")
    assert list(sub.columns) == list(sample.columns)
    assert list(sub["id"]) == list(sample["id"])
    assert set(sub["label"]) <= {"bar_h", "bar_v", "dot"}


def test_same_config_and_seed_give_identical_oof_on_the_cpu(tmp_path: Path) -> None:
    config = make_project(tmp_path / "p")
    a = train(config, name="a", folds="0")
    b = train(config, name="b", folds="0")
    oof_a = pd.read_csv(a.run.path / "fold_0" / "oof.csv")
    oof_b = pd.read_csv(b.run.path / "fold_0" / "oof.csv")
    pd.testing.assert_frame_equal(oof_a, oof_b, check_exact=True)  # bit for bit, not close
    c = train(config, ["train.seed=1"], name="c", folds="0")
    assert not pd.read_csv(c.run.path / "fold_0" / "oof.csv").equals(oof_a), "the seed must matter"


def test_a_training_stopped_by_an_exception_does_not_change_the_next_ones_oof(
    tmp_path: Path,
) -> None:
    """As in `medalist tune`, where pruned trials stop mid-fit in the same process."""
    import lightning as L

    class Prune(L.Callback):
        def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
            raise RuntimeError("pruned")

    config = make_project(tmp_path / "p")
    a = train(config, name="a", folds="0")
    with pytest.raises(RuntimeError, match="pruned"):
        train(config, ["train.lr=0.05"], name="stopped", folds="0", callbacks=lambda k: [Prune()])
    b = train(config, name="b", folds="0")
    pd.testing.assert_frame_equal(
        pd.read_csv(a.run.path / "fold_0" / "oof.csv"),
        pd.read_csv(b.run.path / "fold_0" / "oof.csv"),
        check_exact=True,
    )


@pytest.mark.slow
@pytest.mark.parametrize("workers", [0, 2])
def test_resume_after_sigkill_ends_with_the_scores_of_an_uninterrupted_run(
    tmp_path: Path, workers: int
) -> None:
    # With worker processes Lightning's training iterator prefetches before the sampler hears
    # the resumed epoch: the case that once replayed epoch 0's order after a resume.
    text = TINY_CONFIG.replace("epochs: 2", "epochs: 6")
    config = make_project(
        tmp_path / "p", text.replace("data:\n", f"data:\n  num_workers: {workers}\n")
    )
    whole = train(config, name="whole")
    run = config.parent.parent / "runs" / "killed"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from medalist.cli import main; main()",
            "train",
            str(config),
            "--name",
            "killed",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Kill it in the middle of fold 1, after some epochs were checkpointed.
    deadline = time.time() + 120
    history = run / "fold_1" / "history.csv"
    while time.time() < deadline and proc.poll() is None:
        if history.is_file() and len(pd.read_csv(history)) >= 2:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "scores.json").exists()
    # What the kill left: fold 1's resume point and the epochs it had recorded.
    saved = torch.load(run / "fold_1" / "last.ckpt", map_location="cpu", weights_only=False)
    before = pd.DataFrame(saved["medalist_history"])
    assert 1 <= len(before) < 6
    resumed = medalist("train", "--resume", str(run))
    assert resumed.returncode == 0, resumed.stderr
    assert "fold 0: done already" in resumed.stdout
    # Fold 1 went on from its checkpoint: the resumed process trained only the epochs after
    # it, and the epochs before are the killed process's own rows (their wall times too, which
    # a retrained fold would not reproduce).
    trained = lambda k: [  # noqa: E731
        int(e) for e in re.findall(rf"^fold {k} \| epoch (\d+)/6 ", resumed.stdout, re.M)
    ]
    assert trained(1) == list(range(len(before) + 1, 7)), resumed.stdout
    assert trained(2) == [1, 2, 3, 4, 5, 6]
    after = pd.read_csv(run / "fold_1" / "history.csv", float_precision="round_trip")
    assert list(after["epoch"]) == [1, 2, 3, 4, 5, 6]
    pd.testing.assert_frame_equal(
        after.iloc[: len(before)][list(before.columns)], before, check_exact=True
    )
    got = json.loads((run / "scores.json").read_text())
    assert got["folds"] == whole.scores["folds"]
    pd.testing.assert_frame_equal(
        pd.read_csv(run / "oof.csv"), pd.read_csv(whole.run.path / "oof.csv"), check_exact=True
    )
    for k in range(3):
        assert len(pd.read_csv(run / f"fold_{k}" / "history.csv")) == 6


def test_a_sigterm_stops_training_in_one_line_with_exit_143_and_the_run_resumes(
    tmp_path: Path,
) -> None:
    # A scheduler, a preempted cloud machine or `kill` sends SIGTERM: the run stops with one
    # line that says how to go on, never a traceback, and --resume finishes it.
    config = make_project(tmp_path / "p", TINY_CONFIG.replace("epochs: 2", "epochs: 6"))
    run = config.parent.parent / "runs" / "stopped"
    proc = subprocess.Popen(
        [sys.executable, "-c", "from medalist.cli import main; main()", "train", str(config)]
        + ["--name", "stopped", "track.backends=[mlflow]"],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    history = run / "fold_0" / "history.csv"
    while time.time() < deadline and proc.poll() is None:
        if history.is_file() and len(pd.read_csv(history)) >= 2:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be stopped"
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr, stderr
    line = [row for row in stderr.splitlines() if row.startswith("medalist:")]
    assert line == [line[0]] and "stopped by SIGTERM" in line[0] and "--resume" in line[0]
    assert not (run / "scores.json").exists()
    # The tracker was told the run was stopped (an exception without a message once crashed it).
    from mlflow import MlflowClient

    ids = json.loads((run / "tracking.json").read_text())
    client = MlflowClient(f"sqlite:///{config.parent.parent / 'mlruns.db'}")
    parent = client.get_run(ids["parent"])
    assert parent.info.status == "KILLED"
    assert parent.data.tags["medalist.stopped"] == "SIGTERMException"
    resumed = medalist("train", "--resume", str(run))
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run / "scores.json").read_text())["folds"]


def test_folds_option_trains_only_those_folds_and_resume_finishes_the_rest(tmp_path: Path) -> None:
    config = make_project(tmp_path / "p")
    part = train(config, name="part", folds="0,2")
    assert part.folds_done == [0, 2] and part.scores is None
    assert not (part.run.path / "fold_1").exists()
    rest = train(None, resume=part.run.path)
    assert rest.folds_done == [0, 1, 2] and rest.scores is not None


def test_predict_with_tta_averages_views_and_keeps_the_format(trained_run: Path) -> None:
    from PIL import Image

    plain = predict(trained_run)
    flipped = predict(trained_run, tta=["hflip"])
    # The other view on its own: the same run predicting the test images mirrored on disk.
    for path in (trained_run.parent.parent / "data" / "test").glob("*.png"):
        Image.fromarray(np.asarray(Image.open(path))[:, ::-1].copy()).save(path)
    mirrored = predict(trained_run)
    assert plain.preds.shape == flipped.preds.shape == mirrored.preds.shape
    assert not np.allclose(plain.preds, mirrored.preds)
    np.testing.assert_allclose(flipped.preds, (plain.preds + mirrored.preds) / 2, rtol=0, atol=1e-6)
    assert np.allclose(flipped.preds.sum(axis=1), 1.0, atol=1e-5)
    assert list(flipped.submission.columns) == ["id", "label"]


def test_pretrained_weights_load_from_a_local_file(tmp_path: Path) -> None:
    import timm
    import torch

    config = make_project(tmp_path / "p")
    source = timm.create_model("test_resnet", num_classes=7)
    weights = tmp_path / "p" / "models" / "w.pth"
    weights.parent.mkdir()
    torch.save(source.state_dict(), weights)
    from medalist.config import load_config
    from medalist.models.factory import create_model

    cfg = load_config(config, ["model.pretrained=models/w.pth", "model.in_chans=1"])
    model = create_model(cfg, 3)
    stem_key = next(k for k, v in source.state_dict().items() if v.ndim == 4)
    assert model.state_dict()[stem_key].shape[1] == 1, "timm adapts the stem to in_chans"
    src = dict(source.named_parameters())
    shared = [n for n, p in model.named_parameters() if p.ndim == 4 and n != stem_key]
    assert torch.equal(dict(model.named_parameters())[shared[-1]], src[shared[-1]])


def test_ema_and_backbone_freezing_train_and_predict(tmp_path: Path) -> None:
    import lightning as L

    from medalist.models.factory import backbone_parameters
    from medalist.workflows.inference import inference_weights

    def copy(named: dict) -> dict[str, torch.Tensor]:
        return {n: p.detach().clone() for n, p in named.items()}

    epochs: dict[int, tuple[dict, dict]] = {}  # epoch: (backbone at its start, at its end)
    validated: dict[int, tuple[dict, dict]] = {}  # epoch: (model, EMA) as it is validated

    class Watch(L.Callback):
        def on_train_epoch_start(self, trainer, module) -> None:
            ids = {id(p) for p in backbone_parameters(module.model)}
            self.backbone = {n: p for n, p in module.model.named_parameters() if id(p) in ids}
            self.head = {n: p for n, p in module.model.named_parameters() if id(p) not in ids}
            self.start = copy(self.backbone), copy(self.head)

        def on_train_epoch_end(self, trainer, module) -> None:
            end = copy(self.backbone), copy(self.head)
            epochs[trainer.current_epoch + 1] = (self.start, end)

        def on_validation_epoch_start(self, trainer, module) -> None:
            if not trainer.sanity_checking:
                model = copy(dict(module.model.state_dict()))
                validated[trainer.current_epoch + 1] = (model, copy(module.ema.module.state_dict()))

    config = make_project(tmp_path / "p")
    s = train(
        config,
        ["train.ema=true", "train.ema_decay=0.5", "train.freeze_backbone_epochs=1"],
        name="ema",
        folds="0",
        callbacks=lambda fold: [Watch()],
    )
    (start1, end1), (start2, end2) = epochs[1], epochs[2]
    # Epoch 1 trains the head only; epoch 2 the backbone too.
    assert all(torch.equal(start1[0][n], end1[0][n]) for n in start1[0])
    assert any(not torch.equal(start1[1][n], end1[1][n]) for n in start1[1])
    assert all(not torch.equal(start2[0][n], end2[0][n]) for n in start2[0])
    # The EMA copy is not the model, and it is what the best checkpoint keeps to predict with.
    best = json.loads((s.run.path / "fold_0" / "result.json").read_text())["best_epoch"]
    model, ema = validated[best]
    assert any(not torch.equal(model[n], ema[n]) for n in model if ema[n].is_floating_point())
    state = torch.load(s.run.path / "fold_0" / "best.ckpt", map_location="cpu", weights_only=False)
    state = state["state_dict"]
    used = inference_weights(state, "ema")
    assert used.keys() == ema.keys()
    assert all(torch.equal(used[n], ema[n]) for n in ema)
    assert len(predict(s.run.path).submission) == 9


def test_ema_warms_up_so_a_short_run_does_not_validate_its_first_steps(tmp_path: Path) -> None:
    import lightning as L

    seen: dict[str, dict[str, torch.Tensor]] = {}

    def floats(module: torch.nn.Module) -> dict[str, torch.Tensor]:
        return {n: p.detach().clone() for n, p in module.named_parameters()}

    class Watch(L.Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
            if batch_idx == 0:
                seen["first"] = floats(module.model)

        def on_validation_epoch_start(self, trainer, module) -> None:
            if not trainer.sanity_checking:
                seen["model"], seen["ema"] = floats(module.model), floats(module.ema.module)

    config = make_project(tmp_path / "p")
    # 12 updates at the default decay (0.999): without a warm-up the average would stay where
    # the first update left it (timm copies the model then) and move 1% of the way since.
    overrides = ["train.ema=true", "train.epochs=1", "train.batch_size=2"]
    train(config, overrides, name="e", folds="0", callbacks=lambda fold: [Watch()])
    first, model, ema = seen["first"], seen["model"], seen["ema"]

    def distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
        return sum(float((a[n] - b[n]).norm()) for n in a)

    assert distance(ema, model) < distance(ema, first), (distance(ema, model), distance(ema, first))


def test_swa_averages_the_weights_of_the_last_epochs_and_predicts_with_them(
    tmp_path: Path,
) -> None:
    import lightning as L

    from medalist.workflows.inference import inference_weights

    seen: dict[int | str, dict[str, torch.Tensor]] = {}

    class Weights(L.Callback):  # the model's weights as each epoch is validated, the average
        def on_validation_epoch_start(self, trainer, module) -> None:
            seen[trainer.current_epoch + 1] = {
                n: p.detach().clone() for n, p in module.model.named_parameters()
            }

        def on_fit_end(self, trainer, module) -> None:
            seen["end"] = {k: v.detach().clone() for k, v in module.state_dict().items()}

    config = make_project(tmp_path / "p")
    s = train(
        config,
        ["train.swa=true", "train.swa_start=0.5", "train.epochs=4"],  # epochs 3 and 4
        name="swa",
        folds="0",
        callbacks=lambda fold: [Weights()],
    )
    last = seen["end"]
    assert int(last["swa.n_averaged"]) == 2
    for name in seen[4]:
        want = (seen[3][name] + seen[4][name]) / 2
        assert torch.allclose(last[f"swa.module.{name}"], want, atol=1e-6), name
    averaged = inference_weights(last, "swa")
    assert torch.equal(averaged["fc.weight"], last["swa.module.fc.weight"])
    history = pd.read_csv(s.run.path / "fold_0/history.csv")
    assert list(history["epoch"]) == [1, 2, 3, 4]  # no extra epoch for BatchNorm


def test_weights_from_before_averaging_began_are_the_models_own() -> None:
    from medalist.workflows.inference import inference_weights

    a, b = torch.zeros(2), torch.ones(2)
    state = {"model.fc.weight": a, "swa.module.fc.weight": b, "swa.n_averaged": torch.tensor(0)}
    assert torch.equal(inference_weights(state, "swa")["fc.weight"], a)
    state["swa.n_averaged"] = torch.tensor(3)
    assert torch.equal(inference_weights(state, "swa")["fc.weight"], b)
    assert torch.equal(inference_weights(state, None)["fc.weight"], a)


def test_runs_lists_every_run_and_exports_csv(trained_run: Path) -> None:
    project = trained_run.parent.parent
    proc = medalist("runs", "--project", str(project), "--csv")
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(pd.io.common.StringIO(proc.stdout))
    row = table.set_index("name").loc["base"]
    assert row["backbone"] == "test_resnet" and row["folds_done"] == "3/3"
    scores = json.loads((trained_run / "scores.json").read_text())
    assert row["cv_mean"] == pytest.approx(scores["mean"])
    shown = medalist("runs", "--project", str(project))
    assert "base" in shown.stdout and "3/3" in shown.stdout


def test_cli_help_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys; from medalist.cli import app; import medalist.commands;"
        "heavy = [m for m in ('torch', 'lightning', 'timm', 'mlflow', 'pandas', 'matplotlib')"
        " if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


@pytest.mark.slow
def test_seeds_repeat_the_run_with_fixed_folds_and_record_the_spread(tmp_path: Path) -> None:
    config = make_project(tmp_path / "p")
    proc = medalist("train", str(config), "--seeds", "2", "--name", "two")
    assert proc.returncode == 0, proc.stderr
    run = config.parent.parent / "runs" / "two"
    scores = json.loads((run / "scores.json").read_text())
    assert scores["seeds"] == [0, 1]
    one = train(config, name="one").scores
    other = train(config, ["train.seed=1"], name="other").scores
    assert scores["seed_scores"] == pytest.approx([one["mean"], other["mean"]])
    assert scores["seed_std"] == pytest.approx(np.std([one["mean"], other["mean"]]))
    assert scores["folds"] == pytest.approx(np.mean([one["folds"], other["folds"]], axis=0))
    folds = pd.read_csv(run / "folds.csv")
    assert (run / "fold_0_seed1" / "result.json").is_file()
    assert (
        folds["fold"] == pd.read_csv(config.parent.parent / "runs" / "one" / "folds.csv")["fold"]
    ).all()
    table = medalist("runs", "--project", str(config.parent.parent), "--csv")
    row = pd.read_csv(pd.io.common.StringIO(table.stdout)).set_index("name").loc["two"]
    assert row["seeds"] == 2 and row["seed_std"] == pytest.approx(scores["seed_std"])
    assert len(predict(run).submission) == 9


def test_require_clean_refuses_a_dirty_tree_and_the_diff_is_saved_otherwise(tmp_path: Path) -> None:
    config = make_project(tmp_path / "p")
    root = config.parent.parent
    git = ["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "configs"], check=True)
    subprocess.run([*git, "commit", "-qm", "c"], check=True)
    config.write_text(config.read_text().replace("lr: 3.0e-3", "lr: 2.0e-3"))
    refused = medalist("train", str(config), "--require-clean", "--name", "r")
    assert refused.returncode == 2 and "uncommitted" in refused.stderr
    assert not (root / "runs" / "r").exists()
    run = train(config, name="dirty").run.path
    prov = json.loads((run / "provenance.json").read_text())
    assert prov["git"]["dirty"] is True
    assert "+  lr: 2.0e-3" in (run / "diff.patch").read_text()


def test_commit_before_run_commits_code_but_not_data(tmp_path: Path) -> None:
    config = make_project(tmp_path / "p")
    root = config.parent.parent
    subprocess.run(["git", "-C", str(root), "init", "-q"], check=True)
    run = train(config, ["track.commit_before_run=true"], name="c").run.path
    files = subprocess.run(
        ["git", "-C", str(root), "ls-files"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "configs/baseline.yaml" in files
    assert not any(f.startswith(("data/", "runs/", "folds/")) for f in files)
    prov = json.loads((run / "provenance.json").read_text())
    head = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    assert prov["git"]["commit"] == head and prov["git"]["dirty"] is False


def test_oof_predictions_use_the_tta_views_the_submission_uses(tmp_path: Path) -> None:
    """With predict.tta set, a fold's OOF rows are what the inference path predicts for those
    images from that fold's weights with the same views, so CV and submission agree."""
    import shutil

    root = tmp_path / "proj"
    cfg = make_project(root, TINY_CONFIG + "predict:\n  tta: [hflip]\n")
    data = root / "data"
    # The test set is the training images, so predict scores fold 0's own validation rows.
    shutil.rmtree(data / "test")
    shutil.copytree(data / "train", data / "test")
    ids = pd.read_csv(data / "train.csv")["id"]
    pd.DataFrame({"id": ids}).to_csv(data / "test.csv", index=False)
    pd.DataFrame({"id": ids, "label": "dot"}).to_csv(data / "sample_submission.csv", index=False)

    run = train(cfg, name="tta", folds="0").run.path
    oof = pd.read_csv(run / "fold_0" / "oof.csv").set_index("id")
    columns = [f"pred_{c}" for c in sorted(set(pd.read_csv(data / "train.csv")["label"]))]
    rows = ids.isin(oof.index).to_numpy()
    with_views = predict(run).preds[rows]
    without = predict(run, tta=[]).preds[rows]
    got = oof.loc[ids[rows], columns].to_numpy()
    np.testing.assert_allclose(got, with_views, rtol=0, atol=1e-6)
    assert not np.allclose(got, without, atol=1e-4)


def test_predict_says_when_its_tta_is_not_the_one_the_cv_was_scored_with(
    trained_run: Path,
) -> None:
    project = trained_run.parent.parent
    same = medalist("predict", str(trained_run), cwd=project)
    assert same.returncode == 0 and "note:" not in same.stdout
    other = medalist("predict", str(trained_run), "--tta", "hflip", cwd=project)
    assert other.returncode == 0, other.stderr
    note = " ".join(other.stdout.split())
    assert "the CV was scored with no TTA, this submission with TTA hflip" in note
    assert "predict.tta: [hflip]" in note
