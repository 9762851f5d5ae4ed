"""Pictures from text, or from an image and text, with a diffusers pipeline.

The cached text-to-image pipeline is never changed. Each call runs a *view* of it made once with
`from_pipe` and kept while the pipeline lives: image-to-image, another scheduler, no safety checker.
Views share the weights, so they cost no memory and swapping the scheduler loads nothing.

Seeds work as in the Stable Diffusion web UIs: image i of a batch uses seed + i, through a CPU
`torch.Generator` per image, so a call equals the plain pipeline call with those generators.
"""

import functools
import inspect
import math
import time
import weakref

from .. import defaults, params
from .. import seeds as seeds_module
from ..errors import CreativeError
from ..models import BUILTIN_ALIASES
from ..recipes import SAMPLER_NAMES, recipe_text, with_recipe_text
from ..results import ImageResult
from . import make_recipe, used_values

TASK = params.PAINT
# our name -> the diffusers scheduler class; "default" is the model's own
SCHEDULERS = {
    "euler": "EulerDiscreteScheduler",
    "euler_a": "EulerAncestralDiscreteScheduler",
    "dpm++": "DPMSolverMultistepScheduler",
    "ddim": "DDIMScheduler",
    "lcm": "LCMScheduler",
}
SCHEDULER_NAMES = TASK["scheduler"].choices

# Each model's recommended settings (its model card), keyed by hub id.
_TURBO = {"steps": 1, "guidance": 0.0, "width": 512, "height": 512, "img2img": {"steps": 2, "strength": 0.5}}
MODEL_DEFAULTS = {
    "stabilityai/sd-turbo": _TURBO,
    "stabilityai/sdxl-turbo": _TURBO,
    "stable-diffusion-v1-5/stable-diffusion-v1-5": {"steps": 25, "guidance": 7.5, "width": 512, "height": 512},
    "runwayml/stable-diffusion-v1-5": {"steps": 25, "guidance": 7.5, "width": 512, "height": 512},
    "stabilityai/stable-diffusion-xl-base-1.0": {"steps": 30, "guidance": 5.0, "width": 1024, "height": 1024},
    # aMUSEd (VQGAN tokens, MUSE-style): its pipelines' own defaults, 12 steps at guidance 10; image-to-image at strength 0.5
    "amused/amused-256": {"steps": 12, "guidance": 10.0, "width": 256, "height": 256, "img2img": {"strength": 0.5}},
    "amused/amused-512": {"steps": 12, "guidance": 10.0, "width": 512, "height": 512, "img2img": {"strength": 0.5}},
}
# Used when neither the user, the panel, %config nor the model give a value.
HOUSE_DEFAULTS = TASK.house_defaults()
PARAMS = TASK.names
RECIPE_ONLY = ("batch_pos",)  # set by a recipe read from one image of a batch
MIN_SIZE, MAX_SIZE = TASK["width"].low, TASK["width"].high
MAX_IMAGES = TASK["n"].high
PREVIEWS_PER_RUN = 10  # a preview every total/10 steps ...
PREVIEW_MIN_INTERVAL_S = 0.25  # ... and at most this often


def check(values):
    """One line for a value no model accepts: each against its declaration, then the rules between
    values. Values not given (None) pass."""
    TASK.check(values)
    pos = values.get("batch_pos")
    if pos is not None and not pos < (values.get("n") or 1):
        raise CreativeError(f"the recipe's batch position {pos!r} is outside its batch of {values.get('n') or 1}")


def recommended(spec):
    """The model card's settings for `spec` (by hub id, or by the alias a tiny stand-in replaces)."""
    source = spec.source
    if spec.kind == "tiny" and spec.name in BUILTIN_ALIASES:
        source = BUILTIN_ALIASES[spec.name].source
    return dict(MODEL_DEFAULTS.get(source, {}))


