# mlops-course — every command a learner, an instructor or CI needs.
#   make lab      install (once) and open JupyterLab on the course start page
#   make test     install (once) and run everything CI runs
# Run `make help` for the rest.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
UV_VERSION := 0.13.8
LOCK   := requirements/lock.txt
STAMP  := $(VENV)/.installed
PORT   ?= 8888
JOBS   ?= 2
# The test suite mostly waits (servers starting, kernels, sandboxes, image builds): on 2 cores 2 workers kept
# 0.9 core busy, so the tests run with twice as many workers as cores (override: make test TEST_JOBS=2).
TEST_JOBS ?= $(shell echo $$(( $$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc 2>/dev/null || echo 2) * 2 )))  # nproc obeys OMP_NUM_THREADS: not here
export MLOPS_COURSE_FAST_TIMEOUT ?= 600

.PHONY: help install lab course site site-check lock-universal test check-sync lint unit notebooks solutions nbdev-test export \
        clean-nbs labs grade bench lock doctor clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

# --- environment -------------------------------------------------------------------------------
$(BIN)/python:
	@$(PYTHON) -c 'import sys; v=sys.version_info; sys.exit(0 if (3,11)<=v[:2]<(3,13) else "mlops-course needs Python 3.11 or 3.12, found %d.%d: install python3.11 and run make again" % v[:2])'
	$(PYTHON) -m venv $(VENV)

$(BIN)/uv: | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# Reinstalls only when the lock or the project metadata changed.
$(STAMP): $(LOCK) pyproject.toml jupyterlab/overrides.json | $(BIN)/uv
	$(BIN)/uv pip install --python $(BIN)/python --quiet --compile-bytecode -r $(LOCK)
	$(BIN)/uv pip install --python $(BIN)/python --quiet --compile-bytecode --no-deps -e .
	$(LAB_SETTINGS)
	@touch $@

# JupyterLab's settings for the course (no news prompt, nothing fetched): see jupyterlab/README.md
LAB_SETTINGS = install -D -m 644 jupyterlab/overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json

# No kernelspec is registered: JupyterLab started from .venv offers that venv as its own "Python 3 (ipykernel)",
# so every clone runs its own code and a second clone cannot overwrite the first one's kernel.
install: $(STAMP)  ## create .venv from the lock (idempotent) and install the package

lock:  ## re-resolve requirements/lock.txt from pyproject.toml (needs the package index)
	$(BIN)/uv pip compile pyproject.toml --all-extras --python-version 3.11 \
	  --python-platform x86_64-unknown-linux-gnu --upgrade -o $(LOCK)
	$(MAKE) lock-universal

# environment.yml (conda on any OS) installs the same pins with environment markers. Re-run after every
# change of the lock (tests/test_conda_env.py fails when the two disagree).
lock-universal:  ## requirements/lock-universal.txt: the pins of the lock, with markers for every platform
	$(BIN)/uv pip compile pyproject.toml --all-extras --universal --python-version 3.11 \
	  -c $(LOCK) -o requirements/lock-universal.txt

# --- learner -----------------------------------------------------------------------------------
# The course's .venv/bin first on PATH: JupyterLab's terminals and kernels find `mlops-course`, `dvc` ...
lab: install  ## open JupyterLab on 127.0.0.1 at the course start page
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/jupyter lab --ip=127.0.0.1 --port=$(PORT) --ServerApp.root_dir=$(CURDIR) \
	  $(if $(filter 0,$(shell id -u)),--allow-root,) notebooks/index.ipynb

course: install  ## execute every lesson with papermill (progress, summary, report in workspace/reports)
	$(BIN)/mlops-course run notebooks -n $(JOBS) $(if $(FAST),-p FAST true,)

# The website shows what the notebooks computed: execute lessons and module notebooks with the course
# runner (FAST=1 for the CI-sized run), then stage and build every page (mkdocs.yml: theme and plugins).
EXECUTED := workspace/executed
site: install  ## execute every lesson and module notebook, then build the course website (build/website/site)
	$(BIN)/mlops-course run notebooks -n $(JOBS) -o $(EXECUTED) $(if $(FAST),-p FAST true,)
	$(BIN)/mlops-course run notebooks/library -n $(JOBS) -o $(EXECUTED)/library $(if $(FAST),-p FAST true,)
	$(BIN)/python -c 'from pathlib import Path; from mlops_course.classroom.site import build_site; \
	  b = build_site(Path("."), Path("$(EXECUTED)")); \
	  print(f"{b.site}/index.html: {b.pages} pages, {b.figures} figures, built in {b.seconds} s")'

