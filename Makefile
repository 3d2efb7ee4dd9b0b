# Two commands do all set-up on a fresh machine (see README.md):
#   make demo   start the API on its embedded SQLite default and validate it
#   make test   lint, type-check and run the whole test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install check test demo drill bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

check: install
	scripts/check

test: install
	scripts/check
	scripts/test

demo: install
	scripts/demo

drill: install
	scripts/drill

bench: install
	scripts/bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage coverage.xml
