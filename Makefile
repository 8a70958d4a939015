# drumscribe on a fresh Debian/Ubuntu machine with python3.11: `make demo`, `make test`.
# Run as root, or as a user who may sudo (only needed when a Debian package is missing).

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.drumscribe-setup
APT_PACKAGES := jackd2 libportaudio2 hydrogen-drumkits fluid-soundfont-gm timgm6mb-soundfont fluidsynth libsndfile1 \
  chromium chromium-driver
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# torch (the train extra) first and pinned: the local wheel path has a CPU build; an unpinned torch would pull GBs
# of CUDA
TORCH := torch==2.13.0

.PHONY: setup demo test test-fast lint bench clean-setup

setup: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "setup: installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	fi
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[test,cluster,train,web]'
	@touch $(STAMP)

demo: setup
	@mkdir -p examples/out
	$(BIN)/drumscribe transcribe examples/example.mp3 -o examples/out/example.mid \
	  --events examples/out/example.csv --plot examples/out/example.png
	@echo "demo: wrote examples/out/example.mid, example.csv and example.png; against the true hits:"
	@$(BIN)/drumscribe evaluate --audio examples --annotations examples | tail -n 9

test: setup
	$(BIN)/python -m pytest -q tests

# the suite less the tests marked slow (training, live JACK runs, anything over about 10 s; setup.cfg lists the marker)
test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow" tests

# ruff, as pyproject.toml's [tool.ruff] sets it up, over all the code
LINT_PATHS := drumscribe models offline realtime presets bench experiments tests examples
lint: setup
	$(BIN)/ruff check $(LINT_PATHS)

bench: setup
	$(BIN)/python bench/speed.py

clean-setup:
	rm -f $(STAMP)
