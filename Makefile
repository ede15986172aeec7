# Quick start: `make demo` and `make test` each set up .venv when needed, then run.
# Override the PyTorch requirement with e.g. `make demo TORCH=torch` (the default is the
# CPU wheel that installs from local disk in seconds).
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.kanopy-setup

.PHONY: setup demo test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	$(BIN)/kanopy kernels
	@touch $(STAMP)

demo: setup
	$(BIN)/kanopy demo

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/python -m pip install --quiet -e ".[lint]"
	$(BIN)/ruff check .

# peers (pykan, flashkan, inkan) for the benchmarks live in the optional `bench` extra
bench: setup
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python bench/toy.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
