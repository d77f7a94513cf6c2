# Two commands from a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export MLFLOW_DISABLE_TELEMETRY := true
# mkdocs-material prints an end-of-life notice on every build without this.
export NO_MKDOCS_2_WARNING := 1

.PHONY: venv run test lint docs docs-serve bench notebooks clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==25.3"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,spark,docs]"
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/clv train --output output --summary output/summary.json

# pytest includes tests/docs, which builds the docs site with `mkdocs build --strict`.
# -n 2: two pytest workers, one per core (tests/scheduling.py says which module runs where).
test: $(STAMP)
	$(BIN)/ruff check pipeline models tests benchmarks scripts docs/hooks.py
	$(BIN)/mypy
	$(BIN)/mypy docs/hooks.py scripts
	$(BIN)/python -m pytest -n 2

lint: $(STAMP)
	$(BIN)/ruff check pipeline models tests benchmarks scripts docs/hooks.py
	$(BIN)/ruff format --check pipeline models tests benchmarks scripts docs/hooks.py

# The docs site, offline: `make docs` builds it into site/ (open site/index.html), `make docs-serve` serves it
# on http://127.0.0.1:8000 with live reload.
docs: $(STAMP)
	$(BIN)/mkdocs build --strict --site-dir site

docs-serve: $(STAMP)
	$(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000

bench: $(STAMP)
	$(BIN)/python -m benchmarks.prepare_bench --sizes 1000000 5000000 10000000 100000000 --lifetimes-max 10000000
	$(BIN)/python -m benchmarks.score_bench --sizes 1000000 10000000 --lifetimes-max 1000000
	$(BIN)/python -m benchmarks.fit_bench --sizes 100000 1000000 10000000 --lifetimes-max 10000000

notebooks: $(STAMP)
	$(BIN)/jupyter lab notebooks

clean:
	rm -rf $(VENV) output mlflow.db mlartifacts site
