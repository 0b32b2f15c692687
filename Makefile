# `make demo` and `make test` set everything up on a fresh machine: they create .venv if it is
# missing and install the project, the demo with only what it needs (the runtime and the 'demo'
# and 'report' extras), the tests with the dev extras. System packages the tests need (PostgreSQL
# and MariaDB servers, Chromium, a Java runtime for Spark) are installed by .ci/system-deps when
# missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME_STAMP := $(VENV)/.kpiforge-runtime
DEV_STAMP := $(VENV)/.kpiforge-dev

# setuptools' notice that the editable install uses an import hook, shown at every install
PIP := PYTHONWARNINGS='ignore:Editable installation' $(BIN)/python -m pip

.PHONY: install demo test typecheck system-deps bench bench-peers clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUNTIME_STAMP): pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e '.[demo,report]'
	touch $(RUNTIME_STAMP)

# the dev extras include everything the demo needs, so a dev install serves the demo too
$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e '.[dev]'
	touch $(DEV_STAMP) $(RUNTIME_STAMP)

install: $(DEV_STAMP)

DEMO := examples/demo

# The main job on the bundled sample data: the seeded demo data set (generated once, not
# committed), last month by channel with month-over-month change, then the alerts it raises.
# Then the month's HTML report. The notes say what the output means (examples/demo/README.md
# says more).
demo: $(RUNTIME_STAMP)
	@echo "kpiforge demo: 13 months of invented marketing data for a fictional online shop"
	@echo "(examples/demo), the standard KPI catalog computed for the last month by channel."
	test -f $(DEMO)/data/sessions.parquet || $(BIN)/python $(DEMO)/generate.py --out $(DEMO)/data
	$(BIN)/kpiforge run --project $(DEMO)/kpiforge.yaml --grain month --by channel --compare previous
	@echo ""
	@echo "Alerts go to the console sink only for the KPIs the project's routes match; the others"
	@echo "are counted as 'matched no route' and sent nowhere. Alert state is kept in"
	@echo "$(DEMO)/.kpiforge/state.db, so running the demo again sends nothing new: an alert is"
	@echo "notified once, then only on a change or after repeat_interval (7d). To see what is still"
	@echo "firing: $(BIN)/kpiforge alerts list --project $(DEMO)/kpiforge.yaml"
	@echo ""
	@echo "The month's report (open it in a browser; it needs no network):"
	$(BIN)/kpiforge report --project $(DEMO)/kpiforge.yaml --grain month --by channel -o $(DEMO)/reports

system-deps:
	bash .ci/system-deps

# mypy over engine/ and plugins/ (the wheel ships py.typed, so the annotations are API)
typecheck: $(DEV_STAMP)
	PYTHON=$(BIN)/python bash .ci/typecheck

test: $(DEV_STAMP) system-deps
	PYTHON=$(BIN)/python bash .ci/typecheck
	$(BIN)/kpiforge validate
	$(BIN)/kpiforge test
	$(BIN)/python -m pytest -q

bench: $(DEV_STAMP)
	$(BIN)/python benchmarks/bench_formulas.py --busy
	$(BIN)/python benchmarks/bench_sources.py
	$(BIN)/python benchmarks/bench_startup.py

# kpiforge against its peers (MetricFlow, kpi-engine) and a hand-written DuckDB query, each a
# whole process; the peers get their own venvs from the registry, cached in benchmarks/_data/.
# Not part of `make test`. Options: make bench-peers BENCH_PEERS_ARGS='--quick'
bench-peers: $(DEV_STAMP)
	$(BIN)/python benchmarks/bench_peers.py $(BENCH_PEERS_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
