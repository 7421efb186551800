"""The notebooks of the notebook and hybrid layouts, built with nbformat.

Each calls medalist's Python API (load_config, train, predict) and reads the project's
config, so a notebook and `medalist train` make the same run directory.
"""

from __future__ import annotations

from textwrap import dedent

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

KERNEL = {"name": "python3", "display_name": "Python 3", "language": "python"}

SETUP = """\
from pathlib import Path

# The project folder: this notebook lives in <project>/notebook/.
ROOT = Path.cwd() if (Path.cwd() / "configs").is_dir() else Path.cwd().parent
CONFIG = ROOT / "configs" / "baseline.yaml"
OVERRIDES = []  # e.g. ["train.epochs=3", "model.backbone=resnet34"]"""

DATA = """\
import pandas as pd

from medalist.config import load_config

cfg = load_config(CONFIG, OVERRIDES)
targets = cfg.target_columns
train_df = pd.read_csv(cfg.path(cfg.competition.train_csv))
print(f"{len(train_df)} training images; target: {', '.join(targets)}")
train_df[targets[0]].value_counts() if len(targets) == 1 else train_df[targets].sum()"""

TRAIN = """\
from medalist.workflows.train import train

summary = train(CONFIG, OVERRIDES)
RUN = summary.run.path
summary.scores"""

CURVES = """\
import matplotlib.pyplot as plt

metric = cfg.competition.metric
fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(10, 3.5))
for history_csv in sorted(RUN.glob("fold_*/history.csv")):
    h = pd.read_csv(history_csv)
    fold = history_csv.parent.name
    ax_loss.plot(h["epoch"], h["train_loss"], "--", label=f"{fold} train")
    ax_loss.plot(h["epoch"], h["val_loss"], label=f"{fold} val")
    if metric in h:
        ax_metric.plot(h["epoch"], h[metric], label=fold)
ax_loss.set(xlabel="epoch", ylabel="loss", title="train (dashed) and validation loss")
ax_metric.set(xlabel="epoch", ylabel=metric, title="validation " + metric)
ax_loss.legend(fontsize=7)
ax_metric.legend(fontsize=7)
plt.show()"""

PICK_RUN = """\
import json

import pandas as pd

RUN = None  # a run folder, e.g. ROOT / "runs" / "baseline-20260101-120000"; None: the latest
if RUN is None:
    finished = sorted((ROOT / "runs").glob("*/scores.json"), key=lambda p: p.stat().st_mtime)
    if not finished:
        raise RuntimeError("no finished run under runs/: train one first")
    RUN = finished[-1].parent
scores = json.loads((RUN / "scores.json").read_text())
print(f"{RUN.name}: CV {scores['metric']} {scores['mean']:.4f} +- {scores['std']:.4f}")
pd.DataFrame({"fold": range(len(scores["folds"])), scores["metric"]: scores["folds"]})"""

OOF = """\
from IPython.display import Image, display

oof = pd.read_csv(RUN / "oof.csv")
pred_cols = [c for c in oof.columns if c.startswith("pred_")]
if "target" in oof and len(pred_cols) > 1:  # one label per image: a confusion table
    classes = [c.removeprefix("pred_") for c in pred_cols]
    truth = oof["target"].map(dict(enumerate(classes)))
    guess = pd.Series(oof[pred_cols].to_numpy().argmax(1)).map(dict(enumerate(classes)))
    display(pd.crosstab(truth, guess, rownames=["true"], colnames=["predicted"]))
for png in sorted((RUN / "plots").glob("*.png")):
    display(Image(filename=str(png)))
oof.head()"""

SUBMIT = """\
from medalist.workflows.predict import predict

result = predict(RUN)
print(f"{result.path}: {len(result.submission)} rows, checked against the sample")
result.submission.head()"""

EDA_IMAGES = """\
import matplotlib.pyplot as plt
import numpy as np

from medalist.data.images import eight_bit, open_image
from medalist.data.tables import load_tables

tables = load_tables(cfg)
picks = np.random.default_rng(0).choice(len(tables.train), min(12, len(tables.train)), False)
fig, axes = plt.subplots(2, 6, figsize=(12, 4.5))
for ax in axes.flat:
    ax.axis("off")
for ax, i in zip(axes.flat, picks):
    with open_image(tables.train_paths[i]) as img:  # upright, as the model sees it
        ax.imshow(eight_bit(img).convert("RGB"))  # 16-bit scans stretched, not clipped
        size = f"{img.size[0]}x{img.size[1]}"
    ax.set_title(f"{tables.train.iloc[i][targets[0]]}\\n{size}", fontsize=8)
plt.show()"""

EDA_FOLDS = """\
from medalist.workflows.train import run_folds

folds_path, fold_table = run_folds(cfg)
print(f"folds written to {folds_path}")
fold_table"""


def _notebook(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    nb = new_notebook(
        cells=[
            new_markdown_cell(dedent(text)) if kind == "md" else new_code_cell(text)
            for kind, text in cells
        ]
    )
    nb.metadata["kernelspec"] = KERNEL
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def train_notebook() -> nbformat.NotebookNode:
    """notebook/train.ipynb: the data at a glance, every fold trained, learning curves."""
    return _notebook(
        [
            (
                "md",
                """\
                # Train
                Every fold of `configs/baseline.yaml` through medalist's Python API: the same
                run folder as `medalist train`. Edit the config (or `OVERRIDES`) and run all
                cells; each run gets its own folder under `runs/`.""",
            ),
            ("code", SETUP),
            ("md", "## The data"),
            ("code", DATA),
            ("md", "## Train every fold"),
            ("code", TRAIN),
            ("md", "## Learning curves: both losses falling is what you want"),
            ("code", CURVES),
            ("md", "Next: `test.ipynb` evaluates this run and writes its submission."),
        ]
    )


def eval_notebook() -> nbformat.NotebookNode:
    """notebook/test.ipynb: a finished run's CV and errors, then its checked submission."""
    return _notebook(
        [
            (
                "md",
                """\
                # Test
                Evaluate a finished run (per-fold CV, out-of-fold errors, its plots) and write
                its `submission.csv`, checked against `sample_submission.csv`.""",
            ),
            ("code", SETUP),
            ("md", "## The run"),
            ("code", PICK_RUN),
            ("md", "## Out-of-fold predictions"),
            ("code", OOF),
            ("md", "## Submission"),
            ("code", SUBMIT),
        ]
    )


def eda_notebook() -> nbformat.NotebookNode:
    """notebook/eda.ipynb: the tables, a grid of images, the validation folds."""
    return _notebook(
        [
            (
                "md",
                """\
                # EDA
                Look at the data before training: targets, images, and the validation folds
                every run will share. Training runs from `src/train.py`.""",
            ),
            ("code", SETUP),
            ("md", "## Targets"),
            ("code", DATA),
            ("md", "## Images"),
            ("code", EDA_IMAGES),
            ("md", "## Validation folds (the same file `medalist folds` writes)"),
            ("code", EDA_FOLDS),
        ]
    )
