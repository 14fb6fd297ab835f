# Rapport's two commands: `make run` and `make test`. See README.md.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
NPM    ?= $(shell command -v npm)

.PHONY: run test lint format bench worker clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-run

# Front-end packages from npm (package.json with its lock): ECharts for the UI's charts,
# and the browser SDK bundles the tests load in Chromium. Without npm, charts do not
# draw and those tests are skipped.
node_modules/.installed: package.json package-lock.json
	@if [ -n "$(NPM)" ]; then \
		$(NPM) ci --ignore-scripts --no-audit --no-fund --loglevel=error && touch $@; \
	else echo "npm not found: charts will not draw and the browser SDK tests will be skipped (install Node.js and npm)"; fi

## run: set up (venv, install, migrate, demo workspace) and serve on http://$(HOST):$(PORT),
## with a background worker beside it (resolving incoming events into customers)
run: $(VENV)/.installed-run node_modules/.installed
	$(BIN)/rapport quickstart --url http://$(HOST):$(PORT)
	$(BIN)/rapport worker & worker=$$!; trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	$(BIN)/rapport serve --host $(HOST) --port $(PORT)

## test: install what the tests need and run the whole suite (DATABASE_URL picks the database)
test: $(VENV)/.installed-dev node_modules/.installed
	$(BIN)/pytest $(PYTEST_ARGS)

## worker: run a background worker against the same database
worker: $(VENV)/.installed-run
	$(BIN)/rapport worker

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## bench: run the benchmarks under bench/ (figures printed and written to bench/results/)
bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build *.egg-info node_modules
