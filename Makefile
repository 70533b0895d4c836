# The two commands of the README. Both create .venv if it is missing and install
# the project (with its test extras) into it; nothing has to be installed by hand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint soak bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/ganga-like demo

test: $(STAMP)
	$(BIN)/python -m pytest tests -q

lint: $(STAMP)
	$(BIN)/ruff check ganga_like tests bench examples

soak: $(STAMP)
	$(BIN)/python -m tests.faults.soak --rounds $(or $(ROUNDS),100)

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build *.egg-info
