"""Pictures from text, or from an image and text, with a diffusers pipeline.

The cached text-to-image pipeline is never changed. Each call runs a *view* of it made with `from_pipe`
and kept while the pipeline lives: image-to-image, inpainting, a ControlNet, another scheduler, no safety
checker. Views share the weights, so they cost no memory and swapping the scheduler loads nothing. Only
LoRAs change the shared weights, and only for the calls that ask for them: they are set per call and
taken out when the next call does not ask for them (diffusers' load_lora_weights / set_adapters).

Seeds work as in the Stable Diffusion web UIs: image i of a batch uses seed + i, through a CPU
`torch.Generator` per image, so a call equals the plain pipeline call with those generators.
"""

import functools
import inspect
import math
import time
import weakref

from .. import controls, defaults, params, prompt_weights, sweeps
from .. import seeds as seeds_module
from ..errors import CreativeError, first_line
from ..models import BASE_NAMES, BASE_SUFFIXES, BUILTIN_ALIASES, DEFAULT_CONTROLNETS
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
    # inpainting models repaint the masked part from noise (their model cards' strength)
    "stable-diffusion-v1-5/stable-diffusion-inpainting": {"steps": 25, "guidance": 7.5, "width": 512, "height": 512, "img2img": {"strength": 1.0}},
    "diffusers/stable-diffusion-xl-1.0-inpainting-0.1": {"steps": 30, "guidance": 8.0, "width": 1024, "height": 1024, "img2img": {"strength": 0.99}},
    # aMUSEd (VQGAN tokens, MUSE-style): its pipelines' own defaults, 12 steps at guidance 10; image-to-image at strength 0.5
    "amused/amused-256": {"steps": 12, "guidance": 10.0, "width": 256, "height": 256, "img2img": {"strength": 0.5}},
    "amused/amused-512": {"steps": 12, "guidance": 10.0, "width": 512, "height": 512, "img2img": {"strength": 0.5}},
}
# Used when neither the user, the panel, %config nor the model give a value.
HOUSE_DEFAULTS = TASK.house_defaults()
PARAMS = TASK.names
RECIPE_ONLY = ("batch_pos",)  # set by a recipe read from one image of a batch
IMAGE_INPUTS = ("init", "mask", "control")  # the IMAGE parameters; a recipe records each one's hash
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
    if values.get("hires") and values.get("init") is not None:
        raise CreativeError("--hires is for text-to-image (paint, upscale, repaint): drop it, or drop --init")
    if values.get("control") is not None and values.get("control_mode") == "none" and not values.get("controlnet"):
        raise CreativeError("--control-mode none gives the image as it is: name the ControlNet that reads it with --controlnet (depth, openpose, ...)")
    if values.get("sweep") is not None:
        made = sweeps.axes(TASK, values["sweep"], values)
        if (values.get("n") or 1) > 1:
            raise CreativeError("a sweep paints one picture per cell: drop -n (sweep --seed for variations)")
        sweeps.check_size(made, values.get("yes"))


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


MODES = ("txt2img", "img2img", "inpaint")
_MODE_WORDS = {"txt2img": "text-to-image", "img2img": "image-to-image", "inpaint": "inpainting"}


def mode_of(init, mask):
    """'inpaint' (an init image and a mask), 'img2img' (an init image) or 'txt2img'."""
    return "inpaint" if mask is not None else "img2img" if init is not None else "txt2img"


def is_inpainting_model(pipe):
    """An inpainting model's UNet reads the masked image and the mask too (9 channels): it only inpaints."""
    unet = getattr(pipe, "unet", None)
    return getattr(getattr(unet, "config", None), "in_channels", 4) == 9


