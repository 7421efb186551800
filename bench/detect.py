"""medalist's default FCOS against a hand-written torchvision FCOS loop, and what fusion adds.

On a set made by `make_detect_set.py` (digit scans pasted onto 128x128 canvases, about half of
the objects under 32x32):

1. medalist trains FCOS on timm's resnet18 (3 folds; `medalist.workflows.train.train`, the code
   path of `medalist train`). A plain loop trains torchvision's FCOS on torchvision's resnet18
   with a `BackboneWithFPN` on fold 0's split, with the same budget: epochs, input size, batch
   size, AdamW (lr 1e-3, weight decay 0.01), HorizontalFlip, torch threads, FPN channels.
   Both are scored by the same evaluator (torchmetrics on faster-coco-eval) on fold 0's
   validation images after the last epoch: mAP@0.5 and small-object AP. Seconds per epoch:
   process CPU time (and wall time) from one epoch's start to the next, medalist's timed by a
   Lightning callback (training, its validation pass with the loss and the metric, the
   history and both checkpoints) against the plain loop's training, its prediction pass over
   the same images and a `torch.save` of its weights; medians over epochs 2 on.
2. On the held-out test canvases: the 3 folds fused by weighted boxes fusion against the best
   single fold, and TTA (hflip) on against off.

Run: .venv/bin/python bench/detect.py  (about 10 minutes on two CPU cores)
Last line: `medalist map50 X vs plain Y; CPU s/epoch ratio Z; WBF folds A vs best fold B;
TTA C vs D`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402
from make_detect_set import make_set  # noqa: E402

CONFIG = """\
competition:
  task: detect
  train_csv: data/train.csv
  test_csv: null
  image_dir: data/train
  test_image_dir: data/test
  sample_submission: data/sample_submission.csv
  id_column: image_id
  metric: map50
cv:
  n_splits: {folds}
model:
  backbone: resnet18
  fpn_channels: {channels}
data:
  image_size: {size}
train:
  epochs: {epochs}
  batch_size: {batch}
  threads: {threads}
track:
  backends: [none]
