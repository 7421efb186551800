"""The training controls: accumulation, rectangular inputs, the memory estimate, freezing stages,
per-layer learning rates, one-cycle, mixing, workers, the lr finder and the progress bar."""

from __future__ import annotations

import hashlib
import io
import math
import shutil

import numpy as np
import pandas as pd
import pytest
import timm
import torch
from conftest import TINY_CONFIG, make_project
from test_bad_input import assert_user_error, run_cli, snapshot

from medalist.config.load import load_config, validate_config
from medalist.errors import UserError


@pytest.mark.parametrize(
    ("section", "key", "value", "needle"),
    [
        ("data", "image_size", [32, 32, 32], "[height, width]"),
        ("data", "image_size", [64, 4], "between 8 and 4096"),
        ("data", "num_workers", "many", "auto or a whole number"),
        ("data", "num_workers", 1.5, "auto or a whole number"),
        ("train", "lr", "fast", "auto or a number"),
        ("train", "lr", 0, "above 0"),
        ("train", "accumulate_grad_batches", 0, "greater than or equal to 1"),
        ("train", "scheduler", "step", "cosine"),
        ("train", "backbone_lr_mult", 1.5, "less than or equal to 1"),
        ("train", "backbone_lr_mult", 0, "greater than 0"),
        ("train", "layer_decay", 1.2, "less than or equal to 1"),
        ("train", "mixup", -0.2, "greater than or equal to 0"),
        ("train", "mix_prob", 2, "less than or equal to 1"),
        ("model", "freeze_stages", -1, "greater than or equal to 0"),
        ("model", "grad_checkpointing", "sometimes", "valid boolean"),
    ],
)
def test_a_wrong_value_of_a_new_key_is_one_line_naming_it(section, key, value, needle):
    with pytest.raises(UserError) as err:
        validate_config({section: {key: value}})
    text = str(err.value)
    assert f"{section}.{key}" in text and needle in text, text
    assert "\n" not in text


def test_layer_decay_and_a_backbone_multiplier_are_one_choice():
    with pytest.raises(UserError, match="keep one"):
        validate_config({"train": {"backbone_lr_mult": 0.1, "layer_decay": 0.8}})


def test_numbers_written_as_yaml_text_still_count(tmp_path):
    cfg = validate_config({"train": {"lr": "1e-3"}, "data": {"num_workers": "2"}})
    assert (cfg.train.lr, cfg.data.workers) == (1e-3, 2)


def test_auto_workers_are_the_cpus_at_most_eight(monkeypatch):
    from medalist.config import schema

    auto = {"data": {"num_workers": "auto"}}  # what medalist new writes
    monkeypatch.setattr(schema, "cpu_count", lambda: 32)
    assert validate_config(auto).data.workers == 8
    monkeypatch.setattr(schema, "cpu_count", lambda: 3)
    assert validate_config(auto).data.workers == 3
    assert validate_config({"data": {"num_workers": 0}}).data.workers == 0
    assert validate_config({}).data.workers == 0  # the default: exact resume (see the schema)


# ---- rectangular inputs --------------------------------------------------------------------


def test_rectangular_images_are_cached_at_height_by_width(tmp_path):
    from PIL import Image

    from medalist.data.images import DECODING, build_cache, cache_key

    paths = []
    for i in range(3):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(np.full((30, 50, 3), i * 40, np.uint8)).save(paths[-1])
    cfg = validate_config({"data": {"image_size": [16, 24]}})
    arr = build_cache(paths, cfg.data.image_size, 3, tmp_path / "cache")
    assert arr.shape == (3, 16, 24, 3)
    assert cfg.data.height_width == (16, 24) and cfg.data.scaled_size(2) == "[32,48]"
    # A square size is one cache whether written 16 or [16, 16], and the key names the
    # decoding, so a cache an older medalist decoded differently (16-bit scans) is not reused.
    old = hashlib.sha1(f"{16}|{3}|{len(paths)}".encode())
    now = hashlib.sha1(f"{16}|{3}|{len(paths)}|decoding{DECODING}".encode())
    for p in paths:
        st = p.stat()
        for h in (old, now):
            h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    assert cache_key(paths, 16, 3) == now.hexdigest()[:20] == cache_key(paths, [16, 16], 3)
    assert cache_key(paths, 16, 3) != old.hexdigest()[:20]