def view(pipe, mode="txt2img", scheduler="default", safety=True, controlnet=None):
    """The pipeline to run for `mode` ('txt2img', 'img2img' or 'inpaint') with `scheduler`, and with
    `controlnet` (a ControlNetModel) when given, sharing `pipe`'s weights. diffusers' Auto classes pick the
    pipeline class (StableDiffusionXLControlNetInpaintPipeline, say), so any model family they know fits."""
    views = _views.setdefault(pipe, {})
    key = (mode, scheduler, bool(safety) or not has_safety_checker(pipe), controlnet is not None)
    found = views.get(key)
    if found is not None and getattr(found, "controlnet", None) is controlnet:
        return found
    if scheduler not in allowed_schedulers(pipe):
        allowed = ", ".join(allowed_schedulers(pipe))
        hint = " (lcm needs an LCM-distilled model or an LCM LoRA)" if scheduler == "lcm" else ""
        raise CreativeError(f"this model cannot use the {scheduler!r} scheduler{hint}; it can use {allowed}")
    from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting, AutoPipelineForText2Image
    from diffusers.utils import logging as diffusers_logging

    overrides = {}
    chosen = make_scheduler(pipe, scheduler)
    if chosen is not pipe.scheduler:
        overrides["scheduler"] = chosen
    if not key[2]:
        overrides["safety_checker"] = None
        if "requires_safety_checker" in pipe.config:
            overrides["requires_safety_checker"] = False
    if controlnet is not None:
        overrides["controlnet"] = controlnet
    auto = {"txt2img": AutoPipelineForText2Image, "img2img": AutoPipelineForImage2Image, "inpaint": AutoPipelineForInpainting}[mode]
    verbosity = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()  # from_pipe chatters about disabled safety checkers
    try:
        # The Auto classes' from_pipe shares the modules as they are (the pipeline classes' own
        # from_pipe would cast them to float32 unless given a dtype).
        made = _amused_view(pipe, mode, overrides) if is_amused(pipe) else auto.from_pipe(pipe, **overrides)
    except ValueError as err:
        what = _MODE_WORDS[mode] + (" ControlNet" if controlnet is not None else "")
        raise CreativeError(f"this model has no {what} pipeline in diffusers: {first_line(err)}") from None
    finally:
        diffusers_logging.set_verbosity(verbosity)
    made.set_progress_bar_config(disable=True)  # the view draws its own bar
    views[key] = made  # a ControlNet view holds one ControlNet: the next one replaces it
    return made


def is_amused(pipe):
    """aMUSEd (VQGAN tokens): diffusers' Auto classes do not know its pipelines, which take a `callback`
    instead of callback_on_step_end and a single generator."""
    return type(pipe).__name__.startswith("Amused")


def _amused_view(pipe, mode, overrides):
    """aMUSEd's text- or image-to-image pipeline over the same modules."""
    import diffusers

    if "controlnet" in overrides:
        raise CreativeError("aMUSEd paints VQGAN tokens and takes no ControlNet: use a Stable Diffusion model with --control")
    cls = {"img2img": diffusers.AmusedImg2ImgPipeline, "inpaint": diffusers.AmusedInpaintPipeline}.get(mode, diffusers.AmusedPipeline)
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
    tracker.total += steps * (len(each) - 1)
    tracker.overall += steps * (len(each) - 1)
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


# -- which ControlNets and LoRAs fit which model ---------------------------------------------


def base_of(model):
    """'sdxl', 'sd2' or 'sd15' for a pipeline or a ControlNet (by its UNet's layout), '' when unknown."""
    config = getattr(getattr(model, "unet", model), "config", None)
    if config is None:
        return ""
    if getattr(config, "addition_embed_type", None) == "text_time":
        return "sdxl"
    return {768: "sd15", 1024: "sd2"}.get(getattr(config, "cross_attention_dim", None), "")


def _named_base(base):
    return BASE_NAMES.get(base, "another")


def control_mode_of(values):
    """How the --control image is read: as given, else what the named ControlNet's name says, else scribble."""
    mode = values.get("control_mode")
    if mode:
        return mode
    name = str(values.get("controlnet") or "").lower()
    return "canny" if "canny" in name else "scribble" if "scribble" in name or not name else "none"


def controlnet_name(values, base):
    """The ControlNet to load: the one named, else the alias for the control mode and the model's architecture."""
    if values.get("controlnet"):
        return values["controlnet"]
    mode = control_mode_of(values)
    return DEFAULT_CONTROLNETS.get((mode, base)) or DEFAULT_CONTROLNETS[(mode, "sd15")]


