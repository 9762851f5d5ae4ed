"""Images in and out: open an image from a path, a URL or an object, grids, and saving PNGs.

Notebook references (a variable name, `last`, `canvas`) are resolved above, in refs.py; here an IMAGE is
a path, an http(s) URL, or an object (PIL image, numpy array, something with `.image` or
`.to_image()`). Every way it can fail is one CreativeError line. PIL and numpy are imported inside.
"""

import hashlib
import io
import os
import re
import threading
import time
from pathlib import Path

from ._version import __version__
from .errors import CreativeError, first_line
from .limits import MAX_FILE_BYTES, MAX_PIXELS, URL_TIMEOUT_S
from .recipes import RECIPE_KEY, png_bytes


# -- resolving an IMAGE argument ----------------------------------------------------------


def open_image(ref, what="image"):
    """(PIL RGB image, label) for a path, an http(s) URL or an image-like object. `label` says where it
    came from as the user would type it again (a path or URL), or None for an object."""
    if isinstance(ref, (str, Path)):
        text = str(ref).strip()
        if not text:
            raise CreativeError(f"the {what} is empty: give a file, a URL, a variable name, `last` or `canvas`")
        return open_path_or_url(text, what), text
    return to_rgb(ref, what), None


def open_path_or_url(text, what="image"):
    if re.match(r"^https?://", text, re.IGNORECASE):
        return open_bytes(fetch_url(text), text, what)
    if re.match(r"^[a-z][a-z0-9+.-]*://", text, re.IGNORECASE):
        raise CreativeError(f"{text!r}: only http:// and https:// URLs are fetched")
    return open_file(text, what)


def open_file(path, what="image"):
    expanded = os.path.expanduser(path)
    if not os.path.exists(expanded):
        raise CreativeError(f"no file {path!r} (looked in {os.getcwd()}); give a file, a URL or a variable holding an image")
    if os.path.isdir(expanded):
        raise CreativeError(f"{path!r} is a folder, not an image file")
    size = os.path.getsize(expanded)
    if size > MAX_FILE_BYTES:
        raise CreativeError(f"{path!r} is {size / 2**20:.0f} MB; images up to {MAX_FILE_BYTES // 2**20} MB are read")
    with open(expanded, "rb") as f:
        return open_bytes(f.read(), path, what)


