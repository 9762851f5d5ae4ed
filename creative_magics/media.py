"""Images in and out: resolve an IMAGE argument, write and read the recipe PNG text chunk, grids, saving.

An IMAGE is a file path, an http(s) URL, a variable name (PIL image, numpy array, or an object with
`.image` or `.to_image()`), `last` (the latest image result) or `canvas` (the style canvas). Every
way it can fail is one CreativeError line. PIL and numpy are imported inside the functions.

Recipes travel inside PNGs as a `parameters` tEXt chunk in the AUTOMATIC1111 web UI format, so
existing PNG-info readers show them and `read_recipe` reads theirs:

    a lighthouse at dusk
    Negative prompt: blurry
    Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, Model: sd15
"""

import hashlib
import io
import json
import os
import re
import threading
import time
from pathlib import Path

from .errors import CreativeError

MAX_PIXELS = 4096 * 4096  # an input image larger than this is refused (16.8 megapixels)
MAX_FILE_BYTES = 50 * 2**20  # files and downloads larger than this are refused
URL_TIMEOUT_S = 15.0  # a URL must answer, and finish, within this
RECIPE_KEY = "parameters"  # the PNG text chunk AUTOMATIC1111 writes and reads
JSON_KEY = "creative_magics"  # our full recipe as JSON, for tasks the A1111 format cannot hold (stylize)

# our scheduler name <-> the AUTOMATIC1111 sampler name
SAMPLER_NAMES = {"euler": "Euler", "euler_a": "Euler a", "dpm++": "DPM++ 2M", "ddim": "DDIM", "lcm": "LCM"}
_SCHEDULER_OF_SAMPLER = {v.lower(): k for k, v in SAMPLER_NAMES.items()}
_SCHEDULER_OF_SAMPLER.update({"dpm++ 2m karras": "dpm++", "euler ancestral": "euler_a"})  # older web UI names


# -- resolving an IMAGE argument ----------------------------------------------------------


def resolve_image(ref, namespace=None, *, what="image"):
    """(PIL RGB image, label) for an IMAGE argument. `label` says where it came from, as the user
    would type it again (a path, URL, variable name, `last`, `canvas`), or None for an object."""
    if isinstance(ref, (str, Path)):
        text = str(ref).strip()
        if not text:
            raise CreativeError(f"the {what} is empty: give a file, a URL, a variable name, `last` or `canvas`")
        return _from_name(text, namespace, what), text
    return to_rgb(ref, what), None


def _from_name(text, namespace, what):
    if text == "last":
        return _last_image(what)
    if text == "canvas":
        return _canvas_image(what)
    if text.isidentifier() and not os.path.exists(text):
        namespace = _user_namespace() if namespace is None else namespace
        if text not in namespace:
            raise CreativeError(f"no variable or file named {text!r}; give a file, a URL, a variable holding an image, `last` or `canvas`")
        value = namespace[text]
        if isinstance(value, (str, Path)):  # a variable holding a path or URL
            return _path_or_url(str(value).strip(), what)
        return to_rgb(value, what, name=text)
    return _path_or_url(text, what)


def _path_or_url(text, what):
    if re.match(r"^https?://", text, re.IGNORECASE):
        return open_bytes(fetch_url(text), text, what)
    if re.match(r"^[a-z][a-z0-9+.-]*://", text, re.IGNORECASE):
        raise CreativeError(f"{text!r}: only http:// and https:// URLs are fetched")
    return open_file(text, what)


def _user_namespace():
    try:
        from IPython import get_ipython
    except ImportError:
        return {}
    shell = get_ipython()
    return shell.user_ns if shell is not None else {}


def _last_image(what):
    from .session import current

    result = current().last("image")
    if result is None or getattr(result, "image", None) is None:
        raise CreativeError(f"no image made yet in this session, so `last` has nothing to give as the {what}")
    return to_rgb(result.image, what, name="last")


