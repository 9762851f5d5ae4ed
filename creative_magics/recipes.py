"""Recipes inside pictures: the PNG text chunks every image made here carries, in the AUTOMATIC1111 web
UI's `parameters` format (so PNG-info readers show them and `read_recipe` reads theirs), plus the whole
recipe as JSON for what that format cannot hold.

    a lighthouse at dusk
    Negative prompt: blurry
    Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Size: 512x512, Model: sd15

Which A1111 field stands for which parameter is part of each parameter's declaration (params.py).
"""

import io
import json
import os
import re
from pathlib import Path

from . import params as declared
from ._version import __version__
from .errors import CreativeError
from .limits import MAX_FILE_BYTES
from .seeds import MAX_SEED

RECIPE_KEY = "parameters"  # the PNG text chunk AUTOMATIC1111 writes and reads
JSON_KEY = "creative_magics"  # our full recipe as JSON, for tasks the A1111 format cannot hold (stylize)

# our scheduler name <-> the AUTOMATIC1111 sampler name
SAMPLER_NAMES = {"euler": "Euler", "euler_a": "Euler a", "dpm++": "DPM++ 2M", "ddim": "DDIM", "lcm": "LCM"}
_SCHEDULER_OF_SAMPLER = {v.lower(): k for k, v in SAMPLER_NAMES.items()}
_SCHEDULER_OF_SAMPLER.update({"dpm++ 2m karras": "dpm++", "euler ancestral": "euler_a"})  # older web UI names

# The order A1111 writes its fields in; each maps onto the parameters declared with that `a1111` name.
FIELD_ORDER = (
    "Steps", "Sampler", "CFG scale", "Seed", "Size", "Model", "Quality", "Style", "Denoising strength", "Init image", "Mask image",
    "Mask blur", "Hires upscale", "Hires steps", "ControlNet 0", "Compile",
)
LOCAL_FIELDS = ("Sampler",)  # a remote model (the recipe names an endpoint) has no sampler or scheduler
IMAGE_FIELDS = ("Init image",)  # written for image-to-image only
BATCH_FIELDS = ("Batch size", "Batch pos")  # written for batches only
HIRES_UPSCALER = "Lanczos"  # what the hires fix upscales with (A1111's "Hires upscaler" field)
SWEEP_SCRIPT = "X/Y/Z plot"  # A1111's "Script" field of a sweep's grid
# A1111's names of its ControlNet extension's preprocessors -> our --control-mode
_CONTROL_MODES = {"canny": "canny", "none": "none", "invert": "scribble", "invert (from white bg & black line)": "scribble"}
_LORA_TAG = re.compile(r"\s*<lora:([^<>]+)>")


def _fields():
    """{A1111 field: [our parameters]} from the paint declarations ("Size" stands for width and height; a
    compound field's parts, "ControlNet 0/Model", are grouped under "ControlNet 0")."""
    out = {}
    for param in declared.PAINT.params:
        if param.a1111:
            out.setdefault(param.a1111.split("/")[0], []).append(param)
    return out


def _part(param):
    return param.a1111.split("/", 1)[1]


def _sweep_axes(recipe):
    """The recorded sweep as (param, [values as written]) pairs, or []."""
    sweep = recipe.get("params", {}).get("sweep")
    if not sweep:
        return []
    task = declared.PAINT
    out = []
    for item in declared.items(task["sweep"], sweep):
        name, values = declared.parse_sweep(item)
        param = next((p for p in task.params if name.lower() in (p.name, p.name.replace("_", "-"), *(f.lstrip("-") for f in p.all_flags))), None)
        if param is not None:
            out.append((param, [str(v) for v in values]))
    return out


# -- writing ---------------------------------------------------------------------------------


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


def _recorded(recipe, param):
    """A parameter's value in a recipe: in its params, or at its top (model, seed)."""
    values = recipe.get("params", {})
    return values.get(param.name, recipe.get(param.name))


