# testbed: every target installs what it needs into .venv first (only python3 >= 3.11 is assumed).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-test
export HYPOTHESIS_PROFILE ?= ci
export MPLBACKEND := Agg

.DEFAULT_GOAL := help
.PHONY: help install test lint reproduce quick bench clean docs coverage mutants

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# uv (from PyPI, into the venv) resolves and installs the dependencies in parallel: ~30 s on a
# fresh machine where pip takes ~85 s. --compile-bytecode as pip does: without the .pyc files,
# every process of the suite (workers, study pools, subprocesses) paid ~9 s more to import jax,
# scipy, pandas and matplotlib
$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m uv pip install --quiet --compile-bytecode --python $(PY) -e '.[test]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install testbed with its test and dask extras

lint: $(STAMP)  ## ruff over the package, tests, studies and benchmarks
	$(PY) -m ruff check testbed tests studies benchmarks

# the numba kernels compiled once first, in two processes side by side (a fresh machine has none
# cached: otherwise every worker and every study process compiles them itself), then the suite on every core (pytest-xdist; a
# test file stays on one worker, so its module-scoped fixtures, such as one quick run of several
# studies, run once)
# JAX's persistent compilation cache: the suite's processes (workers, study pools, the tour's
# kernel, subprocesses) and its many fresh jax.jit closures compile the same programs again and
# again; cached by their HLO, a repeat costs a file read (~20 s of a run on a fresh machine)
test: export JAX_COMPILATION_CACHE_DIR = $(CURDIR)/$(VENV)/jax-cache
test: export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS = 0
test: export JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES = 0
test: lint  ## install, lint, then run the whole suite (HYPOTHESIS_PROFILE=ci|dev|thorough)
	$(PY) -c "import testbed.compiled as k; k.warm(0, 2)" & w=$$!; \
	  $(PY) -c "import testbed.compiled as k; k.warm(1, 2)" && wait $$w
	$(PY) -m pytest -q -n auto --dist loadfile

coverage: $(STAMP)  ## the suite under branch coverage of testbed/, listing every line and branch not reached
	$(PY) -m pytest -q --cov=testbed --cov-branch --cov-report=term-missing:skip-covered

# mutmut over the derivative code ([tool.mutmut] in pyproject.toml); MUTANTS='glob' runs only
# the mutants whose names match (e.g. MUTANTS='testbed.nn.*'); the numba kernels of the run are
# cached in mutants/.kernel-cache (named by a hash of their source: a mutated generator writes new ones)
MUTANTS ?=
MUTANTS_STAMP := $(VENV)/.installed-mutants
$(MUTANTS_STAMP): pyproject.toml $(STAMP)
	$(PY) -m uv pip install --quiet --compile-bytecode --python $(PY) -e '.[test,mutants]'
	touch $(MUTANTS_STAMP)

mutants: $(MUTANTS_STAMP)  ## mutation run (mutmut) over the derivative code; results and survivors in tests/MUTANTS.md
	HYPOTHESIS_PROFILE=dev TESTBED_CACHE_DIR=$(CURDIR)/mutants/.kernel-cache $(VENV)/bin/mutmut run $(MUTANTS)
	$(VENV)/bin/mutmut results

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
