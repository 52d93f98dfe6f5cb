# The two commands (see README.md):
#   make demo   set everything up from nothing and serve the desk with demo data on 127.0.0.1:8000
#               (make demo PORT=8080 for another port)
#   make test   run the whole test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_ENV := DEBUG=true
DEMO_PASSWORD ?=
PORT ?= 8000

.PHONY: demo setup test lint bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	touch $@

setup: $(VENV)/.installed node_modules/.installed

demo: setup
	mkdir -p var
	$(DEMO_ENV) $(PY) manage.py migrate --no-input
	$(DEMO_ENV) $(PY) manage.py seed_demo --if-empty $(if $(DEMO_PASSWORD),--password $(DEMO_PASSWORD),)
	@echo "Mail the desk sends is written to var/outbox/."
	$(DEMO_ENV) $(PY) manage.py runserver 127.0.0.1:$(PORT)

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) node_modules var staticfiles
