"""What the three widgets share: the ipywidgets 7/8 differences (each branch explicit) and Colab's widget
manager."""

import sys


def ipywidgets_major():
    import ipywidgets

    return int(ipywidgets.__version__.split(".")[0])


def prepare_frontend():
    """Google Colab shows widgets from npm packages (ipycanvas) only after enable_custom_widget_manager()."""
    if "google.colab" in sys.modules:
        try:
            from google.colab import output

            output.enable_custom_widget_manager()
        except Exception:  # an older or newer Colab without it: the stock widgets still show
            pass


# -- FileUpload: ipywidgets 8 holds a tuple of dicts, ipywidgets 7 a dict keyed by file name ---------


def uploaded_files(value):
    """[(file name, bytes)] from a FileUpload's value, in either version's shape."""
    if not value:
        return []
    if isinstance(value, dict):  # ipywidgets 7: {name: {"metadata": {...}, "content": bytes}}
        return [(name, bytes(item["content"])) for name, item in value.items()]
    return [(item["name"], bytes(item["content"])) for item in value]  # ipywidgets 8


def clear_upload(upload):
    """Empty a FileUpload so the same file can be chosen again."""
    if ipywidgets_major() >= 8:
        upload.value = ()
    else:  # ipywidgets 7: value is a dict and _counter tells the browser how many were sent
        upload.set_trait("value", {})
        if hasattr(upload, "_counter"):
            upload._counter = 0