def check_fits(model_name, model_base, what, name, base):
    """One line, before anything more loads, when a ControlNet or LoRA alias says it is for another architecture."""
    if not base or not model_base or base == model_base:
        return
    stem = name
    for suffix in ("-sdxl", "-sd21", "-sd15"):
        stem = stem[: -len(suffix)] if stem.endswith(suffix) else stem
    family = "controlnet" if what == "ControlNet" else "lora"
    fitting = [
        other for other in (stem + BASE_SUFFIXES.get(model_base, ""), f"{stem}-{model_base}")
        if other in BUILTIN_ALIASES and BUILTIN_ALIASES[other].family == family and BUILTIN_ALIASES[other].base == model_base
    ]
    hint = f": use {fitting[0]}" if fitting else f": use a {what} for {_named_base(model_base)}"
    raise CreativeError(
        f"{'--controlnet' if what == 'ControlNet' else '--lora'} {name} is a {what} for {_named_base(base)}, "
        f"and {model_name} is {_article(model_base)} {_named_base(model_base)} model{hint}"
    )


def _article(base):
    return "an" if _named_base(base)[0] in "aeiouAEIOUS" else "a"


def check_controlnet(pipe, controlnet, name, model_name):
    """The loaded ControlNet reads what this model's UNet makes (the same text width and conditioning)."""
    unet = getattr(pipe, "unet", None)
    if unet is None:
        raise CreativeError(f"{model_name} takes no ControlNet (it has no UNet)")
    ours, theirs = unet.config, controlnet.config
    same = (
        ours.cross_attention_dim == theirs.cross_attention_dim
        and getattr(ours, "addition_embed_type", None) == getattr(theirs, "addition_embed_type", None)
        and tuple(ours.block_out_channels) == tuple(theirs.block_out_channels)
    )
    if not same:
        base, model_base = base_of(controlnet), base_of(pipe)
        raise CreativeError(
            f"--controlnet {name} is a ControlNet for {_named_base(base)} models and does not fit {model_name} "
            f"({_named_base(model_base)}): choose one made for it"
        )


# -- LoRAs, set per call ----------------------------------------------------------------------

_loras = weakref.WeakKeyDictionary()  # cached pipeline -> {adapter name: (folder, weight file)} loaded into it
_active_loras = weakref.WeakKeyDictionary()  # cached pipeline -> [(adapter, weight)] set by the last call (set_adapters is skipped when equal)


def adapter_name(name):
    """A peft adapter name for a LoRA reference (letters, digits and _ only)."""
    cleaned = "".join(c if c.isalnum() else "_" for c in name).strip("_") or "lora"
    return cleaned if not cleaned[0].isdigit() else "lora_" + cleaned


def loaded_loras(pipe):
    return dict(_loras.get(pipe, {}))


def set_loras(pipe, loras, model_name=""):
    """Make `loras` ([(name, folder, weight_name, weight)]) the LoRAs active in `pipe`, and no others: those the
    call does not ask for are taken out (all of them: the pipeline is as loaded again), new ones are loaded
    once, and the weights set. The base weights are never read again."""
    loaded = _loras.setdefault(pipe, {})
    wanted = {}
    for name, folder, weight_name, weight in loras:
        wanted.setdefault(adapter_name(name), (name, (folder, weight_name), weight))
    stale = [adapter for adapter, where in loaded.items() if adapter not in wanted or wanted[adapter][1] != where]
    active = [(adapter, weight) for adapter, (_, _, weight) in wanted.items()]
    if stale and len(stale) == len(loaded):
        _quietly(pipe.unload_lora_weights)
        loaded.clear()
    elif stale:
        _quietly(pipe.delete_adapters, stale)
        for adapter in stale:
            del loaded[adapter]
    if not wanted:
        _active_loras.pop(pipe, None)
        return
    if not hasattr(pipe, "load_lora_weights"):
        raise CreativeError(f"{model_name or 'this model'} takes no LoRA (its diffusers pipeline cannot load one)")
    changed = bool(stale)
    for adapter, (name, (folder, weight_name), _) in wanted.items():
        if adapter not in loaded:
            _active_loras.pop(pipe, None)
            _load_lora(pipe, adapter, name, folder, weight_name, model_name)
            loaded[adapter] = (folder, weight_name)
            changed = True
    if changed or _active_loras.get(pipe) != active:  # the same LoRAs at the same weights as the last call: nothing to set
        _active_loras.pop(pipe, None)
        _quietly(pipe.set_adapters, list(wanted), adapter_weights=[weight for _, _, weight in wanted.values()])
        _active_loras[pipe] = active