def native_size(pipe):
    """The size a pipeline makes when given none (its UNet/transformer sample size x the VAE factor)."""
    sample = getattr(pipe, "default_sample_size", None)
    for part in ("unet", "transformer"):  # aMUSEd's is a transformer over VQGAN tokens
        if sample is None:
            sample = getattr(getattr(getattr(pipe, part, None), "config", None), "sample_size", None)
    factor = getattr(pipe, "vae_scale_factor", 8) or 8
    if isinstance(sample, (tuple, list)):
        sample = sample[0]
    return int(sample * factor) if sample else 512


def fit_size(init_size, width, height, default_area):
    """Width and height for image-to-image: what was asked, the rest from the init image's aspect ratio,
    scaled to the model's usual area when neither is given; multiples of 8 within the limits."""
    iw, ih = init_size
    if width is None and height is None:
        scale = math.sqrt(default_area / (iw * ih))
        width, height = iw * scale, ih * scale
    elif width is None:
        width = height * iw / ih
    elif height is None:
        height = width * ih / iw
    if min(width, height) < MIN_SIZE:  # keep the shape within the limits where it can be kept
        width, height = width * MIN_SIZE / min(width, height), height * MIN_SIZE / min(width, height)
    if max(width, height) > MAX_SIZE:
        width, height = width * MAX_SIZE / max(width, height), height * MAX_SIZE / max(width, height)
    return tuple(int(min(MAX_SIZE, max(MIN_SIZE, round(v / 8) * 8))) for v in (width, height))


# -- pipeline views -----------------------------------------------------------------------

_views = weakref.WeakKeyDictionary()  # cached pipeline -> {(mode, scheduler, safety): view, "offloaded": view}


def scheduler_class_name(scheduler):
    return type(scheduler).__name__


def our_scheduler_name(scheduler):
    """Our name for a scheduler object, or 'default' when it is none of ours."""
    name = scheduler_class_name(scheduler)
    return next((ours for ours, cls in SCHEDULERS.items() if cls == name), "default")


def allowed_schedulers(pipe):
    """The names this model can run: its own, those diffusers lists as compatible, and lcm for LCM models."""
    own = pipe.scheduler
    compatible = {cls.__name__ for cls in getattr(own, "compatibles", [])} | {scheduler_class_name(own)}
    allowed = ["default"]
    for name, cls in SCHEDULERS.items():
        if name == "lcm":
            if _is_lcm(pipe):
                allowed.append(name)
        elif cls in compatible:
            allowed.append(name)
    return allowed


def _is_lcm(pipe):
    if scheduler_class_name(pipe.scheduler) == "LCMScheduler":
        return True
    unet = getattr(pipe, "unet", None)
    if unet is not None and getattr(unet.config, "time_cond_proj_dim", None):
        return True  # an LCM-distilled UNet (guidance embedding)
    try:
        adapters = pipe.get_list_adapters() if hasattr(pipe, "get_list_adapters") else {}
    except (ValueError, AttributeError):
        adapters = {}
    return any("lcm" in name.lower() for names in adapters.values() for name in names)


def make_scheduler(pipe, name):
    """The scheduler `name` built from the model's own scheduler config (its own object for 'default' or its class)."""
    import diffusers

    own = pipe.scheduler
    if name == "default" or SCHEDULERS[name] == scheduler_class_name(own):
        return own
    return getattr(diffusers, SCHEDULERS[name]).from_config(own.config)