def _canvas_image(what):
    from .session import current

    return to_rgb(current().canvas_image(), what, name="canvas")


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
        raise CreativeError(f"{label!r} is a damaged image: {_first_line(err)}") from None
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

    from . import __version__

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
        raise CreativeError(f"could not fetch {url}: {_first_line(err)}") from None
    return b"".join(chunks)


def image_hash(image):
    """A short fingerprint of an image's pixels, to tell whether a recipe's init image is the same one."""
    digest = hashlib.sha256(f"{image.mode} {image.size}".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()[:12]


# -- recipes in PNGs ----------------------------------------------------------------------


def _make_recipe_image_class():
    from PIL import Image

    class RecipeImage(Image.Image):
        """A PIL image that writes its recipe (`info["parameters"]`) into every PNG it is saved as,
        including the PNG a notebook shows, so "save image as" keeps the recipe too."""

        def save(self, fp, format=None, **params):
            text = self.info.get(RECIPE_KEY)
            if text and "pnginfo" not in params and _is_png(fp, format):
                params["pnginfo"] = _png_info(text, self.info.get(JSON_KEY))
            return super().save(fp, format, **params)

        def __reduce__(self):  # pickles as a plain image with its info
            return (_rebuild, (self.mode, self.size, self.tobytes(), dict(self.info)))

    RecipeImage.__module__ = __name__
    RecipeImage.__qualname__ = "RecipeImage"
    return RecipeImage


_recipe_image_class = None


def _rebuild(mode, size, data, info):
    from PIL import Image

    image = Image.frombytes(mode, size, data)
    image.info.update(info)
    return with_recipe_text(image, info.get(RECIPE_KEY, ""))


def with_recipe_text(image, text, recipe=None):
    """Attach `text` as the image's `parameters` (A1111 format) and make it write the chunk when saved as PNG.
    With `recipe`, the whole recipe also travels as JSON in a `creative_magics` chunk."""
    global _recipe_image_class
    from PIL import Image

    if _recipe_image_class is None:
        _recipe_image_class = _make_recipe_image_class()
    if type(image) is not Image.Image and type(image) is not _recipe_image_class:
        image = image.copy()  # a file-backed image (PngImageFile, ...) becomes a plain one
    if type(image) is Image.Image:
        image.__class__ = _recipe_image_class  # same object layout; only `save` differs
    image.info[RECIPE_KEY] = text
    if recipe is not None:
        image.info[JSON_KEY] = json.dumps(recipe, ensure_ascii=False, default=str)
    return image


def _is_png(fp, format):
    if format:
        return format.upper() == "PNG"
    name = fp if isinstance(fp, (str, os.PathLike)) else getattr(fp, "name", "")
    return str(name).lower().endswith(".png")


def _png_info(text, recipe_json=None):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    if text.isascii():
        info.add_text(RECIPE_KEY, text)
    else:
        info.add_itxt(RECIPE_KEY, text)  # UTF-8 prompts: the international text chunk
    if recipe_json:
        info.add_itxt(JSON_KEY, recipe_json)
    return info


def png_bytes(image, compress_level=1):
    """The image as PNG bytes, with its recipe chunk when it has one."""
    from PIL import Image

    buffer = io.BytesIO()
    params = {"compress_level": compress_level}
    text = image.info.get(RECIPE_KEY)
    if text:
        params["pnginfo"] = _png_info(text, image.info.get(JSON_KEY))
    Image.Image.save(image, buffer, "PNG", **params)
    return buffer.getvalue()


def _number(value):
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def _quote(value):
    """A1111's quoting: values with commas, colons or newlines become JSON strings."""
    text = str(value)
    if "," not in text and "\n" not in text and ":" not in text and not text.startswith('"'):
        return text
    return json.dumps(text, ensure_ascii=False)


def recipe_text(recipe, batch_pos=None, sampler=None):
    """The A1111 `parameters` text for a paint recipe, for image `batch_pos` of its batch (seed + batch_pos).

    `sampler` names the model's own scheduler in A1111's Sampler field when it is none of ours."""
    from . import __version__
    from .seeds import MAX_SEED

    params = recipe.get("params", {})
    seed = recipe.get("seed")
    n = params.get("n", 1) or 1
    if batch_pos is None:
        batch_pos = params.get("batch_pos")
    elif seed is not None:
        seed = (seed + batch_pos) % (MAX_SEED + 1)
    scheduler = params.get("scheduler") or "default"
    sampler = SAMPLER_NAMES.get(scheduler) or sampler or scheduler
    fields = [
        ("Steps", params.get("steps")),
        ("Sampler", sampler),
        ("CFG scale", params.get("guidance")),
        ("Seed", seed),
        ("Size", f"{params.get('width')}x{params.get('height')}" if params.get("width") else None),
        ("Model", recipe.get("model")),
    ]
    if params.get("init") is not None or recipe.get("init_hash"):
        fields += [
            ("Denoising strength", params.get("strength")),
            ("Init image", params.get("init") or "(an image object)"),
            ("Init hash", recipe.get("init_hash")),
        ]
    if n > 1:
        fields += [("Batch size", n), ("Batch pos", batch_pos or 0)]
    fields += [("Scheduler", scheduler), ("Creative magics", __version__)]
    if recipe.get("interrupted"):
        fields.append(("Stopped at step", recipe.get("stopped_at_step")))
    line = ", ".join(f"{key}: {_quote(_number(value))}" for key, value in fields if value is not None)
    lines = [recipe.get("prompt") or ""]
    if params.get("negative"):
        lines.append(f"Negative prompt: {params['negative']}")
    lines.append(line)
    return "\n".join(lines)


_PARAM = re.compile(r'\s*(\w[\w \-/+]*):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')


def parse_parameters(text):
    """(prompt, negative prompt, {key: value}) from an A1111 `parameters` text, as the web UI parses it."""
    *lines, last = text.strip("\n").split("\n")
    if len(_PARAM.findall(last)) < 3:  # no settings line: it was all prompt
        lines.append(last)
        last = ""
    prompt, negative, in_negative = [], [], False
    for line in lines:
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:") :].strip()
        (negative if in_negative else prompt).append(line)
    fields = {}
    for key, value in _PARAM.findall(last):
        value = value.strip()
        if len(value) > 1 and value[0] == '"' and value[-1] == '"':
            try:
                value = json.loads(value)
            except ValueError:
                pass
        fields[key.strip()] = value
    return "\n".join(prompt), "\n".join(negative), fields


def read_recipe(path_or_image):
    """The recipe in a PNG's `parameters` chunk (ours or AUTOMATIC1111's), as the dict `paint(recipe=...)` re-runs.
    Recipes of other tasks (stylize) come back whole from their JSON chunk."""
    chunks, label = _text_chunks(path_or_image)
    whole = chunks.get(JSON_KEY)
    if whole:
        try:
            recipe = json.loads(whole)
        except ValueError:
            raise CreativeError(f"{label!r} carries a damaged creative_magics recipe") from None
        if isinstance(recipe, dict) and recipe.get("task") != "paint":
            return recipe
    text = _parameters_text(path_or_image)
    prompt, negative, fields = parse_parameters(text)
    taken = set()

    def take(key, convert=str):
        if key not in fields:
            return None
        taken.add(key)
        try:
            return convert(fields[key])
        except ValueError:
            raise CreativeError(f"the recipe's {key!r} value {fields[key]!r} is not readable") from None

    params = {"negative": negative or None}
    params["steps"] = take("Steps", int)
    params["guidance"] = take("CFG scale", float)
    size = take("Size")
    if size:
        match = re.match(r"^\s*(\d+)\s*x\s*(\d+)\s*$", size)
        if not match:
            raise CreativeError(f"the recipe's Size {size!r} is not WIDTHxHEIGHT")
        params["width"], params["height"] = int(match.group(1)), int(match.group(2))
    scheduler = take("Scheduler")
    sampler = take("Sampler")
    if scheduler is None and sampler is not None:
        scheduler = _SCHEDULER_OF_SAMPLER.get(sampler.lower())
        if scheduler is None:
            taken.discard("Sampler")  # an A1111 sampler we do not have: kept under "extra"
    params["scheduler"] = None if scheduler == "default" else scheduler
    params["strength"] = take("Denoising strength", float)
    params["init"] = take("Init image")
    if params["init"] == "(an image object)":
        params["init"] = None
    batch = take("Batch size", int)
    if batch and batch > 1:
        params["n"] = batch
        params["batch_pos"] = take("Batch pos", int) or 0
    recipe = {
        "task": "paint",
        "model": take("Model"),
        "seed": take("Seed", int),
        "prompt": prompt,
        "params": {k: v for k, v in params.items() if v is not None},
    }
    init_hash = take("Init hash")
    if init_hash:
        recipe["init_hash"] = init_hash
    take("Creative magics")
    extra = {k: v for k, v in fields.items() if k not in taken}
    if extra:
        recipe["extra"] = extra
    return recipe


def _text_chunks(path_or_image):
    """The PNG text chunks of a file, an image or a result's image: ({key: text}, label)."""
    from PIL import Image

    if isinstance(path_or_image, (str, Path)):
        path = os.path.expanduser(str(path_or_image))
        if not os.path.isfile(path):
            raise CreativeError(f"no file {str(path_or_image)!r} to read a recipe from")
        if os.path.getsize(path) > MAX_FILE_BYTES:
            raise CreativeError(f"{str(path_or_image)!r} is larger than {MAX_FILE_BYTES // 2**20} MB")
        try:
            with Image.open(path) as image:
                chunks = {**dict(image.info), **dict(getattr(image, "text", {}) or {})}
        except (OSError, SyntaxError, ValueError):
            raise CreativeError(f"{str(path_or_image)!r} is not an image with a recipe") from None
        label = str(path_or_image)
    elif isinstance(path_or_image, Image.Image):
        chunks, label = dict(path_or_image.info), "this image"
    elif hasattr(path_or_image, "image") and path_or_image.image is not None:
        return _text_chunks(path_or_image.image)
    else:
        raise CreativeError(f"read_recipe takes a PNG file or a PIL image, not a {type(path_or_image).__name__}")
    return {k: v.decode("utf-8", "replace") if isinstance(v, bytes) else v for k, v in chunks.items()}, label


def _parameters_text(path_or_image):
    chunks, label = _text_chunks(path_or_image)
    text = chunks.get(RECIPE_KEY)
    if not text or not isinstance(text, str):
        raise CreativeError(f"{label!r} carries no recipe (no `parameters` text chunk)")
    return text


# -- showing and saving -------------------------------------------------------------------


def grid(images, columns=None, max_width=1024, gap=4):
    """The images side by side (up to 4 a row), scaled down so the grid is at most `max_width` wide."""
    from PIL import Image

    if not images:
        return None
    if len(images) == 1:
        return images[0]
    columns = columns or min(4, len(images))
    rows = -(-len(images) // columns)
    tile_w = max(im.width for im in images)
    tile_h = max(im.height for im in images)
    scale = min(1.0, (max_width - gap * (columns - 1)) / (tile_w * columns))
    tw, th = max(1, int(tile_w * scale)), max(1, int(tile_h * scale))
    sheet = Image.new("RGB", (columns * tw + gap * (columns - 1), rows * th + gap * (rows - 1)), (255, 255, 255))
    for index, image in enumerate(images):
        tile = image if image.size == (tw, th) else image.resize((tw, th), Image.Resampling.LANCZOS)
        sheet.paste(tile, ((index % columns) * (tw + gap), (index // columns) * (th + gap)))
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
        raise CreativeError(f"cannot create the folder {str(folder)!r}: {_first_line(err)}") from None
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
            raise CreativeError(f"cannot write {str(path)!r}: {_first_line(err)}") from None
        paths.append(path)
    return paths


def check_folder(folder):
    """A --save folder that cannot be written is refused before any work."""
    path = os.path.expanduser(str(folder))
    if os.path.exists(path) and not os.path.isdir(path):
        raise CreativeError(f"--save needs a folder; {str(folder)!r} is a file")


def _first_line(err):
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
