"""Every file name of a run directory, in one place.

    runs/<name>/
      config.yaml  provenance.json  diff.patch      the resolved config and where it came from
      task.json  folds.csv                          the label encoding and the folds the run used
      fold_<k>/  fold_<k>_seed<i>/                  one folder per fold and seed repeat:
        last.ckpt  best.ckpt  history.csv             full state every epoch, best weights, epochs
        oof.csv  <task arrays>  result.json           out-of-fold rows (result.json last: done)
      oof.csv  scores.json                          merged out-of-fold predictions and CV
      diagnosis.json  plots/  analysis/             what `analyse_run` found
      submission.csv                                what `medalist predict` wrote
      ensemble.json                                 an ensemble's members and weights
      trial.json                                    the Optuna trial that made the run

Code that reads or writes a run asks this module (or `RunDir`, which calls it) for the path;
nothing else spells a run's file names.
"""

from __future__ import annotations

from pathlib import Path

CONFIG = "config.yaml"
PROVENANCE = "provenance.json"
DIFF = "diff.patch"
TASK = "task.json"
FOLDS = "folds.csv"
OOF = "oof.csv"
SCORES = "scores.json"
DIAGNOSIS = "diagnosis.json"
SUBMISSION = "submission.csv"
SUBMISSION_FILES = "submission.zip"  # mask files, where the sample asks for them
ENSEMBLE = "ensemble.json"
TRIAL = "trial.json"
PLOTS = "plots"
ANALYSIS = "analysis"

# Inside a fold folder.
LAST_CKPT = "last.ckpt"
BEST_CKPT = "best.ckpt"
HISTORY = "history.csv"
RESULT = "result.json"
FOLD_OOF = OOF
OOF_MASKS = "oof_masks.npy"  # a segmentation fold's probability masks, rows as in its oof.csv
OOF_BOXES = "oof_boxes.npz"  # a detection fold's boxes (all rows, counts per image), as oof.csv

# Inside a package's runs/<name>/: the inference-only weights of one fold.
PACKAGED_FOLD = "fold_{fold}.pt"


def fold_name(fold: int, seed_index: int = 0) -> str:
    """`fold_<k>` for the run's first seed, `fold_<k>_seed<i>` for its repeats."""
    return f"fold_{fold}" if seed_index == 0 else f"fold_{fold}_seed{seed_index}"


def fold_dir(run_dir: Path, fold: int, seed_index: int = 0) -> Path:
    """The folder of fold `fold` (seed repeat `seed_index`) in a run directory."""
    return Path(run_dir) / fold_name(fold, seed_index)


def fold_done(run_dir: Path, fold: int, seed_index: int = 0) -> bool:
    """A fold is done once its result.json exists (it is written last)."""
    return (fold_dir(run_dir, fold, seed_index) / RESULT).is_file()


def packaged_fold(run_dir: Path, fold: int) -> Path:
    """A packaged run's weights file of fold `fold`."""
    return Path(run_dir) / PACKAGED_FOLD.format(fold=fold)


def plot(run_dir: Path, name: str) -> Path:
    """A picture under the run's plots/."""
    return Path(run_dir) / PLOTS / name


def analysis(run_dir: Path, name: str) -> Path:
    """A table under the run's analysis/."""
    return Path(run_dir) / ANALYSIS / name