def view(pipe, mode="txt2img", scheduler="default", safety=True):
    """The pipeline to run for `mode` ('txt2img' or 'img2img') with `scheduler`, sharing `pipe`'s weights."""
    views = _views.setdefault(pipe, {})
    key = (mode, scheduler, bool(safety) or not has_safety_checker(pipe))
    found = views.get(key)
    if found is not None:
        return found
    if scheduler not in allowed_schedulers(pipe):
        allowed = ", ".join(allowed_schedulers(pipe))
        hint = " (lcm needs an LCM-distilled model or an LCM LoRA)" if scheduler == "lcm" else ""
        raise CreativeError(f"this model cannot use the {scheduler!r} scheduler{hint}; it can use {allowed}")
    from diffusers import AutoPipelineForImage2Image, AutoPipelineForText2Image
    from diffusers.utils import logging as diffusers_logging

    overrides = {}
    chosen = make_scheduler(pipe, scheduler)
    if chosen is not pipe.scheduler:
        overrides["scheduler"] = chosen
    if not key[2]:
        overrides["safety_checker"] = None
        if "requires_safety_checker" in pipe.config:
            overrides["requires_safety_checker"] = False
    auto = AutoPipelineForImage2Image if mode == "img2img" else AutoPipelineForText2Image
    verbosity = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()  # from_pipe chatters about disabled safety checkers
    try:
        # The Auto classes' from_pipe shares the modules as they are (the pipeline classes' own
        # from_pipe would cast them to float32 unless given a dtype).
        made = _amused_view(pipe, mode, overrides) if is_amused(pipe) else auto.from_pipe(pipe, **overrides)
    except ValueError as err:
        raise CreativeError(f"this model has no {mode.replace('2', '-to-')} pipeline in diffusers: {err}") from None
    finally:
        diffusers_logging.set_verbosity(verbosity)
    made.set_progress_bar_config(disable=True)  # the view draws its own bar
    views[key] = made
    return made


def is_amused(pipe):
    """aMUSEd (VQGAN tokens): diffusers' Auto classes do not know its pipelines, which take a `callback`
    instead of callback_on_step_end and a single generator."""
    return type(pipe).__name__.startswith("Amused")


def _amused_view(pipe, mode, overrides):
    """aMUSEd's text- or image-to-image pipeline over the same modules."""
    import diffusers

    cls = diffusers.AmusedImg2ImgPipeline if mode == "img2img" else diffusers.AmusedPipeline
    return cls(**{**pipe.components, **{k: v for k, v in overrides.items() if k in pipe.components}})


def _call(runner, kwargs, tracker):
    """Run the view with the step tracker. Pipelines without callback_on_step_end (aMUSEd) take the older
    `callback` and one generator: a batch is painted image by image, each with its own seed's generator,
    as the other pipelines do within one call."""
    if "callback_on_step_end" in call_parameters(type(runner)):
        return runner(**kwargs, callback_on_step_end=tracker, callback_on_step_end_tensor_inputs=["latents"])
    from types import SimpleNamespace

    each = kwargs["generator"] if isinstance(kwargs["generator"], list) else [kwargs["generator"]]
    one = dict(kwargs, num_images_per_prompt=1)
    steps, images = tracker.total, []
    tracker.total = steps * len(each)
    for index, generator in enumerate(each):
        offset = index * steps
        callback = lambda step, timestep, latents, offset=offset: tracker(runner, offset + step, timestep, {"latents": latents})
        images += list(runner(**dict(one, generator=generator), callback=callback, callback_steps=1).images)
    return SimpleNamespace(images=images)


@functools.lru_cache(maxsize=None)
def call_parameters(pipeline_class):
    """The names a pipeline class's __call__ takes (some take no negative prompt)."""
    return frozenset(inspect.signature(pipeline_class.__call__).parameters)


def has_safety_checker(pipe):
    return getattr(pipe, "safety_checker", None) is not None


def shares_weights(a, b):
    """True when every tensor of `b`'s modules is one of `a`'s (no second copy in memory)."""
    from ..memory import torch_modules

    ptrs = lambda obj: {t.data_ptr() for m in torch_modules(obj) for t in [*m.parameters(), *m.buffers()]}
    return ptrs(b) <= ptrs(a)


def _set_offload(pipe, runner, device):
    """Enable diffusers' model CPU offload on the view about to run (hooks live on the shared modules), or remove it."""
    state = _views.setdefault(pipe, {})
    holder = state.get("offloaded")
    if device is not None:
        if holder is not runner:
            runner.enable_model_cpu_offload(device=device)
            state["offloaded"] = runner
    elif holder is not None:
        holder.remove_all_hooks()
        state["offloaded"] = None


