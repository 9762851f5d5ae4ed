"""The interactive half: the slider panel, the style canvas and the gallery.

ipywidgets and ipycanvas only (no custom JavaScript), so they work wherever those npm packages
load: JupyterLab 4, Notebook 7, VS Code and Google Colab. Each module imports ipywidgets when it
is first imported, which happens only when a widget is opened (never at `%load_ext`).
"""
