# nightjar: `make run` sets up and runs the chain on the embedded defaults; `make test` runs the test suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/dagster_home

.PHONY: setup run dev mlflow-ui reports test bench clean-state

# The Dagster instance (DAGSTER_HOME) is created and its pool limits applied before any run: two runs racing
# to create a fresh home crash one; it also reaps runs a crash left STARTED (resources/instance.py).
setup: $(VENV)/.installed dbt_project/target/manifest.json
	$(BIN)/python -m resources.instance

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test,prod]"
	touch $@

# The manifest is prepared ahead so that loading definitions never parses dbt.
dbt_project/target/manifest.json: $(VENV)/.installed $(shell find dbt_project -name '*.sql' -o -name '*.yml' | grep -v '/target/')
	cd dbt_project && ../$(BIN)/dbt parse --quiet --profiles-dir . --project-dir .

run: setup
	$(BIN)/python -m jobs.bootstrap

dev: setup
	$(BIN)/dagster dev -h 127.0.0.1 -p 3000

mlflow-ui: setup
	$(BIN)/mlflow ui --backend-store-uri "$${MLFLOW_TRACKING_URI:-sqlite:///$(CURDIR)/mlflow/mlflow.db}" -h 127.0.0.1 -p 5000

# Serves the drift and quality HTML reports; set NIGHTJAR_REPORTS_BASE_URL=http://127.0.0.1:8090 so the
# Dagster UI links to them over HTTP (browsers refuse file:// links from a web page).
REPORTS_DIR = $(or $(NIGHTJAR_REPORTS_DIR),$(or $(NIGHTJAR_DATA_DIR),$(CURDIR)/data)/reports)
reports:
	mkdir -p "$(REPORTS_DIR)" && $(PYTHON) -m http.server 8090 -b 127.0.0.1 -d "$(REPORTS_DIR)"

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python -m bench.run

clean-state:
	rm -rf data dagster_home/storage dagster_home/history dagster_home/schedules dagster_home/logs mlflow/mlflow.db mlflow/artifacts