def _load_lora(pipe, adapter, name, folder, weight_name, model_name):
    try:
        _quietly(pipe.load_lora_weights, folder, weight_name=weight_name, adapter_name=adapter, use_safetensors=True, local_files_only=True)
    except (RuntimeError, ValueError, KeyError, OSError) as err:
        _forget_adapter(pipe, adapter)
        why = "made for another model (its layers do not match)" if "size mismatch" in str(err) else first_line(err)
        raise CreativeError(f"--lora {name} does not fit {model_name or 'this model'}: {why}") from None
    if not any(adapter in names for names in pipe.get_list_adapters().values()):
        _forget_adapter(pipe, adapter)
        raise CreativeError(f"--lora {name} has no weights {model_name or 'this model'} can use: it is a LoRA for another model")


def _forget_adapter(pipe, adapter):
    """Leave no trace of a LoRA that failed to load (peft may have added its layers)."""
    try:
        if any(adapter in names for names in pipe.get_list_adapters().values()):
            _quietly(pipe.delete_adapters, [adapter])
        if not _loras.get(pipe):
            _quietly(pipe.unload_lora_weights)
    except (ValueError, AttributeError, KeyError):
        pass


def _quietly(function, *args, **kwargs):
    """diffusers and peft warn on stderr about what we handle (no text-encoder keys, a replaced active adapter)."""
    import warnings

    from diffusers.utils import logging as diffusers_logging

    verbosity = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity(diffusers_logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return function(*args, **kwargs)
    finally:
        diffusers_logging.set_verbosity(verbosity)


# -- one call -----------------------------------------------------------------------------


class _Steps:
    """The pipeline's step callback: counts steps, keeps the latest latents, reports progress and previews."""

    def __init__(self, previewer, total, on_step=None, on_preview=None, size=None, offset=0, overall=None):
        self.previewer = previewer
        self.total = total
        self.size = size  # of the finished images: previews are shown at it
        self.on_step = on_step
        self.on_preview = on_preview if previewer.available else None
        self.every = max(1, round(total / PREVIEWS_PER_RUN))
        self.offset = offset  # steps of the passes before this one (the hires fix's second pass follows the first)
        self.overall = overall or total
        self.done = 0
        self.latents = None
        self.last_preview = 0.0

    @property
    def done_overall(self):
        return self.offset + self.done

    def __call__(self, pipe, index, timestep, tensors):
        self.latents = tensors.get("latents")
        self.done = index + 1
        if self.on_step is not None:
            self.on_step(self.done_overall, self.overall)
        if self.on_preview is not None and self.done_overall < self.overall and self.done % self.every == 0:
            now = time.monotonic()
            if now - self.last_preview >= PREVIEW_MIN_INTERVAL_S:
                self.last_preview = now
                previews = self.previewer.images(self.latents)
                for preview in previews:
                    preview.info["final_size"] = self.size  # the view shows it at the size of the result
                self.on_preview(previews, self.done_overall, self.overall)
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
    mask=None,
    control=None,
    controlnet=None,
    loras=(),
    safety=True,
    offload_device=None,
    on_step=None,
    on_preview=None,
):
    """Make the pictures for `prompt` with merged `values` (see params.PAINT; None = not given). Returns an ImageResult.

    init, mask, control: (PIL image, label, hash) for image-to-image, inpainting (white = repaint) and the
    ControlNet's guide; controlnet: (ControlNetModel, name); loras: [(name, folder, weight file, weight)].
    on_step(step, total) after each step; on_preview(images, step, total) every few steps with cheap latent
    previews (their `info["final_size"]` is the size of the result).
    Ctrl-C stops within a step: the result holds the last previews, marked `interrupted`.
    """
    from ..previews import Previewer

    # 1. check the prompt; the values: the model card's, the input image's size, the house's
    prompt = prompt.strip("\n")
    if not prompt.strip():
        raise CreativeError("the prompt is empty: write it in the cell body")
    mode = mode_of(init, mask)
    values, sources = painting_values(pipe, spec, values, sources, init, control)
    check_mode(pipe, mode, model_name or getattr(spec, "name", ""))

    # 2. the LoRAs of this call, and only those; the pipeline view that runs it
    set_loras(pipe, loras, model_name)
    if controlnet is not None:
        check_controlnet(pipe, controlnet[0], controlnet[1], model_name)
    runner = view(pipe, mode, values["scheduler"], safety, controlnet[0] if controlnet is not None else None)
    _set_offload(pipe, runner, offload_device)
    notes = negative_notes(runner, values)

    # 3. the call: the prompt (weighted and long ones as compel's embeddings), the images at the picture's
    # size, seeds (image i of a batch uses seed + i) and generators
    encoded = prompt_inputs(runner, prompt, values)
    images, image_notes = image_inputs(mode, values, init, mask, control)
    kwargs, image_seeds, total = call_arguments(prompt, values, mode, images, encoded)
    hires_total = hires_steps(values) if values.get("hires") else 0
    final = final_size(values)
    tracker = _Steps(Previewer(runner), total, on_step, on_preview, final, overall=total + hires_total)

    # 4. paint (and repaint larger for the hires fix); Ctrl-C keeps the last previews
    output, last = None, tracker
    try:
        output = _call(runner, kwargs, tracker)
        if values.get("hires"):
            first = list(output.images)
            output, last = None, _Steps(Previewer(runner), hires_total, on_step, on_preview, final, offset=total, overall=total + hires_total)
            output = _hires_pass(pipe, values, safety, offload_device, kwargs, first, last)
    except KeyboardInterrupt:
        pass

    # 5. the recipe, written into every image
    recipe = paint_recipe(prompt, values, sources, model_name, runner, mode, init, mask, control, loras, image_seeds[0])
    kept = (images["init"], images["mask"]) if mode == "inpaint" else None
    return _result(output, last, recipe, values, sources, image_seeds, notes + image_notes, runner, tracker.overall, kept)


