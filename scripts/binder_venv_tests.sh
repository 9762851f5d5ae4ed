#!/usr/bin/env bash
# The notebooks under nbval in a fresh venv built from binder/ alone, the way repo2docker (Binder)
# installs the repository: from the repository root, `pip install -r binder/requirements.txt`, then
# binder/postBuild if there is one. No docker here, so a venv on the Python of binder/runtime.txt stands in
# for the image. CI runs this after `make test`.
#
#   scripts/binder_venv_tests.sh [VENV]      VENV defaults to .venv-binder (git-ignored)
#
# Env: PYTHON (default: the python3.X that binder/runtime.txt names), TORCH (default torch==2.13.0).
#
# Two things differ from Binder, both only because of this machine and neither in binder/:
# - download.pytorch.org (binder/requirements.txt's --extra-index-url) may be unreachable. pip then takes
#   nothing from that index and goes on with the others; PIP_RETRIES=0 and a short PIP_TIMEOUT make that
#   cost nothing instead of a minute of retries per package.
# - torch is held to $TORCH (a pip constraint, PIP_CONSTRAINT), the CPU wheel that lies on disk; on Binder
#   the --extra-index-url gives the newest CPU wheel instead.
# The test tools (pytest, nbval) are added after the Binder install: Binder itself does not need them.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="$(realpath -m "${1:-.venv-binder}")"
RUNTIME="$(sed -n 's/^python-\([0-9.]*\).*/\1/p' binder/runtime.txt 2>/dev/null || true)"
PYTHON="${PYTHON:-python${RUNTIME:-3}}"
TORCH="${TORCH:-torch==2.13.0}"
started=$(date +%s)

rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
mkdir -p "$VENV/ci"
echo "$TORCH" > "$VENV/ci/constraints.txt"
export PIP_CONSTRAINT="$VENV/ci/constraints.txt" PIP_RETRIES=0 PIP_TIMEOUT=10 PIP_DEFAULT_TIMEOUT=10
export PIP_DISABLE_PIP_VERSION_CHECK=1
# As repo2docker does: in the repository root, with the venv's pip.
PATH="$VENV/bin:$PATH" pip install --quiet -r binder/requirements.txt 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
if [ -f binder/postBuild ]; then
    PATH="$VENV/bin:$PATH" bash binder/postBuild
fi
installed=$(date +%s)
"$VENV/bin/python" - <<'PY'
import importlib.metadata as md
import creative_magics, torch
print(f"Binder venv: creative_magics {md.version('creative_magics')} from {creative_magics.__file__}, torch {torch.__version__}, "
      f"jupyterlab {md.version('jupyterlab')}, ipywidgets {md.version('ipywidgets')}")
PY
"$VENV/bin/python" -m pip install --quiet "pytest>=8" "nbval>=0.11" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
# The notebooks as Binder runs them, but with the tiny offline models (conftest.py sets the profile).
HF_HUB_OFFLINE=1 "$VENV/bin/python" -m pytest -q -p no:cacheprovider notebooks/
echo "Binder venv: install $((installed - started)) s, notebooks $(( $(date +%s) - installed )) s"
