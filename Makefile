# `make demo` and `make test` set everything up on a fresh machine: they create .venv if it is
# missing and install the project with its dev extras. System packages the tests need
# (PostgreSQL server, Chromium) are installed by .ci/system-deps when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.kpiforge-installed

.PHONY: install demo test system-deps bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

DEMO := examples/demo

# The main job on the bundled sample data: the seeded demo data set (generated once, not
# committed), last month by channel with month-over-month change, then the alerts it raises.
demo: $(STAMP)
	test -f $(DEMO)/data/sessions.parquet || $(BIN)/python $(DEMO)/generate.py --out $(DEMO)/data
	$(BIN)/kpiforge run --project $(DEMO)/kpiforge.yaml --grain month --by channel --compare previous

system-deps:
	bash .ci/system-deps

test: $(STAMP) system-deps
	$(BIN)/kpiforge validate
	$(BIN)/kpiforge test
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_formulas.py
	$(BIN)/python benchmarks/bench_sources.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