# -- one call -----------------------------------------------------------------------------


class _Steps:
    """The pipeline's step callback: counts steps, keeps the latest latents, reports progress and previews."""

    def __init__(self, previewer, total, on_step=None, on_preview=None, size=None):
        self.previewer = previewer
        self.total = total
        self.size = size  # of the finished images: previews are shown at it
        self.on_step = on_step
        self.on_preview = on_preview if previewer.available else None
        self.every = max(1, round(total / PREVIEWS_PER_RUN))
        self.done = 0
        self.latents = None
        self.last_preview = 0.0

    def __call__(self, pipe, index, timestep, tensors):
        self.latents = tensors.get("latents")
        self.done = index + 1
        if self.on_step is not None:
            self.on_step(self.done, self.total)
        if self.on_preview is not None and self.done < self.total and self.done % self.every == 0:
            now = time.monotonic()
            if now - self.last_preview >= PREVIEW_MIN_INTERVAL_S:
                self.last_preview = now
                previews = self.previewer.images(self.latents)
                for preview in previews:
                    preview.info["final_size"] = self.size  # the view shows it at the size of the result
                self.on_preview(previews, self.done, self.total)
        return tensors

    def previews(self, size):
        """The last latents as full-size previews (what Ctrl-C leaves)."""
        from PIL import Image

        return [image.resize(size, Image.Resampling.BILINEAR) for image in self.previewer.images(self.latents)]


def batch_seeds(first, n):
    return [(first + i) % (seeds_module.MAX_SEED + 1) for i in range(n)]


def generators(seeds):
    """One CPU generator per image (reproducible on every device); a single one for a single image."""
    import torch

    made = [torch.Generator("cpu").manual_seed(seed) for seed in seeds]
    return made[0] if len(made) == 1 else made


def paint(
    pipe,
    prompt,
    values,
    sources=None,
    *,
    spec=None,
    model_name="",
    init=None,
    safety=True,
    offload_device=None,
    on_step=None,
    on_preview=None,
):
    """Make the pictures for `prompt` with merged `values` (see params.PAINT; None = not given). Returns an ImageResult.

    init: (PIL image, label, hash) for image-to-image. on_step(step, total) after each step;
    on_preview(images, step, total) every few steps with cheap latent previews (their `info["final_size"]`
    is the size of the result).
    Ctrl-C stops within a step: the result holds the last previews, marked `interrupted`.
    """
    from ..previews import Previewer

    # 1. check the prompt; the values: the model card's, the init image's size, the house's
    prompt = prompt.strip("\n")
    if not prompt.strip():
        raise CreativeError("the prompt is empty: write it in the cell body")
    values, sources = painting_values(pipe, spec, values, sources, init)

    # 2. the pipeline view that runs it (txt2img or img2img, the scheduler, the safety checker)
    runner = view(pipe, "img2img" if init is not None else "txt2img", values["scheduler"], safety)
    _set_offload(pipe, runner, offload_device)
    notes = negative_notes(runner, values)

    # 3. the call: seeds (image i of a batch uses seed + i), generators, the init image
    kwargs, image_seeds, total = call_arguments(prompt, values, init)
    size = (values["width"], values["height"])
    tracker = _Steps(Previewer(runner), total, on_step, on_preview, size)

    # 4. paint; Ctrl-C keeps the last previews
    output = None
    try:
        output = _call(runner, kwargs, tracker)
    except KeyboardInterrupt:
        pass

    # 5. the recipe, written into every image
    recipe = paint_recipe(prompt, values, sources, model_name, runner, init, image_seeds[0])
    return _result(output, tracker, recipe, values, sources, image_seeds, notes, runner)


