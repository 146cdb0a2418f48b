# lossbench: `make run` and `make test` set everything up from nothing (Python 3.11 on PATH).
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=

.DEFAULT_GOAL := help
.PHONY: help install run test lint format bench clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall when the project's dependencies change.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[jax,dev]"
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install lossbench with its test and JAX extras

run: $(STAMP) ## Run the default experiment (extra overrides: make run ARGS="loss=grouped")
	$(BIN)/lossbench $(ARGS)

test: $(STAMP) ## Run the test suite (slow tests included; under 10 minutes on 2 cores)
	$(BIN)/python -m pytest -q $(ARGS)

bench: $(STAMP) ## Benchmarks against plain Keras (minutes); writes docs/benchmarks.md
	$(BIN)/python bench/run.py $(ARGS)

lint: $(STAMP) ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## Apply ruff's formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean: ## Remove the environment, caches and outputs
	rm -rf $(VENV) outputs multirun build dist *.egg-info .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
