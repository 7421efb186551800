"""Filesystem probes for `medalist doctor`: a folder's size and the read speed of its files,
each within a time budget so that a network drive or a huge data folder never hangs the check.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

MIB = 2**20
SIZE_BUDGET_S = 3.0  # time spent adding up the data folder's size before giving a lower bound
READ_BUDGET_S = 2.0
READ_MAX_BYTES = 256 * MIB


def _walk_files(root: Path) -> Iterator[os.DirEntry]:
    """Every file under `root`, following links (data/ is one) but never around a loop."""
    stack, seen = [root], set()
    while stack:
        folder = stack.pop()
        try:
            st = folder.stat()
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            with os.scandir(folder) as it:
                for entry in it:
                    if entry.is_dir(follow_symlinks=True):
                        stack.append(Path(entry.path))
                    elif entry.is_file(follow_symlinks=True):
                        yield entry
        except OSError:
            continue


def folder_size(root: Path, budget_s: float = SIZE_BUDGET_S) -> tuple[int, bool]:
    """(bytes, complete): the folder's size, or what was counted when the time ran out."""
    total, start = 0, time.monotonic()
    for entry in _walk_files(root):
        try:
            total += entry.stat(follow_symlinks=True).st_size
        except OSError:
            continue
        if time.monotonic() - start > budget_s:
            return total, False
    return total, True


def read_speed(
    root: Path, budget_s: float = READ_BUDGET_S, max_bytes: int = READ_MAX_BYTES
) -> tuple[float, int] | None:
    """(MB/s, bytes read) over a few files of `root`, or None when it holds no readable file.

    Each file is dropped from the page cache first (posix_fadvise), so a file read a moment
    ago does not pass for a fast disk.
    """
    done, start = 0, time.perf_counter()
    for entry in _walk_files(root):
        try:
            fd = os.open(entry.path, os.O_RDONLY)
        except OSError:
            continue
        try:
            if hasattr(os, "posix_fadvise"):
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            while chunk := os.read(fd, 4 * MIB):
                done += len(chunk)
                if done >= max_bytes or time.perf_counter() - start > budget_s:
                    break
        except OSError:
            pass
        finally:
            os.close(fd)
        if done >= max_bytes or time.perf_counter() - start > budget_s:
            break
    seconds = time.perf_counter() - start
    if done == 0:
        return None
    return done / 1e6 / max(seconds, 1e-6), done