def painting_values(pipe, spec, values, sources, init):
    """The values a painting uses: what was merged, then the model card's settings (the image-to-image
    ones with an init image), the init image's aspect ratio for the size, and the house defaults."""
    img2img = init is not None
    model_layer = recommended(spec) if spec is not None else {}
    img2img_layer = model_layer.pop("img2img", {})
    if img2img:
        model_layer.update(img2img_layer)
    if spec is not None and spec.kind == "tiny" or "width" not in model_layer:
        model_layer["width"] = model_layer["height"] = native_size(pipe)  # tiny stand-ins keep their own size
    values, sources = dict(values), dict(sources or {})
    if img2img:  # the size follows the init image unless given
        width, height = fit_size(init[0].size, values.get("width"), values.get("height"), model_layer["width"] * model_layer["height"])
        values, sources = defaults.fill(values, sources, ("init image", {"width": width, "height": height}))
    house = HOUSE_DEFAULTS if img2img else {k: v for k, v in HOUSE_DEFAULTS.items() if k != "strength"}
    values, sources = defaults.fill(values, sources, ("model", model_layer), ("default", house))
    if sources.get("scheduler") == "default":
        sources["scheduler"] = "model"  # "default" is the model's own scheduler
    check(values)
    steps, strength = values["steps"], values.get("strength")
    if img2img and int(steps * strength) < 1:
        raise CreativeError(
            f"--strength {strength:g} x --steps {steps} leaves no denoising step: use --steps {math.ceil(1 / strength)} or more"
        )
    return values, sources


def negative_notes(runner, values):
    """Refuse a negative prompt the model cannot take; note one that has no effect."""
    negative = values["negative"] or None
    if negative and "negative_prompt" not in call_parameters(type(runner)):
        raise CreativeError("this model takes no negative prompt: drop --negative")
    if negative and values["guidance"] <= 1:
        return [f"--negative has no effect at guidance {values['guidance']:g}: it needs --guidance above 1"]
    return []


def call_arguments(prompt, values, init):
    """(keyword arguments of the pipeline call, the seed of each image, the steps it will take)."""
    n, pos = values["n"], values.get("batch_pos")
    seed = seeds_module.choose(values.get("seed"))
    first = (seed - (pos or 0)) % (seeds_module.MAX_SEED + 1)
    image_seeds = batch_seeds(first, n)
    steps, width, height = values["steps"], values["width"], values["height"]
    kwargs = {
        "prompt": prompt,
        "num_inference_steps": steps,
        "guidance_scale": values["guidance"],
        "num_images_per_prompt": n,
        "generator": generators(image_seeds),
    }
    if values["negative"]:
        kwargs["negative_prompt"] = values["negative"]
    if init is None:
        kwargs["width"], kwargs["height"] = width, height
        return kwargs, image_seeds, steps
    image = init[0]
    kwargs["image"] = image if image.size == (width, height) else image.resize((width, height), _lanczos())
    kwargs["strength"] = values["strength"]
    return kwargs, image_seeds, min(int(steps * values["strength"]), steps)


RECORDED = ("negative", "steps", "guidance", "width", "height", "n", "scheduler")


def paint_recipe(prompt, values, sources, model_name, runner, init, first_seed):
    recorded = list(RECORDED)
    values = dict(values)
    if values["scheduler"] == "default":
        values["scheduler"] = our_scheduler_name(runner.scheduler)
    if init is not None:
        values["init"] = init[1]
        recorded += ["init", "strength"]
    used, used_sources = used_values(values, sources, recorded)
    recipe = make_recipe("paint", model_name, first_seed, prompt, used, used_sources)
    if init is not None and init[2]:
        recipe["init_hash"] = init[2]
    return recipe


