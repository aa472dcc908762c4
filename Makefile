# Two set-up commands: `make demo` (install, then play a full pinning scenario on loopback)
# and `make test` (install, then run every test). `make lint` runs ruff, mypy and
# lint-imports (the layer contract in pyproject.toml; see docs/architecture.md).
# `make fuzz` explores with fresh randomness for FUZZ_SECONDS (see docs/testing.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
MITM_VENV := .venv-mitmproxy
FUZZ_SECONDS ?= 600
# The atheris targets of tests/_fuzz_targets.py that `make fuzz` runs (all; empty: none), and
# each one's seconds: the other half of FUZZ_SECONDS, shared out, at least 10 s a target.
FUZZ_TARGETS ?= pin policy android plist okhttp hpkp bundle report archive binary-xml
FUZZ_TARGET_SECONDS ?= $(shell n=$(words $(FUZZ_TARGETS)); s=$$(( $(FUZZ_SECONDS) / 2 / ($$n + ($$n == 0)) )); echo $$(( s > 10 ? s : 10 )))

.PHONY: demo test fuzz fuzz-hypothesis fuzz-atheris lint fmt bench docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-all: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[all]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-all

$(VENV)/.installed-fuzz: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[fuzz]'
	touch $@ $(VENV)/.installed-dev $(VENV)/.installed-all

# mitmproxy caps its dependencies below ours, so it lives in a virtualenv of its own.
$(MITM_VENV)/bin/mitmdump:
	$(PYTHON) -m venv $(MITM_VENV)
	$(MITM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(MITM_VENV)/bin/python -m pip install --quiet 'mitmproxy>=10'

demo: $(VENV)/.installed-all
	$(BIN)/pinset demo

# Deterministic: the "deterministic" hypothesis profile (tests/conftest.py) draws the same
# examples on every run. When PostgreSQL's server is installed, its throw-away cluster is
# started (or reused) here, as .ci/run does; nothing is installed.
test: $(VENV)/.installed-dev $(MITM_VENV)/bin/mitmdump
	@if [ -z "$${PINSET_TEST_POSTGRES_URL:-}" ]; then \
	  eval "$$(PINSET_PG_INSTALL=no .ci/setup-postgres.sh)"; \
	fi; \
	set -x; \
	PINSET_MITMDUMP=$(abspath $(MITM_VENV)/bin/mitmdump) \
	  $(BIN)/python -m pytest --hypothesis-profile=deterministic $(PYTEST_ARGS)

# Exploration, two halves. The hypothesis half: every property test again and again with
# fresh randomness for half of FUZZ_SECONDS (the round running then is interrupted). What
# it finds is printed with the @reproduce_failure blob, replayed first by the next
# `make fuzz`, and belongs in the test as an @example(...) so that `make test` keeps
# checking it. The atheris half: each of FUZZ_TARGETS, coverage-guided, for
# FUZZ_TARGET_SECONDS, at most 10 s and 1 GB per input (scripts/fuzz_atheris.py); a find
# is saved in .fuzz/artifacts/ and belongs in tests/fixtures/fuzz/TARGET/, which
# tests/test_fuzz_targets.py replays in `make test`.
fuzz: fuzz-hypothesis fuzz-atheris

fuzz-hypothesis: $(VENV)/.installed-dev
	@end=$$(( $$(date +%s) + $(FUZZ_SECONDS) / 2 )); round=0; \
	while left=$$(( end - $$(date +%s) )); [ $$left -gt 0 ]; do \
	  round=$$(( round + 1 )); \
	  echo "fuzz: round $$round, $$left s left"; \
	  timeout --signal=INT --kill-after=30 $$left \
	    $(BIN)/python -m pytest --hypothesis-profile=fuzz -m hypothesis -q $(PYTEST_ARGS); \
	  status=$$?; \
	  if [ $$status -eq 124 ]; then break; fi; \
	  if [ $$status -ne 0 ] && [ $$status -ne 5 ]; then exit $$status; fi; \
	done; \
	echo "fuzz: $$round round(s) in $$(( $(FUZZ_SECONDS) / 2 )) s found nothing"

fuzz-atheris: $(VENV)/.installed-fuzz
	@if [ -n "$(strip $(FUZZ_TARGETS))" ]; then \
	  $(BIN)/python scripts/fuzz_atheris.py --seconds $(FUZZ_TARGET_SECONDS) \
	    --timeout 10 --rss-limit-mb 1024 $(FUZZ_TARGETS); \
	fi

# Known uses of another module's underscore name, as MODULE.NAME (none today); the checker
# fails once an allowance matches nothing, so each line goes when its use does.
PRIVATE_NAMES_ALLOWED :=

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/mypy scripts/check_private_names.py
	$(BIN)/lint-imports
	$(BIN)/python scripts/check_private_names.py \
	  $(addprefix --allow ,$(PRIVATE_NAMES_ALLOWED)) src/pinset tests

fmt: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix src tests benchmarks scripts
	$(BIN)/ruff format src tests benchmarks scripts

# The documentation site in site/, strict: any warning (a broken link or anchor, a page missing
# from the nav, a docstring mkdocstrings cannot read) fails. See mkdocs.yml.
$(VENV)/.installed-docs: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[docs]'
	touch $@

docs: $(VENV)/.installed-docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/handshake.py
	$(BIN)/python benchmarks/startup.py

clean:
	rm -rf $(VENV) $(MITM_VENV) site .fuzz build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