def check_mode(pipe, mode, model_name):
    """An inpainting model (its UNet reads a mask) only inpaints."""
    if mode != "inpaint" and is_inpainting_model(pipe):
        raise CreativeError(f"{model_name or 'this model'} is an inpainting model: give it --init IMAGE and --mask IMAGE (white = repaint)")


def painting_values(pipe, spec, values, sources, init, control=None):
    """The values a painting uses: what was merged, then the model card's settings (the image-to-image
    ones with an init image), the init (or control) image's aspect ratio for the size, and the house
    defaults of the values that apply."""
    img2img = init is not None
    model_layer = recommended(spec) if spec is not None else {}
    img2img_layer = model_layer.pop("img2img", {})
    if img2img:
        model_layer.update(img2img_layer)
    if spec is not None and spec.kind == "tiny" or "width" not in model_layer:
        model_layer["width"] = model_layer["height"] = native_size(pipe)  # tiny stand-ins keep their own size
    values, sources = dict(values), dict(sources or {})
    shaping = init if img2img else control
    if shaping is not None:  # the size follows the init (or control) image unless given
        width, height = fit_size(shaping[0].size, values.get("width"), values.get("height"), model_layer["width"] * model_layer["height"])
        values, sources = defaults.fill(values, sources, ("init image" if img2img else "control image", {"width": width, "height": height}))
    house = {k: v for k, v in HOUSE_DEFAULTS.items() if TASK[k].needs is None or values.get(TASK[k].needs) is not None}
    values, sources = defaults.fill(values, sources, ("model", model_layer), ("default", house))
    if sources.get("scheduler") == "default":
        sources["scheduler"] = "model"  # "default" is the model's own scheduler
    if control is not None and not values.get("control_mode"):
        values["control_mode"], sources["control_mode"] = control_mode_of(values), "default"
    check(values)
    steps, strength = values["steps"], values.get("strength")
    if img2img and int(steps * strength) < 1:
        raise CreativeError(
            f"--strength {strength:g} x --steps {steps} leaves no denoising step: use --steps {math.ceil(1 / strength)} or more"
        )
    if values.get("hires"):
        _check_hires(values)
    return values, sources


