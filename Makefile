# forgery-workbook: one entry point for people and CI.
#   make workbook   create .venv if absent, then run every notebook (profile smoke) into runs/smoke/
#   make test       create .venv if absent, then run the tests: the unit tier on two processes, then the slow tests
#                   and the smoke workbook end to end on one
#   make test-fast  the unit tier only: every test not marked workbook or slow (no notebook runs; under 3 minutes)
#   make test-gpu   the tests that need an accelerator (marked gpu; skipped on a machine without one)
# Variables: PROFILE=smoke|full  ONLY=01,02  OUT=runs/NAME  PYTEST_ARGS="-k manifest"  VENV=.venv  PYTHON=python3.11

# The first interpreter on PATH that the package supports (3.10-3.12), unless PYTHON is given.
PYTHON ?= $(shell for p in python3.11 python3.12 python3.10 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 12))' 2>/dev/null \
	&& { echo $$p; break; }; done)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.forgery-workbook-installed
PROFILE ?= smoke
ONLY ?=
OUT ?=
PYTEST_ARGS ?=

.PHONY: help env workbook test test-fast test-gpu bench clean-runs

help:
	@sed -n '2,7p' Makefile

# (Re)install when the package's dependencies change.
$(STAMP): pyproject.toml
	@if [ ! -x "$(PY)" ]; then \
		if [ -z "$(PYTHON)" ]; then echo "error: need Python 3.10, 3.11 or 3.12 on PATH (or make PYTHON=/path/to/python)" >&2; exit 1; fi; \
		echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); \
	fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

env: $(STAMP)

workbook: $(STAMP)
	$(PY) -m helpers workbook --profile $(PROFILE) $(if $(ONLY),--only $(ONLY)) $(if $(OUT),--out $(OUT))

# pytest exits 5 when it collected no test: that is a failure here, never a pass.
# Two runs: the unit tier on two processes (as test-fast), then the slow and workbook tiers on one, since their
# time-budgeted training must not share the cores. Exit 5 from one run alone is a subset that PYTEST_ARGS left
# empty; from both, nothing was collected at all.
test: $(STAMP)
	@$(PY) -m pytest -m "not workbook and not slow" -n 2 $(PYTEST_ARGS); unit=$$?; \
	$(PY) -m pytest -m "workbook or slow" $(PYTEST_ARGS); rest=$$?; \
	if [ $$unit -eq 5 ] && [ $$rest -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; \
	for status in $$unit $$rest; do if [ $$status -ne 0 ] && [ $$status -ne 5 ]; then exit $$status; fi; done

# The tiers are pytest markers (pyproject.toml): --durations shows where the unit tier's minutes go. A test
# that takes a minute or more is marked slow: make test runs it, test-fast does not.
# The unit tier runs on two processes (pytest-xdist): its tests are independent, and one process uses one core.
test-fast: $(STAMP)
	@$(PY) -m pytest -m "not workbook and not slow" -n 2 --durations=10 $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$status

test-gpu: $(STAMP)
	@$(PY) -m pytest -m gpu -rs $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$status

bench: $(STAMP)
	@for script in benchmarks/bench_*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean-runs:
	rm -rf runs/