def _result(output, tracker, recipe, values, sources, image_seeds, notes, runner):
    """The ImageResult: each image carrying its own A1111 text (its seed, its place in the batch)."""
    used = recipe["params"]
    sampler = SAMPLER_NAMES.get(used["scheduler"]) or scheduler_class_name(runner.scheduler).replace("Scheduler", "")
    interrupted = output is None
    if not interrupted:
        images = list(output.images)
        flagged = getattr(output, "nsfw_content_detected", None) or []
        notes = notes + [
            f"image {index + 1} was blacked out by the model's safety checker "
            "(%config CreativeMagics.safety_checker = False turns it off)"
            for index, hit in enumerate(flagged)
            if hit
        ]
    else:
        images = tracker.previews((values["width"], values["height"]))
        recipe["interrupted"] = True
        recipe["stopped_at_step"] = tracker.done
    texts = [recipe_text(recipe, batch_pos=i, sampler=sampler) for i in range(len(images))]
    images = [with_recipe_text(image, text) for image, text in zip(images, texts)]
    shown_seeds = image_seeds
    pos = values.get("batch_pos")
    if pos is not None and len(images) == values["n"]:  # a recipe from one image of a batch: that image
        images, shown_seeds = [images[pos]], [image_seeds[pos]]
        recipe["seed"] = image_seeds[pos]
        used["batch_pos"] = pos
        recipe["sources"]["batch_pos"] = sources.get("batch_pos", "recipe")
    return ImageResult(
        images=images,
        recipe=recipe,
        seeds=shown_seeds,
        prompt=recipe["prompt"],
        interrupted=interrupted,
        steps_done=tracker.done,
        steps_total=tracker.total,
        notes=notes,
    )


def _lanczos():
    from PIL import Image

    return Image.Resampling.LANCZOS


def oom_message(values, offloading):
    size = f"{values.get('width')}x{values.get('height')}" if values.get("width") else "the model's own size"
    n = values.get("n") or 1
    fewer = f", fewer images than -n {n}" if n > 1 else ""
    if offloading:
        return f"out of GPU memory at {size} even with the other models evicted and CPU offload on: try a smaller --width/--height{fewer}"
    return (
        f"out of GPU memory at {size} even with the other models evicted: try a smaller --width/--height{fewer}, "
        "or %config CreativeMagics.cpu_offload = True"
    )


# -- remote models: an OpenAI-compatible server's images/generations and images/edits -----------------

# OpenAI's image models that always answer in base64 and refuse a response_format field.
ALWAYS_BASE64 = ("gpt-image-",)