def test_segmentation_names_the_side_that_is_not_a_multiple_of_32(tmp_path):
    from test_segment import make_seg_project

    cfg = make_seg_project(tmp_path / "seg")
    with pytest.raises(UserError) as err:
        from medalist.workflows.train import prepare

        prepare(load_config(cfg, ["data.image_size=[64,40]"]))
    assert "instead of 40" in str(err.value) and "use 32 or 64" in str(err.value)


# ---- optimizer groups and schedules --------------------------------------------------------


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return timm.create_model("test_resnet", num_classes=3)


def test_the_backbone_trains_at_a_fraction_of_the_heads_rate():
    from medalist.engine.optim import create_optimizer, create_schedule

    model = _model()
    t = validate_config({"train": {"lr": 0.01, "backbone_lr_mult": 0.1}}).train
    opt = create_optimizer(t, model)
    head = {id(p) for p in model.get_classifier().parameters()}
    seen = []
    for g in opt.param_groups:
        is_head = {id(p) in head for p in g["params"]}
        assert len(is_head) == 1, "a group mixes head and backbone"
        assert g["lr"] == pytest.approx(0.01 if is_head == {True} else 0.001)
        seen += [id(p) for p in g["params"]]
    assert sorted(seen) == sorted(id(p) for p in model.parameters())
    sched = create_schedule(t, opt, steps_per_epoch=10)
    sched.step_update(num_updates=25)  # timm's cosine keeps the ratio through the schedule
    rates = sorted({round(g["lr"] / opt.param_groups[0]["lr"], 6) for g in opt.param_groups})
    assert rates == [0.1, 1.0]


def test_layer_decay_lowers_the_rate_towards_the_input():
    from medalist.engine.optim import create_optimizer

    model = _model()
    t = validate_config({"train": {"lr": 0.01, "layer_decay": 0.5}}).train
    opt = create_optimizer(t, model)
    lr_of = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    by_name = {n: lr_of[id(p)] for n, p in model.named_parameters()}
    top = next(v for n, v in by_name.items() if n.startswith("layer4") and n.endswith("weight"))
    assert by_name["fc.weight"] == pytest.approx(0.01)
    assert by_name["conv1.0.weight"] < top < 0.01


def test_one_cycle_peaks_at_the_learning_rate_after_30_percent():
    from medalist.engine.optim import create_optimizer, create_schedule

    t = validate_config({"train": {"lr": 0.01, "scheduler": "onecycle", "epochs": 2}}).train
    opt = create_optimizer(t, _model())
    sched = create_schedule(t, opt, steps_per_epoch=50)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    # torch counts the peak as update 0.3 * 100 - 1
    assert int(np.argmax(lrs)) == 29 and max(lrs) == pytest.approx(0.01)
    assert lrs[0] == pytest.approx(0.01 / 25) and lrs[-1] < 1e-5


def test_default_optimizer_is_the_one_before_these_keys():
    from timm.optim import create_optimizer_v2

    from medalist.engine.optim import create_optimizer

    t = validate_config({}).train
    ours, theirs = create_optimizer(t, _model()), create_optimizer_v2(_model(), "adamw", 1e-3, 0.01)
    assert [(g["lr"], g["weight_decay"], len(g["params"])) for g in ours.param_groups] == [
        (g["lr"], g["weight_decay"], len(g["params"])) for g in theirs.param_groups
    ]


# ---- freezing stages -----------------------------------------------------------------------


def test_stages_follow_timms_feature_maps():
    from medalist.models.factory import backbone_stages, frozen_stage_parameters

    model = _model()
    stages = backbone_stages(model)
    assert [id(p) for p in stages[0]] == [id(p) for p in (model.conv1.parameters())] + [
        id(p) for p in model.bn1.parameters()
    ]
    assert [id(p) for p in stages[1]] == [id(p) for p in model.layer1.parameters()]
    assert len(stages) == 5  # stem and layer1-4; the head is in none
    with pytest.raises(UserError, match="has 4 stages after its stem"):
        frozen_stage_parameters(model, 5)
    assert len(frozen_stage_parameters(model, 4)) == sum(len(s) for s in stages)


