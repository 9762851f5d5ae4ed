"""The gallery: `%creative gallery` / `creative_magics.gallery()`.

Every result of the kernel session (pictures, stories, music, and kinds added later) as a
thumbnail, newest last, growing as results are made. Click one (or its caption) to see it large with
its recipe, shown as the cell showed it, then load its parameters into the panel, make it what `last`
means, or save it. Thumbnails are small ipycanvas canvases: a plain image widget takes no clicks.
"""

import json
import os
import threading
from html import escape

import ipywidgets as widgets

from ..errors import CreativeError
from ..session import current
from ..views import OutputSurface
from .common import prepare_frontend

THUMB = 128
SNIPPET_CHARS = 140
DEFAULT_FOLDER = "creative_outputs"


def image_of(result):
    """The picture a result is known by (PIL): a sweep's labelled grid, else its first picture; or None."""
    from PIL import Image

    for name in ("sheet", "image", "images"):
        value = getattr(result, name, None)
        if isinstance(value, (list, tuple)):
            value = value[0] if value else None
        if isinstance(value, Image.Image):
            return value
    return None


def thumbnail(image, size=THUMB):
    """The image scaled to fit `size` x `size` (PIL RGB)."""
    thumb = image.convert("RGB").copy()
    thumb.thumbnail((size, size))
    return thumb


def thumbnail_png(image, size=THUMB):
    import io

    buffer = io.BytesIO()
    thumbnail(image, size).save(buffer, "PNG")
    return buffer.getvalue()


def waveform(samples, width=THUMB, height=48):
    """A small waveform picture of audio samples (channels x samples, or samples), drawn with PIL."""
    import numpy as np
    from PIL import Image, ImageDraw

    data = np.asarray(samples, dtype=np.float32)
    if data.ndim > 1:
        data = data.mean(axis=0)
    picture = Image.new("RGB", (width, height), (245, 245, 250))
    draw = ImageDraw.Draw(picture)
    middle = height / 2
    if data.size:
        peak = float(np.abs(data).max()) or 1.0
        for column, chunk in enumerate(np.array_split(data, width)):
            if chunk.size:
                low, high = float(chunk.min()) / peak, float(chunk.max()) / peak
                draw.line([(column, middle - high * (middle - 2)), (column, middle - low * (middle - 2))], fill=(60, 90, 200))
    return picture


def waveform_png(samples, width=THUMB, height=48):
    import io

    buffer = io.BytesIO()
    waveform(samples, width, height).save(buffer, "PNG")
    return buffer.getvalue()


