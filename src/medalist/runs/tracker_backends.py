"""The trackers besides MLflow: W&B, Comet and Neptune (offline unless track.offline is false),
TensorBoard and CSV (files in the project). Each is a `medalist.runs.tracking.Mirror`; see that
module for what every mirror logs and how failures are contained.
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
from lightning.pytorch.loggers.logger import Logger

from medalist.config import config_to_dict
from medalist.io import write_csv
from medalist.logs import quiet_libraries
from medalist.runs.tracking import (
    IMAGE_EXTS,
    FoldKey,
    Mirror,
    artifact_files,
    env_vars,
    fold_summary,
    numeric,
)

# ---------------------------------------------------------------------------------------------
# Weights & Biases, Comet, Neptune: SaaS trackers, offline unless track.offline is false


class WandbMirror(Mirror):
    """A W&B run per fold grouped under the medalist run, and a `cv` run for the summary."""

    title = "W&B"

    def _start(self) -> None:
        os.environ.setdefault("WANDB_ERROR_REPORTING", "false")  # no Sentry reports from here

    def _init_args(self, job: str) -> dict[str, Any]:
        import wandb

        return {
            "project": self.project,
            "name": f"{self.run.name}/{job}",
            "group": self.run.name,
            "job_type": "cv" if job == "cv" else "fold",
            "id": f"{self.uid}-{job}",  # the same after --resume, which continues the run
            "resume": "allow",
            "dir": str(self.cfg.root),
            "mode": "offline" if self.cfg.track.offline else "online",
            "config": config_to_dict(self.cfg),
            "settings": wandb.Settings(silent=True, console="off"),
        }

    def _fold_logger(self, fold: FoldKey) -> Logger:
        import wandb
        from lightning.pytorch.loggers import WandbLogger

        if wandb.run is not None:  # a fold that died mid-way left its run open
            wandb.run.finish()
        run = wandb.init(**self._init_args(f"fold_{fold}"))
        # Lightning's own x-axis for its metrics (what WandbLogger sets on runs it starts).
        run.define_metric("trainer/global_step")
        run.define_metric("*", step_metric="trainer/global_step", step_sync=True)
        return WandbLogger(experiment=run)

    def _end_fold(self, fold: FoldKey, result: dict[str, Any]) -> None:
        run = self.loggers[fold].experiment
        run.summary.update(fold_summary(result))
        run.finish()

    def _finish(self, scores: dict[str, Any] | None, artifacts: list[Path]) -> None:
        import wandb

        run = wandb.init(**self._init_args("cv"))
        if scores:
            run.summary.update({"cv_mean": scores["mean"], "cv_std": scores["std"]})
            for k, s in enumerate(scores["folds"]):
                run.log({"cv_fold": s}, step=k)
        for name, path in artifact_files(artifacts):
            if path.suffix.lower() in IMAGE_EXTS:
                run.log({name: wandb.Image(str(path))})
            else:  # files in the run's folder are part of the run (and synced with it)
                dest = Path(run.dir) / name
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, dest)
                run.save(str(dest), base_path=run.dir, policy="now")
        run.finish()


class CometMirror(Mirror):
    """A Comet experiment per fold and a `cv` experiment; offline archives in comet/."""

    title = "Comet"

    def _start(self) -> None:
        # Read when comet_ml is first imported: its banners and tips say nothing to a user.
        os.environ.setdefault("COMET_LOGGING_CONSOLE", "ERROR")
        os.environ.setdefault("COMET_DISABLE_AUTO_LOGGING", "1")
        # comet_ml reports its own errors to Sentry over the network by default: not from here
        os.environ.setdefault("COMET_ERROR_TRACKING_ENABLE", "false")

    def _options(self, job: str) -> dict[str, Any]:
        """Comet's ExperimentConfig options for one experiment."""
        return {
            "name": f"{self.run.name}/{job}",
            "tags": ["medalist", self.run.name],
            "offline_directory": str(self.cfg.root / "comet"),
            "display_summary_level": 0,
            "auto_output_logging": False,  # medalist's console stays medalist's
            "log_code": False,
            "log_git_patch": False,
            "log_env_host": False,  # host name and IP address: nothing a run needs to share
        }

    def _starting(self) -> Any:
        # CometLogger(online=False) disables its experiment (Lightning issue #21617); comet's
        # own start setting, read only while an experiment starts, avoids that bug.
        return env_vars(COMET_START_ONLINE="false" if self.cfg.track.offline else "true")

    def _fold_logger(self, fold: FoldKey) -> Logger:
        from lightning.pytorch.loggers import CometLogger

        with self._starting():
            logger = CometLogger(project=self.project, **self._options(f"fold_{fold}"))
        logger.log_hyperparams(self.params())
        return logger

    def _end_fold(self, fold: FoldKey, result: dict[str, Any]) -> None:
        exp = self.loggers[fold].experiment
        exp.log_metrics(fold_summary(result))
        exp.end()

    def _finish(self, scores: dict[str, Any] | None, artifacts: list[Path]) -> None:
        import comet_ml

        with self._starting():
            config = comet_ml.ExperimentConfig(**self._options("cv"))
            exp = comet_ml.start(project=self.project, experiment_config=config)
        exp.log_parameters(self.params())
        if scores:
            exp.log_metrics({"cv_mean": scores["mean"], "cv_std": scores["std"]})
            for k, s in enumerate(scores["folds"]):
                exp.log_metric("cv_fold", s, step=k)
        for name, path in artifact_files(artifacts):
            if path.suffix.lower() in IMAGE_EXTS:
                exp.log_image(str(path), name=name)
            else:
                exp.log_asset(str(path), file_name=name)
        exp.end()


