# Two commands for a newcomer: `make lab` (set up, then open the course) and
# `make test` (set up, then run every test). Everything else is a building block.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# Chainer 7.8.1 is built from its sdist with setuptools<82 (see constraints/build.txt).
# pip <= 26.0 applies PIP_CONSTRAINT to build environments, pip >= 25.3 reads
# PIP_BUILD_CONSTRAINT; setting both covers every pip.
export PIP_CONSTRAINT       := $(CURDIR)/constraints/build.txt
export PIP_BUILD_CONSTRAINT := $(CURDIR)/constraints/build.txt
export PIP_DISABLE_PIP_VERSION_CHECK := 1

INSTALLED  := $(VENV)/.installed
DATA_DIR   ?= data/openmoji
DATA_STAMP := $(DATA_DIR)/COMPLETE

.PHONY: setup lab test tutorial data sketches ablation bench bench-torch gpu-check clean help setup-distributed train-mpi

help:
	@echo "make lab       set up (venv, packages, data) and open JupyterLab on notebooks/"
	@echo "make test      set up, then run the whole test suite (notebooks in QUICK mode)"
	@echo "make setup     set up only (idempotent: a second run does nothing)"
	@echo "make data      build the OpenMoji line/color pairs (python -m tutorial_lib.data build)"
	@echo "make sketches  held-out real sketches from Debian's openclipart-svg (needs apt-get; optional)"
	@echo "make ablation  retrain the hint ablation of notebooks 04/05 (10 runs, ~2 h on 2 cores)"
	@echo "make tutorial  execute every notebook headless in QUICK mode into build/"
	@echo "make bench     CPU speed benchmark (stock Chainer vs tutorial_lib's fast path)"
	@echo "make bench-torch  the same networks in PyTorch CPU, interleaved (separate venv, optional)"
	@echo "make gpu-check on a CUDA GPU: gpu tests, training and latency -> build/gpu-report.md"
	@echo "make train-mpi N=2 CONFIG=classroom_l2   train in N processes over MPI (docs/distributed.md)"

setup: $(INSTALLED) $(DATA_STAMP)

$(INSTALLED): requirements.txt pyproject.toml constraints/build.txt
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; ok = (3, 11) <= v <= (3, 12); \
	  print("Python %d.%d: %s" % (v + ("ok" if ok else "not tested here, the course targets 3.11/3.12",)))'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { \
	  echo "Could not create $(VENV). On Debian/Ubuntu: sudo apt-get install python3-venv"; exit 1; }
	$(PY) -m pip install -e .
	$(PY) -m ipykernel install --prefix $(VENV) --name python3 > /dev/null
	@touch $@

$(DATA_STAMP): | $(INSTALLED)
	$(PY) -m tutorial_lib.data build --out $(DATA_DIR)

data: $(DATA_STAMP)

# Held-out real sketches (python -m tutorial_lib.sketches build): apt-get download + dpkg -x
# of openclipart-svg, a few minutes. Optional: setup and test never need it (without apt it
# prints why and skips; the notebooks then use data/samples/real_sketches).
SKETCH_DIR ?= data/sketches
sketches: $(INSTALLED)
	$(PY) -m tutorial_lib.sketches build --out $(SKETCH_DIR)

# Notebooks 04/05's ablation: 10 runs of 1,500 steps (resumable: run it again after a stop),
# then measured into data/checkpoints/ablation.json (python -m tutorial_lib.ablation).
ablation: setup
	for c in $$($(PY) -m tutorial_lib.ablation names); do \
	  $(PY) -m tutorial_lib.train --config $$c --out runs/ablation/$$c || exit 1; done
	$(PY) -m tutorial_lib.ablation measure

lab: setup
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks $(LAB_ARGS)

# MPLBACKEND: every figure a notebook shows is checked for overlapping or cut texts
# (tutorial_lib/infra/figcheck.py) before it is displayed
test: setup
	QUICK=1 MPLBACKEND=module://tutorial_lib.infra.figcheck $(PY) -m pytest -q -rs -p no:cacheprovider --nbmake --nbmake-timeout=600 tests notebooks $(PYTEST_ARGS)

tutorial: setup
	@mkdir -p build/notebooks
	QUICK=1 $(PY) -m tutorial_lib.infra.run_notebooks notebooks build/notebooks

bench: $(INSTALLED)
	$(PY) -m tutorial_lib.infra.bench

# Optional: the same architectures in PyTorch CPU, timed in the same run, interleaved with
# tutorial_lib's steps -> torch_ratio_* in build/bench.json. PyTorch lives in its own venv
# (never a course requirement); from PyPI the CPU wheel pulls CUDA libraries too (a few
# GB). TORCH_SPEC picks another wheel, e.g. a CPU-only build from a local folder.
TORCH_VENV ?= build/bench-torch-venv
TORCH_SPEC ?= torch
$(TORCH_VENV)/.installed:
	$(PYTHON) -m venv $(TORCH_VENV)
	$(TORCH_VENV)/bin/python -m pip install numpy $(TORCH_SPEC)
	@touch $@

bench-torch: $(INSTALLED) $(TORCH_VENV)/.installed
	$(PY) -m tutorial_lib.infra.bench --only torch --torch $(TORCH_VENV)/bin/python $(BENCH_ARGS)

# GPU check (docs/gpu.md): needs CuPy (pip install -e .[gpu]). With the default PY it sets
# up .venv first; `make gpu-check PY=python3` uses that Python as it is and installs
# nothing (an offline GPU machine prepared with tools/device_run.sh's wheels).
GPU_REPORT ?= build/gpu-report.md
gpu-check: $(if $(filter $(VENV)/bin/python,$(PY)),$(INSTALLED))
	$(PY) -m tutorial_lib.infra.gpu_check --out $(GPU_REPORT) $(GPU_CHECK_ARGS)

# Data-parallel training over MPI (docs/distributed.md). setup-distributed installs the
# `distributed` extra (mpi4py + MPICH from PyPI, mpiexec lands in .venv/bin); with an MPI
# of your own (Debian's openmpi-bin) set MPIEXEC=mpiexec. N processes, batch per process.
DIST_INSTALLED := $(VENV)/.installed-distributed
N       ?= 2
CONFIG  ?= classroom_l2
MPIEXEC ?= $(if $(wildcard $(VENV)/bin/mpiexec),$(VENV)/bin/mpiexec,mpiexec)

setup-distributed: $(DIST_INSTALLED)

$(DIST_INSTALLED): $(INSTALLED)
	$(PY) -m pip install -e '.[distributed]'
	@touch $@

train-mpi: $(DIST_INSTALLED) $(DATA_STAMP)
	$(MPIEXEC) -n $(N) $(PY) -m tutorial_lib.train --config $(CONFIG) --mpi $(TRAIN_ARGS)

clean:
	rm -rf build .pytest_cache