def open_bytes(data, label, what="image"):
    """Decode image bytes; the size is checked from the header before the pixels are decoded."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise CreativeError(f"{label!r} is not an image (PNG, JPEG, WebP, ... that PIL can read)") from None
    except Image.DecompressionBombError:
        raise CreativeError(f"{label!r} is too large; images up to {MAX_PIXELS:,} pixels are read") from None
    _check_pixels(image.size, label)
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as err:
        raise CreativeError(f"{label!r} is a damaged image: {first_line(err)}") from None
    return to_rgb(image, what, name=label)


def _check_pixels(size, label):
    width, height = size
    if width * height > MAX_PIXELS:
        raise CreativeError(
            f"{label!r} is {width}x{height}; images up to {MAX_PIXELS:,} pixels are read (4096x4096): make it smaller"
        )
    if width < 1 or height < 1:
        raise CreativeError(f"{label!r} is an empty image ({width}x{height})")


def to_rgb(obj, what="image", name=None):
    """A PIL RGB image from a PIL image, a numpy array (HxW, HxWx3/4; uint8 or floats in [0, 1]),
    or an object with `.image` (a result) or `.to_image()` (the canvas). Transparency becomes white."""
    from PIL import Image

    label = name or type(obj).__name__
    if hasattr(obj, "to_image") and not isinstance(obj, Image.Image):
        obj = obj.to_image()
    elif hasattr(obj, "image") and not isinstance(obj, Image.Image) and not hasattr(obj, "__array__"):
        obj = obj.image
        if obj is None:
            raise CreativeError(f"{label!r} holds no image (it was stopped before the first one)")
    if not isinstance(obj, Image.Image) and hasattr(obj, "__array__"):
        obj = _from_array(obj, label)
    if not isinstance(obj, Image.Image):
        kind = type(obj).__name__
        raise CreativeError(
            f"{label!r} is a {kind}, not an image: give a PIL image, a numpy array, a result with .image, a file or a URL"
        )
    _check_pixels(obj.size, label)
    if obj.mode == "RGB":
        return obj
    if obj.mode in ("RGBA", "LA", "PA") or (obj.mode == "P" and "transparency" in obj.info):
        rgba = obj.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return obj.convert("RGB")


def _from_array(value, label):
    import numpy as np
    from PIL import Image

    array = np.asarray(value)
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4) and min(array.shape[1:]) > 4:
        array = np.moveaxis(array, 0, -1)  # channels first (a torch-style CHW array)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise CreativeError(f"{label!r} is an array of shape {array.shape}; an image is HxW, HxWx3 or HxWx4")
    _check_pixels((array.shape[1], array.shape[0]), label)
    if array.dtype != np.uint8:
        if array.dtype == bool:
            array = array.astype(np.uint8) * 255
        elif np.issubdtype(array.dtype, np.number):
            array = array.astype(np.float64)
            if not np.isfinite(array).all():
                raise CreativeError(f"{label!r} has NaN or infinite values; an image needs finite numbers")
            scale = 255.0 if array.size and array.max() <= 1.0 else 1.0
            array = np.clip(np.rint(array * scale), 0, 255).astype(np.uint8)
        else:
            raise CreativeError(f"{label!r} is an array of {array.dtype}, not of numbers")
    return Image.fromarray(array)


def fetch_url(url, timeout=None, max_bytes=None):
    """The bytes at an http(s) URL: a timeout (name lookup included), a size cap and a content-type check."""
    timeout = URL_TIMEOUT_S if timeout is None else timeout
    max_bytes = MAX_FILE_BYTES if max_bytes is None else max_bytes
    outcome = {}

    def work():
        try:
            outcome["data"] = _download(url, timeout, max_bytes)
        except Exception as err:  # handed to the caller's thread
            outcome["error"] = err

    # Name lookup ignores socket timeouts, so the download runs in a thread we stop waiting for.
    worker = threading.Thread(target=work, name="creative-magics-fetch", daemon=True)
    worker.start()
    worker.join(timeout + 1.0)
    if worker.is_alive() or not outcome:
        raise CreativeError(f"{url} did not answer within {timeout:.0f} s; check the address or download the image")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["data"]


def _download(url, timeout, max_bytes):
    import socket
    import urllib.error
    import urllib.request

    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(),
        urllib.request.HTTPRedirectHandler(),
        urllib.request.HTTPErrorProcessor(),
        urllib.request.HTTPDefaultErrorHandler(),
    ):
        opener.add_handler(handler)
    request = urllib.request.Request(url, headers={"User-Agent": f"creative_magics/{__version__}", "Accept": "image/*"})
    deadline = time.monotonic() + timeout
    try:
        with opener.open(request, timeout=timeout) as response:
            kind = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if kind and not kind.startswith("image/") and kind != "application/octet-stream":
                raise CreativeError(f"{url} is {kind}, not an image")
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise CreativeError(f"{url} is {int(length) / 2**20:.0f} MB; images up to {max_bytes // 2**20} MB are fetched")
            chunks, size = [], 0
            while True:
                chunk = response.read(64 * 1024)
                if not chunk:
                    break
                size += len(chunk)
                if size > max_bytes:
                    raise CreativeError(f"{url} is larger than {max_bytes // 2**20} MB; images up to that size are fetched")
                if time.monotonic() > deadline:
                    raise CreativeError(f"{url} did not finish within {timeout:.0f} s; download the image and give the file")
                chunks.append(chunk)
    except urllib.error.HTTPError as err:
        raise CreativeError(f"could not fetch {url}: HTTP {err.code} {err.reason}") from None
    except urllib.error.URLError as err:
        reason = err.reason if not isinstance(err.reason, socket.timeout) else f"no answer within {timeout:.0f} s"
        raise CreativeError(f"could not reach {url}: {reason}") from None
    except (socket.timeout, TimeoutError):
        raise CreativeError(f"{url} did not answer within {timeout:.0f} s; check the address or download the image") from None
    except (OSError, ValueError) as err:
        raise CreativeError(f"could not fetch {url}: {first_line(err)}") from None
    return b"".join(chunks)


def image_hash(image):
    """A short fingerprint of an image's pixels, to tell whether a recipe's init image is the same one."""
    digest = hashlib.sha256(f"{image.mode} {image.size}".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()[:12]


# -- showing and saving -------------------------------------------------------------------


def grid_size(count, tile, max_width=1024, gap=4, columns=None):
    """(width, height) of the grid of `count` images of size `tile`, and of each tile in it: ((w, h), (tw, th))."""
    if count <= 1:
        return tuple(tile), tuple(tile)
    columns = columns or min(4, count)
    rows = -(-count // columns)
    scale = min(1.0, (max_width - gap * (columns - 1)) / (tile[0] * columns))
    tw, th = max(1, int(tile[0] * scale)), max(1, int(tile[1] * scale))
    return (columns * tw + gap * (columns - 1), rows * th + gap * (rows - 1)), (tw, th)


def grid(images, columns=None, max_width=1024, gap=4):
    """The images side by side (up to 4 a row), scaled down so the grid is at most `max_width` wide."""
    from PIL import Image

    if not images:
        return None
    if len(images) == 1:
        return images[0]
    columns = columns or min(4, len(images))
    tile = (max(im.width for im in images), max(im.height for im in images))
    size, (tw, th) = grid_size(len(images), tile, max_width, gap, columns)
    sheet = Image.new("RGB", size, (255, 255, 255))
    for index, image in enumerate(images):
        piece = image if image.size == (tw, th) else image.resize((tw, th), Image.Resampling.LANCZOS)
        sheet.paste(piece, ((index % columns) * (tw + gap), (index // columns) * (th + gap)))
    if images[0].info.get(RECIPE_KEY):
        sheet.info[RECIPE_KEY] = images[0].info[RECIPE_KEY]  # as A1111 does for its grids
    return sheet


_COUNTER = re.compile(r"^(\d{5})-")


def save_images(images, folder, seeds=()):
    """Write each image as `NNNNN-SEED.png` (A1111's naming; the counter continues the folder's) with its recipe."""
    folder = Path(os.path.expanduser(str(folder)))
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CreativeError(f"cannot create the folder {str(folder)!r}: {first_line(err)}") from None
    used = [int(m.group(1)) for m in (_COUNTER.match(p.name) for p in folder.iterdir()) if m]
    counter = max(used, default=-1) + 1
    paths = []
    for index, image in enumerate(images):
        seed = seeds[index] if index < len(seeds) else "image"
        path = folder / f"{counter + index:05d}-{seed}.png"
        try:
            with open(path, "wb") as f:
                f.write(png_bytes(image, compress_level=6))
        except OSError as err:
            raise CreativeError(f"cannot write {str(path)!r}: {first_line(err)}") from None
        paths.append(path)
    return paths


def check_folder(folder):
    """A --save folder that cannot be written is refused before any work."""
    path = os.path.expanduser(str(folder))
    if os.path.exists(path) and not os.path.isdir(path):
        raise CreativeError(f"--save needs a folder; {str(folder)!r} is a file")



# -- %%paint --sweep: one grid with the values written on its axes ----------------------------------------

SHEET_MAX_WIDTH = 2048  # wider sheets are scaled down; the images themselves keep their size
_LABEL_COLOR, _BLANK = (20, 20, 20), (225, 225, 225)


def _font(size):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1 with FreeType
    except (TypeError, OSError):
        return ImageFont.load_default()


def labelled_grid(images, x_labels, y_labels=("",), z_labels=("",), max_width=SHEET_MAX_WIDTH):
    """The pictures of a sweep as A1111's X/Y/Z plot draws them: X across, Y down, one X/Y grid per Z value
    side by side, each column headed and each row labelled with its value. `images` is in reading order
    (X fastest); a None (a cell not painted, after Ctrl-C) is a grey tile."""
    from PIL import Image, ImageDraw

    x_labels, y_labels, z_labels = list(x_labels), list(y_labels) or [""], list(z_labels) or [""]
    shown = [im for im in images if im is not None]
    if not shown:
        return None
    tile = (max(im.width for im in shown), max(im.height for im in shown))
    columns, rows, blocks = len(x_labels), len(y_labels), len(z_labels)
    gap = max(4, tile[0] // 32)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    font_size = max(12, min(48, tile[1] // 10))
    font = _font(font_size)
    text_width = lambda text: measure.textbbox((0, 0), text, font=font)[2] if text else 0
    too_wide = lambda: max(map(text_width, x_labels)) > tile[0] or max(map(text_width, z_labels)) > columns * tile[0]
    while font_size > 8 and too_wide():
        font_size -= 1  # a column's heading fits above its column, a Z value's above its grid
        font = _font(font_size)
    left = max(text_width(label) for label in y_labels) + 2 * gap if any(y_labels) else 0
    line = font_size + font_size // 2
    top = line * (1 + bool(any(z_labels))) + gap
    block_width = left + columns * tile[0] + (columns - 1) * gap
    width = blocks * block_width + (blocks - 1) * 3 * gap
    height = top + rows * tile[1] + (rows - 1) * gap
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for index in range(columns * rows * blocks):
        x, y, z = index % columns, (index // columns) % rows, index // (columns * rows)
        origin = z * (block_width + 3 * gap)
        cell = images[index] if index < len(images) else None
        box = (origin + left + x * (tile[0] + gap), top + y * (tile[1] + gap))
        if cell is None:
            draw.rectangle([box, (box[0] + tile[0] - 1, box[1] + tile[1] - 1)], fill=_BLANK)
        else:
            sheet.paste(cell.convert("RGB"), box)
    for z, z_label in enumerate(z_labels):
        origin = z * (block_width + 3 * gap)
        if z_label:
            draw.text((origin + block_width / 2, line / 2), z_label, fill=_LABEL_COLOR, font=font, anchor="mm")
        for x, label in enumerate(x_labels):
            centre = origin + left + x * (tile[0] + gap) + tile[0] / 2
            draw.text((centre, top - gap - line / 2), label, fill=_LABEL_COLOR, font=font, anchor="mm")
        for y, label in enumerate(y_labels):
            draw.text((origin + gap, top + y * (tile[1] + gap) + tile[1] / 2), label, fill=_LABEL_COLOR, font=font, anchor="lm")
    if width > max_width:
        sheet = sheet.resize((max_width, max(1, round(height * max_width / width))), Image.Resampling.LANCZOS)
    return sheet
