# The two commands of the README:  `make run`  and  `make test`.
# Both create .venv on first use. On a machine without an NVIDIA GPU the CPU build of
# torch==2.13.0 is installed first (any other spec pulls a multi-GB CUDA build).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

$(STAMP): pyproject.toml
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	if ! command -v nvidia-smi >/dev/null 2>&1; then $(BIN)/pip install -q torch==2.13.0; fi
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

.PHONY: setup run test test-numerics test-slow bench
setup: $(STAMP)

run: $(STAMP)
	$(BIN)/guimo run

# The suite runs one torch thread per process (tests/conftest.py), so its files are spread over the
# cores (pytest-xdist; a file stays on one worker: its fixtures, server port and database are its own).
# Files go out in collection order, where tests/conftest.py puts the few long ones first (xdist's own
# reorder, by test count, started the 6-minute README tour last).
XDIST ?= -n auto --maxprocesses 4 --dist loadfile --no-loadscope-reorder

# the 25 slowest tests are listed after every run: the suite's time is spent in a few of them
DURATIONS ?= --durations=25

# tests/test_numerics_dispatch.py runs the numeric-identity tests (marker `numerics`) a second time
# under other CPU kernels, inside this pass; `make test-numerics` runs that test alone.
test: $(STAMP)
	$(BIN)/python -m pytest -q $(XDIST) $(DURATIONS)

test-numerics: $(STAMP)
	$(BIN)/python -m pytest -q tests/test_numerics_dispatch.py

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

bench: $(STAMP)
	$(BIN)/python bench/lm_throughput.py
