# Two commands do all set-up on a fresh machine (Python >= 3.10 and make):
#   make lab    installs everything in .venv and opens JupyterLab at notebooks/quickstart.ipynb
#   make test   installs everything in .venv and runs all tests (offline, tiny models)

VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0

.PHONY: lab test install clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[test,lab]"
	touch $@

install: $(BIN)/.installed

lab: $(BIN)/.installed
	CREATIVE_MAGICS_PROFILE=auto $(BIN)/jupyter lab notebooks/quickstart.ipynb

test: $(BIN)/.installed
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

clean:
	rm -rf $(VENV)
