"""`medalist package --check`: run the package's notebook offline, as Kaggle would, and compare.

The notebook runs with nbclient in a temporary folder laid out like Kaggle's:
`kaggle/input/<competition>` (the local competition files, linked), `kaggle/input/<slug>` (the
package) and `kaggle/working` (the kernel's working folder); `KAGGLE_ROOT` points the notebook
there. The kernel runs in a throwaway virtual environment that sees this environment's libraries
(torch and the rest) but not its medalist, so the notebook's own `pip install --no-index` from
the package's wheels is what provides medalist. As root, the kernel runs in a network namespace
with no interface up (`unshare -n`); it talks to nbclient over Unix sockets.

Its submission.csv must equal `medalist predict` on the same runs (blended with the package's
weights): same ids and columns, same labels, probabilities within `atol`, run-length masks
within 1% of their pixels (a probability at the threshold may round either way in another
process). A second run with the
package's quick-path rule checks that the quick submission is valid too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medalist.errors import UserError
from medalist.io import (
    csv_separator,
    drop_written_index,
    read_json,
    sample_id_column,
    write_json,
    write_text,
)
from medalist.kaggle.notebook import submission_file
from medalist.kaggle.runtime import read_manifest
from medalist.runs import layout

KERNEL_NAME = "medalist-check"
SECRET_VARS = ("KAGGLE_KEY", "KAGGLE_USERNAME", "KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR")


class CheckFailed(UserError):
    """The notebook failed offline, or its submission differs from `medalist predict`'s."""


@dataclass
class CheckResult:
    network: str
    rows: int
    columns: list[str]
    max_abs_diff: float
    atol: float
    quick: str
    seconds: float
    executed: Path


def offline_prefix() -> tuple[list[str], str]:
    """The command prefix that cuts the kernel off the network, and a line saying what it did."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return [], "not cut: a network namespace needs root (unshare -n)"
    exe = shutil.which("unshare")
    if exe is None:
        return [], "not cut: unshare (util-linux) is not installed"
    probe = subprocess.run([exe, "-n", "true"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        why = (probe.stderr.strip().splitlines() or ["failed"])[-1]
        return [], f"not cut: unshare -n failed here ({why})"
    return [exe, "-n", "--"], "cut: the kernel ran in a network namespace (unshare -n)"


def create_kernel_venv(path: Path) -> Path:
    """A venv whose Python sees this environment's packages except medalist; returns its python."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(path)],
        check=True,
        capture_output=True,
    )
    python = path / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    here = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    # Plain path lines: the .pth files there (the editable medalist's among them) are not run.
    (Path(site) / "_medalist_check_parent.pth").write_text("\n".join(here) + "\n")
    return python


def kaggle_layout(tmp: Path, package: Path, data_root: Path, competition: str) -> Path:
    """kaggle/input/<competition>, kaggle/input/<slug>, kaggle/working under `tmp`; the root."""
    slug = read_manifest(package)["dataset_id"].split("/", 1)[1]
    root = tmp / "kaggle"
    (root / "input").mkdir(parents=True)
    (root / "working").mkdir()
    (tmp / "tmp").mkdir(exist_ok=True)
    (root / "input" / competition).symlink_to(data_root, target_is_directory=True)
    (root / "input" / slug).symlink_to(package.resolve(), target_is_directory=True)
    return root


def _kernel_env(tmp: Path, kaggle_root: Path, quick: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SECRET_VARS}
    env.update(
        KAGGLE_ROOT=str(kaggle_root),
        MEDALIST_QUICK=quick,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
        IPYTHONDIR=str(tmp / "ipython"),
        MPLCONFIGDIR=str(tmp / "matplotlib"),
        TMPDIR=str(tmp / "tmp"),  # what the notebook writes to /tmp goes with the check
        NO_ALBUMENTATIONS_UPDATE="1",
        OMP_NUM_THREADS="1",  # the reference prediction shares the CPUs; results don't change
    )
    env.pop("VIRTUAL_ENV", None)
    return env