doctor: install  ## what is installed and what is missing (docker, kubectl, prometheus, terraform ...)
	$(BIN)/mlops-course doctor

# --- maintainer ----------------------------------------------------------------------------------
# nbdev-clean renames the kernel to `python3`; JupyterLab would write "Python 3 (ipykernel)" back on open and
# mark the notebook modified: restore JupyterLab's metadata right after cleaning (mlops_course.classroom.nbmeta).
RESTORE_META := $(BIN)/python -c 'from mlops_course.classroom.nbmeta import restore_notebooks; restore_notebooks()'
export: install  ## notebooks/ -> mlops_course/ (nbdev) and clean notebook metadata (as JupyterLab keeps it)
	$(BIN)/nbdev-clean
	$(RESTORE_META)
	$(BIN)/nbdev-export

labs: install  ## solutions/ -> labs/ (never edit labs by hand)
	$(BIN)/mlops-course labs build

# SOLUTIONS: the instructor's private copy of solutions/ (a graded class never uses the public one).
grade: install  ## grade a class, sandboxed: make grade LAB=03 SUBMISSIONS=submissions/ SOLUTIONS=~/private-solutions
	$(BIN)/mlops-course grade --lab $(LAB) $(SUBMISSIONS) --out grades.csv -n $(JOBS) \
	  $(if $(SOLUTIONS),--solutions $(SOLUTIONS),)

bench: install  ## run the benchmarks and append to benchmarks/RESULTS.md
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b; done

# --- test (what CI runs) ---------------------------------------------------------------------------
# The library and the labs must be generated from their sources: exporting and cleaning must not
# change the tree, and the labs must equal the stripped solutions.
check-sync: install
	@before=$$( (git status --porcelain --untracked-files=all; git diff) | sha256sum); \
	$(BIN)/nbdev-clean; $(RESTORE_META); $(BIN)/nbdev-export; \
	after=$$( (git status --porcelain --untracked-files=all; git diff) | sha256sum); \
	if [ "$$before" != "$$after" ]; then \
	  echo "nbdev-clean/nbdev-export changed the tree: run 'make export' and commit the result:"; \
	  git status --porcelain --untracked-files=all; exit 1; fi
	$(BIN)/mlops-course labs check

lint: install
	$(BIN)/ruff check .

DURATIONS ?= 20  # the slowest tests listed after the run (0: all, for planning the test budget)
unit: install  ## unit, data, API and deploy-file tests, notebooks in FAST mode, grading invariants
	$(BIN)/pytest -n $(TEST_JOBS) --dist loadgroup --durations=$(DURATIONS) --ignore=tests/test_site.py tests

# After `unit`, which wrote the FAST executions to workspace/executed: the website built from them and read
# page by page in headless Chromium (console errors, every figure decoded, internal links, search).
site-check: install  ## build the website from the executed notebooks and check every page in Chromium
	$(BIN)/pytest -p no:cacheprovider --durations=5 tests/test_site.py

solutions: install  ## nbval: every solution reproduces its committed outputs
	$(BIN)/pytest -n $(TEST_JOBS) --dist loadfile -p no:cacheprovider --nbval --nbval-current-env \
	  --nbval-sanitize-with tests/nbval_sanitize.cfg solutions

nbdev-test: install
	$(BIN)/nbdev-test --n-workers $(TEST_JOBS) notebooks/classroom

# Two cores shared by pytest workers and kernels: one BLAS/OpenMP thread each avoids oversubscription
# (HistGradientBoosting slows down several-fold when its threads compete with another worker's).
unit site site-check solutions nbdev-test: export OMP_NUM_THREADS=1

test: check-sync lint unit site-check solutions nbdev-test  ## everything CI runs (in this order)
	@echo "make test: all green"

clean:  ## remove the workspace, caches and executed copies (keeps .venv)
	rm -rf workspace .pytest_cache .ruff_cache build

# --- docker (deploy/docker) ---------------------------------------------------------------------------
# Needs a Docker engine; as root without one: `deploy/docker/engine.sh start` and the DOCKER_HOST it prints.
.PHONY: images
images: install  ## build the training, serving (mlflow and API) and course images (a model trained in between)
	MLOPS_COURSE_DOCKER_IMAGES=$${MLOPS_COURSE_DOCKER_IMAGES:-train,serve,api,course} \
	$(BIN)/python deploy/docker/images.py build
