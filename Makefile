# Set-up, the main jobs and the checks. Every target builds what it needs when it is missing.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DATA := data/FashionMNIST/raw/t10k-labels-idx1-ubyte
ARGS ?=
MODEL ?= models:/mlp-sweep@best
PORT ?= 5001
TRACKING_URI ?= sqlite:///mlflow.db

.PHONY: setup data test-tools sweep train serve test test-fast lint bench ui clean-runs

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

$(DATA): | $(STAMP)
	$(BIN)/python -m mlp data

setup: $(STAMP) $(DATA)
data: $(DATA)

test-tools:  ## Debian's chromium (report page test) and docker-compose (compose file check), as root
	@missing=""; for t in chromium docker-compose; do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get install -y -q $$missing >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null && apt-get install -y -q $$missing >/dev/null; } || \
	      echo "note: could not install$$missing; the tests that need them will be skipped"; \
	  else echo "note:$$missing not installed; the tests that need them will be skipped"; fi; \
	fi

sweep: setup  ## the main job: a small default Optuna study, tracked in MLflow
	$(BIN)/python -m experiments.sweep $(ARGS)

train: setup  ## one tracked run with the chapter's defaults
	$(BIN)/python -m experiments.train $(ARGS)

serve: setup  ## a registered model over HTTP: POST pixels to http://127.0.0.1:$(PORT)/invocations
	PATH="$(CURDIR)/$(BIN):$$PATH" MLFLOW_TRACKING_URI='$(TRACKING_URI)' MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false \
	  $(BIN)/mlflow models serve --model-uri '$(MODEL)' --env-manager local --host 127.0.0.1 --port $(PORT)

test: setup test-tools  ## the whole suite, slow tests included (what CI runs), with the 15 slowest
	$(BIN)/python -m pytest -q --durations=15 $(ARGS)

test-fast: setup  ## before every commit: all but the multi-process and end-to-end tests (about a minute)
	$(BIN)/python -m pytest -q -m "not slow" $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check mlp experiments tests

bench: setup
	$(BIN)/python -m experiments.bench $(ARGS)

ui: $(STAMP)  ## the MLflow UI on the embedded store, http://127.0.0.1:5000
	@echo "MLflow UI: open http://127.0.0.1:5000/#/experiments?workflowType=machine_learning (Ctrl-C stops it)"
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port 5000

clean-runs:
	rm -rf mlflow.db optuna.db mlflow.db.lock optuna.db.lock optuna.db.*.lock mlruns outputs multirun reports
