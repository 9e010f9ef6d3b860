# Quorum: `make run` to try it, `make test` to check it. See README.md.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
# The uv that installs from uv.lock; the lock pins the same version in the dev group.
UV_VERSION := 0.13.9

.PHONY: run install test lint format audit bench clean

$(UV):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.installed: uv.lock pyproject.toml | $(UV)
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --frozen --quiet
	touch $@

install: $(VENV)/.installed

run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py load_demo
	$(PY) manage.py serve

test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

audit: install
	.ci/audit

bench: install
	$(PY) -m benches.audit
	$(PY) -m benches.sync
	$(PY) -m benches.gate
	$(PY) -m benches.pages
	$(PY) -m benches.drift
	$(PY) -m benches.bias
	$(PY) -m benches.delivery

clean:
	rm -rf $(VENV) var
