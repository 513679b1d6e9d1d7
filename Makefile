# testbed: every target installs what it needs into .venv first (only python3 >= 3.11 is assumed).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-test
export HYPOTHESIS_PROFILE ?= ci
export MPLBACKEND := Agg

.DEFAULT_GOAL := help
.PHONY: help install test lint reproduce quick bench clean docs coverage

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install testbed with its test and dask extras

lint: $(STAMP)  ## ruff over the package, tests, studies and benchmarks
	$(PY) -m ruff check testbed tests studies benchmarks

test: lint  ## install, lint, then run the whole suite (HYPOTHESIS_PROFILE=ci|dev|thorough)
	$(PY) -m pytest -q

coverage: $(STAMP)  ## the suite under branch coverage of testbed/, listing every line and branch not reached
	$(PY) -m pytest -q --cov=testbed --cov-branch --cov-report=term-missing:skip-covered

reproduce: $(STAMP)  ## install, run every study, write results/ (about 30 min on 2 cores)
	$(PY) -m studies all

quick: $(STAMP)  ## every study in --quick mode (under 2 minutes), into results-quick/ (not results/)
	$(PY) -m studies all --quick --out results-quick

bench: $(STAMP)  ## print the benchmark tables (circuits, deep network, curvature)
	$(PY) benchmarks/circuits.py
	$(PY) benchmarks/deepnet.py
	$(PY) benchmarks/curvature.py

API_MODULES := testbed testbed.nn testbed.random_circuits

docs: $(STAMP)  ## draw docs/img/*.png, run the tour into docs/tour.ipynb, API reference into docs/api/
	$(PY) docs/make_figures.py
	$(PY) docs/run_tour.py
	$(PY) -W error -m pdoc $(API_MODULES) -o docs/api

clean:  ## remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
