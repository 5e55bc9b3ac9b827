# Build the book and run the tests from a fresh clone.
#
#   make venv    create .venv and install pfode with its [test,book] extras (only when needed)
#   make book    execute the notebooks and build the HTML book into _build/html (fails on any
#                warning), then check the rendered pages (tables, glued captions, images)
#   make test    lint (ruff) + unit tests (pytest, 2 workers) + every notebook under nbval in smoke mode
#   make bench   run benchmarks/run_all.py (writes benchmarks/results.md)
#   make sweep SPEC=sweeps/NAME.yml [ARGS=...]   run a notebook over a parameter grid (pfode.sweep,
#                resumable; on a local Dask cluster, ARGS="--serial" or "--scheduler ADDRESS")
#   make nb NB=notebooks/NAME.py      run one notebook under nbval in smoke mode (SMOKE=0: defaults)
#   make clean   remove build outputs and test caches (keeps .venv)
#
# Only python3 (3.11) is needed. torch is installed first and pinned: torch==2.13.0 is the CPU
# build; installing anything else first pulls several GB of CUDA wheels. (On a GPU machine,
# install the CUDA torch first, then `pip install -e ".[test,book]"`: pfode keeps it.)

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The exact versions the book was run with; pyproject.toml declares compatible ranges, and
# tests/test_environment.py checks that these satisfy them.
TORCH  := torch==2.13.0
EXACT  := diffusers==0.42.1 transformers==5.24.0 sentencepiece==0.2.3 protobuf==7.36.2 distributed==2026.8.0
PIP    := $(BIN)/python -m pip --disable-pip-version-check

# Reproducible runs; let torch/BLAS choose their own thread counts. (No MPLBACKEND: it would
# override the inline backend of the notebook kernels and drop every figure from the book.)
export PYTHONHASHSEED := 0
unexport OMP_NUM_THREADS MKL_NUM_THREADS MPLBACKEND
# Idle OpenMP threads sleep instead of spinning: on two busy cores spinning made small tensor
# operations up to 13x slower (benchmarks/results.md).
export OMP_WAIT_POLICY := PASSIVE
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: venv book test bench sweep nb clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install $(TORCH)
	$(PIP) install -e ".[test,book]" $(EXACT)
	$(BIN)/python -m ipykernel install --sys-prefix --name pfode --display-name "Python (pfode)"
	@touch $@

# The execution cache only looks at code cells, so a change in lib/ would not re-run the
# notebooks: drop the cache whenever a file of the library is newer than the last build.
LIB_FILES := $(shell find lib -type f -name '*.py' 2>/dev/null)
_build/.lib-stamp: $(LIB_FILES) pyproject.toml
	rm -rf _build/.jupyter_cache
	@mkdir -p _build && touch $@

book: $(STAMP) _build/.lib-stamp
	$(BIN)/jupyter-book build . -W -n --keep-going
	$(BIN)/python tests/check_book_html.py _build/html

test: $(STAMP)
	@rc=0; \
	$(BIN)/ruff check lib tests benchmarks sweeps || rc=$$?; \
	$(BIN)/python -m pytest tests -n 2 --dist loadfile || rc=$$?; \
	bash tests/run_notebooks.sh || rc=$$?; \
	exit $$rc

bench: $(STAMP)
	@if [ -f benchmarks/run_all.py ]; then \
		$(BIN)/python benchmarks/run_all.py; \
	else \
		echo "benchmarks/run_all.py does not exist yet: nothing to run."; \
	fi

sweep: $(STAMP)
	@test -n "$(SPEC)" || { echo "usage: make sweep SPEC=sweeps/NAME.yml [ARGS='--workers 2']"; exit 2; }
	$(BIN)/python -m pfode.sweep $(SPEC) $(ARGS)

# One notebook alone, as tests/run_notebooks.sh runs each: converted to
# _build/nbval/notebooks/NAME.ipynb and run under nbval, in smoke mode unless SMOKE=0
# (default parameters). Figures go to _build/nbval/figures, never into the book's.
SMOKE ?= 1
NB_IPYNB = _build/nbval/notebooks/$(basename $(notdir $(NB))).ipynb
nb: $(STAMP)
	@test -n "$(NB)" || { echo "usage: make nb NB=notebooks/NAME.py [SMOKE=0]"; exit 2; }
	@test -f "$(NB)" || { echo "make nb: no such notebook: $(NB)"; exit 2; }
	@mkdir -p _build/nbval/notebooks
	$(BIN)/python -m jupytext --quiet --to ipynb --output $(NB_IPYNB) $(NB)
	PFODE_SMOKE=$(SMOKE) PFODE_ROOT=$(CURDIR) PFODE_FIGURES=$(CURDIR)/_build/nbval/figures \
		MPLBACKEND=Agg $(BIN)/python -m pytest --nbval-lax --nbval-current-env \
		--nbval-cell-timeout=600 -p no:cacheprovider $(NB_IPYNB)

clean:
	rm -rf _build .pytest_cache .hypothesis
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
