"""Run notebooks top to bottom with the tiny offline models and store their outputs, so nbval can
compare them in CI. Usage: python scripts/execute_notebooks.py notebooks/story.ipynb [...]"""

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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
        nbformat.write(notebook, path)
        print(f"executed {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