def _check_hires(values):
    width, height = final_size(values)
    if max(width, height) > MAX_SIZE:
        raise CreativeError(
            f"--hires {values['hires']:g} makes {width}x{height}, larger than {MAX_SIZE}: use a smaller --hires or --width/--height"
        )
    if int(hires_steps(values, total=True) * values["hires_strength"]) < 1:
        raise CreativeError(f"--hires-strength {values['hires_strength']:g} leaves the second pass no step: raise --hires-steps or --hires-strength")


def hires_steps(values, total=False):
    """The hires fix's second pass: its steps (`total`: as asked; by default the first pass's, or as many as
    leave one denoising step at --hires-strength: 2 at 0.5 after SD-Turbo's one), or the denoising steps it takes."""
    asked = values.get("hires_steps") or max(values["steps"], math.ceil(1 / values["hires_strength"]))
    return asked if total else min(int(asked * values["hires_strength"]), asked)


def final_size(values):
    """The size of the pictures made: the hires fix's, multiples of 8, else width x height."""
    width, height = values["width"], values["height"]
    if not values.get("hires"):
        return width, height
    return tuple(int(round(v * values["hires"] / 8) * 8) for v in (width, height))


def negative_notes(runner, values):
    """Refuse a negative prompt the model cannot take; note one that has no effect."""
    negative = values["negative"] or None
    if negative and "negative_prompt" not in call_parameters(type(runner)):
        raise CreativeError("this model takes no negative prompt: drop --negative")
    if negative and values["guidance"] <= 1:
        return [f"--negative has no effect at guidance {values['guidance']:g}: it needs --guidance above 1"]
    return []


def prompt_inputs(runner, prompt, values):
    """The pipeline's prompt arguments as compel's embeddings when the prompt or negative has A1111 weights or
    is longer than CLIP reads at once; None when plain text does (the pipeline encodes it itself)."""
    pieces = prompt_weights.needs_embeddings(runner, prompt, values["negative"])
    if pieces is None:
        return None
    kind = prompt_weights.kind_of(runner)
    wanted = {"prompt_embeds"} | ({"pooled_prompt_embeds"} if kind == "sdxl" else set())
    if not wanted <= call_parameters(type(runner)):
        raise CreativeError("this model takes no prompt weights or long prompts: write a plain prompt of up to 77 tokens")
    return prompt_weights.embeddings(runner, *pieces, kind=kind)


def check_mask(mask):
    """A mask with nothing white in it would repaint nothing."""
    if mask.convert("L").getextrema()[1] < 128:
        raise CreativeError("the mask is all black, so nothing would be repainted: paint white where the picture should change")


def image_inputs(mode, values, init, mask, control):
    """({"init", "mask", "control"}: the images at the picture's size, notes on what was resized or is empty)."""
    size = (values["width"], values["height"])
    images, notes = {}, []
    if init is not None:
        image = init[0]
        images["init"] = image if image.size == size else image.resize(size, _lanczos())
    if mask is not None:
        image = mask[0].convert("L")
        check_mask(image)
        if image.size != init[0].size:
            notes.append(f"the mask ({image.width}x{image.height}) was resized to the --init image's {init[0].width}x{init[0].height}")
        image = image if image.size == size else image.resize(size, _lanczos())
        blur = values.get("mask_blur") or 0
        images["mask"] = image.filter(_gaussian(blur)) if blur else image  # what is repainted, and how softly it meets the rest
    if control is not None:
        image = control[0]
        if abs(image.width * size[1] - image.height * size[0]) > max(image.size) * max(size) * 0.01:
            notes.append(f"the control image ({image.width}x{image.height}) was resized to the picture's {size[0]}x{size[1]}")
        images["control"] = controls.guide(image, values["control_mode"], size)
        if controls.is_blank(images["control"]):
            notes.append(f"the control image has nothing for the ControlNet to follow (read as {values['control_mode']}): draw or give one")
    return images, notes


