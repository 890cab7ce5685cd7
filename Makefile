# The template's own tooling.
#   make test   bake every option combination and check it (the slow tests install and run
#               two baked projects' own test suites, and one's quick benchmark)
#   make demo   bake the default project into .demo/ and run it on http://127.0.0.1:8000/
#   make lint   ruff on the template's own Python (hooks, tests, scripts)
# PYTHON picks the interpreter for the tooling virtualenv (.venv/) and the demo project.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: test demo lint clean

# Rebuilt whenever requirements.txt changes.
$(VENV)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

test: $(VENV)/.installed
	$(BIN)/python -m pytest -v -rs tests/

lint: $(VENV)/.installed
	$(BIN)/ruff check hooks tests scripts
	$(BIN)/ruff format --check hooks tests scripts

demo: $(VENV)/.installed
	PYTHON="$(PYTHON)" COOKIECUTTER="$(BIN)/cookiecutter" bash scripts/demo.sh

clean:
	rm -rf $(VENV) .demo .pytest_cache .ruff_cache
