# edgeseg: everything the project needs is installed from here (and pyproject.toml).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install demo test test-slow lint models readme clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch is pinned to the CPU wheel first so the range in pyproject.toml installs nothing
# heavier (an open range resolves to a multi-GB CUDA build).
$(STAMP): pyproject.toml | $(PY)
	$(PIP) install "torch==2.13.0"
	$(PIP) install -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/edgeseg demo

models: $(STAMP)
	$(VENV)/bin/edgeseg models

test: $(STAMP)
	$(PY) -m pytest -n 2 $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check edgeseg tests scripts

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

readme: $(STAMP)
	$(PY) scripts/update_readme.py
