# Songe: `make run` starts the bot, `make test` runs the whole suite. Each sets itself up first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The tests run on the CPU build of torch; real users get the build pip picks for their machine.
TEST_TORCH ?= torch==2.13.0

.PHONY: run test lint bench clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.run-deps: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.test-deps: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q $(TEST_TORCH)
	$(PY) -m pip install -q -e '.[test]'
	touch $@

run: $(VENV)/.run-deps
	$(PY) -m bot

test: $(VENV)/.test-deps
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.test-deps
	$(VENV)/bin/ruff check bot pipelines quotas tests bench
	$(VENV)/bin/ruff format --check bot pipelines quotas tests bench

bench: $(VENV)/.test-deps
	HF_HUB_OFFLINE=1 $(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
