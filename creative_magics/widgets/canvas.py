"""The style canvas: `%creative canvas [--width W --height H]` / `creative_magics.canvas()`.

One canvas per kernel. Draw with the mouse, a pen or a finger (brush colour, size, opacity,
eraser, undo, clear), or load an image into it (upload, path, URL, variable, `last`). Its
`.to_image()` is what `canvas` means wherever an IMAGE is taken (`--init canvas`, `--style canvas`,
`--control canvas`), and `.to_mask()`, its strokes in white on black, what `--mask canvas` repaints.

ipycanvas cannot hand pixels back to the kernel without a browser, so the strokes are kept here,
in Python, and rendered with PIL. While a stroke is drawn the browser shows quick line segments;
when it ends, the PIL rendering is sent to the browser (lossless RGBA), so what the page shows is
exactly what `to_image()` returns.

Live AdaIN (widgets/live.py): after `%stylize --method adain ... --style canvas --live` (or with the
"live AdaIN" toggle after such a call) every change of the drawing runs that call again, and the
frames show beside the drawing. `on_change(callback)` tells others of each change too.
"""

import argparse
import contextlib
import threading
from dataclasses import dataclass, field

import ipywidgets as widgets

from .. import refs
from ..errors import CreativeError
from ..session import current
from .common import clear_upload, prepare_frontend, uploaded_files

DEFAULT_SIZE = 512
MIN_SIZE, MAX_SIZE = 32, 2048
BACKGROUND = (255, 255, 255)
TOOL_WIDTH = "260px"


@dataclass
class Stroke:
    """One stroke: the points the brush went through, in canvas pixels."""

    points: list
    color: tuple = (0, 0, 0)  # RGB
    size: float = 12.0  # brush diameter in pixels
    opacity: float = 1.0
    eraser: bool = False
    kind: str = field(default="stroke", init=False)


@dataclass
class Loaded:
    """An image loaded into the canvas (strokes before it are covered; undo brings them back)."""

    image: object  # PIL RGB, fitted to the canvas
    label: str = ""
    kind: str = field(default="load", init=False)


@dataclass
class Cleared:
    kind: str = field(default="clear", init=False)


def stroke_mask(size, stroke):
    """The stroke's coverage (PIL L image): round caps and joins, `opacity` scaling its coverage."""
    from PIL import Image, ImageDraw

    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    points = [(float(x), float(y)) for x, y in stroke.points]
    radius = max(float(stroke.size), 1.0) / 2.0
    if len(points) > 1:
        draw.line(points, fill=255, width=max(1, round(stroke.size)), joint="curve")
    for x, y in points:
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    if stroke.opacity < 1.0:
        level = max(0.0, min(1.0, float(stroke.opacity)))
        mask = mask.point(lambda v: round(v * level))
    return mask


def apply_stroke(layer, stroke):
    """Paint `stroke` onto the RGBA stroke layer in place; the eraser takes paint away (shows the base)."""
    from PIL import Image, ImageChops, ImageOps

    mask = stroke_mask(layer.size, stroke)
    if stroke.eraser:
        alpha = ImageChops.multiply(layer.getchannel("A"), ImageOps.invert(mask))
        layer.putalpha(alpha)
        return
    paint = Image.new("RGBA", layer.size, tuple(stroke.color) + (255,))
    paint.putalpha(mask)
    layer.alpha_composite(paint)


