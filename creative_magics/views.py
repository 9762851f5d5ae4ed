"""How results appear while they are made and when they are done: in a notebook cell, in an Output widget
(the panel's), or in a terminal. All Markdown and HTML rendering of the live views is here.

A view draws on a *surface*. In a notebook the live part is one display updated in place; when done it
is emptied and the result shown as a new output, so tools that ignore display updates (nbval) see an
empty placeholder and the final output, never a partial one that depends on timing. Nothing is shown
before the first update, so a bad flag leaves no empty output. The panel's Output widget is a surface
too, so a "Run again" shows exactly what the cell showed.
"""

import html
import sys
import threading
import time

WAITING = "Waiting for the run in progress (the panel's) to finish..."
_EMPTY = {"text/plain": ""}


def rich_frontend():
    """True in a Jupyter kernel, where displays can be updated in place; False in a terminal."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


# -- surfaces --------------------------------------------------------------------------------


class NotebookSurface:
    """The cell's own output area: display ids for the live part, new outputs for the results."""

    rich = True

    def slot(self, empty=_EMPTY):
        from IPython.display import display

        handle = display(empty, raw=True, display_id=True)
        return lambda bundle: handle.update(bundle, raw=True)

    def show(self, bundle):
        from IPython.display import display

        display(bundle, raw=True)

    def say(self, text, stream="stdout"):
        print(text, file=sys.stderr if stream == "stderr" else sys.stdout)


class OutputSurface:
    """An ipywidgets Output widget (the panel's): its `outputs` list is set directly, from any thread,
    as a notebook would store the same outputs."""

    rich = True

    def __init__(self, output):
        self.output = output
        self.items = []
        self.lock = threading.Lock()
        self._push()

    def slot(self, empty=_EMPTY):
        with self.lock:
            index = len(self.items)
            self.items.append(_display_item(empty))
            self._push()

        def update(bundle):
            with self.lock:
                self.items[index] = _display_item(bundle)
                self._push()

        return update

    def show(self, bundle):
        with self.lock:
            self.items.append(_display_item(bundle))
            self._push()

    def show_object(self, obj):
        """`obj` as a notebook shows it when a cell ends with it (its rich reprs, through IPython's formatter)."""
        from IPython.core.interactiveshell import InteractiveShell

        data, _ = InteractiveShell.instance().display_formatter.format(obj)
        self.show(data)

    def say(self, text, stream="stdout"):
        with self.lock:
            last = self.items[-1] if self.items else None
            if last is not None and last.get("output_type") == "stream" and last.get("name") == stream:
                self.items[-1] = dict(last, text=last["text"] + text + "\n")
            else:
                self.items.append({"output_type": "stream", "name": stream, "text": text + "\n"})
            self._push()

    def text(self):
        """Everything shown as plain text (tests, status lines)."""
        parts = []
        for item in self.items:
            parts.append(item["text"] if item["output_type"] == "stream" else str(item["data"].get("text/plain", "")))
        return "".join(parts)

    def _push(self):
        self.output.outputs = tuple(self.items)


class TerminalSurface:
    """A terminal (IPython without a kernel, a script): plain text; the views draw tqdm bars on stderr."""

    rich = False

    def slot(self, empty=_EMPTY):
        return lambda bundle: None

    def show(self, bundle):
        print(bundle.get("text/plain", ""))

    def say(self, text, stream="stdout"):
        print(text, file=sys.stderr if stream == "stderr" else sys.stdout)


def _display_item(bundle):
    return {"output_type": "display_data", "data": jsonable(bundle), "metadata": {}}


_BINARY_TEXT = ("application/json",)


def jsonable(bundle):
    """A mime bundle with bytes turned into what a notebook stores: base64 for images, text for text."""
    import base64

    out = {}
    for mime, value in (bundle or {}).items():
        if isinstance(value, (bytes, bytearray, memoryview)):
            raw = bytes(value)
            value = raw.decode("utf-8", "replace") if mime.startswith("text/") or mime in _BINARY_TEXT else base64.b64encode(raw).decode("ascii")
        out[mime] = value
    return out


