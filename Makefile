# Two commands for a newcomer: `make demo` and `make test`. Everything else is a convenience.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export DO_NOT_TRACK := 1
export DAGSTER_DISABLE_TELEMETRY := 1

.PHONY: install redis promtool helm lock demo test lint ui screenshots bench clean feast-venv evidently-venv obp-venv

# Bytecode compiled at install: with PYTHONDONTWRITEBYTECODE set (as on our CI machines) Python
# never caches it, and every process (dbt, the MLflow server, each CLI call) would recompile
# every module it imports: 10-20 s for dbt or MLflow alone on 2 loaded cores.
$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "uv>=0.9,<1"
	$(VENV)/bin/uv pip install --quiet --python $(PY) -e '.[dev]'
	$(PY) -m compileall -q -j 0 "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" >/dev/null 2>&1 || true
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

# promtool checks the chart's alert rules and dashboard queries (tests/helm/test_monitoring.py);
# Debian's prometheus package, installed when root, as redis above.
promtool:
	@command -v promtool >/dev/null || [ "$$(id -u)" != 0 ] || \
		apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 || \
		{ apt-get update -qq >/dev/null 2>&1 && \
		  apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1; } || true
	@command -v promtool >/dev/null || echo "promtool unavailable: the promtool tests will skip"

# The Helm chart tests render with the real helm, built once from its Go module and cached.
HELM_VERSION := v3.22.0
HELM_DIR := $(HOME)/.cache/sands/bin
export SANDS_HELM := $(HELM_DIR)/helm-$(HELM_VERSION)
$(SANDS_HELM):
	@if command -v go >/dev/null; then \
		mkdir -p $(HELM_DIR)/build && \
		GOBIN=$(HELM_DIR)/build go install -ldflags "-X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION)" \
			helm.sh/helm/v3/cmd/helm@$(HELM_VERSION) && \
		mv $(HELM_DIR)/build/helm $@; \
	else echo "go unavailable: the Helm chart tests will skip"; fi
helm: $(SANDS_HELM)

test: install redis promtool helm
	$(PY) -m pytest -n 2 --dist loadfile --no-loadscope-reorder --durations=25

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

ui: install
	$(VENV)/bin/sands ui

# The docs' screenshots (docs/img/): the UI after a default `sands demo` in a scratch home, and its
# evaluation report, by headless Chromium (Debian's package, installed when root, as redis above).
screenshots: install
	@command -v chromium >/dev/null || [ "$$(id -u)" != 0 ] || \
		apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 || \
		{ apt-get update -qq >/dev/null 2>&1 && \
		  apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1; } || true
	$(PY) -m bench.screenshots

bench: install feast-venv evidently-venv
	$(PY) -m bench

# The image's pinned dependencies, from pyproject.toml (run after changing dependencies).
lock: install
	$(VENV)/bin/uv pip compile pyproject.toml --extra k8s --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --quiet --no-header -o docker/requirements.lock

clean:
	rm -rf $(VENV) $(FEAST_VENV) $(EVIDENTLY_VENV) $(OBP_VENV) .sands .pytest_cache dbt/target

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

# Open Bandit Pipeline, the off-policy peer of `python -m bench ope`: obp 0.5.5 needs Python below
# 3.10 and pins scikit-learn 1.0.2 and torch 1.13 (3.7 GB with its CUDA wheels), so it gets its own
# Python 3.9 environment, built only on request.
OBP_VENV := .venv-obp
# The first python3.9 that runs (a pyenv shim may exist without that version selected).
PYTHON39 ?= $(shell for p in $$(command -v python3.9) $(HOME)/.pyenv/versions/3.9*/bin/python3.9; do \
	"$$p" -c "" 2>/dev/null && { echo "$$p"; break; }; done)
$(OBP_VENV)/.installed-stamp: Makefile
	@test -n "$(PYTHON39)" || { echo "no python3.9 (set PYTHON39): obp needs Python below 3.10"; exit 1; }
	test -x $(OBP_VENV)/bin/python || $(PYTHON39) -m venv $(OBP_VENV)
	$(OBP_VENV)/bin/python -m pip install --quiet --upgrade "uv>=0.9,<1"
	$(OBP_VENV)/bin/uv pip install --quiet --python $(OBP_VENV)/bin/python "obp==0.5.5"
	touch $@
obp-venv: $(OBP_VENV)/.installed-stamp
