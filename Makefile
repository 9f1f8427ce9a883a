# jcs-companion: the two commands a newcomer needs are `make book` and `make test`.
# Both create .venv (Python 3.11) with the pinned requirements on first use.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PROFILE ?= cpu
# processes for `make reproduce` (one per GPU; on a CPU each process takes a share of the cores):
# NPROC=4 starts them with torchrun (DistributedDataParallel, jcs.engine.distributed)
NPROC ?= 1
LAUNCH := $(if $(filter-out 1,$(NPROC)),$(VENV)/bin/torchrun --standalone --nproc_per_node $(NPROC),$(PY))
export JCS_DATA_DIR ?= $(abspath ../shared/data)

.PHONY: help env browser test book reproduce lab bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m ipykernel install --prefix $(VENV) --name jcs --display-name "Python (jcs)" >/dev/null
	@touch $(STAMP)

env: $(STAMP)  ## create/update the project virtual environment

browser:  ## headless Chromium for the rendered-book test (Debian package; needs root)
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } || echo "chromium missing: install it (apt-get install chromium) for tests/test_book.py (or have google-chrome)"

test: $(STAMP) browser  ## run every test: package, notebooks (papermill), the book and its pages, workflows, nbval
	$(PY) -m pytest -q -n 2 --dist loadgroup tests
	$(PY) -m pytest -q -p no:xdist --nbval-lax --nbval-current-env notebooks/

book: $(STAMP)  ## execute the notebooks from committed results and build the HTML book
	$(PY) scripts/build_book.py

reproduce: $(STAMP)  ## retrain everything of a profile (PROFILE=cpu|gpu|paper, NPROC=GPUs; PROFILE=authors AUTHORS_WEIGHTS=DIR evaluates the released weights), then rebuild the book
	$(LAUNCH) -m jcs.cli reproduce --profile $(PROFILE) $(if $(AUTHORS_WEIGHTS),--authors-weights $(AUTHORS_WEIGHTS))
	$(MAKE) book

bench: $(STAMP)  ## speed/memory benchmark on this machine -> results/bench/
	$(PY) -m jcs.cli bench

lab: $(STAMP)  ## open JupyterLab with the project kernel
	$(VENV)/bin/jupyter lab notebooks/

clean:  ## remove build outputs (keeps .venv, data and results)
	rm -rf _build .pytest_cache
