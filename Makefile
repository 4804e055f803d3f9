# Developer entry points. Quick start on a fresh machine:  make run   (then, in another shell)  make test
#
# Configuration comes from the environment or a .env file (DATABASE_URL, GESCOM_DATABASE_URL,
# SYNC_INTERVAL, BIND, WEB_CONCURRENCY, SYNC_SCHEDULER, ...): make passes it through untouched.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
FLASK := $(PY) -m flask --app wsgi
STAMP := $(VENV)/.requirements.stamp
PYTEST_ARGS ?=

.PHONY: help venv install run serve test lint format bench demo-advance sync clean

help:
	@echo "make run           install, migrate the store, create the demo GesCom if missing, serve on http://127.0.0.1:8000"
	@echo "make test          install, run the whole test suite (extra pytest arguments: PYTEST_ARGS=...)"
	@echo "make lint          check lint and formatting (ruff), as CI does"
	@echo "make format        format the code and apply ruff's safe fixes"
	@echo "make bench         side-by-side benchmarks (BENCH_ARGS=\"--orders 100000 --changed 10000 --growth\")"
	@echo "make serve         migrate the store and serve, without the demo GesCom (a real Sage base)"
	@echo "make sync          run the detection once"
	@echo "make demo-advance  move some demo orders on, as a warehouse would"
	@echo "make clean         remove caches (make clean VENV_TOO=1 removes .venv as well)"

# The virtualenv itself. A failed `python3 -m venv` leaves a half-made directory: remove it.
$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null || { \
		echo "error: Python 3.10 or newer is needed as '$(PYTHON)' (override with make PYTHON=...)." >&2; exit 1; }
	@$(PYTHON) -m venv $(VENV) || { \
		rm -rf $(VENV); \
		echo >&2; \
		echo "error: '$(PYTHON) -m venv' failed. On Debian/Ubuntu install the venv module first:" >&2; \
		echo "         sudo apt-get install python3-venv" >&2; \
		exit 1; }

# Reinstall only when a requirements file changed (or the virtualenv is new).
$(STAMP): requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	@touch $@

venv install: $(STAMP)

run: $(STAMP)
	$(FLASK) db upgrade
	$(FLASK) demo init --if-missing
	exec $(PY) -m gunicorn -c gunicorn.conf.py wsgi:app

serve: $(STAMP)
	$(FLASK) db upgrade
	exec $(PY) -m gunicorn -c gunicorn.conf.py wsgi:app

test: $(STAMP)
	$(PY) -m pytest -q -ra$(if $(PYTEST_ARGS), $(PYTEST_ARGS))

# Both checks run, so one CI log shows every finding; either one failing fails the target.
lint: $(STAMP)
	@status=0; \
	echo "$(PY) -m ruff check ."; $(PY) -m ruff check . || status=1; \
	echo "$(PY) -m ruff format --check ."; $(PY) -m ruff format --check . || status=1; \
	exit $$status

# Fixes first: they can leave code the formatter then lays out.
format: $(STAMP)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

BENCH_ARGS ?= --growth
bench: $(STAMP)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-bench.txt
	$(PY) -m benchmarks.bench --plot docs/performance.png $(BENCH_ARGS)

demo-advance: $(STAMP)
	$(FLASK) demo advance

sync: $(STAMP)
	$(FLASK) db upgrade
	$(FLASK) sync run

clean:
	rm -rf .pytest_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
	$(if $(VENV_TOO),rm -rf $(VENV))
