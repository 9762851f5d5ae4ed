"""Live style transfer on the style canvas: `%stylize --method adain ... --style canvas --live`, or the
canvas's "live AdaIN" toggle after such a call.

Every stroke asks for a run; runs go through the Python API (`api.run_again` of the call made), one at
a time in one worker thread (`LiveScheduler`), never piling up:

- while the person draws, a preview at a small size: the first stroke starts one at once, and
  strokes that come while it runs are picked up by the next one, at most every PREVIEW_EVERY_S;
- when the strokes stop for SETTLE_S, one frame at the call's own size, kept as a result (`last`,
  the gallery). Previews are not kept.

So a quick burst of strokes costs two runs: a preview on the first, the full frame on the last.
"""

import threading
import time

from .. import api, refs
from .. import params as declared
from ..errors import CreativeError
from ..session import Call

# Longer side of the frames shown while drawing: a full-size VGG19 encoder and decoder take ~1 s for a
# 128 px frame on a 2-core CPU (benchmarks/bench_feedforward.py), a few ms for 256 px on a GPU.
PREVIEW_SIZE = {"cpu": 128, "gpu": 256}
SETTLE_S = 0.6  # strokes stopped this long: the frame at full size
PREVIEW_EVERY_S = 1.0  # while drawing, previews start at most this often


class LiveScheduler:
    """Runs `job(kind)` ("preview" or "final") in one worker thread, never two at once.

    `touch()` says something changed (a stroke). A touch while idle starts a preview at once; touches
    while drawing go on are taken up by the next preview, at most every `every` seconds after the last
    one started; once no touch came for `settle` seconds, one final run takes the latest state. The
    thread ends when everything touched has had its final run. `runs` lists (kind, version) of each
    run started, versions counting touches."""

    def __init__(self, job, settle=SETTLE_S, every=PREVIEW_EVERY_S, on_error=None):
        self.job = job
        self.settle = settle
        self.every = every
        self.on_error = on_error
        self.runs = []
        self.running = False
        self.version = 0  # touches so far
        self._shown = 0  # the version the latest run (preview or final) showed
        self._final = 0  # the version the latest final run showed
        self._last_touch = 0.0
        self._last_preview = None  # when the latest preview started
        self._stopped = False
        self._thread = None
        self._cond = threading.Condition()

    def touch(self):
        with self._cond:
            if self._stopped:
                return
            self.version += 1
            self._last_touch = time.monotonic()
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="creative-magics-live", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    @property
    def busy(self):
        with self._cond:
            return self.running or (not self._stopped and self._final < self.version)

    def wait(self, timeout=None):
        """Block until the final run of everything touched is done (or stop() was called); False if
        `timeout` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self.running or (not self._stopped and self._final < self.version):
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def stop(self):
        """No more runs after the one in flight (if any)."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def _next(self):
        """(kind, version) of the next run, waiting as long as needed; None when there is nothing to do."""
        while True:
            if self._stopped or self._final >= self.version:
                return None
            now = time.monotonic()
            if now - self._last_touch >= self.settle:
                return "final", self.version
            ready = self._last_preview is None or now - self._last_preview >= self.every
            if self._shown < self.version and ready:
                self._last_preview = now
                return "preview", self.version
            wake = self._last_touch + self.settle
            if self._shown < self.version:
                wake = min(wake, self._last_preview + self.every)
            self._cond.wait(max(0.0, wake - now))

    def _work(self):
        while True:
            with self._cond:
                chosen = self._next()
                if chosen is None:
                    self._thread = None
                    self._cond.notify_all()
                    return
                kind, version = chosen
                self.running = True
                self.runs.append(chosen)
            try:
                self.job(kind)
            except Exception as err:  # the thread lives on for the next stroke
                if self.on_error is not None:
                    self.on_error(err)
            finally:
                with self._cond:
                    self.running = False
                    self._shown = max(self._shown, version)
                    if kind == "final":
                        self._final = max(self._final, version)
                    self._cond.notify_all()


# -- binding a %stylize call to the canvas ---------------------------------------------------------------


def preview_size(device=None):
    """The preview size on `device` (default: where the models run now)."""
    from .. import devices
    from ..session import current

    device = device or devices.resolve_device(current().settings.device)
    return PREVIEW_SIZE["cpu" if device == "cpu" else "gpu"]


def uses_canvas(content, style):
    styles = style if isinstance(style, (list, tuple)) else [style]
    return any(isinstance(ref, str) and ref.strip() == "canvas" for ref in [content, *styles])