class NeptuneMirror(Mirror):
    """One Neptune run, a namespace per fold; epochs logged from history.csv at fold end."""

    title = "Neptune"

    def _start(self) -> None:
        import neptune
        from neptune.utils import stringify_unsupported

        quiet_libraries(warnings_too=False)

        with env_vars(NEPTUNE_DATA_DIRECTORY=str(self.cfg.root / ".neptune")):
            self.nep = neptune.init_run(
                project=os.environ.get("NEPTUNE_PROJECT"),  # offline mode needs none
                name=self.run.name,
                custom_run_id=self.uid,
                tags=["medalist", self.run.name],
                mode="offline" if self.cfg.track.offline else "async",
                capture_stdout=False,
                capture_stderr=False,
                capture_hardware_metrics=False,
                capture_traceback=False,
                source_files=[],
            )
        self.nep["params"] = stringify_unsupported(config_to_dict(self.cfg))

    def _end_fold(self, fold: FoldKey, result: dict[str, Any]) -> None:
        history = self.history(fold)
        for column in history.columns.drop("epoch", errors="ignore"):
            rows = history[["epoch", column]].astype(float)
            rows = rows[rows[column].map(math.isfinite)]  # Neptune refuses NaN and infinity
            if len(rows):
                steps = rows["epoch"].astype(int).tolist()
                self.nep[f"fold_{fold}/{column}"].extend(rows[column].tolist(), steps=steps)
        for k, v in fold_summary(result).items():
            self.nep[f"fold_{fold}/{k}"] = v

    def _finish(self, scores: dict[str, Any] | None, artifacts: list[Path]) -> None:
        if scores:
            self.nep["cv/mean"] = scores["mean"]
            self.nep["cv/std"] = scores["std"]
            folds = [float(s) for s in scores["folds"]]
            self.nep["cv/folds"].extend(folds, steps=list(range(len(folds))))
        for name, path in artifact_files(artifacts):
            self.nep[f"files/{name.rsplit('.', 1)[0]}"].upload(str(path))
        self.nep.stop()


# ---------------------------------------------------------------------------------------------
# TensorBoard and CSV: files in the project


class TensorBoardMirror(Mirror):
    """Event files in <project>/tb/<run>/fold_<k> (TensorBoardLogger) and .../cv."""

    title = "TensorBoard"

    @property
    def folder(self) -> Path:
        return self.cfg.root / "tb" / self.run.name

    def _fold_logger(self, fold: FoldKey) -> Logger:
        from lightning.pytorch.loggers import TensorBoardLogger

        logger = TensorBoardLogger(
            save_dir=str(self.folder.parent),
            name=self.run.name,
            version=f"fold_{fold}",
            default_hp_metric=False,
        )
        logger.log_hyperparams(self.params())
        return logger

    def _end_fold(self, fold: FoldKey, result: dict[str, Any]) -> None:
        writer = self.loggers[fold].experiment
        for k, v in fold_summary(result).items():
            writer.add_scalar(k, v)
        writer.close()

    def _finish(self, scores: dict[str, Any] | None, artifacts: list[Path]) -> None:
        import numpy as np
        from PIL import Image
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(self.folder / "cv"))
        table = "\n".join(f"| {k} | {v} |" for k, v in self.params().items())
        writer.add_text("params", "| key | value |\n|---|---|\n" + table)
        if scores:
            writer.add_scalar("cv_mean", scores["mean"])
            writer.add_scalar("cv_std", scores["std"])
            for k, s in enumerate(scores["folds"]):
                writer.add_scalar("cv_fold", s, global_step=k)
        for name, path in artifact_files(artifacts):
            if path.suffix.lower() in IMAGE_EXTS:
                with Image.open(path) as img:
                    pixels = np.asarray(img.convert("RGB"))
                writer.add_image(name, pixels, dataformats="HWC")
        writer.close()


class CsvMirror(Mirror):
    """Plain CSV files in <project>/tracking/<run>/, the spreadsheet way without a tool."""

    title = "CSV"

    @property
    def folder(self) -> Path:
        return self.cfg.root / "tracking" / self.run.name

    def _start(self) -> None:
        rows = [{"key": k, "value": v} for k, v in self.params().items()]
        write_csv(self.folder / "params.csv", pd.DataFrame(rows))

    def _upsert(self, name: str, fold: FoldKey, rows: pd.DataFrame) -> None:
        """Replace this fold's rows of `name` (a resumed fold writes them again)."""
        path = self.folder / name
        rows = rows.assign(fold=str(fold))[["fold", *rows.columns]]
        if path.is_file():
            old = pd.read_csv(path, dtype={"fold": str})
            rows = pd.concat([old[old["fold"] != str(fold)], rows], ignore_index=True)
        write_csv(path, rows)

    def _end_fold(self, fold: FoldKey, result: dict[str, Any]) -> None:
        self._upsert("metrics.csv", fold, self.history(fold))
        self._upsert(
            "folds.csv",
            fold,
            pd.DataFrame([numeric(result)]).drop(columns="fold", errors="ignore"),
        )

    def _finish(self, scores: dict[str, Any] | None, artifacts: list[Path]) -> None:
        if not scores:
            return
        row = {"run": self.run.name, "metric": scores["metric"]}
        row |= {"cv_mean": scores["mean"], "cv_std": scores["std"]}
        row |= {f"fold_{k}": s for k, s in enumerate(scores["folds"])}
        write_csv(self.folder / "summary.csv", pd.DataFrame([row]))
