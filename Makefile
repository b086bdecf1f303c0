# Observatoire — every target does its own set-up from the committed lock file.
SHELL := /bin/bash
# The interpreter the project runs on (3.11 to 3.13): `make run PYTHON=python3.13`.
PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
PY_EXE := $(shell $(PYTHON) -c 'import sys; print(sys.executable)' 2>/dev/null)
PY_VERSION := $(if $(PY_EXE),$(shell $(PY_EXE) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null))
# One stamp per interpreter: giving another PYTHON re-creates the environment with it.
STAMP := $(VENV)/.synced-python$(PY_VERSION)
MANIFEST := dbt_project/target/manifest.json
export UV_COMPILE_BYTECODE := 1
export DBT_SEND_ANONYMOUS_USAGE_STATS := False
export OBSERVATOIRE_DATA_DIR ?= $(CURDIR)/data

.PHONY: setup run test test-fast bench bench-save year docs ui seeds lint clean

setup: $(STAMP) $(MANIFEST)

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==0.13.9

$(STAMP): $(UV) uv.lock pyproject.toml
	@test -n "$(PY_VERSION)" || { echo "$(PYTHON): no such Python interpreter (give PYTHON=/path/to/python3.11..3.13)" >&2; exit 1; }
	$(UV) sync --locked --compile-bytecode --python $(PY_EXE)
	rm -f $(VENV)/.synced*
	touch $@

# dagster-dbt needs the manifest at import time outside `dagster dev`.
$(MANIFEST): $(STAMP) $(shell find dbt_project -name '*.sql' -o -name '*.yml' -not -path '*/target/*' 2>/dev/null)
	$(BIN)/python -m dagster_project.defs.dbt_manifest

run: setup
	$(BIN)/observatoire run

test: setup
	$(BIN)/ruff check dagster_project tests bench seeds
	$(BIN)/pytest -q -n 2 --dist loadfile --no-loadscope-reorder

test-fast: setup
	$(BIN)/pytest -q -m "not slow and not ui"

bench: setup
	$(BIN)/python -m bench.run

# Same, and update the committed reference bench/results.json (date and machine included).
bench-save: setup
	$(BIN)/python -m bench.run --save

# A year of unattended operation, simulated: the real schedules, sensors and jobs over 2027.
year: setup
	$(BIN)/python -m bench.year

docs: setup
	$(BIN)/python -m dagster_project.defs.dbt_manifest --docs

ui: setup
	$(BIN)/observatoire ui

# Rebuild seeds/ from the npm package (needs npm; the CSVs are committed).
seeds: $(STAMP)
	$(BIN)/python seeds/build_reference.py

lint: setup
	$(BIN)/ruff check dagster_project tests

clean:
	rm -rf $(VENV) $(TOOLS) dbt_project/target data
