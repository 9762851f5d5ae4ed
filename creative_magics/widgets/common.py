"""What the three widgets share: the ipywidgets 7/8 differences (each branch explicit), Colab's widget
manager, display data as JSON, and sending one worker thread's output into an Output widget."""

import base64
import contextlib
import sys
import threading


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


def user_namespace():
    try:
        from IPython import get_ipython
    except ImportError:
        return {}
    shell = get_ipython()
    return shell.user_ns if shell is not None else {}


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


# -- display data as an Output widget stores it ------------------------------------------------------


_BINARY_TEXT = ("application/json",)


def jsonable(bundle):
    """A mime bundle with bytes turned into what a notebook stores: base64 for images, text for text.

    IPython's formatters give PNG as bytes; a kernel base64-encodes it when it sends a message, and an
    Output widget's `outputs` must hold it already encoded."""
    out = {}
    for mime, value in (bundle or {}).items():
        if isinstance(value, (bytes, bytearray, memoryview)):
            raw = bytes(value)
            if mime.startswith("text/") or mime in _BINARY_TEXT:
                value = raw.decode("utf-8", "replace")
            else:
                value = base64.b64encode(raw).decode("ascii")
        out[mime] = value
    return out


def display_item(obj):
    """One `display_data` output for `obj`, as IPython would format it in a notebook."""
    from IPython.core.interactiveshell import InteractiveShell

    data, metadata = InteractiveShell.instance().display_formatter.format(obj)
    return {"output_type": "display_data", "data": jsonable(data), "metadata": metadata or {}}


def show_in(output, *objects):
    """Replace what an Output widget shows with `objects` (works from any thread, with or without a front-end)."""
    output.outputs = tuple(display_item(obj) for obj in objects)


class OutputSink:
    """Collects one thread's prints and displays as Output widget outputs, updating the widget as they come.

    Display updates (`display_id`) replace their output in place, as a notebook does."""

    def __init__(self, output):
        self.output = output
        self.items = []
        self.by_id = {}
        self.lock = threading.Lock()

    def stream(self, name, text):
        if not text:
            return
        with self.lock:
            last = self.items[-1] if self.items else None
            if last is not None and last.get("output_type") == "stream" and last.get("name") == name:
                self.items[-1] = dict(last, text=last["text"] + text)
            else:
                self.items.append({"output_type": "stream", "name": name, "text": text})
            self._push()

    def display(self, data, metadata=None, transient=None, update=False):
        display_id = (transient or {}).get("display_id")
        item = {"output_type": "display_data", "data": jsonable(data), "metadata": metadata or {}}
        with self.lock:
            if update:
                if display_id in self.by_id:
                    self.items[self.by_id[display_id]] = item
                    self._push()
                return
            if display_id is not None:
                self.by_id[display_id] = len(self.items)
            self.items.append(item)
            self._push()

    def clear(self, wait=False):
        with self.lock:
            self.items, self.by_id = [], {}
            self._push()

    def text(self):
        """Everything shown as plain text (tests, terminals)."""
        parts = []
        for item in self.items:
            parts.append(item["text"] if item["output_type"] == "stream" else str(item["data"].get("text/plain", "")))
        return "".join(parts)

    def _push(self):
        self.output.outputs = tuple(self.items)


# -- routing one thread's output ---------------------------------------------------------------------

_routes = {}  # thread id -> OutputSink
_route_lock = threading.Lock()
_installed = {}


class _StreamRouter:
    """Stands in for sys.stdout / sys.stderr while a route is open: a routed thread's writes go to its
    sink, every other thread's to the stream that was there before."""

    def __init__(self, original, name):
        self._original = original
        self._name = name

    def write(self, text):
        sink = _routes.get(threading.get_ident())
        if sink is None:
            return self._original.write(text)
        sink.stream(self._name, str(text))
        return len(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        if threading.get_ident() not in _routes:
            self._original.flush()

    def __getattr__(self, name):
        return getattr(self._original, name)


def _install():
    from IPython import get_ipython

    _installed["stdout"], _installed["stderr"] = sys.stdout, sys.stderr
    sys.stdout = _StreamRouter(sys.stdout, "stdout")
    sys.stderr = _StreamRouter(sys.stderr, "stderr")
    shell = get_ipython()
    publisher = getattr(shell, "display_pub", None)
    _installed["publisher"] = publisher
    if publisher is None:
        return
    own = publisher.__dict__
    _installed["own"] = {name: own[name] for name in ("publish", "clear_output") if name in own}
    publish, clear_output = publisher.publish, publisher.clear_output

    def routed_publish(data, metadata=None, *args, **kwargs):
        sink = _routes.get(threading.get_ident())
        if sink is None:
            return publish(data, metadata, *args, **kwargs)
        sink.display(data, metadata, kwargs.get("transient"), kwargs.get("update", False))

    def routed_clear_output(wait=False):
        sink = _routes.get(threading.get_ident())
        if sink is None:
            return clear_output(wait)
        sink.clear(wait)

    # Patched on the instance (the shell's display_pub trait keeps its object) and undone after.
    publisher.publish = routed_publish
    publisher.clear_output = routed_clear_output
    _installed["patched"] = (routed_publish, routed_clear_output)


def _uninstall():
    for name in ("stdout", "stderr"):
        router = getattr(sys, name)
        if isinstance(router, _StreamRouter):  # else someone replaced it since: leave theirs
            setattr(sys, name, _installed[name])
    publisher = _installed.get("publisher")
    if publisher is not None:
        own, patched = _installed.get("own", {}), _installed.get("patched", ())
        for name, ours in zip(("publish", "clear_output"), patched):
            if publisher.__dict__.get(name) is ours:
                if name in own:
                    setattr(publisher, name, own[name])
                else:
                    delattr(publisher, name)
    _installed.clear()


@contextlib.contextmanager
def routed_to(output, clear=True):
    """Within this block, what the calling thread prints or displays goes to the Output widget `output`
    (replacing what it showed); other threads print as before. Yields the OutputSink."""
    sink = OutputSink(output)
    if clear:
        sink.clear()
    ident = threading.get_ident()
    with _route_lock:
        if not _routes:
            _install()
        _routes[ident] = sink
    try:
        yield sink
    finally:
        with _route_lock:
            _routes.pop(ident, None)
            if not _routes:
                _uninstall()