@pytest.mark.slow
def test_frozen_stages_keep_their_weights_and_statistics(tmp_path):
    from medalist.data.dataset import mix_seed
    from medalist.workflows.train import train

    cfg = make_project(tmp_path / "proj")
    summary = train(cfg, ["model.freeze_stages=2", "train.epochs=1"], folds="0", name="fz")
    best = torch.load(summary.run.fold_dir(0) / "best.ckpt", weights_only=False)["state_dict"]
    torch.manual_seed(mix_seed(0, 0, 1))  # the fold loop's seed before it makes the model
    start = timm.create_model("test_resnet", num_classes=3).state_dict()
    for name, value in start.items():
        trained = best[f"model.{name}"]
        if name.startswith(("conv1", "bn1", "layer1", "layer2")):  # BatchNorm statistics too
            assert torch.equal(trained, value), f"{name} changed"
        elif name.startswith("layer3") and name.endswith("conv1.weight"):
            assert not torch.equal(trained, value), f"{name} did not train"


# ---- accumulation, plan and clock ----------------------------------------------------------


@pytest.mark.slow
def test_accumulation_takes_one_update_per_k_batches(tmp_path, capsys):
    from lightning.pytorch.callbacks import Callback

    from medalist.workflows.train import train

    steps = []

    class Steps(Callback):
        def on_train_end(self, trainer, pl_module):
            steps.append(trainer.global_step)

    cfg = make_project(tmp_path / "proj")  # 24 training images of fold 0: 3 batches of 8
    train(cfg, ["train.accumulate_grad_batches=3"], folds="0", callbacks=lambda k: [Steps()])
    out = capsys.readouterr().out
    assert steps == [2]  # 2 epochs x 1 update (3 batches each), not 6
    assert "8 images per step x 3 accumulated = 24 per update" in out
    assert "s per epoch: about" in out and "for the 1 epochs left in the run" in out


def test_too_many_frozen_stages_fail_before_the_run_directory(tmp_path, monkeypatch, capsys):
    cfg = make_project(tmp_path / "proj")
    before = snapshot(cfg.parent.parent)
    code, err = run_cli(monkeypatch, capsys, "train", str(cfg), "model.freeze_stages=6")
    assert_user_error(code, err, "model.freeze_stages = 6", "4 stages")
    assert snapshot(cfg.parent.parent) == before


def test_a_wrong_new_key_on_the_command_line_exits_2(tmp_path, monkeypatch, capsys):
    cfg = make_project(tmp_path / "proj")
    code, err = run_cli(monkeypatch, capsys, "train", str(cfg), "train.accumulate_grad_batches=0")
    assert_user_error(code, err, "train.accumulate_grad_batches")


# ---- memory estimate -----------------------------------------------------------------------


def test_the_estimate_counts_what_autograd_saves_once():
    from medalist.engine.budget import saved_activation_bytes

    model = torch.nn.Sequential(torch.nn.Linear(10, 20), torch.nn.ReLU(), torch.nn.Linear(20, 5))
    # Linear 1 keeps its input (4x10), ReLU its output (4x20), which Linear 2 keeps again.
    assert saved_activation_bytes(model, torch.rand(4, 10)) == 4 * (4 * 10 + 4 * 20)


def test_a_batch_that_wont_fit_gets_the_accumulation_that_keeps_it():
    from medalist.engine.budget import GIB, MIB, MemoryEstimate, memory_lines

    cfg = validate_config({"train": {"batch_size": 64}})
    est = MemoryEstimate(
        weights=100 * MIB,
        gradients=100 * MIB,
        optimizer=200 * MIB,
        averaged=0,
        activations_per_image=400 * MIB,
        batch=64,
        precision="16-mixed",
        gpu="a test card",
        gpu_bytes=16 * GIB,
    )
    # (16 GiB - 400 MiB - the reserve) / 400 MiB: 38 images fit, so 32 per step, 2 steps.
    assert not est.fits and est.largest_batch() == 38
    lines = memory_lines(cfg, est)
    assert "keep 64 images per update" in lines[-1]
    assert "train.batch_size=32 train.accumulate_grad_batches=2" in lines[-1]