def execute_notebook(
    notebook: Path,
    python: Path,
    prefix: list[str],
    tmp: Path,
    kaggle_root: Path,
    quick: str,
    timeout: int,
    save_to: Path,
) -> Any:
    """Run `notebook` in a kernel of `python` (behind `prefix`); the executed notebook.

    A failed run is saved to `save_to` with its outputs, for the user to read.
    """
    import nbformat
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    specs = tmp / "kernels"
    spec_dir = specs / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    write_json(
        spec_dir / "kernel.json",
        {
            "argv": [*prefix, str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "medalist check",
            "language": "python",
        },
    )
    # Unix sockets reach a kernel in another network namespace; TCP on 127.0.0.1 would not.
    ipc = Path(tempfile.mkdtemp(prefix="mck-", dir="/tmp" if Path("/tmp").is_dir() else None))
    km = KernelManager(
        kernel_name=KERNEL_NAME,
        kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(specs)], ensure_native_kernel=False),
        transport="ipc",
        ip=str(ipc / "k"),
        connection_file=str(ipc / "kernel.json"),  # removed with the folder, not left in /tmp
    )
    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(
        nb,
        km=km,
        timeout=timeout,
        resources={"metadata": {"path": str(kaggle_root / "working")}},
    )
    log = (tmp / f"kernel-{quick}.log").open("w")
    try:
        client.execute(env=_kernel_env(tmp, kaggle_root, quick), stdout=log, stderr=log)
    except CellExecutionError as exc:
        write_text(save_to, nbformat.writes(nb))
        raise CheckFailed(
            f"the notebook failed offline (MEDALIST_QUICK={quick}): {_last_error_line(exc)} "
            f"(outputs in {save_to})"
        ) from None
    except CellTimeoutError:
        raise CheckFailed(
            f"a notebook cell ran past {timeout} s (MEDALIST_QUICK={quick})"
        ) from None
    finally:
        log.close()
        shutil.rmtree(ipc, ignore_errors=True)
    return nb


def _last_error_line(exc: Exception) -> str:
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"^[A-Za-z_.]*(Error|Exception)\b", line)]
    return (errors or lines or ["unknown error"])[-1][:300]


def reference_submission(runs: list[Path], manifest: dict[str, Any], tmp: Path) -> pd.DataFrame:
    """What `medalist predict` gives for the package's runs, blended with its weights, read back
    from a file as the notebook's is."""
    return read_submission(reference_file(runs, manifest, tmp))


def reference_file(runs: list[Path], manifest: dict[str, Any], tmp: Path) -> Path:
    """`medalist predict`'s submission file for the package's runs, blended with its weights:
    `tmp/reference.csv`, or `tmp/reference.zip` of mask files."""
    from medalist.kaggle.runtime import package_task
    from medalist.runs.rundir import open_run_dir
    from medalist.workflows.inference import (
        blend_members,
        make_submission,
        run_test_predictions,
        write_submission,
    )
    from medalist.workflows.smooth import use_filter

    results = [run_test_predictions(open_run_dir(run)) for run in runs]
    preds = blend_members(results, manifest["weights"], "the package")
    first = results[0]
    window = int(manifest.get("smooth_window") or 1)
    use_filter(first.cfg, manifest.get("smooth_filter"))
    _, sub = make_submission(
        first.cfg, package_task(first, manifest), first.ids, first.tables.test, preds,
        first.tables.sample, window,
    )  # fmt: skip
    return write_submission(tmp / "reference.csv", sub)


def compare_mask_zips(got_path: Path, want_path: Path) -> pd.DataFrame:
    """The notebook's zip of mask files against `medalist predict`'s: the same files, each
    mask equal pixel for pixel (the argmax of the same probabilities), the same table; the
    table (or the file names) for the report. CheckFailed otherwise."""
    from medalist.data.mask_files import read_mask_zip

    got_table, got = read_mask_zip(got_path)
    want_table, want = read_mask_zip(want_path)
    if sorted(got) != sorted(want):
        extra = sorted(set(got) ^ set(want))
        raise CheckFailed(
            f"the notebook's mask files differ from medalist predict's ({len(got)} vs "
            f"{len(want)}; first not in both: {extra[0] if extra else '-'})"
        )
    for name, mask in want.items():
        if got[name].shape != mask.shape or not np.array_equal(got[name], mask):
            bad = int((got[name] != mask).sum()) if got[name].shape == mask.shape else mask.size
            raise CheckFailed(
                f"mask {name}: {bad} of {mask.size} pixels differ from medalist predict's "
                "(they must be equal)"
            )
    if (got_table is None) != (want_table is None) or (
        want_table is not None and not got_table.astype(str).equals(want_table.astype(str))
    ):
        raise CheckFailed("the notebook's submission.csv inside the zip differs from predict's")
    return want_table if want_table is not None else pd.DataFrame({"file": sorted(want)})


