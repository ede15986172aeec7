# Quick start: `make demo` and `make test` each set up .venv when needed, then run.
# Override the PyTorch requirement with e.g. `make demo TORCH=torch` (the default is the
# CPU wheel that installs from local disk in seconds).
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.kanopy-setup

.PHONY: setup demo test lint docs bench clean

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

# the documentation site (docs/_build/html): offline (no inventories fetched), warnings are errors;
# the gallery runs examples/ and the API pages run no code but the docstrings' doctests run in `make test`
DOCS_STAMP := $(VENV)/.kanopy-docs

$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	@touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache docs/_build docs/generated docs/auto_examples docs/sg_execution_times.rst