def recipe_text(recipe, batch_pos=None, sampler=None):
    """The A1111 `parameters` text for a paint recipe, for image `batch_pos` of its batch (seed + batch_pos).

    `sampler` names the model's own scheduler in A1111's Sampler field when it is none of ours. LoRAs are
    written into the prompt as A1111 does (`<lora:MODEL:WEIGHT>`); a sweep as its X/Y/Z plot's fields."""
    fields = _fields()
    values = recipe.get("params", {})
    n = _recorded(recipe, fields["Batch size"][0]) or 1
    seed = _recorded(recipe, fields["Seed"][0])
    if batch_pos is None:
        batch_pos = _recorded(recipe, fields["Batch pos"][0])
    elif seed is not None:
        seed = (seed + batch_pos) % (MAX_SEED + 1)
    image_to_image = _recorded(recipe, fields["Init image"][0]) is not None or recipe.get("init_hash")
    hires = values.get("hires")
    scheduler = _recorded(recipe, fields["Sampler"][0]) or "default"
    remote = recipe.get("endpoint") is not None
    written = []
    for name in FIELD_ORDER + BATCH_FIELDS:
        if (name in IMAGE_FIELDS and not image_to_image) or (name in BATCH_FIELDS and n <= 1) or (remote and name in LOCAL_FIELDS):
            continue
        found = [_recorded(recipe, param) for param in fields[name]]
        value = found[0]
        if name == "Size":
            value = "x".join(str(v) for v in found) if all(v is not None for v in found) else None
        elif name == "Sampler":
            value = SAMPLER_NAMES.get(scheduler) or sampler or scheduler
        elif name == "Seed":
            value = seed
        elif name == "Denoising strength":  # A1111's one field: image-to-image's strength, else the hires fix's
            value = values.get("strength") if image_to_image else values.get("hires_strength") if hires else None
        elif name == "Init image":
            value = value or "(an image object)"
        elif name == "Mask image":
            value = (value or "(an image object)") if ("mask" in values or recipe.get("mask_hash")) else None
        elif name == "ControlNet 0":
            value = _controlnet_field(recipe, fields[name])
        elif name == "Batch pos":
            value = batch_pos or 0
        written.append((name, value))
        if name in ("Init image", "Mask image") and value is not None:
            written.append((name.replace("image", "hash"), recipe.get(f"{name.split()[0].lower()}_hash")))
        if name == "Hires steps" and hires:
            written.append(("Hires upscaler", HIRES_UPSCALER))
    written += _sweep_fields(recipe)
    written += ([] if remote else [("Scheduler", scheduler)]) + [("Creative magics", __version__)]
    if recipe.get("interrupted"):
        written.append(("Stopped at step", recipe.get("stopped_at_step")))
    line = ", ".join(f"{key}: {_quote(_number(value))}" for key, value in written if value is not None)
    prompt = recipe.get("prompt") or ""
    for item in values.get("lora") or ():
        ref, weight = declared.parse_lora(item)
        prompt += f" <lora:{declared.lora_text(ref, weight)}>"
    lines = [prompt]
    negative = _recorded(recipe, fields["Negative prompt"][0])
    if negative:
        lines.append(f"Negative prompt: {negative}")
    lines.append(line)
    return "\n".join(lines)


def _controlnet_field(recipe, params):
    """A1111's ControlNet extension's field: "Module: canny, Model: canny, Weight: 1" (and what image it read)."""
    values = recipe.get("params", {})
    if values.get("control") is None and not recipe.get("control_hash"):
        return None
    parts = []
    order = ("Module", "Model", "Weight", "Image")  # as A1111's ControlNet extension writes them
    for param in sorted(params, key=lambda p: order.index(_part(p)) if _part(p) in order else len(order)):
        value = values.get(param.name)
        if param.name == "control":
            value = value or "(an image object)"
        if value is not None:
            parts.append(f"{_part(param)}: {_number(value)}")
    if recipe.get("control_hash"):
        parts.append(f"Hash: {recipe['control_hash']}")
    return ", ".join(parts)


def _sweep_fields(recipe):
    """A1111's X/Y/Z plot fields of a sweep's grid: Script, then each axis's Type and Values."""
    axes = _sweep_axes(recipe)
    if not axes:
        return []
    out = [("Script", SWEEP_SCRIPT)]
    for letter, (param, values) in zip("XYZ", axes):
        out += [(f"{letter} Type", param.axis), (f"{letter} Values", ", ".join(values))]
    return out


# -- reading ---------------------------------------------------------------------------------

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


