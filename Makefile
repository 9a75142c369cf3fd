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

.PHONY: setup run test test-slow bench
setup: $(STAMP)

run: $(STAMP)
	$(BIN)/guimo run

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

bench: $(STAMP)
	$(BIN)/python bench/lm_throughput.py