def fit(image, size):
    """`image` scaled to fit `size` (aspect kept), centred on the background colour."""
    from PIL import Image, ImageOps

    image = image.convert("RGB")
    if image.size == tuple(size):
        return image.copy()
    fitted = ImageOps.contain(image, tuple(size), Image.Resampling.LANCZOS)
    sheet = Image.new("RGB", tuple(size), BACKGROUND)
    sheet.paste(fitted, ((size[0] - fitted.width) // 2, (size[1] - fitted.height) // 2))
    return sheet


def css_color(rgb):
    return "#%02x%02x%02x" % tuple(rgb)


def parse_color(value):
    from PIL import ImageColor

    try:
        return ImageColor.getrgb(str(value))[:3]
    except ValueError:
        raise CreativeError(f"{value!r} is not a colour: use a name (red) or #rrggbb") from None


class StyleCanvas(widgets.VBox):
    """The style canvas widget. `to_image()` gives the drawing as a PIL RGB image."""

    def __init__(self, width=DEFAULT_SIZE, height=DEFAULT_SIZE):
        from ipycanvas import Canvas

        prepare_frontend()
        check_size(width, height)
        self._size = (int(width), int(height))
        # Front-ends may deliver widget messages on a kernel subshell, in another thread than the
        # cells: the drawing's state changes and is read under this lock.
        self._lock = threading.RLock()
        self._actions = []
        self._current = None
        self._closed = False
        self._base, self._layer = self._blank()

        self.drawing = Canvas(width=self._size[0], height=self._size[1], layout=_canvas_layout(self._size))
        self.drawing.add_class("creative-magics-canvas")
        self.drawing.on_mouse_down(self._pointer_down)
        self.drawing.on_mouse_move(self._pointer_move)
        self.drawing.on_mouse_up(self._pointer_up)
        self.drawing.on_mouse_out(self._pointer_up)
        self.drawing.on_touch_start(lambda touches: touches and self._pointer_down(*touches[0]))
        self.drawing.on_touch_move(lambda touches: touches and self._pointer_move(*touches[0]))
        self.drawing.on_touch_end(lambda touches: self._pointer_up(*(touches[0] if touches else (None, None))))
        self.drawing.on_touch_cancel(lambda touches: self._pointer_up(None, None))
        self.drawing.on_client_ready(self._show)

        narrow = widgets.Layout(width=TOOL_WIDTH)
        self.color = widgets.ColorPicker(value="#000000", description="colour", concise=False, layout=narrow)
        self.brush_size = widgets.IntSlider(value=12, min=1, max=100, description="size", continuous_update=False, layout=narrow)
        self.opacity = widgets.FloatSlider(
            value=1.0, min=0.05, max=1.0, step=0.05, description="opacity", continuous_update=False, layout=narrow
        )
        self.eraser = widgets.ToggleButton(value=False, description="eraser")
        self.undo_button = widgets.Button(description="undo")
        self.clear_button = widgets.Button(description="clear")
        self.undo_button.on_click(lambda _: self.undo())
        self.clear_button.on_click(lambda _: self.clear())
        self.upload = widgets.FileUpload(accept="image/*", multiple=False, description="upload")
        self.upload.observe(self._uploaded, names="value")
        self.source = widgets.Text(placeholder="a path, URL, variable or last", layout=widgets.Layout(width="320px"))
        self.load_button = widgets.Button(description="load")
        self.load_button.on_click(lambda _: self._load_from_box())
        self.status = widgets.HTML()
        # -- live AdaIN (widgets/live.py): a %stylize call run again on every stroke, its frames shown beside the drawing
        self.live = None  # the LiveStylizer while live is on
        self._toggling = False
        self.live_toggle = widgets.ToggleButton(value=False, description="live AdaIN",
                                                tooltip="run the last %stylize --method adain with --style canvas again on every stroke")
        self.live_toggle.observe(self._live_toggled, names="value")
        self.live_view = widgets.Image(format="png", layout=widgets.Layout(display="none", max_width="100%", border="1px solid #9e9e9e"))
        self.live_view.add_class("creative-magics-live-frame")
        self.live_status = widgets.HTML()
        self._listeners = []  # callbacks told of each change of the drawing
        super().__init__(
            [
                widgets.HBox([self.color, self.brush_size, self.opacity]),
                widgets.HBox([self.eraser, self.undo_button, self.clear_button, self.upload, self.live_toggle]),
                widgets.HBox([self.source, self.load_button]),
                self.status,
                widgets.HBox([self.drawing, widgets.VBox([self.live_view, self.live_status])]),
            ]
        )
        self.add_class("creative-magics-style-canvas")
        self._show()
        self._say("Draw here; `canvas` is this drawing in --init canvas and --style canvas, and its strokes in --mask canvas.")
        self.session = current()
        self.session.add_image_source("canvas", self.to_image)
        self.session.add_mask_source("canvas", self.to_mask)

    # -- state ---------------------------------------------------------------------------------

    @property
    def size(self):
        """(width, height) in pixels."""
        return self._size

    @property
    def strokes(self):
        """The strokes on the canvas now (since the last clear or loaded image)."""
        with self._lock:
            out = []
            for action in self._actions:
                if action.kind in ("clear", "load"):
                    out = []
                else:
                    out.append(action)
            return out

    @property
    def loaded_label(self):
        with self._lock:
            label = None
            for action in self._actions:
                if action.kind == "clear":
                    label = None
                elif action.kind == "load":
                    label = action.label
            return label

    def _blank(self):
        from PIL import Image

        return Image.new("RGB", self._size, BACKGROUND), Image.new("RGBA", self._size, (0, 0, 0, 0))

    def _apply(self, action):
        if action.kind == "stroke":
            apply_stroke(self._layer, action)
        elif action.kind == "clear":
            self._base, self._layer = self._blank()
        elif action.kind == "load":
            self._base = action.image.copy()
            self._layer = self._blank()[1]

    def _replay(self):
        with self._lock:
            self._base, self._layer = self._blank()
            for action in self._actions:
                self._apply(action)

    def to_image(self):
        """The drawing as a PIL RGB image, `width` x `height`."""
        from PIL import Image

        with self._lock:
            return Image.alpha_composite(self._base.convert("RGBA"), self._layer).convert("RGB")

    def to_mask(self):
        """The strokes as a mask (PIL L image): white where paint was put since the last clear or loaded
        image, black elsewhere (erased strokes are black again). What `--mask canvas` repaints."""
        with self._lock:
            return self._layer.getchannel("A").point(lambda alpha: 255 if alpha else 0)

    def __repr__(self):
        width, height = self._size
        what = []
        if self.loaded_label is not None:
            what.append(f"image {self.loaded_label!r}")
        count = len(self.strokes)
        what.append(f"{count} stroke{'s' if count != 1 else ''}")
        return f"<creative_magics canvas {width}x{height}: {' + '.join(what)}>"

    # -- drawing from Python -------------------------------------------------------------------

    def brush(self):
        """The current brush: (colour RGB, size, opacity, eraser)."""
        return parse_color(self.color.value), float(self.brush_size.value), float(self.opacity.value), bool(self.eraser.value)

    def draw(self, points, color=None, size=None, opacity=None, eraser=None):
        """Add a stroke through `points` [(x, y), ...] (canvas pixels); unset options use the brush. Returns it."""
        points = [(float(x), float(y)) for x, y in points]
        if not points:
            raise CreativeError("a stroke needs at least one point")
        brush_color, brush_size, brush_opacity, brush_eraser = self.brush()
        stroke = Stroke(
            points=points,
            color=parse_color(color) if color is not None else brush_color,
            size=float(size if size is not None else brush_size),
            opacity=float(opacity if opacity is not None else brush_opacity),
            eraser=bool(brush_eraser if eraser is None else eraser),
        )
        if stroke.size <= 0 or not 0 < stroke.opacity <= 1:
            raise CreativeError("a stroke needs size > 0 and opacity in (0, 1]")
        self._add(stroke)
        return stroke

    def undo(self):
        """Take back the last stroke, clear or loaded image; False when there is nothing to undo."""
        with self._lock:
            if self._current is not None:
                self._current = None
            if not self._actions:
                self._say("Nothing to undo.")
                return False
            self._actions.pop()
            self._replay()
            self._show()
            self._say("Undone.")
        self._changed()
        return True

    def clear(self):
        """A blank canvas (undo brings the drawing back)."""
        self._current = None
        if self._actions and self._actions[-1].kind == "clear":
            return
        self._add(Cleared())
        self._say("Cleared.")

    def load(self, source):
        """Load an image: a path, URL, variable name or `last`, or a PIL image / array / result."""
        if isinstance(source, str) and source.strip() == "canvas":
            raise CreativeError("the canvas cannot load itself: give a path, a URL, a variable or last")
        image, label = refs.image(source, what="canvas image")
        label = label or type(source).__name__
        self._add(Loaded(fit(image, self._size), label))
        self._say(f"Loaded {label}.")

    def resize(self, width, height):
        """A new size; the drawing is scaled into it and becomes the start (undo history is dropped)."""
        with self._lock:
            check_size(width, height)
            size = (int(width), int(height))
            if size == self._size:
                return
            picture = fit(self.to_image(), size)
            self._size = size
            self._actions = [Loaded(picture, "resized")] if self.strokes or self.loaded_label else []
            self._replay()
            self.drawing.width, self.drawing.height = size
            self.drawing.layout = _canvas_layout(size)
            self._show()
        self._changed()

    def _add(self, action):
        with self._lock:
            self._actions.append(action)
            self._apply(action)
            self._show()
        self._changed()

    # -- telling others of changes (live AdaIN) --------------------------------------------------------

    def on_change(self, callback):
        """callback() after every change of the drawing (a stroke, undo, clear, a loaded image, a resize)."""
        if callback not in self._listeners:
            self._listeners.append(callback)

    def _changed(self):
        if self.live is not None:
            self.live.touch()
        for callback in list(self._listeners):
            try:
                callback()
            except Exception as err:  # a broken listener must not lose the stroke
                self._say(f"{type(err).__name__}: {err}", error=True)

    def go_live(self, call):
        """Run `call` (%stylize --method adain with canvas as an input) again on every change, showing each frame here."""
        from .live import LiveStylizer, check, described

        check(*described(call))
        if self.live is not None:
            self.live.stop()
        self.live = LiveStylizer(self, call)
        with self._quiet_toggle():
            self.live_toggle.value = True
        self.live_status.value = "<small>live AdaIN: draw, and the picture follows (a preview while you draw, full size when you stop)</small>"
        self.live_view.layout.display = ""
        result = getattr(self.session.last(), "image", None)
        if result is not None and self.session.last_call("stylize") is call:
            self.show_live_frame(result, None)
        return self.live

    def stop_live(self):
        if self.live is not None:
            self.live.stop()
            self.live = None
        with self._quiet_toggle():
            self.live_toggle.value = False
        self.live_status.value = "<small>live AdaIN is off</small>"

    def show_live_frame(self, image, text, error=False):
        """Show a live frame (a PIL image, None to keep the last) and a line about it beside the drawing."""
        from html import escape

        from ..recipes import png_bytes

        if image is not None:
            self.live_view.value = png_bytes(image)
            self.live_view.layout.display = ""
        if text:
            color = "#b00020" if error else "inherit"
            self.live_status.value = f'<small style="color:{color}">{escape(text)}</small>'

    @contextlib.contextmanager
    def _quiet_toggle(self):
        """Set the live toggle from here without it acting as a click."""
        self._toggling = True
        try:
            yield
        finally:
            self._toggling = False

    def _live_toggled(self, change):
        if self._toggling:
            return
        if not change["new"]:
            self.stop_live()
            return
        from .live import usable

        call = self.session.last_call("stylize")
        if not usable(call):
            with self._quiet_toggle():
                self.live_toggle.value = False
            self.live_status.value = (
                '<small style="color:#b00020">Run %stylize --method adain --content IMAGE --style canvas first '
                "(or add --live to it); then live AdaIN follows your strokes.</small>"
            )
            return
        self.go_live(call)

    # -- drawing with the mouse, a pen or a finger -------------------------------------------------

    def _pointer_down(self, x, y):
        with self._lock:
            from ipycanvas import hold_canvas

            color, size, opacity, eraser = self.brush()
            self._current = Stroke(points=[(float(x), float(y))], color=color, size=size, opacity=opacity, eraser=eraser)
            canvas = self.drawing
            shown = css_color(BACKGROUND if eraser else color)
            with hold_canvas():
                canvas.global_alpha = opacity
                canvas.stroke_style = shown
                canvas.fill_style = shown
                canvas.line_width = size
                canvas.line_cap = "round"
                canvas.line_join = "round"
                canvas.fill_circle(x, y, size / 2)

    def _pointer_move(self, x, y):
        with self._lock:
            stroke = self._current
            if stroke is None:
                return
            x0, y0 = stroke.points[-1]
            if (float(x), float(y)) == (x0, y0):
                return
            stroke.points.append((float(x), float(y)))
            self.drawing.stroke_line(x0, y0, x, y)  # a quick preview; the PIL rendering replaces it

    def _pointer_up(self, x, y):
        with self._lock:
            stroke = self._current
            if stroke is None:
                return
            if x is not None and (float(x), float(y)) != stroke.points[-1]:
                stroke.points.append((float(x), float(y)))
            self._current = None
            self._add(stroke)
            self._say(f"{len(self.strokes)} stroke{'s' if len(self.strokes) != 1 else ''}.")

    def _show(self, *_):
        """Send the PIL rendering to the browser (RGBA: ipycanvas sends RGB as lossy JPEG)."""
        import numpy as np
        from ipycanvas import hold_canvas

        pixels = np.asarray(self.to_image().convert("RGBA"))
        with hold_canvas():
            self.drawing.global_alpha = 1.0
            self.drawing.clear()
            self.drawing.put_image_data(pixels, 0, 0)

    # -- loading -----------------------------------------------------------------------------------

    def _uploaded(self, change):
        from .. import media

        files = uploaded_files(change["new"])
        if not files:
            return
        name, data = files[-1]
        try:
            image = media.open_bytes(data, name, "canvas image")
            self._add(Loaded(fit(image, self._size), name))
            self._say(f"Loaded {name}.")
        except CreativeError as err:
            self._say(str(err), error=True)
        finally:
            clear_upload(self.upload)

    def _load_from_box(self):
        text = self.source.value.strip()
        if not text:
            self._say("Type a path, a URL, a variable name or last, then press load.", error=True)
            return
        try:
            self.load(text)
        except CreativeError as err:
            self._say(str(err), error=True)

    def _say(self, text, error=False):
        from html import escape

        color = "#b00020" if error else "inherit"
        self.status.value = f'<small style="color:{color}">{escape(text)}</small>'

    def close(self):
        self._closed = True
        if getattr(self, "live", None) is not None:  # (a canvas refused in __init__ has neither)
            self.live.stop()
        if getattr(self, "session", None) is not None:
            self.session.remove_image_source("canvas", self.to_image)
            self.session.remove_mask_source("canvas", self.to_mask)
        super().close()

    @property
    def closed(self):
        return self._closed


def _canvas_layout(size):
    """Shown at its own pixel size (not stretched to the output's width), narrower only where it must be,
    with a border, so a white canvas on a white page shows where to draw."""
    return widgets.Layout(width=f"{size[0]}px", max_width="100%", height="auto", border="1px solid #9e9e9e")


def check_size(width, height):
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, int) or not MIN_SIZE <= value <= MAX_SIZE:
            raise CreativeError(f"the canvas {name} must be a whole number from {MIN_SIZE} to {MAX_SIZE} pixels, not {value!r}")


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise CreativeError(f"{message}; usage: %creative canvas [--width W --height H]")


def parse_size_flags(words):
    """(width, height) from `%creative canvas` flags (None where not given)."""
    parser = _Parser(prog="%creative canvas", add_help=False)
    parser.add_argument("--width", type=int)
    parser.add_argument("--height", type=int)
    args = parser.parse_args(list(words))
    return args.width, args.height


def start_live(call):
    """Bind `call` (a %stylize --method adain call with canvas as an input) to the style canvas: its live
    toggle goes on and every stroke from now on runs it again. Returns the canvas."""
    canvas = open_canvas()
    canvas.go_live(call)
    return canvas


def stylize_live(content=None, style=None, **params):
    """creative_magics.stylize(..., live=True): one run now (returned), then one per stroke on the canvas."""
    from .. import api
    from .live import check

    params.pop("live", None)
    check(params.get("method"), content, style, params.get("recipe"))
    result = api.stylize(content, style, **params)
    start_live(current().last_call("stylize"))
    return result


_opened = None


def open_canvas(width=None, height=None):
    """The style canvas of this session: made on first use (512x512 unless sizes are given), the same
    one after; sizes that differ from its own resize it."""
    global _opened
    canvas = _opened
    if canvas is None or canvas.closed or canvas.session is not current():
        canvas = _opened = StyleCanvas(width or DEFAULT_SIZE, height or DEFAULT_SIZE)
    elif width is not None or height is not None:
        canvas.resize(width or canvas.size[0], height or canvas.size[1])
    return canvas
