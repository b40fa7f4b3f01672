# The two set-up commands of the README:
#   make demo   creates .venv, installs everything, runs the main job on built-in data (no internet)
#   make test   creates .venv, installs everything with the test extras, runs the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup demo test test-fast browser clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# The main job: the quick CycleGAN on the built-in synthetic photo2vangogh set, then its translations of
# the test photos, at the 128 px it was trained at, as a results page (checkpoints/demo/results/index.html).
# Running it again resumes an interrupted run (Ctrl-C exports the generators so far, so their presence
# says nothing: the resume state does), or, when training has finished, only re-exports and redoes the
# results page (a resume at the last step trains nothing). Exported generators without state.pt (removed
# to save space) are used as they are.
DEMO := checkpoints/demo

demo: setup
	@if [ -f $(DEMO)/state.pt ]; then $(BIN)/translate-train cyclegan --data synth-photo2vangogh --preset quick --name demo --resume; \
	elif [ -f $(DEMO)/G_A.safetensors ]; then echo "$(DEMO) holds exported generators without state.pt: using them as they are (delete $(DEMO) to train again)"; \
	else $(BIN)/translate-train cyclegan --data synth-photo2vangogh --preset quick --name demo; fi
	$(BIN)/translate-infer --model $(DEMO) --direction a2b --input datasets/synth-photo2vangogh/testA --size 128 --output $(DEMO)/results

test: setup browser
	$(BIN)/python -m pytest

# The app's browser test drives Debian's chromium through Playwright (no `playwright install`: it
# cannot download here). Installed once when missing; needs root or sudo.
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  echo "installing chromium for the app's browser test (apt-get)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; \
	fi

test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

clean:
	rm -rf $(VENV) build *.egg-info