def call_arguments(prompt, values, mode, images=None, encoded=None):
    """(keyword arguments of the pipeline call, the seed of each image, the steps it will take)."""
    images = images or {}
    n, pos = values["n"], values.get("batch_pos")
    seed = seeds_module.choose(values.get("seed"))
    first = (seed - (pos or 0)) % (seeds_module.MAX_SEED + 1)
    image_seeds = batch_seeds(first, n)
    steps, width, height = values["steps"], values["width"], values["height"]
    kwargs = {
        "num_inference_steps": steps,
        "guidance_scale": values["guidance"],
        "num_images_per_prompt": n,
        "generator": generators(image_seeds),
    }
    if encoded is not None:
        kwargs.update(encoded)
    else:
        kwargs["prompt"] = prompt
        if values["negative"]:
            kwargs["negative_prompt"] = values["negative"]
    if "control" in images:
        kwargs["controlnet_conditioning_scale"] = values["control_scale"]
        kwargs["image" if mode == "txt2img" else "control_image"] = images["control"]
    if mode == "txt2img":
        kwargs["width"], kwargs["height"] = width, height
        return kwargs, image_seeds, steps
    kwargs["image"] = images["init"]
    kwargs["strength"] = values["strength"]
    if mode == "inpaint":
        kwargs.update(mask_image=images["mask"], width=width, height=height)
    return kwargs, image_seeds, min(int(steps * values["strength"]), steps)


def _hires_pass(pipe, values, safety, offload_device, first_kwargs, first, tracker):
    """The hires fix: the first pass's pictures upscaled (Lanczos) and repainted by the image-to-image view
    of the same weights, with the same prompt and seeds."""
    runner = view(pipe, "img2img", values["scheduler"], safety)
    _set_offload(pipe, runner, offload_device)
    size = final_size(values)
    n = values["n"]
    kwargs = {
        key: value for key, value in first_kwargs.items()
        if key in ("prompt", "negative_prompt", "prompt_embeds", "negative_prompt_embeds", "pooled_prompt_embeds", "negative_pooled_prompt_embeds", "guidance_scale")
    }
    if n > 1:  # one prompt per picture: the image-to-image pipeline pairs them
        for key in [k for k in kwargs if k.endswith("embeds")]:
            kwargs[key] = kwargs[key].repeat(n, *([1] * (kwargs[key].ndim - 1)))
        for key in ("prompt", "negative_prompt"):
            if key in kwargs:
                kwargs[key] = [kwargs[key]] * n
    seeds = [g.initial_seed() for g in (first_kwargs["generator"] if isinstance(first_kwargs["generator"], list) else [first_kwargs["generator"]])]
    upscaled = [image.resize(size, _lanczos()) for image in first]
    kwargs.update(
        image=upscaled if n > 1 else upscaled[0],
        strength=values["hires_strength"],
        num_inference_steps=hires_steps(values, total=True),
        generator=generators(seeds),
    )
    return _call(runner, kwargs, tracker)


RECORDED = ("negative", "steps", "guidance", "width", "height", "n", "scheduler")
# What each kind of call records beside those (and the hash of each image it read)
RECORDED_BY = {
    "img2img": ("init", "strength"),
    "inpaint": ("init", "strength", "mask", "mask_blur"),
    "control": ("control", "controlnet", "control_mode", "control_scale"),
    "hires": ("hires", "hires_strength", "hires_steps"),
}


def paint_recipe(prompt, values, sources, model_name, runner, mode="txt2img", init=None, mask=None, control=None, loras=(), first_seed=None):
    recorded = list(RECORDED)
    values = dict(values)
    if values["scheduler"] == "default":
        values["scheduler"] = our_scheduler_name(runner.scheduler)
    inputs = {"init": init, "mask": mask, "control": control}
    for name, given in inputs.items():
        if given is not None:
            values[name] = given[1]
    if mode != "txt2img":
        recorded += RECORDED_BY[mode]
    if control is not None:
        recorded += RECORDED_BY["control"]
    if values.get("hires"):
        if not values.get("hires_steps"):
            values["hires_steps"] = hires_steps(values, total=True)
            sources["hires_steps"] = sources.get("steps", "default")
        recorded += RECORDED_BY["hires"]
    if loras:
        values["lora"] = [params.lora_text(name, weight) for name, _, _, weight in loras]
        recorded.append("lora")
    if values.get("compile"):
        recorded.append("compile")
    used, used_sources = used_values(values, sources, recorded)
    recipe = make_recipe("paint", model_name, first_seed, prompt, used, used_sources)
    for name, given in inputs.items():
        if given is not None and given[2]:
            recipe[f"{name}_hash"] = given[2]
    return recipe


