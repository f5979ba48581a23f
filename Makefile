# Quick start: `make run` (set up + run the default job), `make test` (set up + whole suite).
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin

# The offline product: no hub, local litellm price map, no Prefect telemetry.
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export LITELLM_LOCAL_MODEL_COST_MAP ?= True
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install run test clean bench-selection

$(BIN)/elad: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -e '.[test]'
	$(BIN)/python -m compileall -q elad_core flows tasks
	touch $(BIN)/elad

install: $(BIN)/elad

run: install
	$(BIN)/elad run $(ARGS)

test: install
	$(BIN)/python -m pytest -q $(ARGS)

# Issue 3's benchmark (hours on 2 CPU cores; resumable): `make bench-selection ARGS=--quick` to try it.
bench-selection: install
	$(BIN)/pip install --disable-pip-version-check -q -e '.[bench]'
	$(BIN)/python benchmarks/selection_efficiency.py $(ARGS)

clean:
	rm -rf runs .pytest_cache
