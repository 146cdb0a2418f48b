# lossbench: `make run` and `make test` set everything up from nothing (Python 3.11 on PATH).
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=
# Test processes (pytest-xdist): most tests wait on a subprocess or a compile, so two workers
# cut the suite's wall time by about 40% on 2 cores; each worker holds its own framework (about
# 1 GB).
TEST_WORKERS ?= 2

.DEFAULT_GOAL := help
# The studies: one preset each in experiments/.
STUDIES := $(sort $(basename $(notdir $(wildcard experiments/*.yaml))))
NAME   ?=

.PHONY: help install run test test-long test-load test-stress lint format bench sweep study studies studies-check gate tune clean check-name

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall when the project's dependencies change.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[jax,dev,sweep,tensorboard,tune,track]"
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install lossbench with every extra (tests, JAX, launchers, TensorBoard, Optuna, MLflow)

run: $(STAMP) ## Run the default experiment (extra overrides: make run ARGS="loss=grouped")
	$(BIN)/lossbench $(ARGS)

test: $(STAMP) ## Run the test suite (under 10 minutes on 2 cores, install included)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) -m "not long and not load" $(ARGS)

test-stress: $(STAMP) ## The timing-sensitive tests (signals, locks, resume) 5 times beside 2 CPU burners
	$(BIN)/python -m tests.stress --rounds 5 --burners 2 -n $(TEST_WORKERS) $(ARGS)

test-long: $(STAMP) ## The long end-to-end checks (every variant in one sweep, submitit, lanes; minutes)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) -m long $(ARGS)

sweep: $(STAMP) ## A small study (4 imbalance losses x 2 seeds); prints the comparison table
	rm -rf outputs/sweeps/make-sweep
	$(BIN)/lossbench -m loss=bce,focal,class_balanced,logit_adjusted seed=0,1 \
		data.n_samples=4000 trainer.epochs=3 trainer.progress=false \
		hydra.sweep.dir=outputs/sweeps/make-sweep $(ARGS)

# Refuse a missing or unknown NAME (exactly one study's name) before anything is deleted.
check-name:
	@$(if $(and $(filter 1,$(words $(NAME))),$(filter $(NAME),$(STUDIES))),true,\
	  echo "make: invalid value for \`NAME\`: expected one of $(STUDIES), received '$(NAME)'" >&2;\
	  exit 2)

study: check-name $(STAMP) ## One study from experiments/ (NAME=imbalance|groups|...; `make help` lists them)
	rm -rf outputs/studies/$(NAME)
	$(BIN)/lossbench -m +experiment=$(NAME) hydra.sweep.dir=outputs/studies/$(NAME) $(ARGS)
	$(BIN)/lossbench-report outputs/studies/$(NAME) --quiet

studies: $(STAMP) ## Every study natively and with XLA capped to AVX2: results/ and experiments/README.md (minutes)
	$(BIN)/python experiments/studies.py publish

studies-check: $(STAMP) ## Regenerate every study both ways; fail unless experiments/README.md still holds (minutes)
	$(BIN)/python experiments/studies.py check

tune: $(STAMP) ## A small parameter search: focal's gamma and alpha with Optuna (minutes)
	$(BIN)/lossbench hparams_search=focal_optuna hydra.sweeper.n_trials=12 \
		hydra.sweep.dir=outputs/tune/focal $(ARGS)
	$(BIN)/lossbench-report outputs/tune/focal --quiet

# The loss-regression gate: fails unless every verdict in EXPECT holds in the sweep folder DIR.
DIR ?= outputs/sweeps/make-sweep
EXPECT ?= logit_adjusted:minority_recall:better
gate: $(STAMP) ## Fail unless verdicts hold (DIR=sweep folder, EXPECT="loss:metric:better ...")
	$(BIN)/lossbench-report $(DIR) --quiet $(foreach e,$(EXPECT),--expect $(e))

test-load: $(STAMP) ## The load test: 200 runs in one sweep, memory bounded (about a minute)
	$(BIN)/python -m pytest -q -s -m load $(ARGS)

bench: $(STAMP) ## Benchmarks against plain Keras (minutes); writes docs/benchmarks.md
	$(BIN)/python bench/run.py $(ARGS)

bench-gpu: $(STAMP) ## lossbench with JAX on this machine's accelerator; writes docs/benchmarks-gpu.md
	$(BIN)/python bench/gpu.py $(ARGS)

lint: $(STAMP) ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## Apply ruff's formatting and safe fixes
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean: ## Remove the environment, caches and outputs
	rm -rf $(VENV) outputs multirun build dist *.egg-info .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
