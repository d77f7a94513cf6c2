# Two commands from a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export MLFLOW_DISABLE_TELEMETRY := true

.PHONY: run test lint bench notebooks clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==25.3"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,spark]"
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/clv train --output output --summary output/summary.json

test: $(STAMP)
	$(BIN)/ruff check pipeline models tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/mypy scripts
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check pipeline models tests benchmarks scripts
	$(BIN)/ruff format --check pipeline models tests benchmarks scripts

bench: $(STAMP)
	$(BIN)/python -m benchmarks.prepare_bench --sizes 1000000 5000000 10000000 100000000 --lifetimes-max 10000000
	$(BIN)/python -m benchmarks.score_bench --sizes 1000000 10000000 --lifetimes-max 1000000
	$(BIN)/python -m benchmarks.fit_bench --sizes 100000 1000000 10000000 --lifetimes-max 10000000

notebooks: $(STAMP)
	$(BIN)/jupyter lab notebooks

clean:
	rm -rf $(VENV) output mlflow.db mlartifacts