def paint_remote(connection, prompt, values, sources=None, *, model_name="", init=None, mask=None, on_step=None, on_note=None):
    """Pictures for `prompt` from a remote server (`connection`, see remote.Connection) with merged values
    it can use (tasks.usable). images/generations, or images/edits with an init image (and a mask,
    white = repaint); the answer in base64 (`b64_json`). Returns an ImageResult whose images carry the
    A1111-style recipe naming the endpoint and model. The server draws no seed, so none is recorded.

    init: (PIL image, label, hash) as for paint(); mask: a PIL image, or None.
    """
    # 1. the prompt and the values
    prompt = prompt.strip("\n")
    if not prompt.strip():
        raise CreativeError("the prompt is empty: write it in the cell body")
    values, sources = dict(values), dict(sources or {})
    check(values)
    n = 1 if values.get("batch_pos") is not None else int(values.get("n") or 1)
    width, height = values.get("width"), values.get("height")
    if (width is None) != (height is None):
        raise CreativeError("a remote model takes a whole size: give both --width and --height (e.g. 1024 and 1024), or neither")
    if mask is not None and init is None:
        raise CreativeError("--mask needs --init: the mask says which part of the init image to repaint")

    # 2. the request: the API's fields the values stand for
    fields = {"model": connection.model, "prompt": prompt}
    if n > 1:
        fields["n"] = n
    if width is not None:
        fields["size"] = f"{width}x{height}"
    for name in ("quality", "style"):
        if values.get(name) is not None:
            fields[TASK[name].remote] = values[name]
    beyond = {TASK[name].remote_extra: values[name] for name in connection.endpoint.extra_params
              if name in TASK and TASK[name].remote_extra and values.get(name) is not None}
    if beyond:
        fields["extra_body"] = beyond
    if not connection.model.startswith(ALWAYS_BASE64):
        fields["response_format"] = "b64_json"
    if on_step is not None:
        on_step(0, 1)  # a live line while the server paints (one step: the server's)
    if init is None:
        what = "images/generations"
        answer = connection.request(what, lambda client, auth: client.images.generate(**fields, **auth))
    else:
        from ..recipes import png_bytes

        what = "images/edits"
        fields["image"] = ("init.png", png_bytes(init[0].convert("RGBA"), compress_level=6), "image/png")
        if mask is not None:
            fields["mask"] = ("mask.png", png_bytes(_edit_mask(mask, init[0].size), compress_level=6), "image/png")
        missing = (
            f"endpoint {connection.endpoint.name!r} offers no images/edits for {connection.model!r}, "
            "so --init (image-to-image) cannot be used with it; paint without --init, or use a local model"
        )
        answer = connection.request(what, lambda client, auth: client.images.edit(**fields, **auth), route=missing)

    # 3. the images, each with its recipe
    images, revised = _remote_images(answer, connection, what)
    size = images[0].size
    recipe_values = {"width": size[0], "height": size[1], "n": len(images)}
    for name in ("quality", "style"):
        if values.get(name) is not None:
            recipe_values[name] = values[name]
    if init is not None:
        recipe_values["init"] = init[1]
    used_sources = {name: sources.get(name, "server" if name in ("width", "height", "n") else "default") for name in recipe_values}
    recipe = {
        "task": "paint",
        "model": model_name,
        "endpoint": connection.endpoint.name,
        "remote_model": connection.model,
        "seed": None,
        "prompt": prompt,
        "params": recipe_values,
        "sources": used_sources,
    }
    if init is not None and init[2]:
        recipe["init_hash"] = init[2]
    if any(revised):
        recipe["revised_prompts"] = revised
    texts = [recipe_text(recipe, batch_pos=i) for i in range(len(images))]
    images = [with_recipe_text(image, text) for image, text in zip(images, texts)]
    notes = []
    if len(images) != n:
        notes.append(f"{model_name} made {len(images)} image{'s' if len(images) != 1 else ''}, not the {n} asked for")
    return ImageResult(images=images, recipe=recipe, seeds=[], prompt=prompt, steps_done=1, steps_total=1, notes=notes)


def _edit_mask(mask, size):
    """Our mask (white = repaint) as OpenAI's edits want it: transparent where to repaint, at the init's size."""
    from PIL import Image, ImageOps

    grey = mask.convert("L").resize(size, Image.Resampling.NEAREST)
    rgba = Image.new("RGBA", size, (0, 0, 0, 255))
    rgba.putalpha(ImageOps.invert(grey))
    return rgba


def _remote_images(answer, connection, what):
    """(PIL images, revised prompts) from an images answer: `b64_json` (or a `url`, fetched with our limits)."""
    import base64
    import binascii

    from ..media import fetch_url, open_bytes

    data = getattr(answer, "data", None)
    if isinstance(answer, (str, bytes)) or not isinstance(data, list) or not data:
        raise CreativeError(connection.malformed(what))
    images, revised = [], []
    for index, item in enumerate(data):
        encoded, url = getattr(item, "b64_json", None), getattr(item, "url", None)
        try:
            raw = base64.b64decode(encoded, validate=True) if encoded else fetch_url(url) if url else None
        except (binascii.Error, ValueError, TypeError):
            raw = None
        if raw is None:
            raise CreativeError(connection.malformed(what, f"image {index + 1} has no readable b64_json"))
        try:
            images.append(open_bytes(raw, f"image {index + 1} from {connection.label}"))
        except CreativeError as err:
            raise CreativeError(connection.malformed(what, err)) from None
        revised.append(getattr(item, "revised_prompt", None))
    return images, revised