def test_doctor_reports_the_configs_memory(tiny_project, monkeypatch):
    from medalist.engine import budget
    from medalist.envtools.doctor import check_memory

    row = check_memory(tiny_project)
    assert (
        row.status == "OK" and "8 images per step" in row.detail and "memory: about" in row.detail
    )
    monkeypatch.setattr(budget, "_gpu", lambda: ("a small card", budget.RESERVE_BYTES))
    row = check_memory(tiny_project)
    assert row.status == "WARN" and "one image does not fit" in row.detail


# ---- mixing --------------------------------------------------------------------------------


def test_mixup_gives_soft_targets_the_loss_takes(tiny_project):
    from medalist.tasks.classify import ClassifyTask
    from medalist.workflows.train import prepare

    cfg = load_config(tiny_project, ["train.mixup=0.4", "train.cutmix=1.0"])
    task = prepare(cfg).task
    mixer = task.create_mixer(cfg)
    x, y = torch.rand(8, 3, 16, 16), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    torch.manual_seed(3)
    mx, my = mixer(x.clone(), y)
    torch.manual_seed(3)
    mx2, my2 = mixer(x.clone(), y)
    assert torch.equal(mx, mx2) and torch.equal(my, my2)  # seeded from torch's generator
    assert my.shape == (8, 3) and torch.allclose(my.sum(1), torch.ones(8))
    assert not torch.equal(my, torch.nn.functional.one_hot(y, 3).float())
    loss = task.create_loss(cfg, y.numpy())(torch.zeros(8, 3), my)
    assert torch.isfinite(loss)
    regression = ClassifyTask("regression", ["label"], [], task.metric, "id")
    with pytest.raises(UserError, match="needs single-label classes"):
        regression.create_mixer(cfg)


def test_segmentation_refuses_mixing(tmp_path, monkeypatch, capsys):
    from test_segment import make_seg_project

    cfg = make_seg_project(tmp_path / "seg")
    code, err = run_cli(monkeypatch, capsys, "train", str(cfg), "train.mixup=0.2")
    assert_user_error(code, err, "train.mixup", "not masks")


# ---- workers, progress bar, lr finder ------------------------------------------------------


@pytest.mark.slow
def test_worker_count_does_not_change_the_out_of_fold_predictions(tmp_path):
    from medalist.workflows.train import train

    cfg = make_project(tmp_path / "proj")
    oof = []
    for workers in (0, 2):
        run = train(cfg, [f"data.num_workers={workers}"], name=f"w{workers}").run
        oof.append((run.path / "oof.csv").read_bytes())
    assert oof[0] == oof[1]


def test_the_epoch_bar_draws_only_on_a_terminal(monkeypatch):
    from rich.console import Console

    from medalist import console as console_module
    from medalist.console import EpochBar

    bar = EpochBar("fold 0 epoch 1/2", 4)  # tests run without a terminal
    assert bar.bar is None
    bar.advance(8, 1.0)
    bar.close()
    screen = io.StringIO()
    monkeypatch.setattr(console_module, "console", Console(file=screen, force_terminal=True))
    bar = EpochBar("fold 0 epoch 1/2", 4)
    bar.advance(8, 1.2345)
    bar.bar.refresh()
    bar.close()
    assert "img/s" in screen.getvalue() and "1.2345" in screen.getvalue()


def test_the_suggestion_is_the_steepest_fall_per_decade():
    from medalist.workflows.lr import steepest_descent

    lrs = list(np.logspace(-6, 0, 60))
    # Flat, noisy at the smallest rates, falls fastest at 1e-3, then blows up.
    losses = [2.0 - 1.5 / (1 + math.exp(-3 * (math.log10(r) + 3))) for r in lrs]
    losses = [v + (0.01 if i % 2 else 0) for i, v in enumerate(losses)]
    losses[-5:] = [3, 4, 5, 6, 7]
    assert 10**-3.3 < steepest_descent(lrs, losses) < 10**-2.7
    assert steepest_descent(lrs[:5], losses[:5]) is None