MASK_TOLERANCE = 0.01  # of a run-length mask's pixels (those in either mask)


def _is_rle(col: pd.Series) -> bool:
    text = col.dropna().astype(str)
    return (
        not pd.api.types.is_numeric_dtype(col) and text.str.fullmatch(r"\d+ \d+( \d+ \d+)*|").all()
    )


def _pixels(text: object) -> np.ndarray:
    if not isinstance(text, str) or not text.strip():
        return np.zeros(0, dtype=np.int64)
    n = np.asarray(text.split(), dtype=np.int64)
    return np.concatenate([np.arange(s, s + k) for s, k in zip(n[0::2], n[1::2], strict=True)])


def _pixel_disagreement(a: object, b: object) -> float:
    """Pixels in one run-length mask but not the other, over the pixels in either."""
    pa, pb = _pixels(a), _pixels(b)
    union = len(np.union1d(pa, pb))
    return len(np.setxor1d(pa, pb)) / union if union else 0.0


def read_submission(path: Path, id_column: str | None = None) -> pd.DataFrame:
    """A submission (or the sample) with its id column (`id_column`; by default the sample's, as
    `sample_id_column` finds it) read as the text it holds, so that an id that lost its leading
    zeros ("00123" written as 123) is told apart."""
    sep = csv_separator(path)
    if id_column is None:
        id_column = sample_id_column(drop_written_index(pd.read_csv(path, sep=sep)))
    return drop_written_index(pd.read_csv(path, dtype={id_column: str}, sep=sep))


def sample_ids_of(data_root: Path, manifest: dict[str, Any]) -> str | None:
    """The id column of the competition's sample submission; None when it is not a table."""
    sample = data_root / str(manifest["data"].get("sample_submission") or "")
    if sample.suffix.lower() != ".csv" or not sample.is_file():
        return None
    return sample_id_column(read_submission(sample))


def compare_submissions(
    got: pd.DataFrame, want: pd.DataFrame, atol: float, id_column: str | None = None
) -> float:
    """The largest probability difference; CheckFailed when ids, columns or labels differ
    (`id_column`: the sample's id column, by default `want`'s first)."""
    if list(got.columns) != list(want.columns):
        raise CheckFailed(f"the notebook's columns {list(got.columns)} != {list(want.columns)}")
    id_col = id_column if id_column in want.columns else str(want.columns[0])
    if len(got) != len(want) or not (got[id_col].astype(str) == want[id_col].astype(str)).all():
        raise CheckFailed(
            f"the notebook's ids differ from medalist predict's ({len(got)} vs {len(want)} rows)"
        )
    worst = 0.0
    for col in (c for c in want.columns if c != id_col):
        a, b = got[col], want[col]
        if pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b):
            diff = float((a.astype(float) - b.astype(float)).abs().max())
            if not diff <= atol:
                raise CheckFailed(
                    f"column {col!r}: the notebook's values differ from medalist predict's by up "
                    f"to {diff:.3g} (allowed {atol:g})"
                )
            worst = max(worst, diff)
        elif _is_rle(a) and _is_rle(b):
            # Masks: a probability a hair from the threshold may land on either side in
            # another process, so compare pixels, not text.
            diff = max(map(_pixel_disagreement, a, b), default=0.0)
            if not diff <= MASK_TOLERANCE:
                raise CheckFailed(
                    f"column {col!r}: a notebook mask differs from medalist predict's in "
                    f"{diff:.2%} of its pixels (allowed {MASK_TOLERANCE:.0%})"
                )
        else:
            # An empty cell (no box on an image) is read back as missing on both sides, and
            # pandas keeps a missing string missing (never equal to itself): compare as "".
            bad = int((a.fillna("").astype(str) != b.fillna("").astype(str)).sum())
            if bad:
                raise CheckFailed(
                    f"column {col!r}: {bad} of {len(a)} labels differ from medalist predict's"
                )
    return worst


def _check_quick_submission(path: Path, sample: pd.DataFrame) -> str:
    if not path.is_file():
        raise CheckFailed("the quick path wrote no submission.csv")
    sub = read_submission(path)
    id_col = sample_id_column(sample)
    if list(sub.columns) != list(sample.columns) or list(sub[id_col].astype(str)) != list(
        sample[id_col].astype(str)
    ):
        raise CheckFailed("the quick path's submission.csv does not match the sample's ids/columns")
    # Empty cells are allowed where the sample has them (an empty run-length mask).
    empty_ok = [c for c in sample.columns if sample[c].isna().any()]
    if sub.drop(columns=empty_ok).isna().any().any():
        raise CheckFailed("the quick path's submission.csv has missing values")
    return f"valid ({len(sub)} rows)"


