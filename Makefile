# The two set-up commands of the README:
#   make demo   creates .venv, installs everything, runs the main job on built-in data (no internet)
#   make test   creates .venv, installs everything with the test extras, runs the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup demo test test-fast clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: setup
	$(BIN)/translate-lab mog --objective wgan-gp --modes ring8 --seed 0 --plot checkpoints/lab-ring8.png

test: setup
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

clean:
	rm -rf $(VENV) build *.egg-info