_CONVERT = {"int": int, "seed": int, "float": float, "bool": lambda text: text.strip().lower() in ("true", "1", "yes")}


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
    prompt, negative, fields = parse_parameters(_parameters_text(path_or_image))
    taken = set()

    def take(key, convert=str):
        if key not in fields:
            return None
        taken.add(key)
        try:
            return convert(fields[key])
        except ValueError:
            raise CreativeError(f"the recipe's {key!r} value {fields[key]!r} is not readable") from None

    values, top = {_fields()["Negative prompt"][0].name: negative or None}, {}
    hires = "Hires upscale" in fields and "Init image" not in fields
    for name, params in _fields().items():
        param = params[0]
        if name == "Negative prompt":
            continue
        where = top if param.name in ("model", "seed") else values
        if name == "Size":
            size = take(name)
            if size:
                match = re.match(r"^\s*(\d+)\s*x\s*(\d+)\s*$", size)
                if not match:
                    raise CreativeError(f"the recipe's Size {size!r} is not WIDTHxHEIGHT")
                for each, number in zip(params, match.groups()):
                    values[each.name] = int(number)
        elif name == "Sampler":
            scheduler, sampler = take("Scheduler"), take(name)
            if scheduler is None and sampler is not None:
                scheduler = _SCHEDULER_OF_SAMPLER.get(sampler.lower())
                if scheduler is None:
                    taken.discard(name)  # an A1111 sampler we do not have: kept under "extra"
            values[param.name] = None if scheduler == "default" else scheduler
        elif name == "Denoising strength":  # the hires fix's in a text-to-image recipe that has one
            values["hires_strength" if hires else "strength"] = take(name, float)
        elif name == "ControlNet 0":
            values.update(_read_controlnet(take(name)))
        elif name not in BATCH_FIELDS:
            where[param.name] = take(name, _CONVERT.get(param.kind, str))
    take("Hires upscaler")
    hashes = {}
    for image in ("init", "mask", "control"):
        if values.get(image) == "(an image object)":
            values[image] = None
        found = values.pop(f"{image}_hash", None) or take(f"{image.capitalize()} hash")
        if found:
            hashes[f"{image}_hash"] = found
    n, pos = (param.name for param in (_fields()["Batch size"][0], _fields()["Batch pos"][0]))
    batch = take("Batch size", int)
    if batch and batch > 1:
        values[n] = batch
        values[pos] = take("Batch pos", int) or 0
    prompt, loras = _lora_tags(prompt)
    if loras:
        values["lora"] = loras
    if fields.get("Script") == SWEEP_SCRIPT:
        take("Script")
        sweep, unknown = _read_sweep(fields, take, values)
        if sweep:
            values["sweep"] = sweep
        for key in unknown:
            taken.discard(key)
    recipe = {
        "task": "paint",
        "model": top.get("model"),
        "seed": top.get("seed"),
        "prompt": prompt,
        "params": {k: v for k, v in values.items() if v is not None},
        **hashes,
    }
    take("Creative magics")
    extra = {k: v for k, v in fields.items() if k not in taken}
    if extra:
        recipe["extra"] = extra
    return recipe


def _lora_tags(prompt):
    """(the prompt without its `<lora:MODEL:WEIGHT>` tags, [MODEL:WEIGHT]) as A1111 writes LoRAs into prompts."""
    loras = [declared.lora_text(*declared.parse_lora(tag)) for tag in _LORA_TAG.findall(prompt)]
    return (_LORA_TAG.sub("", prompt).rstrip() if loras else prompt), loras


def _read_controlnet(text):
    """Our values from A1111's ControlNet field ("Module: canny, Model: control_v11p_sd15_canny [d14c016b], Weight: 1, ...")."""
    if not text:
        return {}
    parts = dict(part.split(":", 1) for part in (p.strip() for p in text.split(", ")) if ":" in part)
    parts = {key.strip(): value.strip() for key, value in parts.items()}
    out = {}
    for param in _fields()["ControlNet 0"]:
        value = parts.get(_part(param))
        if value is None:
            continue
        if param.name == "control_mode":
            value = _CONTROL_MODES.get(value.lower(), "scribble" if value.lower().startswith("scribble") else None)
        elif param.name == "controlnet":
            value = _controlnet_alias(re.sub(r"\s*\[[0-9a-f]+\]$", "", value))
        elif param.kind == "float":
            try:
                value = float(value)
            except ValueError:
                raise CreativeError(f"the recipe's ControlNet {_part(param)} {value!r} is not a number") from None
        out[param.name] = value
    if parts.get("Hash"):
        out["control_hash"] = parts["Hash"]
    return out


def _controlnet_alias(name):
    """Our alias for a ControlNet A1111 names by its file (control_v11p_sd15_canny), else the name as it is."""
    from .models import BUILTIN_ALIASES

    for alias, target in BUILTIN_ALIASES.items():
        if target.family == "controlnet" and target.source.rsplit("/", 1)[-1] == name:
            return alias
    return name


def _read_sweep(fields, take, values):
    """(the sweep items NAME=V1,V2 of an X/Y/Z plot's fields, the fields we could not read)."""
    task = declared.PAINT
    sweep, unknown = [], []
    for letter in "XYZ":
        kind = take(f"{letter} Type")
        if kind is None:
            continue
        written = take(f"Fixed {letter} Values") or take(f"{letter} Values") or ""
        wanted = kind.lower()
        if wanted == "denoising" and values.get("init") is None and values.get("hires"):
            wanted = task["hires_strength"].axis.lower()
        param = next((p for p in task.params if p.axis and p.axis.lower() == wanted), None)
        if param is None:
            unknown += [f"{letter} Type", f"{letter} Values"]
            continue
        items = [v.strip() for v in written.split(",") if v.strip()]
        sweep.append(f"{param.name}={','.join(items)}")
    return sweep, unknown


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
