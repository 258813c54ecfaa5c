# zones-blanches — the two set-up commands of the README are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test lint typecheck pytest bench browser-deps app demo communes-data clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is needed")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $(STAMP)

## run: install, then compute the white zones of the embedded (fictional) demo territory
run: $(STAMP)
	$(BIN)/zones-blanches run

## test: install, then ruff, mypy and the whole test suite (browser tests included)
test: $(STAMP) browser-deps lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

## pytest: the whole suite in PYTEST_WORKERS processes (one test file stays in one process)
PYTEST_WORKERS ?= 2
pytest: $(STAMP)
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile

## browser-deps: Debian's chromium for the browser tests (installed when root and absent)
browser-deps:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian chromium for the browser tests"; \
	  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium) >/dev/null \
	    || echo "could not install chromium: the browser tests will be skipped"; \
	else echo "chromium absent and not root: the browser tests will be skipped"; fi

## bench: speed targets (not run by the tests)
bench: $(STAMP)
	$(BIN)/python -m benchmarks

app: $(STAMP)
	$(BIN)/zones-blanches app

## demo: regenerate the fictional demo territory (deterministic)
demo: $(STAMP)
	$(BIN)/zones-blanches demo

## communes-data: rebuild data/communes from the npm package @etalab/decoupage-administratif
communes-data: $(STAMP)
	$(BIN)/python scripts/build_communes_table.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache sorties
