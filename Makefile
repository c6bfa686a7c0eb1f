# Two entry points: `make serve` (run the service on embedded defaults) and `make test`
# (lint, types, the whole test suite). Each creates or reuses its own venv.
PY ?= python3
SERVE_VENV := .venv-serve
DEV_VENV := .venv
HOST ?= 0.0.0.0
PORT ?= 8000
PIP_FLAGS := --disable-pip-version-check -q

.PHONY: serve test lint typecheck pytest bench browser-deps clean

$(SERVE_VENV)/.stamp: pyproject.toml
	$(PY) -m venv $(SERVE_VENV)
	$(SERVE_VENV)/bin/pip install $(PIP_FLAGS) -e '.[serve]'
	touch $@

# torch==2.13.0 first: it is the CPU wheel on local disk; the `train` extra's range then adds nothing.
$(DEV_VENV)/.stamp: pyproject.toml
	$(PY) -m venv $(DEV_VENV)
	$(DEV_VENV)/bin/pip install $(PIP_FLAGS) torch==2.13.0
	$(DEV_VENV)/bin/pip install $(PIP_FLAGS) -e '.[serve,train,clients,dev]'
	touch $@

serve: $(SERVE_VENV)/.stamp
	$(SERVE_VENV)/bin/python -m service --host $(HOST) --port $(PORT)

lint: $(DEV_VENV)/.stamp
	$(DEV_VENV)/bin/ruff check .
	$(DEV_VENV)/bin/ruff format --check posecore service

typecheck: $(DEV_VENV)/.stamp
	$(DEV_VENV)/bin/mypy

# the browser end-to-end test drives Debian's Chromium (Playwright never downloads a browser here)
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

pytest: $(DEV_VENV)/.stamp browser-deps
	$(DEV_VENV)/bin/python -m pytest -q

test: lint typecheck pytest

bench: $(DEV_VENV)/.stamp
	$(DEV_VENV)/bin/python -m bench

clean:
	rm -rf $(SERVE_VENV) $(DEV_VENV) .pytest_cache .mypy_cache .ruff_cache
