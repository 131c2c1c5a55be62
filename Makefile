# Two commands for a newcomer: `make demo` and `make test`. Everything else is a convenience.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export DO_NOT_TRACK := 1
export DAGSTER_DISABLE_TELEMETRY := 1

.PHONY: install redis demo test lint ui bench clean feast-venv evidently-venv

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "uv>=0.9,<1"
	$(VENV)/bin/uv pip install --quiet --python $(PY) -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/sands demo

# The Redis online-store tests need a real redis-server; Debian's package, installed when root.
redis:
	@command -v redis-server >/dev/null || [ "$$(id -u)" != 0 ] || \
		apt-get install -y -qq --no-install-recommends redis-server >/dev/null 2>&1 || \
		{ apt-get update -qq >/dev/null 2>&1 && \
		  apt-get install -y -qq --no-install-recommends redis-server >/dev/null 2>&1; } || true
	@command -v redis-server >/dev/null || echo "redis-server unavailable: Redis tests will skip"

test: install redis
	$(PY) -m pytest -n 2 --dist loadfile

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

ui: install
	$(VENV)/bin/sands ui

bench: install feast-venv evidently-venv
	$(PY) -m bench

clean:
	rm -rf $(VENV) $(FEAST_VENV) $(EVIDENTLY_VENV) .sands .pytest_cache dbt/target

FEAST_VENV := .venv-feast
$(FEAST_VENV)/.installed-stamp: Makefile
	test -x $(FEAST_VENV)/bin/python || $(PYTHON) -m venv $(FEAST_VENV)
	$(FEAST_VENV)/bin/python -m pip install --quiet --upgrade "uv>=0.9,<1"
	$(FEAST_VENV)/bin/uv pip install --quiet --python $(FEAST_VENV)/bin/python "feast[duckdb]==0.67.0" "duckdb==2.0.0" "ibis-framework==12.0.0" "dask==2026.8.0" "pandas==2.3.3" "pyarrow==26.0.1" "numpy==2.4.6"
	touch $@
feast-venv: $(FEAST_VENV)/.installed-stamp

# Evidently, the drift peer, in its own environment (its pins clash with ours).
EVIDENTLY_VENV := .venv-evidently
$(EVIDENTLY_VENV)/.installed-stamp: Makefile
	test -x $(EVIDENTLY_VENV)/bin/python || $(PYTHON) -m venv $(EVIDENTLY_VENV)
	$(EVIDENTLY_VENV)/bin/python -m pip install --quiet --upgrade "uv>=0.9,<1"
	$(EVIDENTLY_VENV)/bin/uv pip install --quiet --python $(EVIDENTLY_VENV)/bin/python "evidently==0.7.21" "pandas==2.3.3" "numpy==2.4.6" "pyarrow==26.0.1"
	touch $@
evidently-venv: $(EVIDENTLY_VENV)/.installed-stamp
