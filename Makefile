# Developer entry points. Each target sets up .venv on first use.
#   make showcase   compare PCA, NMF, KMeans and an autoencoder on digits
#   make test       run the test suite (what CI runs)
#   make bench      run the training-overhead benchmark
#   make docs       build the documentation (warnings are errors)
# TORCH_SPEC pins the CPU build used by dev/CI; users install any torch>=2.2.

VENV ?= .venv
PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python

.PHONY: setup test showcase bench docs lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

# One pytest worker per core (pytest-xdist): every test pins torch to one
# thread, so the workers do not compete for cores.
PYTEST_WORKERS ?= auto

test: setup
	$(PY) -m pytest -n $(PYTEST_WORKERS)

showcase: setup
	$(PY) examples/plot_showcase.py

bench: setup
	$(PY) benchmarks/bench_training.py

docs: setup
	$(PY) -m pip install -q -r doc/requirements.txt
	SKAE_DOCS_FAST=1 $(PY) -m sphinx -W --keep-going -b html doc doc/_build/html

lint: setup
	$(VENV)/bin/ruff check skae tests examples benchmarks

clean:
	rm -rf $(VENV)