def _result(output, tracker, recipe, values, sources, image_seeds, notes, runner, overall=None, kept=None):
    """The ImageResult: each image carrying its own A1111 text (its seed, its place in the batch)."""
    used = recipe["params"]
    sampler = SAMPLER_NAMES.get(used["scheduler"]) or scheduler_class_name(runner.scheduler).replace("Scheduler", "")
    interrupted = output is None
    if not interrupted:
        images = list(output.images)
        if kept is not None:
            images = keep_unmasked(runner, images, *kept)
        flagged = getattr(output, "nsfw_content_detected", None) or []
        notes = notes + [
            f"image {index + 1} was blacked out by the model's safety checker "
            "(%config CreativeMagics.safety_checker = False turns it off)"
            for index, hit in enumerate(flagged)
            if hit
        ]
    else:
        images = tracker.previews(final_size(values))
        recipe["interrupted"] = True
        recipe["stopped_at_step"] = tracker.done_overall
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
        steps_done=tracker.done_overall,
        steps_total=overall or tracker.overall,
        notes=notes,
    )


def sweep_result(results, made, prompt, values, interrupted=False, source="argument"):
    """One ImageResult for a sweep: the cells' pictures in grid order (`.images`), each cell's own recipe
    (`.recipes`, each making its picture alone), and the labelled grid (`.sheet`, what is shown), which
    carries the sweep's recipe in A1111's X/Y/Z plot fields."""
    from ..media import labelled_grid

    total = sweeps.count(made)
    images = [result.image for result in results]
    labels = [[axis.caption(value) for value in axis.values] for axis in made] + [[""]] * (sweeps.MAX_AXES - len(made))
    sheet = labelled_grid(images + [None] * (total - len(images)), *labels)
    if results:
        recipe = {**results[0].recipe, "params": dict(results[0].recipe["params"]), "sources": dict(results[0].recipe["sources"])}
    else:
        recipe = {"task": "paint", "model": values.get("model"), "seed": values.get("seed"), "prompt": prompt, "params": {}, "sources": {}}
    recipe.pop("interrupted", None)
    recipe["params"]["sweep"] = [axis.written for axis in made]
    recipe["sources"]["sweep"] = source
    recipe["cells"] = total
    if interrupted:
        recipe["interrupted"] = True
        recipe["cells_done"] = len(results)
    if sheet is not None:
        sheet = with_recipe_text(sheet, recipe_text(recipe))
    notes = list(dict.fromkeys(note for result in results for note in result.notes))
    if interrupted:
        notes.append(f"stopped after {len(results)} of {total} cells; the grid shows those")
    return ImageResult(
        images=images,
        recipe=recipe,
        seeds=[result.seeds[0] for result in results],
        prompt=prompt,
        interrupted=interrupted,
        steps_done=sum(result.steps_done for result in results),
        steps_total=sum(result.steps_total for result in results),
        notes=notes,
        sheet=sheet,
        cells=[result.recipe for result in results],
    )


def _gaussian(radius):
    from PIL import ImageFilter

    return ImageFilter.GaussianBlur(radius)


def keep_unmasked(runner, images, init, mask):
    """Inpainted pictures with the init image pasted back where the mask is black, through the mask's soft
    edge (A1111 does the same): the part not repainted keeps its very pixels, not a VAE round trip of them."""
    from PIL import Image

    overlay = getattr(getattr(runner, "image_processor", None), "apply_overlay", None)
    if overlay is not None:
        return [overlay(mask, init, image) for image in images]
    return [Image.composite(image.convert("RGB"), init, mask) for image in images]


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
