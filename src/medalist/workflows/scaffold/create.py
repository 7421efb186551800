"""Making the project folder: check the data folder and the destination, infer, render and
validate the config, then write; a failure half-way removes what this call made."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from medalist.errors import UserError
from medalist.workflows.scaffold.infer import infer
from medalist.workflows.scaffold.render import (
    GITIGNORE,
    as_written,
    key_rank,
    readme,
    render_config,
    show,
    validated,
)
from medalist.workflows.scaffold.report import ProjectReport
from medalist.workflows.scaffold.tables import FOLDER_TABLE, Tables, find_tables

CONFIG_NAME = "baseline.yaml"
PROJECT_DIRS = ("configs", "models", "runs", "folds")  # and the layout's (layout_dirs)


def create_project(
    dest: Path,
    data_dir: Path,
    *,
    name: str | None = None,
    layout: str = "script",
    train_csv: str | None = None,
) -> ProjectReport:
    """Make the project folder `dest` for the competition data in `data_dir`.

    `layout`: script (src/train.py, src/predict.py, scripts/sweep.sh), notebook
    (notebook/train.ipynb, notebook/test.ipynb) or hybrid (src/, scripts/, notebook/eda.ipynb,
    notebook/test.ipynb). Raises UserError for an unknown layout, when `dest` exists and is
    not empty, when `data_dir` is missing, or when it holds no training table (train.csv, a
    name other competitions give it such as train_labels.csv, or `train_csv`). Nothing is
    written before the inference is done and the config validates.
    """
    from medalist.workflows.layout_templates import layout_dirs, readme_section, write_layout

    extra_dirs = layout_dirs(layout)
    dest = Path(dest).expanduser().absolute()
    data_dir = Path(data_dir).expanduser()
    tables = _check_data_dir(data_dir, train_csv)  # names relative to the data folder
    data_dir = data_dir.resolve()
    _check_dest(dest, data_dir)
    name = name or dest.name

    found = infer(data_dir, tables)
    # Validate before anything touches the disk: a config that can't load is never written.
    validated(render_config(found, name, "data"), name)

    made_dest = not dest.exists()
    try:
        dest.mkdir(parents=True, exist_ok=True)
        for sub in (*PROJECT_DIRS, *extra_dirs):
            (dest / sub).mkdir()
        linked = _link(dest / "data", data_dir)
        prefix = "data" if linked else data_dir.as_posix()
        text = validated(render_config(found, name, prefix), name)
        config_path = dest / "configs" / CONFIG_NAME
        _write(config_path, text)
        if found.folder_table is not None:
            _write(dest / FOLDER_TABLE, found.folder_table.to_csv(index=False))
        if found.groups is not None and found.groups.table is not None:
            _write(dest / "configs" / "groups.csv", found.groups.table.to_csv(index=False))
        _write(dest / ".gitignore", GITIGNORE)
        _write(dest / "readme.md", readme(name, data_dir, linked, readme_section(layout)))
        write_layout(dest, layout, _write)
        git = _git_init(dest)
    except BaseException:
        _undo(dest, made_dest)
        raise

    order = sorted(found.inferred, key=key_rank)
    inferred = {k: show(as_written(found.values[k], prefix)) for k in order}
    return ProjectReport(
        root=dest,
        config_path=config_path,
        inferred=inferred,
        unresolved=[f"{k}: {found.unresolved[k]}" for k in sorted(found.unresolved, key=key_rank)],
        reasons={k: found.inferred[k] for k in order if found.inferred[k]},
        data_dir=data_dir,
        data_linked=linked,
        layout=layout,
        git=git,
    )


def _check_data_dir(data_dir: Path, train_csv: str | None) -> Tables:
    if not data_dir.exists():
        raise UserError(
            f"data folder {data_dir} not found: pass --data the competition folder "
            "that holds train.csv"
        )
    if not data_dir.is_dir():
        raise UserError(
            f"--data {data_dir} is a file, not a folder: pass the competition folder "
            "that holds train.csv"
        )
    return find_tables(data_dir, train_csv)


def _check_dest(dest: Path, data_dir: Path) -> None:
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise UserError(
            f"{dest} already exists and is not a folder: medalist new never overwrites; "
            "choose a new project folder"
        )
    if dest.exists() and any(dest.iterdir()):
        raise UserError(
            f"{dest} already exists and is not empty: medalist new never overwrites; "
            "choose a new or empty project folder"
        )
    if dest.resolve().is_relative_to(data_dir):
        raise UserError(
            f"{dest} is inside the data folder {data_dir}: put the project somewhere else "
            "(data/ will link to the data)"
        )


def _git_init(dest: Path) -> bool:
    """`git init` in `dest`; False (and nothing else) when git is not installed or fails."""
    git = shutil.which("git")
    if git is None:
        return False
    done = subprocess.run([git, "init", "-q", str(dest)], capture_output=True, text=True)
    return done.returncode == 0


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _link(link: Path, target: Path) -> bool:
    try:
        os.symlink(target, link, target_is_directory=True)
    except (OSError, NotImplementedError):
        return False
    return True


def _undo(dest: Path, made_dest: bool) -> None:
    """Remove what this call made in `dest` (it was empty or absent before)."""
    if not dest.is_dir() or dest.is_symlink():
        return
    for child in dest.iterdir():
        if child.is_symlink() or not child.is_dir():
            child.unlink(missing_ok=True)
        else:
            shutil.rmtree(child, ignore_errors=True)
    if made_dest:
        try:
            dest.rmdir()
        except OSError:
            pass
