# Two commands on a fresh machine: `make run` (a real tuning search on the demo corpus), `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test unit lint install clean

$(BIN)/polsess-tune: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.14.1 torchaudio==2.11.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/polsess-tune

run: install
	$(BIN)/polsess-tune run

test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q tests

unit: install
	$(BIN)/python -m pytest -q tests/unit

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) *.egg-info
