# Two entry points for a newcomer: `make demo` and `make test`. Both create .venv/ once and
# reuse it while pyproject.toml is unchanged (the stamp file is newer than it).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.medalist-installed
SETUP_FREE_GB ?= 8
export NO_ALBUMENTATIONS_UPDATE := 1

.PHONY: setup demo test lint bench

$(STAMP): pyproject.toml
	@# A first install takes about 7 GB (torch's build carries its CUDA libraries): say so early.
	@test -x $(PY) || [ "$$(df -Pk . | awk 'NR==2 {print int($$4 / 1048576)}')" -ge $(SETUP_FREE_GB) ] || \
	  { echo "make: the first setup needs about $(SETUP_FREE_GB) GB free disk for $(VENV) (torch with its CUDA libraries); $$(df -Ph . | awk 'NR==2 {print $$4}') free here: free some space and rerun" >&2; exit 2; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch and torchvision first, pinned to the releases this machine serves from its disk
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/medalist demo

test: setup
	$(VENV)/bin/pytest -q -p no:cacheprovider -n auto --maxprocesses=4 --dist loadfile --durations=15

lint: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

# The CPU benches (several minutes each); bench/README.md keeps the latest figures.
bench: setup
	$(VENV)/bin/python bench/overhead.py
	$(VENV)/bin/python bench/loader.py
