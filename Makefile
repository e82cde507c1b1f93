# SLaM bot — the two commands a new user needs: `make demo` and `make test`.
# Every install step lives here so a clean clone on a fresh machine works.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
# The native llama.cpp build picks AMX kernels that segfault on some hosts: build portable.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test lint bench bench-quick clean pg chromium help image image-test

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/ —/'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade "pip>=24" setuptools wheel
	# Pin torch first: an unpinned torch pulls a multi-GB CUDA build.
	$(PIP) install "torch==2.13.0"
	$(PIP) install -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)  ## set up .venv and run the whole pipeline offline
	$(VENV)/bin/slam demo

pg:  ## make sure the local PostgreSQL answers (start it if it does not)
	@bash scripts/ensure_postgres.sh

chromium:  ## install Debian's chromium for the browser tests when it is missing
	@bash scripts/ensure_chromium.sh

test: $(STAMP) pg chromium  ## set up .venv and run every test, plus lint and type checks
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy core slam bot evaluation hosting storage
	$(VENV)/bin/pytest -q

bench: $(STAMP)  ## run the benchmarks and print their figures
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

bench-quick: $(STAMP)  ## every benchmark in its quick mode (a few seconds each), summary lines
	@for b in benchmarks/bench_*.py; do echo "== $$b"; \
		out=$$($(PY) $$b --quick 2>&1) || { echo "$$out"; exit 1; }; echo "$$out" | tail -n 1; done

image:  ## build the Docker image slam-bot:latest (docker if an engine runs, else buildah)
	bash scripts/image/build.sh

image-test: $(STAMP)  ## build the image and run it for real, without a daemon (~9-12 min)
	bash scripts/image/test.sh

clean:  ## remove the virtualenv and demo workspace
	rm -rf $(VENV) .slam-demo build *.egg-info