def check(method, content, style, recipe=None):
    """What live mode needs, said in one line before anything runs: AdaIN, and the canvas as an input
    (given, or named by the recipe being re-run)."""
    if isinstance(recipe, dict):
        method = method or recipe.get("method")
        content = recipe.get("content") if content is None else content
        style = recipe.get("style") if style is None else style
    allowed = declared.STYLIZE["live"].methods
    if (method or "gatys") not in allowed:
        raise CreativeError(f"--live belongs to --method {' or '.join(allowed)}, not {method or 'gatys'}")
    if not uses_canvas(content, style):
        raise CreativeError("--live runs again on every stroke of the style canvas: give canvas as --style (or --content)")


def described(call):
    """(method, content, style) of a %stylize call, a recipe it re-ran filling in what it did not give."""
    recipe = call.inputs.get("recipe") if isinstance(call.inputs.get("recipe"), dict) else {}
    content = call.inputs.get("content") if call.inputs.get("content") is not None else recipe.get("content")
    style = call.inputs.get("style") if call.inputs.get("style") is not None else recipe.get("style")
    return call.given.get("method") or recipe.get("method") or "gatys", content, style


def usable(call):
    """Whether live mode can run `call` again on canvas strokes."""
    if call is None or call.task != "stylize":
        return False
    method, content, style = described(call)
    return method in declared.STYLIZE["live"].methods and uses_canvas(content, style)


def live_call(call):
    """The call live runs make: the same, with `last` taken once now (a live frame becomes `last` and would
    otherwise be restyled again and again), and a re-run recipe's images by name without their old
    fingerprints (the canvas changes with every stroke: that is the point)."""
    inputs = dict(call.inputs)
    if isinstance(inputs.get("recipe"), dict):
        inputs["recipe"] = {k: v for k, v in inputs["recipe"].items() if k not in ("content_hash", "style_hash")}
    for key in ("content", "style"):
        value = inputs.get(key)
        values = value if isinstance(value, (list, tuple)) else [value]
        if any(isinstance(v, str) and v.strip() == "last" for v in values):
            fixed = [refs.image(v, call.namespace)[0] if isinstance(v, str) and v.strip() == "last" else v for v in values]
            inputs[key] = fixed if isinstance(value, (list, tuple)) else fixed[0]
    return Call(call.task, inputs, dict(call.given), call.source, call.namespace, call.output)


class LiveStylizer:
    """Runs `call` again on every change of `canvas` (see the module's docstring) and shows each frame on
    the canvas. `frames` counts the frames shown; `last_result` is the latest full-size one."""

    def __init__(self, canvas, call, settle=SETTLE_S, every=PREVIEW_EVERY_S):
        self.canvas = canvas
        self.call = live_call(call)
        size = self.call.given.get("size") or declared.STYLIZE["size"].default
        self.preview_size = min(preview_size(), size)
        self.frames = 0
        self.previews = 0
        self.last_result = None
        self.last_error = None
        self.scheduler = LiveScheduler(self._run, settle=settle, every=every, on_error=self._failed)

    def touch(self):
        self.scheduler.touch()

    def wait(self, timeout=None):
        """Block until the frame at full size of the latest stroke is shown (tests, scripts)."""
        return self.scheduler.wait(timeout)

    def stop(self):
        self.scheduler.stop()

    @property
    def runs(self):
        return list(self.scheduler.runs)

    def _run(self, kind):
        started = time.monotonic()
        quiet = lambda: None  # a live run waiting for a cell's says nothing (it would land in that cell)
        if kind == "preview":
            result = api.run_again(self.call, [("live preview", {"size": self.preview_size})], on_wait=quiet, _remember=False)
            self.previews += 1
        else:
            result = api.run_again(self.call, on_wait=quiet)
            self.last_result = result
            if self.call.output and self.call.namespace is not None:  # as the cell's -o did
                self.call.namespace[self.call.output] = result
        self.last_error = None
        self.frames += 1
        took = time.monotonic() - started
        what = f"preview {result.image.width}x{result.image.height}" if kind == "preview" else f"{result.image.width}x{result.image.height}"
        self.canvas.show_live_frame(result.image, f"live AdaIN: frame {self.frames} ({what}, {took:.2f} s)")

    def _failed(self, err):
        self.last_error = err
        text = str(err) if isinstance(err, CreativeError) else f"{type(err).__name__}: {err}"
        self.canvas.show_live_frame(None, f"live AdaIN stopped on this frame: {text}", error=True)
