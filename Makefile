# Urja — two commands: `make run` and `make test`. Everything else bootstraps itself.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: run test bench lint format venv demo clean openapi

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/.synced: $(UV) uv.lock pyproject.toml
	$(UV) sync --frozen --quiet
	touch $@

venv: $(VENV)/.synced

## make run — migrate, load demo data the first time, serve UI + API on :8000 with the background jobs
run: venv
	$(VENV)/bin/urja run

## make test — the whole suite on SQLite, then on PostgreSQL when URJA_TEST_DATABASE_URL is set
test: venv
	bash scripts/test.sh

## make bench [B=name] — benchmarks against PostgreSQL (URJA_BENCH_DATABASE_URL)
bench: venv
	PYTHONPATH=src $(VENV)/bin/python bench/run.py $(B)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

openapi: venv
	$(VENV)/bin/urja export_openapi > docs/openapi.json

clean:
	rm -rf $(VENV) $(TOOLS) var
