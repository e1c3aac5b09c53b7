# finsent: the two commands of the README are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.finsent-setup
PYTEST_ARGS ?=

.PHONY: setup demo lint test test-fast test-unit test-integration bench up down status clean-state

## setup: system packages if missing (PostgreSQL, Java, Maven), .venv with pinned deps, Kafka jars. Quick when done.
setup: $(STAMP)
	@$(PY) -c "from deploy.localstack import fetch_kafka; from stream.base.config import load_settings; fetch_kafka(load_settings().stack.kafka_version)"
	@$(PY) -m model.ort  # the shipped model's ONNX files (fp32, int8), made once into the cache: the first finsent classify stays fast

$(STAMP): pyproject.toml deploy/constraints.txt deploy/setup-system.sh
	@bash deploy/setup-system.sh
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing Python dependencies into $(VENV) (first time: several GB for torch) ..."
	@$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install -q --disable-pip-version-check -c deploy/constraints.txt -e '.[test]'
	@touch $(STAMP)

## demo: the whole system on the embedded local stack
demo: setup
	$(VENV)/bin/finsent demo

## lint: ruff (the rules and why: pyproject [tool.ruff]) and mypy (strict scope: pyproject [tool.mypy])
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy

## test: lint, then unit + integration tests (integration tests start the local stack themselves)
test: setup lint
	$(PY) -m pytest -q -ra $(PYTEST_ARGS) tests

## test-fast: lint, then the unit tests only: no local stack, no Kafka jars (time: README "Development")
test-fast: $(STAMP) lint
	$(PY) -m pytest -q -ra $(PYTEST_ARGS) tests/unit

test-unit: setup
	$(PY) -m pytest -q tests/unit

test-integration: setup
	$(PY) -m pytest -q -ra tests/integration

bench: setup
	$(PY) bench/model_bench.py
	$(PY) bench/pipeline.py

up down status: setup
	$(VENV)/bin/finsent $@