def text_card(text, size=THUMB):
    """A snippet of text drawn on a small card (PIL), so a story has a thumbnail to click too."""
    import textwrap

    from PIL import Image, ImageDraw

    card = Image.new("RGB", (size, size), (250, 250, 245))
    draw = ImageDraw.Draw(card)
    lines = textwrap.wrap(text, width=max(8, size // 7))[: size // 12]
    draw.multiline_text((4, 3), "\n".join(lines), fill=(40, 40, 40), spacing=2)
    return card


def square(picture, size=THUMB, background=(245, 245, 245)):
    """`picture` centred on a `size` x `size` card, so every tile of the grid lines up."""
    from PIL import Image

    card = Image.new("RGB", (size, size), background)
    card.paste(picture.convert("RGB"), ((size - picture.width) // 2, (size - picture.height) // 2))
    return card


def face_of(result):
    """The picture a result's tile shows: its first image, its waveform, or a card with its text."""
    picture = image_of(result)
    if picture is not None:
        return thumbnail(picture)
    if getattr(result, "kind", None) == "midi" and getattr(result, "pieces", None):  # -- %%compose --midi: its piano roll
        import io

        from PIL import Image

        with Image.open(io.BytesIO(result.picture())) as roll:
            return thumbnail(roll)
    if getattr(result, "kind", None) == "audio" and getattr(result, "audio", None) is not None:
        return waveform(result.audio)
    return text_card(snippet(result))


def snippet(result):
    text = getattr(result, "text", None)
    if not isinstance(text, str):
        text = str(result)
    text = " ".join(text.split())
    return text[:SNIPPET_CHARS] + ("…" if len(text) > SNIPPET_CHARS else "")


def recipe_json(result):
    recipe = getattr(result, "recipe", None)
    if not isinstance(recipe, dict):
        return "(no recipe)"
    return json.dumps(recipe, indent=1, ensure_ascii=False, default=str)


def label_of(index, result):
    kind = getattr(result, "kind", None) or type(result).__name__
    seed = (getattr(result, "recipe", None) or {}).get("seed")
    return f"#{index + 1} {kind}" + (f" seed {seed}" if seed is not None else "")


class Gallery(widgets.VBox):
    """The session's results as tiles; `select(i)` shows one large, with its actions."""

    def __init__(self, session):
        prepare_frontend()
        self.session = session
        self.selected = None
        self._closed = False
        self._lock = threading.RLock()
        self._shown = []  # results with a tile, oldest first: the session's kept results
        self._tiles = {}  # id(result) -> its tile
        self._selected_number = None
        self.tiles = widgets.GridBox(
            [], layout=widgets.Layout(grid_template_columns=f"repeat(auto-fill, {THUMB + 16}px)", grid_gap="8px")
        )
        self.empty = widgets.HTML("<i>No results yet: run %%story, %%paint, %%stylize or %%compose and they appear here.</i>")
        self.title = widgets.HTML()
        self.large = widgets.Output()
        self.recipe = widgets.HTML()
        self.panel_button = widgets.Button(description="load into panel", disabled=True)
        self.last_button = widgets.Button(description="use as last", disabled=True)
        self.folder = widgets.Text(value=DEFAULT_FOLDER, description="folder", layout=widgets.Layout(width="300px"))
        self.save_button = widgets.Button(description="save", disabled=True)
        self.status = widgets.HTML()
        self.panel_button.on_click(lambda _: self._act(self.load_into_panel))
        self.last_button.on_click(lambda _: self._act(self.use_as_last))
        self.save_button.on_click(lambda _: self._act(self.save))
        self.detail = widgets.VBox(
            [
                self.title,
                self.large,
                widgets.HBox([self.panel_button, self.last_button, self.folder, self.save_button]),
                self.status,
                self.recipe,
            ]
        )
        super().__init__([self.empty, self.tiles, self.detail])
        self.add_class("creative-magics-gallery")
        self.refresh()
        session.add_listener(self._new_result)

    # -- tiles -----------------------------------------------------------------------------------

    def refresh(self):
        """Add tiles for results made since the last refresh, and drop those the session let go
        (`%config CreativeMagics.keep_results`)."""
        with self._lock:
            kept = list(self.session.results)
            kept_ids = {id(result) for result in kept}
            gone = [result for result in self._shown if id(result) not in kept_ids]
            fresh = [result for result in kept if id(result) not in self._tiles]
            if not gone and not fresh:
                return
            for result in gone:
                _close_tile(self._tiles.pop(id(result)))
            self._shown = [result for result in self._shown if id(result) in kept_ids]
            for result in fresh:
                self._tiles[id(result)] = self._tile(self.session.number_of(result), result)
                self._shown.append(result)
            self.tiles.children = tuple(self._tiles[id(result)] for result in self._shown)
            self.empty.layout.display = "none" if self._shown else None

    def _new_result(self, result):
        if not self._closed:
            self.refresh()

    def _tile(self, index, result):
        import numpy as np
        from ipycanvas import Canvas

        picture = face_of(result)
        face = Canvas(width=THUMB, height=THUMB, layout=widgets.Layout(width=f"{THUMB}px"))
        face.put_image_data(np.asarray(square(picture).convert("RGBA")), 0, 0)  # RGBA: ipycanvas sends RGB as lossy JPEG
        face.on_mouse_down(lambda x, y, index=index: self._clicked(index))
        face.add_class("creative-magics-thumbnail")
        button = widgets.Button(description=label_of(index, result), layout=widgets.Layout(width=f"{THUMB + 8}px"))
        button.on_click(lambda _, index=index: self._clicked(index))
        tile = widgets.VBox([face, button])
        tile.picture = picture  # what the thumbnail shows (the browser holds its pixels)
        return tile

    def _clicked(self, index):
        """A click on a tile: select it, or say in the status line why not."""
        try:
            self.select(index)
        except CreativeError as err:
            self.status.value = f'<small style="color:#b00020">{escape(str(err))}</small>'

    @property
    def results(self):
        return list(self._shown)

    # -- the selected result -------------------------------------------------------------------------

    def select(self, index):
        """Show result `index` (0 = the first of the session) large, with its recipe and actions."""
        self.refresh()
        by_number = {self.session.number_of(result): result for result in self._shown}
        if index not in by_number:
            first, last = (min(by_number), max(by_number)) if by_number else (0, -1)
            if 0 <= index < first:
                raise CreativeError(
                    f"result #{index + 1} was let go: the session keeps its last {len(by_number)} results "
                    "(%config CreativeMagics.keep_results)"
                )
            raise CreativeError(f"the gallery has results {first} to {last}, not {index}")
        result = by_number[index]
        self.selected, self._selected_number = result, index
        self.title.value = f"<b>{escape(label_of(index, result))}</b>"
        OutputSurface(self.large).show_object(result)
        self.recipe.value = f'<pre style="font-size:11px;max-height:240px;overflow:auto">{escape(recipe_json(result))}</pre>'
        recipe = getattr(result, "recipe", None)
        from .panel import TASKS

        self.panel_button.disabled = not (isinstance(recipe, dict) and recipe.get("task") in TASKS)
        self.last_button.disabled = False
        self.save_button.disabled = False
        self.status.value = ""
        return result

    def _act(self, action):
        try:
            said = action()
        except CreativeError as err:
            self.status.value = f'<small style="color:#b00020">{escape(str(err))}</small>'
            return
        self.status.value = f"<small>{escape(said)}</small>"

    def _chosen(self):
        if self.selected is None:
            raise CreativeError("select a result first")
        return self.selected

    def load_into_panel(self):
        """Put the selected result's parameters into the panel (opening it if needed)."""
        from .panel import open_panel

        result = self._chosen()
        loaded = open_panel().load_recipe(getattr(result, "recipe", None) or {})
        return f"The panel now holds its {', '.join(loaded) or 'defaults'} (%creative panel shows it)."

    def use_as_last(self):
        """Make the selected result what `last` means (until a new result is made)."""
        result = self._chosen()
        if self.session.number_of(result) is None:
            raise CreativeError("this result was let go (%config CreativeMagics.keep_results); run it again from its recipe")
        self.session.use_as_last(result)
        return f"`last` is now {label_of(self._selected_number, result)}."

    def save(self, folder=None):
        """Save the selected result into `folder`: PNGs with their recipes, WAV, or a text file; and the recipe as JSON."""
        result = self._chosen()
        folder = os.path.expanduser(folder or self.folder.value.strip() or DEFAULT_FOLDER)
        if os.path.exists(folder) and not os.path.isdir(folder):
            raise CreativeError(f"{folder!r} is a file; give a folder to save into")
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as err:
            raise CreativeError(f"cannot create the folder {folder!r}: {err}") from None
        index = self._selected_number + 1
        stem = os.path.join(folder, f"result-{index:03d}")
        paths = save_result(result, stem, folder)
        with open(stem + ".recipe.json", "w", encoding="utf-8") as f:
            f.write(recipe_json(result) + "\n")
        paths.append(stem + ".recipe.json")
        return "Saved " + ", ".join(paths) + "."

    def __repr__(self):
        counts = {}
        for result in self._shown:
            kind = getattr(result, "kind", None) or type(result).__name__
            counts[kind] = counts.get(kind, 0) + 1
        what = ", ".join(f"{n} {kind}" for kind, n in counts.items())
        return f"<creative_magics gallery: {len(self._shown)} result{'s' if len(self._shown) != 1 else ''}{': ' + what if what else ''}>"

    def close(self):
        self._closed = True
        self.session.remove_listener(self._new_result)
        super().close()

    @property
    def closed(self):
        return self._closed


def _close_tile(tile):
    """Close a tile and its widgets, so the widget registry lets go of their thumbnails too."""
    for child in tile.children:
        child.close()
    tile.close()


def save_result(result, stem, folder):
    """Write `result` in the form its kind calls for; returns the paths written."""
    kind = getattr(result, "kind", None)
    if kind == "image" and hasattr(result, "save"):
        return [str(path) for path in result.save(folder)]
    if kind == "audio" and hasattr(result, "save"):
        return [str(path) for path in result.save(stem + ".wav")]
    if kind == "midi" and hasattr(result, "save"):
        return [str(path) for path in result.save(stem + ".mid")]
    picture = image_of(result)
    if picture is not None:
        picture.save(stem + ".png")
        return [stem + ".png"]
    texts = getattr(result, "texts", None)
    text = "\n\n---\n\n".join(texts) if isinstance(texts, list) else getattr(result, "text", None)
    if not isinstance(text, str):
        text = str(result)
    prompt = getattr(result, "prompt", "") or ""
    with open(stem + ".txt", "w", encoding="utf-8") as f:
        f.write((prompt + "\n\n" if prompt else "") + text + "\n")
    return [stem + ".txt"]


_opened = None


def open_gallery():
    """The gallery of this session: made on first use, the same one after (with new results added)."""
    global _opened
    session = current()
    if _opened is None or _opened.closed or _opened.session is not session:
        _opened = Gallery(session)
    else:
        _opened.refresh()
    return _opened
