# The two commands of the README. Both create .venv if it is missing and install
# the project (with its test extras) into it; nothing has to be installed by hand.
# Every line they print is ours: pip runs quietly (its errors still show, and stop
# make), without its version check and without setuptools' build-time notices.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# make test's pytest-xdist workers (tests/workers.py says how the suite is shared)
TEST_WORKERS ?= 2
PIP := PYTHONWARNINGS=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 $(BIN)/python -m pip -qq --no-input

.PHONY: demo test lint soak bench install clean

$(BIN)/python:
	@echo "creating $(VENV) with $(PYTHON) ..."
	@$(PYTHON) -m venv $(VENV)
	@$(PIP) install --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	@echo "installing ganga_like and its dependencies into $(VENV) (a minute or two) ..."
	@$(PIP) install -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	@$(BIN)/ganga-like demo

test: $(STAMP)
	$(BIN)/python -m pytest tests -q -n $(TEST_WORKERS) --no-loadscope-reorder --durations=15

lint: $(STAMP)
	$(BIN)/ruff check ganga_like tests bench examples
	$(BIN)/python -m mypy

# SIGKILLs of the service, of clients and power cuts at random points of every verb, as a
# new user runs them; then the power cut and the full disk, checked in detail.
soak: $(STAMP)
	$(BIN)/python -m tests.faults.soak --rounds $(or $(ROUNDS),100)
	$(BIN)/python -m pytest -q tests/faults/test_power_cut.py tests/faults/test_full_disk.py

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build *.egg-info
