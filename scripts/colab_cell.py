"""The first code cell of every notebook: in Google Colab it installs creative_magics (keeping Colab's
own IPython, ipywidgets and torch) and turns on Colab's custom widget manager; anywhere else it does
nothing and prints nothing, so it runs under nbval like any other cell.

    python scripts/colab_cell.py [notebooks/NAME.ipynb ...]   puts (or updates) it in the notebooks

Then run scripts/execute_notebooks.py on them to store their outputs again.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPOSITORY = "https://github.com/creative-magics/creative_magics"

# Pinning Colab's installed versions as requirements keeps pip from upgrading them (pip installs nothing
# it does not need, and these pins make sure a newer dependency cannot ask for more).
COLAB_CELL = f'''\
# Google Colab only: install creative_magics, keeping Colab's own IPython, ipywidgets and torch, and
# turn on Colab's widget manager (the canvas needs it). Anywhere else this cell does nothing.
import sys

if "google.colab" in sys.modules:
    import subprocess
    from importlib.metadata import version

    keep = [f"{{name}}=={{version(name)}}" for name in ("ipython", "ipywidgets", "torch")]
    package = "creative_magics[train] @ git+{REPOSITORY}"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", package, *keep], check=True)
    from google.colab import output

    output.enable_custom_widget_manager()'''

MARKER = "# Google Colab only:"


def is_colab_cell(cell):
    return cell.cell_type == "code" and cell.source.startswith(MARKER)


def put_first(notebook):
    """Make COLAB_CELL the notebook's first code cell (replacing an older version of it). True if changed."""
    import nbformat

    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    if code and is_colab_cell(code[0]):
        if code[0].source == COLAB_CELL:
            return False
        code[0].source = COLAB_CELL
        return True
    first_code = notebook.cells.index(code[0]) if code else len(notebook.cells)
    notebook.cells.insert(first_code, nbformat.v4.new_code_cell(COLAB_CELL))
    return True


def main(paths):
    import nbformat

    for path in paths or sorted((ROOT / "notebooks").glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        if put_first(notebook):
            nbformat.write(notebook, path)
            print(f"updated {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