"""


def box_array(rows: Any, ids: list[str]) -> np.ndarray:
    """The true boxes of `ids` from a table of Global Wheat rows, padded (x1 y1 x2 y2 class)."""
    from medalist.tasks.detect_fusion import pad_boxes

    per: dict[str, list] = {i: [] for i in ids}
    for image, text in zip(rows["image_id"], rows["bbox"], strict=True):
        if image not in per:
            continue
        x, y, w, h = (float(v) for v in text.strip("[]").split(","))
        per[image].append((x, y, x + w, y + h, 0.0))
    return pad_boxes(
        [np.array(per[i]).reshape(-1, 5) for i in ids], max(map(len, per.values())) or 1, 5
    )


class EpochClock:
    """Process CPU time and wall time of each epoch of a fold: from one epoch's start to the
    next's (the last to the end of training), so the validation pass, the history and both
    checkpoints are inside."""

    def __init__(self) -> None:
        self.marks: list[tuple[float, float]] = []

    def _mark(self, *_: Any) -> None:
        self.marks.append((time.process_time(), time.perf_counter()))

    on_train_epoch_start = on_train_end = _mark

    def epochs(self) -> tuple[list[float], list[float]]:
        """(CPU seconds, wall seconds) per epoch."""
        pairs = list(zip(self.marks, self.marks[1:], strict=False))
        return [b[0] - a[0] for a, b in pairs], [b[1] - a[1] for a, b in pairs]


def plain_loop(data: Path, train_ids: list[str], valid_ids: list[str], args: Any) -> dict:
    """torchvision's FCOS on torchvision's resnet18, trained as a user writes it."""
    import albumentations as A
    import pandas as pd
    import torch
    import torchvision
    from albumentations.pytorch import ToTensorV2
    from PIL import Image
    from torchvision.models.detection import FCOS
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.ops.feature_pyramid_network import LastLevelP6P7

    torch.manual_seed(0)
    table = pd.read_csv(data / "train.csv")
    y_train = box_array(table, train_ids)
    body = torchvision.models.resnet18(weights=None)
    ch = args.channels
    backbone = BackboneWithFPN(
        body, {"layer2": "0", "layer3": "1", "layer4": "2"}, [128, 256, 512], ch,
        extra_blocks=LastLevelP6P7(ch, ch),
    )  # fmt: skip
    model = FCOS(backbone, num_classes=1, min_size=args.size, max_size=args.size)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    flip = A.Compose(
        [A.HorizontalFlip(p=0.5), ToTensorV2()],
        bbox_params=A.BboxParams(format="pascal_voc", label_fields=["labels"]),
    )
    images = {
        i: np.asarray(Image.open(data / "train" / f"{i}.png").convert("RGB"))
        for i in table["image_id"].unique().tolist() + train_ids + valid_ids
    }
    epochs, cpu = [], []
    preds: list[np.ndarray] = []
    for _ in range(args.epochs):
        start, start_cpu = time.perf_counter(), time.process_time()
        model.train()
        order = np.random.default_rng(len(epochs)).permutation(len(train_ids))
        for b in range(0, len(order) - args.batch + 1, args.batch):
            xs, ts = [], []
            for j in order[b : b + args.batch]:
                g = y_train[j][~np.isnan(y_train[j][:, 0])]
                out = flip(image=images[train_ids[j]], bboxes=g[:, :4], labels=[0] * len(g))
                xs.append(out["image"].float() / 255)
                boxes = torch.tensor(np.asarray(out["bboxes"]).reshape(-1, 4), dtype=torch.float32)
                ts.append({"boxes": boxes, "labels": torch.zeros(len(boxes), dtype=torch.int64)})
            loss = sum(model(xs, ts).values())
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        preds = []
        with torch.inference_mode():
            for b in range(0, len(valid_ids), args.batch):
                xs = [
                    torch.from_numpy(images[i]).permute(2, 0, 1).float() / 255
                    for i in valid_ids[b : b + args.batch]
                ]
                for d in model(xs):
                    preds.append(
                        np.concatenate(
                            [
                                d["boxes"].numpy(),
                                d["scores"].numpy()[:, None],
                                d["labels"].numpy()[:, None] * 0.0,
                            ],
                            1,
                        )
                    )
        torch.save(model.state_dict(), data.parent / "plain.pt")  # as a loop keeps its weights
        epochs.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    from medalist.tasks.detect_fusion import pad_boxes

    return {"epoch_s": epochs, "epoch_cpu_s": cpu, "preds": pad_boxes(preds, 100)}


def scores(y: np.ndarray, preds: np.ndarray) -> dict[str, float]:
    from medalist.tasks.detect_metrics import coco_summary

    s = coco_summary(y, preds)
    return {"map50": round(float(s["map_50"]), 4), "map_small": round(float(s["map_small"]), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=180)
    parser.add_argument("--test", type=int, default=60)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--channels", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()

    import pandas as pd
    import torch

    torch.set_num_threads(args.threads)
    from medalist.runs.rundir import open_run_dir
    from medalist.workflows.inference import fold_predictions, run_test_predictions
    from medalist.workflows.train import image_source, train

    work = Path(tempfile.mkdtemp(prefix="medalist-detect-bench-"))
    try:
        data = make_set(work / "data", args.train, args.test, args.size)
        config = work / "configs" / "detect.yaml"
        config.parent.mkdir()
        config.write_text(CONFIG.format(**vars(args)))
        t0 = time.perf_counter()
        import lightning as L

        clock = type("Clock", (EpochClock, L.Callback), {})()
        summary = train(config, name="fcos", callbacks=lambda k: [clock] if k == 0 else [])
        run = open_run_dir(summary.run.path)
        train_s = time.perf_counter() - t0
        folds = pd.read_csv(run.file("folds.csv"))
        valid_ids = folds.loc[folds["fold"] == 0, "id"].astype(str).tolist()
        train_ids = folds.loc[folds["fold"] != 0, "id"].astype(str).tolist()
        y_valid = box_array(pd.read_csv(data / "train.csv"), valid_ids)
        history = pd.read_csv(run.fold_dir(0) / "history.csv")
        task = run_test_predictions(run).task
        oof_ids, oof = task.oof_boxes([[run.fold_dir(0)]])
        at = {v: i for i, v in enumerate(oof_ids)}
        medalist_valid = scores(y_valid, oof[[at[i] for i in valid_ids]])
        plain = plain_loop(data, train_ids, valid_ids, args)
        plain_valid = scores(y_valid, plain["preds"])

        test_ids = [f"te{i:04d}" for i in range(args.test)]
        y_test = box_array(pd.read_csv(data / "test_boxes.csv"), test_ids)
        fused = scores(y_test, run_test_predictions(run).preds)
        tta = scores(y_test, run_test_predictions(run, tta=["hflip"]).preds)
        cfg = run.config()
        images = image_source(
            cfg, [data / "test" / f"{i}.png" for i in test_ids], pd.Series(test_ids)
        )
        per_fold = []
        for k in range(args.folds):
            state = torch.load(
                run.fold_dir(k) / "best.ckpt", map_location="cpu", weights_only=False
            )
            weights = {
                n.removeprefix("model."): v
                for n, v in state["state_dict"].items()
                if n.startswith("model.")
            }
            per_fold.append(scores(y_test, fold_predictions(cfg, task, images, [weights])))
        best = max(per_fold, key=lambda s: s["map50"])
        m_cpu, m_wall = clock.epochs()
        # Epoch 1 of each side warms caches and allocators: the medians are over the rest.
        m_epoch, p_epoch = _common.median(m_cpu[1:]), _common.median(plain["epoch_cpu_s"][1:])
        m_wall_s, p_wall_s = _common.median(m_wall[1:]), _common.median(plain["epoch_s"][1:])
        payload = {
            "settings": vars(args),
            "machine": _common.machine(),
            "valid_fold0": {
                "medalist_last_epoch_map50": round(float(history["map50"].iloc[-1]), 4),
                "medalist_best_epoch": medalist_valid,
                "plain_last_epoch": plain_valid,
            },
            "cpu_seconds_per_epoch": {
                "medalist": round(m_epoch, 2),
                "plain": round(p_epoch, 2),
                "ratio": round(m_epoch / p_epoch, 3),
            },
            "wall_seconds_per_epoch": {
                "medalist": round(m_wall_s, 2),
                "plain": round(p_wall_s, 2),
                "ratio": round(m_wall_s / p_wall_s, 3),
            },
            "test": {
                "wbf_folds": fused,
                "per_fold": per_fold,
                "best_fold": best,
                "wbf_folds_tta_hflip": tta,
            },
            "medalist_train_s": round(train_s, 1),
        }
        path = _common.write_result("detect", payload)
        print(f"results: {path}")
        v = payload["valid_fold0"]
        print(
            f"medalist map50 {v['medalist_last_epoch_map50']:.3f} (small AP "
            f"{medalist_valid['map_small']:.3f}) vs plain {plain_valid['map50']:.3f} (small AP "
            f"{plain_valid['map_small']:.3f}); CPU s/epoch ratio {m_epoch / p_epoch:.2f}; "
            "WBF folds "
            f"{fused['map50']:.3f} vs best fold {best['map50']:.3f}; TTA {tta['map50']:.3f} vs "
            f"{fused['map50']:.3f}"
        )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
