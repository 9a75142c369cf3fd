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

# The numeric-identity tests (marker `numerics`) run a second time under other CPU kernels, so a
# tolerance that only holds for this machine's instruction set fails here and not on a user's:
# ATen's vectorised ops as on an AVX2-only CPU, oneDNN capped at AVX2, and MKL's matmuls on its
# SSE4.2 path (a different summation order on every x86 CPU; on AMD, MKL already runs AVX2).
NUMERICS_DISPATCH ?= ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=SSE4_2

.PHONY: setup run test test-numerics test-slow bench
setup: $(STAMP)

run: $(STAMP)
	$(BIN)/guimo run

# The suite runs one torch thread per process (tests/conftest.py), so its files are spread over the
# cores (pytest-xdist; a file stays on one worker: its fixtures, server port and database are its own).
# Files go out in collection order, where tests/conftest.py puts the few long ones first (xdist's own
# reorder, by test count, started the 6-minute README tour last).
XDIST ?= -n auto --maxprocesses 4 --dist loadfile --no-loadscope-reorder

test: $(STAMP)
	$(BIN)/python -m pytest -q $(XDIST)
	$(MAKE) --no-print-directory test-numerics

test-numerics: $(STAMP)
	$(NUMERICS_DISPATCH) $(BIN)/python -m pytest -q -m "numerics and not slow"

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

bench: $(STAMP)
	$(BIN)/python bench/lm_throughput.py