def _check_quick_files(path: Path, want: Path) -> str:
    """The quick path's zip holds the same files (and table ids) as the full one's."""
    from medalist.data.mask_files import read_mask_zip

    if not path.is_file():
        raise CheckFailed(f"the quick path wrote no {path.name}")
    table, masks = read_mask_zip(path)
    want_table, want_masks = read_mask_zip(want)
    shapes = {n: m.shape for n, m in masks.items()}
    if shapes != {n: m.shape for n, m in want_masks.items()} or (table is None) != (
        want_table is None
    ):
        raise CheckFailed(f"the quick path's {path.name} does not hold the sample's mask files")
    return f"valid ({len(masks)} masks)"


def _in_background(fn: Callable[..., Any], *args: Any) -> Callable[[], Any]:
    """Start `fn(*args)` in a daemon thread; the returned function waits for its result.

    The reference prediction runs while the kernel works in its own process; a daemon thread
    does not hold the command back when the notebook fails first.
    """
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = fn(*args)
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc

    thread = threading.Thread(target=work, daemon=True)
    thread.start()

    def result() -> Any:
        thread.join()
        if "error" in box:
            raise box["error"]
        return box["value"]

    return result


def check_package(
    package_root: str | Path, *, atol: float | None = None, timeout: int = 600, keep: bool = False
) -> CheckResult:
    """Run the notebook of the package at `package_root` offline and compare with predict."""
    from importlib.util import find_spec

    missing = [m for m in ("nbformat", "nbclient", "ipykernel") if find_spec(m) is None]
    if missing:
        raise UserError(f"--check runs the notebook with {', '.join(missing)}: pip install them")
    import nbformat

    start = time.perf_counter()
    root = Path(package_root).resolve()
    if not (root / "local.json").is_file():
        raise UserError(
            f"{root} is not a package folder written by medalist package (no local.json)"
        )
    local = read_json(root / "local.json")
    dataset = root / "dataset"
    manifest = read_manifest(dataset)
    meta = read_json(root / "notebook" / "kernel-metadata.json")
    notebook = root / "notebook" / meta["code_file"]
    atol = atol if atol is not None else (1e-2 if manifest.get("half") else 1e-5)
    runs = [Path(p) for p in local["runs"]]
    for run in runs:
        if not (run / layout.CONFIG).is_file():
            raise UserError(f"run {run} (packaged here) is gone: the check compares with it")
    prefix, network = offline_prefix()
    tmp = Path(tempfile.mkdtemp(prefix="medalist-check-"))
    try:
        data_root = Path(local["data_root"])
        kaggle_root = kaggle_layout(tmp, dataset, data_root, meta["competition_sources"][0])
        python = create_kernel_venv(tmp / "venv")
        reference = _in_background(reference_file, runs, manifest, tmp)
        executed = root / "check" / notebook.name
        nb = execute_notebook(notebook, python, prefix, tmp, kaggle_root, "off", timeout, executed)
        write_text(executed, nbformat.writes(nb))
        want = reference()
        out = kaggle_root / "working" / submission_file(manifest)
        if not out.is_file():
            raise CheckFailed(f"the notebook wrote no {out.name}")
        if out.suffix == ".zip":  # mask files: equal to predict's, pixel for pixel
            got, worst = compare_mask_zips(out, want), 0.0
        else:
            ids = sample_ids_of(data_root, manifest)
            got = read_submission(out, ids)
            worst = compare_submissions(got, read_submission(want, ids), atol, ids)
        quick = "off in this package"
        if manifest["quick"].get("enabled"):
            out.unlink()
            quick_nb = executed.with_name(f"{executed.stem}-quick.ipynb")
            execute_notebook(notebook, python, prefix, tmp, kaggle_root, "auto", timeout, quick_nb)
            if out.suffix == ".zip":
                quick = _check_quick_files(out, want)
            else:
                sample = read_submission(data_root / manifest["data"]["sample_submission"])
                quick = _check_quick_submission(out, sample)
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return CheckResult(
        network,
        len(got),
        list(got.columns),
        worst,
        atol,
        quick,
        time.perf_counter() - start,
        executed,
    )
