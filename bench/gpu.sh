#!/usr/bin/env bash
# GPU check: training throughput of resnet18 at 224 (plain fp32, plain bf16 + channels_last,
# medalist with precision/channels_last auto). For a lent GPU machine, run from anywhere:
#
#     bash bench/gpu.sh [gpu_bench.py options, e.g. --steps 60 --batch-size 128]
#
# 1. fails at once when the machine has no NVIDIA GPU;
# 2. finds a Python with torch: .venv/ when it imports torch, else the system python3 (through a
#    venv .venv-gpu/ that sees its site-packages), else installs torch==2.14.1 into .venv-gpu/;
# 3. installs medalist into it (pip install -e .; with --no-deps, which works offline, when every
#    dependency is importable already; PYTHONPATH=src when an install is not possible);
# 4. runs bench/gpu_bench.py, which prints a table and writes gpu.json under $OUT when set,
#    else under bench/results/.
# Budget: under 4 minutes on an H100 when torch and the dependencies are present.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export NO_ALBUMENTATIONS_UPDATE=1
export MLFLOW_LOGGING_LEVEL=WARNING
export PIP_DISABLE_PIP_VERSION_CHECK=1
start=$(date +%s)
say() { echo "[gpu.sh $(($(date +%s) - start))s] $*"; }
die() { echo "bench/gpu.sh: $*" >&2; exit 3; }

if ! command -v nvidia-smi >/dev/null 2>&1 && ! ls /dev/nvidia0 >/dev/null 2>&1; then
  die "no NVIDIA GPU on this machine (no nvidia-smi, no /dev/nvidia0); run it on a GPU machine, or check the script with: python bench/gpu_bench.py --dry-run"
fi
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi

has_torch() { "$1" -c 'import torch' >/dev/null 2>&1; }
PY=""
if [ -x .venv/bin/python ] && has_torch .venv/bin/python; then
  PY=.venv/bin/python
elif [ -x .venv-gpu/bin/python ] && has_torch .venv-gpu/bin/python; then
  PY=.venv-gpu/bin/python
else
  SYS=$(command -v python3 || command -v python || true)
  [ -n "$SYS" ] || die "no python3 on this machine"
  if has_torch "$SYS"; then
    if "$SYS" -m venv --system-site-packages .venv-gpu >/dev/null 2>&1; then
      say "using the torch of $SYS through .venv-gpu/ (--system-site-packages)"
      PY=.venv-gpu/bin/python
    else
      say "python3 -m venv is unavailable: using $SYS itself"
      PY=$SYS
    fi
  else
    say "no importable torch: installing torch==2.14.1 torchvision==0.29.1 into .venv-gpu/"
    "$SYS" -m venv .venv-gpu || die "python3 -m venv failed (install python3-venv)"
    timeout 600 .venv-gpu/bin/python -m pip install -q torch==2.14.1 torchvision==0.29.1 \
      || die "could not install torch==2.14.1 (no package index, and no torch on this machine)"
    PY=.venv-gpu/bin/python
  fi
fi
say "python: $PY, torch $("$PY" -c 'import torch; print(torch.__version__)')"

"$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' \
  || die "torch $("$PY" -c 'import torch; print(torch.__version__)') cannot see a CUDA device (CPU-only build or driver mismatch)"

# What gpu_bench.py imports: medalist's fold loop and classification task, with their libraries.
NEEDS='import medalist.engine.fold_loop, medalist.tasks.classify, timm'
here=$(realpath src/medalist/__init__.py)
if [ "$("$PY" -c 'import medalist, os; print(os.path.realpath(medalist.__file__))' 2>/dev/null)" = "$here" ] \
  && "$PY" -c "$NEEDS" >/dev/null 2>&1; then
  say "medalist already installed from this tree"
elif PYTHONPATH=src "$PY" -c "$NEEDS" >/dev/null 2>&1; then
  say "dependencies present: pip install --no-deps -e ."
  if ! timeout 120 "$PY" -m pip install -q --no-deps --no-build-isolation -e . >/dev/null 2>&1 \
    || ! "$PY" -c "$NEEDS" >/dev/null 2>&1; then
    say "editable install not possible here: using PYTHONPATH=src"
    export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
  fi
else
  say "installing medalist and its dependencies: pip install -e ."
  timeout 300 "$PY" -m pip install -q --retries 1 --timeout 15 -e . \
    || die "pip install -e . failed (dependencies missing and no package index?): $(PYTHONPATH=src "$PY" -c "$NEEDS" 2>&1 | tail -1)"
fi

say "running bench/gpu_bench.py $*"
"$PY" bench/gpu_bench.py "$@"
say "done"
