# Developer entry points. `make test` starts its own PostgreSQL and Redis (tests/conftest.py).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?= configs/demo.yaml
PYTEST_ARGS ?=

export PIP_NO_INPUT := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: venv run test lint bench fuzz clean

venv: $(STAMP)

# Reinstall only when the venv is missing or pyproject.toml changed since the last install.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

run: venv
	mkdir -p data
	$(BIN)/cedros-pay migrate --config $(CONFIG)
	exec $(BIN)/cedros-pay serve --config $(CONFIG) --sandbox

test: venv
	bash scripts/ensure-services.sh openssl
	$(BIN)/pytest -q $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

# Load Cedros Pay and a bare Starlette baseline with wrk (see bench/runner.py);
# e.g. make bench BENCH_ARGS='--rounds 1 --write'.
bench: venv
	$(BIN)/python -m bench $(BENCH_ARGS)

# The long fuzzing run: 1,000 examples per REST operation, 250 documents per GraphQL
# field, random seeds; its result goes to docs/fuzzing.md (`make test` runs the same
# tests, bounded).
FUZZ_EXAMPLES ?= 1000
FUZZ_GRAPHQL_EXAMPLES ?= 250
fuzz: venv
	CEDROS_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) CEDROS_FUZZ_GRAPHQL_EXAMPLES=$(FUZZ_GRAPHQL_EXAMPLES) \
	CEDROS_FUZZ_SEED=random CEDROS_FUZZ_REPORT=docs/fuzzing.md \
	$(BIN)/pytest -q -p no:cacheprovider tests/fuzz

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
