"""The real CLI in its own process, without paying for torch's import each time.

A test that runs `medalist ...` wants what a user gets: a separate process, its exit code, its
stdout and stderr. Most of the seconds such a process takes go to importing torch, Lightning,
timm and the rest. The server here imports those libraries once, then forks one child per
call; the child changes to the call's folder, takes the call's environment, points its stdout
and stderr at files and runs `medalist.cli.main()` exactly as `python -c` would, then exits
with its code. Each child starts from the same freshly imported interpreter, never from an
earlier call's state.

A call whose environment differs from the server's in a variable that an imported library reads
at import time (the Hugging Face cache, matplotlib, torch, thread counts, PYTHONPATH, ...)
runs in a cold `python -c` process instead, as does every call when MEDALIST_TEST_COLD=1.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

# Read by the preloaded libraries when they are imported: a call that sets one differently from
# the server goes cold. (Variables those libraries set themselves on import, such as torch's
# KMP_* or cv2's LD_LIBRARY_PATH, and Lightning's PL_GLOBAL_SEED, don't count: the child gets the
# call's environment for everything read later.)
IMPORT_TIME_ENV = (
    "HF_", "HUGGINGFACE", "TIMM", "TORCH_HOME", "MPL", "MATPLOTLIB", "XDG_", "HOME", "PYTHONPATH",
    "PYTHONHASHSEED", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
    "CUDA_VISIBLE_DEVICES", "ALBUMENTATIONS", "NO_ALBUMENTATIONS",
)  # fmt: skip

SERVER = r"""
import atexit, json, os, sys, tempfile, traceback
import numpy, pandas, PIL.Image, sklearn.model_selection, matplotlib.pyplot
import torch, torchvision, timm, lightning, albumentations, segmentation_models_pytorch
import medalist.cli
out = os.fdopen(int(sys.argv[1]), "w", buffering=1)
out.write("ready\n")
for line in sys.stdin:
    call = json.loads(line)
    sys.stdout.flush(); sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.setpgid(0, 0)
        code = 1
        try:
            out.close()
            os.chdir(call["cwd"])
            os.environ.clear(); os.environ.update(call["env"])
            tempfile.tempdir = None
            numpy.random.seed()
            for fd, name in ((0, os.devnull), (1, call["stdout"]), (2, call["stderr"])):
                f = os.open(name, os.O_RDONLY if fd == 0 else os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                os.dup2(f, fd); os.close(f)
            sys.argv = ["-c", *call["args"]]
            try:
                medalist.cli.main()
                code = 0
            except SystemExit as e:
                if e.code is None or isinstance(e.code, int):
                    code = e.code or 0
                else:
                    print(e.code, file=sys.stderr)
            except BaseException:
                traceback.print_exc()
            atexit._run_exitfuncs()
        finally:
            try:
                sys.stdout.flush(); sys.stderr.flush()
            finally:
                os._exit(code)
    out.write(json.dumps({"pid": pid}) + "\n")
    _, status = os.waitpid(pid, 0)
    out.write(json.dumps({"status": os.waitstatus_to_exitcode(status)}) + "\n")
"""


class WarmCli:
    """One server process; `run` is subprocess.run for `python -c "...main()" *args`."""

    def __init__(self) -> None:
        self.env = dict(os.environ)
        self.lock = threading.Lock()
        self.proc: subprocess.Popen | None = None

    def _start(self) -> subprocess.Popen:
        if self.proc is None or self.proc.poll() is not None:
            read, write = os.pipe()
            self.proc = subprocess.Popen(
                [sys.executable, "-c", SERVER, str(write)],
                stdin=subprocess.PIPE,
                pass_fds=(write,),
                text=True,
                env=self.env,
                start_new_session=True,
            )
            os.close(write)
            self.replies = os.fdopen(read)
            if self.replies.readline().strip() != "ready":
                raise RuntimeError("the warm CLI server did not start")
        return self.proc

    def usable(self, env: dict[str, str]) -> bool:
        if os.environ.get("MEDALIST_TEST_COLD"):
            return False
        keys = {k for k in env.keys() | self.env.keys() if k.startswith(IMPORT_TIME_ENV)}
        return all(env.get(k) == self.env.get(k) for k in keys)

    def run(self, args: list[str], cwd: Path | None, timeout: float) -> subprocess.CompletedProcess:
        env = dict(os.environ)
        cmd = [sys.executable, "-c", "from medalist.cli import main; main()", *args]
        if not self.usable(env):
            return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
        with self.lock, tempfile.TemporaryDirectory() as tmp:
            proc = self._start()
            out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
            call = {"args": args, "cwd": str(cwd or os.getcwd()), "env": env}
            call |= {"stdout": str(out), "stderr": str(err)}
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(call) + "\n")
            proc.stdin.flush()
            pid = json.loads(self.replies.readline())["pid"]
            killed = threading.Event()
            timer = threading.Timer(timeout, _kill_group, (pid, killed))
            timer.start()
            try:
                status = json.loads(self.replies.readline())["status"]
            finally:
                timer.cancel()
            stdout, stderr = out.read_text(errors="replace"), err.read_text(errors="replace")
        if killed.is_set():
            raise subprocess.TimeoutExpired(cmd, timeout, stdout, stderr)
        return subprocess.CompletedProcess(cmd, status, stdout, stderr)

    def close(self) -> None:
        """Stop the server (it holds nothing to save: each call's child has exited)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=30)
            self.replies.close()
            self.proc = None


def _kill_group(pid: int, killed: threading.Event) -> None:
    killed.set()
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
