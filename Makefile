# nightjar: `make run` sets up and runs the chain on the embedded defaults; `make test` runs the test suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/dagster_home
# Dagster stores a run's events in batches of this size (a run over many days records every partition of every
# asset): the embedded event log writes a batch in one transaction (nightjar_instance/event_log.py); 0 turns it off.
export DAGSTER_EVENT_BATCH_SIZE ?= 1000
# MLflow's download progress bars would land in every run's compute logs (MLflow reads this only from the environment).
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR ?= false

.PHONY: setup run dev mlflow-ui reports replay test bench clean-state spark-up spark-down

# The Dagster instance (DAGSTER_HOME) is created and its pool limits applied before any run: two runs racing
# to create a fresh home crash one; it also reaps runs a crash left STARTED (resources/instance.py). dbt's parse
# state is then prepared as the runs will use it, so that the first run does not re-parse the project
# (resources/dbt_parse_state.py; nothing to do once a run has kept one).
setup: $(VENV)/.installed dbt_project/target/manifest.json
	$(BIN)/python -m resources.instance
	$(BIN)/python -m resources.dbt_parse_state

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test,prod,spark]"
	touch $@

# The manifest is prepared ahead so that loading definitions never parses dbt.
dbt_project/target/manifest.json: $(VENV)/.installed $(shell find dbt_project -name '*.sql' -o -name '*.yml' | grep -v '/target/')
	cd dbt_project && ../$(BIN)/dbt parse --quiet --profiles-dir . --project-dir .

# Arguments go to the bootstrap: `make run ARGS="--all-history --train-as-of 2025-04-30"` (a past window of your own
# data; `.venv/bin/python -m jobs.bootstrap --help` lists them).
run: setup
	$(BIN)/python -m jobs.bootstrap $(ARGS)

# Where the UIs listen (127.0.0.1 only): `make dev DAGSTER_PORT=3100 REPORTS_PORT=8190`, `make mlflow-ui
# MLFLOW_PORT=5100` (give `make run` the same ports). The links nightjar records (MLflow run -> Dagster run, Dagster
# asset -> MLflow run, check -> report) follow unless NIGHTJAR_DAGSTER_URL / NIGHTJAR_MLFLOW_UI_URL /
# NIGHTJAR_REPORTS_BASE_URL say otherwise (a shared host, a proxy).
DAGSTER_PORT ?= 3000
MLFLOW_PORT ?= 5000
export NIGHTJAR_DAGSTER_URL ?= http://127.0.0.1:$(DAGSTER_PORT)
export NIGHTJAR_MLFLOW_UI_URL ?= http://127.0.0.1:$(MLFLOW_PORT)

# The reports folder, and where `make dev` and `make reports` serve it over HTTP: the reports server renders each
# stored report (Evidently's snapshot, <day>.json.gz) as Evidently's page when it is opened (resources/report_server.py).
# Runs started from make (`make run`, `make dev`) record links to it unless NIGHTJAR_REPORTS_BASE_URL says otherwise
# (a shared host, a proxy); a link is made when its day is checked, so days checked elsewhere may have none.
REPORTS_DIR = $(or $(NIGHTJAR_REPORTS_DIR),$(or $(NIGHTJAR_DATA_DIR),$(CURDIR)/data)/reports)
REPORTS_PORT ?= 8090
REPORTS_URL = http://127.0.0.1:$(REPORTS_PORT)
# Only for the targets that run the chain: tests set their own (or none).
run dev: export NIGHTJAR_REPORTS_BASE_URL ?= $(REPORTS_URL)

# `dg` (Dagster's project CLI, [tool.dg] in pyproject.toml) runs with the project's venv as the active one.
DG = VIRTUAL_ENV="$(abspath $(VENV))" $(BIN)/dg

# The Dagster UI (`dg dev`; `dagster dev -w workspace.yaml` serves the same location), and the reports server beside
# it (in the background, stopped when `dg dev` exits).
dev: setup
	@$(BIN)/python -m resources.report_server serve --dir "$(REPORTS_DIR)" --port $(REPORTS_PORT) >/dev/null 2>&1 & server=$$!; \
	trap 'kill $$server 2>/dev/null' EXIT; trap 'exit 130' INT TERM HUP; \
	sleep 1; \
	if kill -0 $$server 2>/dev/null; then echo "reports: $(REPORTS_URL) (serving $(REPORTS_DIR))"; \
	else echo "reports: not served from here (port $(REPORTS_PORT) taken? \`make reports\` may be serving them)"; fi; \
	$(DG) dev -h 127.0.0.1 -p $(DAGSTER_PORT)

# The MLflow UI: versions, their runs, and each run's metrics (monitoring logs a step per checked day).
mlflow-ui: setup
	$(BIN)/mlflow ui --backend-store-uri "$${MLFLOW_TRACKING_URI:-sqlite:///$(CURDIR)/mlflow/mlflow.db}" -h 127.0.0.1 -p $(MLFLOW_PORT)

# The drift and quality reports alone, without the Dagster UI (`make dev` serves them too).
reports: setup
	$(BIN)/python -m resources.report_server serve --dir "$(REPORTS_DIR)" --port $(REPORTS_PORT)

# Replay one scored case from its stored input with the version that decided it (README, "Replaying a decision"):
# `make replay MODEL=loan_default_risk CASE=<id> [DAY=YYYY-MM-DD]`.
replay: setup
	$(BIN)/python -m jobs.replay --model "$(MODEL)" --case "$(CASE)" $(if $(DAY),--day $(DAY))

# A local Spark Connect server from the installed pyspark (Java 17: apt-get install openjdk-17-jre-headless), every
# port on 127.0.0.1, its metastore and tables under $(NIGHTJAR_DATA_DIR)/spark; NIGHTJAR_SPARK_REMOTE sets the port.
spark-up: $(VENV)/.installed
	$(BIN)/python -m resources.spark_server start

spark-down: $(VENV)/.installed
	$(BIN)/python -m resources.spark_server stop

# `make test` runs the suite on this many worker processes (pytest-xdist; `auto`: one per core, 0: in one process).
# A test module stays on one worker, so its shared servers (Postgres, Spark Connect) start once.
TEST_WORKERS ?= auto

test: setup
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/sqlfluff lint dbt_project/models dbt_project/tests
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

bench: setup
	$(BIN)/python -m bench.run

clean-state:
	rm -rf data dagster_home/storage dagster_home/history dagster_home/schedules dagster_home/logs mlflow/mlflow.db mlflow/artifacts
