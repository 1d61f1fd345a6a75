# Two commands for a new machine:  `make demo` (pretrain + evaluate on Fashion-MNIST)  and  `make test`
# (ruff, the import-layer contracts, the type checker, then the test suite).
VENV ?= .venv
PY := $(VENV)/bin/python
RUN ?= runs/demo
ARGS ?=

.PHONY: setup data demo lint test wheel docs bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

data:
	@bash scripts/ensure-data.sh

demo: setup data
	$(VENV)/bin/mimae pretrain --method mae --output-dir $(RUN) --resume auto $(ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

test: setup data lint
	$(VENV)/bin/pytest -n 2 -q --durations=10

docs: setup
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

wheel: setup data
	VENV=$(VENV) bash scripts/check-wheel.sh

bench: setup data
	$(VENV)/bin/mimae bench all --out benchmarks/results/cpu

clean:
	rm -rf $(VENV) runs .pytest_cache dist build site