def default_surface():
    return NotebookSurface() if rich_frontend() else TerminalSurface()


class LiveView:
    """The part every view shares: a live slot made on the first update, emptied when done or failed."""

    EMPTY = {"text/plain": "", "text/html": ""}  # the live slot before and after: what nbval sees of it
    bar = None  # a tqdm bar, where there is no rich display (a terminal)

    def __init__(self, surface=None):
        self.surface = surface or default_surface()
        self.rich = self.surface.rich
        self._live = None

    def live(self, bundle):
        if self._live is None:
            self._live = self.surface.slot(self.EMPTY)
        self._live(bundle)

    def _close_bar(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def close(self):
        """Close the terminal bar and empty the live part (after the result is shown, or when the call failed)."""
        self._close_bar()
        if self._live is not None:
            self._live(self.EMPTY)
            self._live = None

    def waiting(self):
        self.surface.say(WAITING)

    def say(self, text, stream="stdout"):
        self.surface.say(text, stream)


# -- %%story ---------------------------------------------------------------------------------


def story_bundle(result):
    # A raw bundle: IPython's Markdown() would read a text that names a file ("." say) from disk.
    if getattr(result, "token_lists", None):  # --show-probs: the shaded tokens (HTML, no script)
        return {"text/html": result.html(), "text/plain": as_text(result)}
    return {"text/markdown": result.markdown(), "text/plain": as_text(result)}


class StoryView(LiveView):
    """Shows a story as it is written, then the finished Markdown; in a terminal, the text as it comes."""

    EMPTY = {"text/plain": "", "text/markdown": ""}

    def __init__(self, surface=None):
        super().__init__(surface)
        self.printed = None

    def callbacks(self):
        return {"on_text": self.update, "on_wait": self.waiting, "on_note": self.say}

    def update(self, result):
        if self.rich:
            self.live(story_bundle(result))
        elif len(result.texts) == 1:  # terminal: print what is new; several samples print when complete
            if self.printed is None:
                sys.stdout.write(result.shown_prompt)
                self.printed = ""
            text = result.texts[0]
            sys.stdout.write(text[len(self.printed) :] if text.startswith(self.printed) else "\n" + text)
            sys.stdout.flush()
            self.printed = text

    def finish(self, result):
        if self.rich:
            self.close()
            self.surface.show(story_bundle(result))
        elif len(result.texts) == 1:
            self.update(result)
            sys.stdout.write("\n(stopped)\n" if result.interrupted else "\n")
        else:
            print(as_text(result))


def as_text(result):
    parts = []
    for index, text in enumerate(result.texts):
        head = f"--- sample {index + 1} ---\n" if len(result.texts) > 1 else ""
        parts.append(head + result.shown_prompt + text)
    return "\n".join(parts) + ("\n(stopped)" if result.interrupted else "")


# -- %%paint and %stylize -------------------------------------------------------------------------

PAINT_UPDATE_INTERVAL_S = 0.1
PAINT_TERMINAL_BAR_DELAY_S = 0.5
MAX_GRID_WIDTH = 1024  # what results.ImageResult shows (media.grid's default)


def image_bundle(result):
    """The final display of an ImageResult: the grid as PNG (never compared by nbval) and a stable text."""
    import base64

    bundle = {"text/plain": repr(result)}
    png = result._repr_png_()
    if png is not None:
        bundle["image/png"] = base64.b64encode(png).decode("ascii")
    return bundle


class ImageView(LiveView):
    """Shows a painting as it is made: a tqdm progress line with the steps and, every few steps, a
    preview, shown at the size the result will have; then the finished grid. In a terminal: a tqdm
    bar on stderr, then the result's one-line text."""

    def __init__(self, label="paint", surface=None):
        super().__init__(surface)
        self.label = label
        self.postfix = None
        self.bar = None
        self.started = time.monotonic()
        self.last_step = 0
        self.preview_html = ""
        self.last_update = 0.0

    @property
    def wants_previews(self):
        return self.rich

    def callbacks(self):
        return {"on_step": self.step, "on_preview": self.preview if self.wants_previews else None, "on_wait": self.waiting, "on_note": self.say}

    def step(self, step, total, loss=None):
        now = time.monotonic()
        if loss is not None:  # %stylize reports its loss
            self.postfix = f"loss={loss:.3g}"
        if step < self.last_step:  # a retry (after freeing GPU memory) starts again
            self.started = now
            self._close_bar()
        self.last_step = step
        if not self.rich:
            if self.bar is None:
                if now - self.started < PAINT_TERMINAL_BAR_DELAY_S:
                    return  # like tqdm's `delay`: a quick run needs no bar
                from tqdm import tqdm

                self.bar = tqdm(total=total, desc=self.label, unit="step", leave=False, file=sys.stderr)
            self.bar.update(step - self.bar.n)
            if self.postfix:
                self.bar.set_postfix_str(self.postfix, refresh=False)
            return
        if step < total and now - self.last_update < PAINT_UPDATE_INTERVAL_S:
            return
        self._show(step, total, now)

    def preview(self, images, step, total):
        import base64

        from .media import grid, grid_size
        from .recipes import png_bytes

        sheet = grid(images, max_width=512)
        if sheet is None:
            return
        final = images[0].info.get("final_size") or images[0].size
        (shown, _), _ = grid_size(len(images), final, MAX_GRID_WIDTH)
        png = base64.b64encode(png_bytes(sheet)).decode("ascii")
        self.preview_html = f'<br><img src="data:image/png;base64,{png}" width="{shown}" style="image-rendering: auto">'
        self._show(step, total, time.monotonic())

    def _show(self, step, total, now):
        from tqdm import tqdm

        self.last_update = now
        line = tqdm.format_meter(step, total, now - (self.started or now), ncols=80, prefix=self.label, unit="step", postfix=self.postfix)
        self.live({"text/plain": line, "text/html": f"<pre style='margin:0'>{html.escape(line, quote=False)}</pre>{self.preview_html}"})

    def finish(self, result):
        self.close()
        for note in result.notes:
            self.say(note)
        if self.rich:
            self.surface.show(image_bundle(result))
        else:
            print(repr(result))
        for path in result.paths:
            self.say(f"saved {path}")


# -- %%finetune ------------------------------------------------------------------------------

FINETUNE_BAR_INTERVAL_S = 0.1


def loss_curve_png(losses, title="training loss"):
    """PNG bytes of the loss per step (matplotlib's Agg canvas directly: no pyplot, no figure left open)."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.5, 2.6), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.plot(range(1, len(losses) + 1), losses, color="#2b6cb0", linewidth=1.3)
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _png_bundle(losses, title):
    import base64

    png = base64.b64encode(loss_curve_png(losses, title)).decode("ascii")
    return {"image/png": png, "text/plain": f"<loss curve: {len(losses)} steps>"}


def loss_curve_svg(losses, max_steps=None, width=440, height=120):
    """The loss so far as a small SVG line: cheap enough to redraw with every step, so the live curve
    never lags the bar (the final curve is drawn by matplotlib)."""
    if len(losses) < 2:
        return ""
    steps = max(max_steps or 0, len(losses))
    low, high = min(losses), max(losses)
    spread = (high - low) or 1.0
    pad = 24
    points = " ".join(
        f"{pad + (width - pad - 4) * i / max(steps - 1, 1):.1f},{4 + (height - 20) * (high - loss) / spread:.1f}"
        for i, loss in enumerate(losses)
    )
    return (
        f'<svg width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg" style="font:10px sans-serif">'
        f'<rect x="{pad}" y="2" width="{width - pad - 2}" height="{height - 16}" fill="none" stroke="#ccc"/>'
        f'<polyline points="{points}" fill="none" stroke="#2b6cb0" stroke-width="1.5"/>'
        f'<text x="0" y="12">{high:.3g}</text><text x="0" y="{height - 16}">{low:.3g}</text>'
        f'<text x="{pad}" y="{height - 2}">step 1</text><text x="{width - 60}" y="{height - 2}">step {steps}</text></svg>'
    )


def finetune_bar(partial, ncols=90):
    """A tqdm progress line for a partial FinetuneResult."""
    from tqdm import tqdm

    postfix = f"loss={partial.losses[-1]:.3f}" if partial.losses else None
    return tqdm.format_meter(
        partial.steps, partial.max_steps or None, partial.elapsed_s, ncols=ncols, prefix=partial.name, unit="step", postfix=postfix
    )


class FinetuneView(LiveView):
    """Shows fine-tuning as it goes: one live display with the tqdm line and the loss curve so far (they
    are drawn together, so the curve keeps up with the bar); when done, the summary and the final curve.
    In a terminal: a tqdm bar on stderr, then the summary."""

    def __init__(self, surface=None):
        super().__init__(surface)
        self.bar = None
        self.last_bar = 0.0

    def callbacks(self):
        return {"on_progress": self.update, "on_wait": self.waiting}

    def update(self, partial):
        now = time.monotonic()
        if self.rich:
            last = partial.max_steps and partial.steps >= partial.max_steps
            if now - self.last_bar >= FINETUNE_BAR_INTERVAL_S or last:
                self.last_bar = now
                line = finetune_bar(partial)
                curve = loss_curve_svg(partial.losses, partial.max_steps)
                self.live({"text/plain": line, "text/html": f"<pre style='margin:0'>{html.escape(line, quote=False)}</pre>{curve}"})
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=partial.max_steps or None, desc=partial.name, unit="step", file=sys.stderr, leave=True)
        if partial.losses:
            self.bar.set_postfix(loss=f"{partial.losses[-1]:.3f}", refresh=False)
        self.bar.update(partial.steps - self.bar.n)

    def finish(self, result):
        self.close()
        if self.rich:
            self.surface.show({"text/markdown": result.markdown(), "text/plain": str(result)})
            if len(result.losses) >= 2:
                self.surface.show(_png_bundle(result.losses, f"training loss, {result.name}"))
        else:
            print(str(result))


# -- %%compose -------------------------------------------------------------------------------

COMPOSE_BAR_INTERVAL_S = 0.1
COMPOSE_BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s of audio [{elapsed}<{remaining}]"


def compose_bar(done, total, elapsed, ncols=90):
    """A tqdm progress line over the seconds of audio made so far."""
    from tqdm import tqdm

    return tqdm.format_meter(done, total, elapsed, ncols=ncols, prefix="composing", bar_format=COMPOSE_BAR_FORMAT)


class AudioView(LiveView):
    """Shows %%compose: a progress bar over the seconds of music made (audio, or notes with --midi), then
    the players and pictures (piano rolls and download links for MIDI). In a terminal: a tqdm bar on
    stderr, then the summary."""

    EMPTY = _EMPTY

    def __init__(self, surface=None):
        super().__init__(surface)
        self.bar = None
        self.started = self.last = None

    def callbacks(self):
        return {"on_progress": self.progress, "on_wait": self.waiting}

    def progress(self, done, total):
        now = time.monotonic()
        if self.rich:
            if self.started is None:
                self.started = now
                self.last = 0.0
            if now - self.last >= COMPOSE_BAR_INTERVAL_S or done >= total:
                self.last = now
                self.live({"text/plain": compose_bar(done, total, now - self.started)})
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc="composing", file=sys.stderr, leave=False, bar_format=COMPOSE_BAR_FORMAT)
        if done > self.bar.n:
            self.bar.update(done - self.bar.n)

    def finish(self, result):
        self.close()
        if self.rich:
            self.surface.show({"text/html": result.html(), "text/plain": repr(result)})
        else:
            head = f"{result.prompt}\n" if result.prompt else ""
            print(f"{head}{result.recipe.get('model')}, seed {result.recipe.get('seed')}: {result.summary()}")


VIEWS = {"story": StoryView, "paint": ImageView, "stylize": ImageView, "compose": AudioView, "finetune": FinetuneView}


def view_for(task, surface=None):
    """The view that shows `task`'s run on `surface` (the notebook, a terminal, or an Output widget)."""
    if task == "stylize":
        return ImageView(label="stylize", surface=surface)
    return VIEWS[task](surface=surface)


# -- --batch ---------------------------------------------------------------------------------


def batch_bundle(result):
    """The final display of a BatchResult: the pictures in one grid (PNG, not compared by nbval), and a stable
    text: the summary, then each story's text or each slot's one line."""
    import base64

    lines = [result.summary()]
    for index, slot in enumerate(result):
        if getattr(slot, "kind", None) == "failed":
            lines.append(f"[{index}] {slot.error}")
        elif getattr(slot, "text", None) is not None:
            shown = getattr(slot, "shown_prompt", "")  # a continuation goes on from the prompt; a chat model's reply follows it
            lines.append(f"[{index}] {shown}{slot.text}" if shown else f"[{index}] {slot.recipe.get('prompt') or ''}\n    {slot.text.strip()}")
    bundle = {"text/plain": "\n".join(lines)}
    png = result._repr_png_()
    if png is not None:
        bundle["image/png"] = base64.b64encode(png).decode("ascii")
    return bundle


class BatchView(LiveView):
    """Shows a batch as it goes: one tqdm line over its items (throughput, ETA), then every result at once."""

    def __init__(self, task="paint", surface=None):
        super().__init__(surface)
        self.label = f"{task} batch"
        self.bar = None

    def callbacks(self):
        return {"on_progress": self.progress}

    def progress(self, done, total, elapsed):
        from tqdm import tqdm

        if not self.rich:
            if self.bar is None:
                self.bar = tqdm(total=total, desc=self.label, unit="item", leave=False, file=sys.stderr)
            self.bar.update(done - self.bar.n)
            return
        line = tqdm.format_meter(done, total, elapsed, ncols=80, prefix=self.label, unit="item")
        self.live({"text/plain": line, "text/html": f"<pre style='margin:0'>{html.escape(line, quote=False)}</pre>"})

    def finish(self, result):
        self.close()
        if self.rich:
            self.surface.show(batch_bundle(result))
        else:
            print(batch_bundle(result)["text/plain"])


# -- %creative similar ---------------------------------------------------------------------------

SIMILAR_THUMBNAIL = 128


def similar_bundle(ranked):
    """The ranked items as one strip: a thumbnail (images) or the start of the text, each with its score."""
    import base64
    import io
    import os

    from .results import escape_html

    cells, lines = [], []
    for score, item in ranked:
        label = os.path.basename(item) if isinstance(item, str) else repr(item)
        image = _first_image(item)
        if image is not None:
            thumb = image.copy()
            thumb.thumbnail((SIMILAR_THUMBNAIL, SIMILAR_THUMBNAIL))
            buffer = io.BytesIO()
            thumb.save(buffer, format="PNG")
            body = f'<img src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode("ascii")}" alt="{escape_html(label)}">'
        else:
            text = _text_of(item)
            body = f'<div style="width: {SIMILAR_THUMBNAIL}px; font-size: smaller">{escape_html(text[:160])}{"..." if len(text) > 160 else ""}</div>'
        cells.append(
            f'<figure style="display: inline-block; margin: 4px; vertical-align: top" title="{escape_html(label)}">{body}'
            f'<figcaption style="text-align: center">{score:.3f}</figcaption></figure>'
        )
        lines.append(f"{score:.3f}  {label}")
    return {"text/html": '<div style="white-space: nowrap; overflow-x: auto">' + "".join(cells) + "</div>", "text/plain": "\n".join(lines)}


def _first_image(item):
    if isinstance(item, str):
        if item.lower().endswith(".txt"):
            return None
        from PIL import Image

        with Image.open(item) as image:
            return image.convert("RGB")
    images = getattr(item, "images", None)
    return images[0] if images else None


def _text_of(item):
    if isinstance(item, str):
        with open(item, encoding="utf-8", errors="replace") as source:
            return source.read()
    return getattr(item, "text", "") or ""
