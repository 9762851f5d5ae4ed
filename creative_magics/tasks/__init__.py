"""One module per task: plain functions over a cached model, nothing of IPython."""
