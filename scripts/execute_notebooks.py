"""Run notebooks top to bottom with the tiny offline models and store their outputs, so nbval can
compare them in CI. Usage: python scripts/execute_notebooks.py notebooks/story.ipynb [...]

A cell tagged `no-stored-output` runs like every other (later cells may use what it made) but is stored
unrun: its picture or sound would be the tiny models' noise, the first thing a reader sees. A markdown
note beside it says what a real model gives (tests/test_launch.py checks both)."""

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NO_STORED_OUTPUT = "no-stored-output"


def main(paths):
    import nbformat
    from nbclient import NotebookClient

    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["CREATIVE_MAGICS_PROFILE"] = "tiny"
    os.environ.setdefault("CREATIVE_MAGICS_HOME", os.path.join(tempfile.gettempdir(), "creative_magics_test_home"))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    for path in paths or sorted((ROOT / "notebooks").glob("*.ipynb")):
        path = Path(path)
        notebook = nbformat.read(path, as_version=4)
        NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
        for cell in notebook.cells:
            if cell.cell_type == "code" and NO_STORED_OUTPUT in cell.metadata.get("tags", []):
                cell.outputs, cell.execution_count = [], None
        nbformat.write(notebook, path)
        print(f"executed {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