@pytest.mark.slow
def test_auto_lr_trains_with_the_finders_suggestion(tmp_path, capsys):
    import yaml

    from medalist.workflows.lr import lr_command
    from medalist.workflows.train import train

    cfg = make_project(tmp_path / "proj", TINY_CONFIG.replace("lr: 3.0e-3", "lr: auto"))
    found = lr_command(cfg)
    assert found.plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    run = train(cfg, folds="0", name="auto").run
    saved = yaml.safe_load((run.path / "config.yaml").read_text())["train"]["lr"]
    assert saved == float(f"{found.suggestion:.3g}")
    assert f"the learning-rate finder suggests {saved:g}" in capsys.readouterr().out


def test_new_writes_the_augmentation_preset_for_the_image_kind(tmp_path):
    from PIL import Image

    from medalist.workflows.scaffold.augment import image_kind

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (28, 28), np.uint8)).save(tmp_path / "digit.png")
    grey_rgb = np.repeat(rng.integers(0, 255, (256, 256, 1), np.uint8), 3, axis=2)
    Image.fromarray(grey_rgb).save(tmp_path / "xray.png")
    Image.fromarray(rng.integers(0, 255, (40, 60, 3), np.uint8)).save(tmp_path / "photo.png")
    kinds = {p: image_kind(tmp_path / f"{p}.png")[0] for p in ("digit", "xray", "photo")}
    assert kinds == {"digit": "document", "xray": "medical", "photo": "photo"}


@pytest.mark.parametrize("colour", [True, False], ids=["photos", "grey-documents"])
def test_new_gives_segmentation_the_preset_without_shifts_zoom_and_turns(tmp_path, colour):
    """A segmentation baseline keeps only the mirror of the photo preset (the Affine step cost
    Dice at its budget, bench/segment.py), and nothing for small grey images, where a mirror is
    wrong too; classification on the same images keeps the whole preset."""
    from PIL import Image
    from test_segment import make_seg_project

    from medalist.workflows.scaffold import create_project
    from medalist.workflows.scaffold.augment import PRESETS

    make_seg_project(tmp_path / "comp", n_train=12, n_test=2)
    data = tmp_path / "comp" / "data"
    if not colour:
        for path in (data / "train").glob("*.png"):
            Image.open(path).convert("L").save(path)
    cfg = load_config(create_project(tmp_path / "seg", data).config_path)
    assert cfg.competition.task == "segment"
    assert cfg.data.augment == ([{"name": "HorizontalFlip", "p": 0.5}] if colour else [])
    # The same images as a classification competition: the full preset of their kind.
    ids = pd.read_csv(data / "train.csv")["id"]
    pd.DataFrame({"id": ids, "label": ids.index % 2}).to_csv(data / "train.csv", index=False)
    test_ids = pd.read_csv(data / "sample_submission.csv")["id"]
    pd.DataFrame({"id": test_ids, "label": 0}).to_csv(data / "sample_submission.csv", index=False)
    shutil.rmtree(data / "masks")
    cfg = load_config(create_project(tmp_path / "cls", data).config_path)
    assert cfg.competition.task == "classify"
    assert cfg.data.augment == PRESETS["photo" if colour else "document"][1]


def test_the_preset_follows_the_kind_most_of_the_first_images_are(tmp_path):
    """A colour set whose first image happens to be grey (a scan among photos) keeps the photo
    preset; before, the first image alone decided it."""
    from PIL import Image

    from medalist.workflows.scaffold import create_project
    from medalist.workflows.scaffold.augment import PRESETS

    make_project(tmp_path / "shapes")
    data = tmp_path / "shapes" / "data"
    first = data / "train" / "img_0000.png"
    Image.open(first).convert("L").save(first)
    cfg = load_config(create_project(tmp_path / "proj", data).config_path)
    assert cfg.data.augment == PRESETS["photo"][1]
