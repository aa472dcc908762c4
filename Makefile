# Two set-up commands: `make demo` (install, then play a full pinning scenario on loopback)
# and `make test` (install, then run every test). `make lint` runs ruff and mypy.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MITM_VENV := .venv-mitmproxy

.PHONY: demo test lint fmt bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-all: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[all]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-all

# mitmproxy caps its dependencies below ours, so it lives in a virtualenv of its own.
$(MITM_VENV)/bin/mitmdump:
	$(PYTHON) -m venv $(MITM_VENV)
	$(MITM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(MITM_VENV)/bin/python -m pip install --quiet 'mitmproxy>=10'

demo: $(VENV)/.installed-all
	$(BIN)/pinset demo

test: $(VENV)/.installed-dev $(MITM_VENV)/bin/mitmdump
	PINSET_MITMDUMP=$(abspath $(MITM_VENV)/bin/mitmdump) $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

fmt: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/handshake.py

clean:
	rm -rf $(VENV) $(MITM_VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
