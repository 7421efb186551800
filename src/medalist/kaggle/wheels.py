"""The wheels a package carries: medalist's own, built from the source this process runs, and
those of dependencies missing from the Kaggle image (`--extra-wheel`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from medalist.errors import UserError
from medalist.io import write_text


def medalist_source_root() -> Path | None:
    """The source tree of an editable (pip install -e) medalist, from its direct_url.json."""
    import json
    from importlib import metadata
    from urllib.parse import unquote, urlparse

    try:
        text = metadata.distribution("medalist").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    info = json.loads(text) if text else {}
    url = urlparse(info.get("url", ""))
    if url.scheme != "file" or not info.get("dir_info", {}).get("editable"):
        return None
    root = Path(unquote(url.path))
    return root if (root / "pyproject.toml").is_file() else None


def build_medalist_wheel(dest: Path) -> Path:
    """A wheel of the medalist this process runs, built from a clean copy of its source."""
    import medalist

    package_dir = Path(medalist.__file__).resolve().parent
    root = medalist_source_root()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    with tempfile.TemporaryDirectory(prefix="medalist-wheel-") as tmp:
        src = Path(tmp)
        if root is not None and package_dir.is_relative_to(root):
            for name in ("pyproject.toml", "setup.cfg", "setup.py", "MANIFEST.in"):
                if (root / name).is_file():
                    shutil.copy2(root / name, src / name)
            for extra in [*root.glob("README*"), *root.glob("LICENSE*")]:
                if extra.is_file():
                    shutil.copy2(extra, src / extra.name)
            shutil.copytree(package_dir, src / package_dir.relative_to(root), ignore=ignore)
        else:  # an ordinary install: wrap the installed package in a minimal project
            write_text(
                src / "pyproject.toml",
                '[build-system]\nrequires = ["setuptools"]\n'
                'build-backend = "setuptools.build_meta"\n\n'
                f'[project]\nname = "medalist"\nversion = "{medalist.__version__}"\n\n'
                '[tool.setuptools.packages.find]\nwhere = ["src"]\n',
            )
            shutil.copytree(package_dir, src / "src" / "medalist", ignore=ignore)
        before = set(dest.glob("*.whl"))
        out = _pip("wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(dest), tmp)
    built = sorted(set(dest.glob("*.whl")) - before)
    if out.returncode != 0 or not built:
        raise RuntimeError(f"pip wheel could not build medalist's wheel:\n{out.stderr[-2000:]}")
    return built[0]


def _pip(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "pip", *args, "--quiet", "--disable-pip-version-check"]
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def add_extra_wheel(spec: str, dest: Path) -> list[Path]:
    """A dependency missing from the Kaggle image, as wheels in `dest` (a .whl path, or pip's)."""
    given = Path(spec).expanduser()
    if spec.endswith(".whl"):
        if not given.is_file():
            raise UserError(f"--extra-wheel {spec}: file not found")
        shutil.copy2(given, dest / given.name)
        return [dest / given.name]
    before = set(dest.glob("*.whl"))
    out = _pip("download", "--no-deps", "--only-binary=:all:", "-d", str(dest), spec)
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise UserError(f"--extra-wheel {spec}: pip could not download a wheel ({last})")
    return sorted(set(dest.glob("*.whl")) - before)


def wheel_name(path: Path) -> str:
    """The distribution name in a wheel's file name (what `pip install NAME` takes)."""
    return path.name.split("-", 1)[0]


def write_wheels(dest: Path, extra: Sequence[str]) -> tuple[list[tuple[str, int]], list[str]]:
    """medalist's wheel and the extra ones in `dest`: (file, bytes) each, the extras' names."""
    dest.mkdir(parents=True)
    built = [build_medalist_wheel(dest)]
    names = []
    for spec in extra:
        added = add_extra_wheel(spec, dest)
        built += added
        names += [wheel_name(p) for p in added]
    return [(p.name, p.stat().st_size) for p in built], names
