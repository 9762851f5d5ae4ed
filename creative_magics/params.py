"""One declaration per parameter of each task: name, type, range, default, help, flag and panel control.

The magics' flags, the checks (one line each, before any model loads), the slider panel, the `%config`
defaults and the recipes are all derived from these tables. Adding a parameter touches its table
here and the task that uses it, nothing else.
"""

import math
import numbers
from dataclasses import dataclass, field

from .errors import CreativeError
from .nets.layers import LAYER_NAMES
from .seeds import MAX_SEED


@dataclass(frozen=True)
class Slider:
    """How the slider panel shows a parameter."""

    low: float
    high: float
    step: float
    label: str = ""
    log: bool = False  # a FloatLogSlider over 10**low .. 10**high


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # int | float | text | choice | bool | texts | floats | choices | seed | model | image | images | audio | midi | path
    #            | loras (MODEL[:WEIGHT] items) | sweeps (NAME=V1,V2,... items)
    default: object = None  # the house default, used when nothing else gives one (None: the task decides)
    help: str = ""
    low: float = None
    high: float = None
    open_low: bool = False  # low itself is not allowed
    open_high: bool = False
    choices: tuple = ()
    multiple_of: int = None
    hint: str = ""  # said after the rule, e.g. "(0 means greedy)"
    flags: tuple = ()  # the magic's flags; empty: `--name-with-dashes`
    metavar: str = None
    negated: bool = False  # a bool whose flag turns it off (`--no-stream`)
    magic: bool = True  # the magic has a flag for it
    config: bool = True  # may be a `%config CreativeMagics.<task>_defaults` value
    panel: Slider = None
    methods: tuple = ()  # %stylize: the methods that use it; %%compose: "audio" or "midi" (empty: all)
    needs: str = None  # the parameter it only means something with (strength: init)
    needs_why: str = ""  # what it is for, said when that parameter is missing
    remote: str = None  # what it becomes in a call to an OpenAI-compatible server: the API's field, or OURS
    remote_extra: str = None  # its field on servers that take more than OpenAI's API (vLLM, llama.cpp), when the endpoint lists it
    local: bool = True  # local models use it (False: only remote models do, e.g. --presence-penalty)
    a1111: str = None  # its field in an AUTOMATIC1111 `parameters` text ("Field/Part": a part of a compound field)
    axis: str = None  # %%paint: its axis name in A1111's X/Y/Z plot; only parameters with one can be swept

    @property
    def flag(self):
        """How messages name it: its first long flag (`--top-p`), or `-n`."""
        if self.flags:
            longs = [f for f in self.flags if f.startswith("--")]
            return (longs or list(self.flags))[0]
        return "--" + self.name.replace("_", "-")

    @property
    def all_flags(self):
        return self.flags or (self.flag,)

    def check(self, value):
        """Raise CreativeError, one line, when `value` breaks this parameter's type or range; None passes."""
        if value is None:
            return
        kind = self.kind
        if kind in ("int", "seed"):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise self._error(self._whole_rule() if kind == "seed" else "a whole number", value, hint=False)
            self._check_range(int(value))
        elif kind == "float":
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise self._error("a number", value, hint=False)
            self._check_range(value)
        elif kind in ("text", "model"):
            if not isinstance(value, str):
                raise self._error("text", value, hint=False)
            if kind == "model" and not value.strip():
                raise CreativeError(f"{self.flag} is empty: give an alias, a hub id or a local folder")
        elif kind == "choice":
            if value not in self.choices:
                raise self._error(_either(self.choices), value, hint=False)
        elif kind == "bool":
            if not isinstance(value, bool):
                raise self._error("True or False", value, hint=False)
        elif kind in ("texts", "floats", "choices"):
            items = [value] if isinstance(value, (str, numbers.Number)) else value
            if not isinstance(items, (list, tuple)):
                raise self._error(f"a list of {'numbers' if kind == 'floats' else 'names' if kind == 'choices' else 'texts'}", value)
            for item in items:
                if kind == "floats":
                    if isinstance(item, bool) or not isinstance(item, numbers.Real) or not math.isfinite(item):
                        raise self._error("a number", item, hint=False)
                    self._check_range(item)
                elif kind == "choices":
                    if item not in self.choices:
                        raise CreativeError(f"{self.flag}: unknown {item!r}; choose from {', '.join(self.choices)}")
                elif not isinstance(item, str):
                    raise self._error("text", item, hint=False)
        elif kind == "loras":
            for item in _items(value, self.flag):
                _, weight = parse_lora(item, self.flag)
                if not self.low <= weight <= self.high:
                    raise CreativeError(f"{self.flag} {_shown_lora(item)}: the weight must be in [{_number(self.low)}, {_number(self.high)}], not {weight:g}")
        elif kind == "sweeps":
            for item in _items(value, self.flag, mapping=True):
                parse_sweep(item, self.flag)

    def _check_range(self, value):
        below = self.low is not None and (value <= self.low if self.open_low else value < self.low)
        above = self.high is not None and (value >= self.high if self.open_high else value > self.high)
        if below or above:
            raise self._error(self.rule(), value)
        if self.multiple_of and value % self.multiple_of:
            raise self._error(self.rule(), value)

    def _whole_rule(self):
        return f"a whole number from 0 to {MAX_SEED}" if self.kind == "seed" else "a whole number"

    def rule(self):
        """What a good value is, in words: 'in (0, 1]', '>= 0', 'a multiple of 8 from 64 to 2048'."""
        if self.kind == "seed":
            return self._whole_rule()
        low, high = _number(self.low), _number(self.high)
        if self.multiple_of:
            return f"a multiple of {self.multiple_of} from {low} to {high}"
        if self.kind == "int":  # whole numbers: closed ranges
            if self.low is not None and self.high is not None:
                return f"a whole number from {low} to {high}"
            return f"a whole number >= {low}" if self.low is not None else f"a whole number <= {high}"
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.open_low else '['}{low}, {high}{')' if self.open_high else ']'}"
        if self.low is not None:
            return f"{'>' if self.open_low else '>='} {low}"
        if self.high is not None:
            return f"{'<' if self.open_high else '<='} {high}"
        return "a number"

    def _error(self, rule, value, hint=True):
        hint = f" {self.hint}" if self.hint and hint else ""
        return CreativeError(f"{self.flag} must be {rule}{hint}, not {_shown(value)}")


# -- the syntax of --lora MODEL[:WEIGHT] and --sweep NAME=V1,V2,... -----------------------------------


def _items(value, flag, mapping=False):
    """The items of a repeatable value: one item, or a list or tuple of them (a dict's items for sweeps)."""
    if mapping and isinstance(value, dict):
        return list(value.items())
    if isinstance(value, str) or _is_pair(value):
        return [value]
    if isinstance(value, (list, tuple)):
        return list(value)
    raise CreativeError(f"{flag} takes one item or a list of them, not {_shown(value)}")


def _is_pair(value):
    """("style", 0.8) or ("steps", [10, 20]): one item given as a pair."""
    return isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str) and not isinstance(value[1], str)


def items(param, value):
    """The items of a `loras` or `sweeps` value, as a list."""
    return [] if value is None else _items(value, param.flag, mapping=param.kind == "sweeps")


def _shown_lora(item):
    return item if isinstance(item, str) else ":".join(str(part) for part in item)


def parse_lora(item, flag="--lora"):
    """(model reference, weight) of one `--lora` item: "MODEL", "MODEL:WEIGHT", "REPO:FILE.safetensors[:WEIGHT]",
    or a (model, weight) pair. One line when it cannot be read."""
    if isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str):
        ref, weight = item
        if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not math.isfinite(weight):
            raise CreativeError(f"{flag} {item[0]}: the weight must be a number, not {_shown(weight)}")
        if not ref.strip():
            raise CreativeError(f"{flag} needs a LoRA: a .safetensors file, a folder or a hub id")
        return ref.strip(), float(weight)
    if not isinstance(item, str):
        raise CreativeError(f"{flag} takes MODEL[:WEIGHT] (e.g. style.safetensors:0.8), not {_shown(item)}")
    text = item.strip()
    ref, colon, tail = text.rpartition(":")
    weight = 1.0
    if not colon or tail.lower().endswith(".safetensors") or _drive_letter(ref, tail):
        ref = text  # no weight: MODEL, REPO:FILE.safetensors, or a Windows path
    else:
        try:
            weight = float(tail)
        except ValueError:
            raise CreativeError(f"{flag} {text}: the weight after ':' must be a number (e.g. {ref or 'style'}:0.8)") from None
        if not math.isfinite(weight):
            raise CreativeError(f"{flag} {text}: the weight after ':' must be a number (e.g. {ref}:0.8)")
    if not ref.strip():
        raise CreativeError(f"{flag} {text}: give the LoRA before the weight (MODEL:WEIGHT)")
    return ref.strip(), weight


def _drive_letter(ref, tail):
    return len(ref) == 1 and ref.isalpha() and tail.startswith(("\\", "/"))


def lora_text(ref, weight):
    """The canonical MODEL:WEIGHT form a recipe records (and `<lora:MODEL:WEIGHT>` in A1111's prompt)."""
    return f"{ref}:{_number(float(weight))}"


def parse_sweep(item, flag="--sweep"):
    """(name as written, [values as written]) of one `--sweep` item: "NAME=V1,V2,..." or a (name, values) pair."""
    if isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str):
        name, values = item
        values = [values] if isinstance(values, (str, numbers.Number)) else values
        if not isinstance(values, (list, tuple)) or not values:
            raise CreativeError(f"{flag} {name}: give the values as a list, e.g. {{'{name}': [3, 5, 7]}}")
        return name.strip(), list(values)
    if not isinstance(item, str) or "=" not in item:
        raise CreativeError(f"{flag} must be NAME=V1,V2,... (e.g. guidance=3,5,7), not {_shown(item)}")
    name, _, written = item.partition("=")
    values = [v.strip() for v in written.split(",") if v.strip()]
    if not name.strip() or not values:
        raise CreativeError(f"{flag} must be NAME=V1,V2,... (e.g. guidance=3,5,7), not {_shown(item)}")
    return name.strip(), values


def _number(value):
    if value is None:
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)


def _shown(value):
    if isinstance(value, float):
        return f"{value:g}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# `remote=OURS`: a remote call uses the value without sending a field of that name (where to save, which API).
OURS = "(ours)"


def _either(choices):
    words = [str(c) for c in choices]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


@dataclass(frozen=True)
class Task:
    """The parameters of one task, in the order the magic's help lists them."""

    name: str
    params: tuple
    by_name: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "by_name", {p.name: p for p in self.params})

    def __getitem__(self, name):
        return self.by_name[name]

    def __contains__(self, name):
        return name in self.by_name

    @property
    def names(self):
        return tuple(self.by_name)

    def house_defaults(self):
        """{name: default} of the parameters that have a house default."""
        return {p.name: p.default for p in self.params if p.default is not None}

    def config_names(self):
        """What `%config CreativeMagics.<task>_defaults` may set (per-call values such as seeds and images may not)."""
        return tuple(p.name for p in self.params if p.config)

    def panel_params(self):
        return tuple(p for p in self.params if p.panel is not None)

    def check_each(self, values):
        """One line for the first value that breaks its declaration; values not given (None) pass."""
        for name, value in values.items():
            param = self.by_name.get(name)
            if param is not None:
                param.check(value)

    def check(self, values):
        """check_each, then: a value that needs another (strength: init) has it."""
        self.check_each(values)
        for param in self.params:
            if param.needs and values.get(param.name) is not None and values.get(param.needs) is None:
                other = self.by_name[param.needs]
                raise CreativeError(f"{param.flag} is for {param.needs_why}: add {other.flag} {other.metavar or ''}".rstrip())

    def drop_unneeded(self, values, sources, keep):
        """Copies of (values, sources) without the values whose `needs` is missing, unless they came from a
        source in `keep` (the caller's own: then check() says so in one line). A panel slider, a default
        or a recipe's value applies only to the calls it means something for."""
        values, sources = dict(values), dict(sources)
        for param in self.params:
            if param.needs and values.get(param.needs) is None and param.name in values and sources.get(param.name) not in keep:
                del values[param.name]
                sources.pop(param.name, None)
        return values, sources

    def remote_fields(self, extras=()):
        """{name: API field} of what a call to an OpenAI-compatible server sends; `extras` (an endpoint's
        `extra_params`) adds the parameters it takes beyond OpenAI's API under their `remote_extra` names."""
        fields = {p.name: p.remote for p in self.params if p.remote and p.remote != OURS}
        fields.update({p.name: p.remote_extra for p in self.params if p.remote_extra and p.name in extras and not p.remote})
        return fields

    def not_for(self, values, remote, extras=()):
        """The names in `values` that a local model (remote=False) or a remote one cannot use."""
        if not remote:
            return [name for name in values if name in self.by_name and not self.by_name[name].local]
        usable = set(self.remote_fields(extras)) | {p.name for p in self.params if p.remote == OURS}
        return [name for name in values if name in self.by_name and name not in usable]

    def doc(self):
        """The parameters as a docstring's lines: `name: help`."""
        return "\n".join(f"    {p.name}: {p.help}" for p in self.params if p.magic)

    def refuse_unknown(self, names, caller=None):
        extra = sorted(set(names) - set(self.by_name))
        if extra:
            caller = caller or f"{self.name}()"
            raise CreativeError(f"{caller} got unknown parameter(s): {', '.join(extra)}; it takes {', '.join(sorted(self.by_name))}")


MODEL_HELP = "alias, hub id, local folder or ENDPOINT:MODEL of a remote server (default: {default}; %%creative aliases {task} lists them)"


def _model(task, default, **extra):
    return Param("model", "model", help=MODEL_HELP.format(default=default, task=task), flags=("-m", "--model"), remote="model", **extra)


def _seed(help="seed for sampling (drawn and recorded when not given)", **extra):
    return Param("seed", "seed", help=help, low=0, high=MAX_SEED, config=False, **extra)


MAX_TEXTS = 16
MAX_IMAGES = 16
MAX_PIECES = 8

STORY = Task(
    "story",
    (
        _model("story", "smollm2"),
        Param("temperature", "float", 0.8, "randomness: 0 = greedy, 0.7 focused, 1.2 wild", low=0, hint="(0 means greedy)",
              panel=Slider(0.0, 2.0, 0.01, "temperature"), remote="temperature"),
        Param("top_p", "float", 0.95, "nucleus sampling: keep the most likely tokens up to this probability mass (0-1]",
              low=0, high=1, open_low=True, panel=Slider(0.01, 1.0, 0.01, "top-p"), remote="top_p"),
        Param("top_k", "int", 50, "keep only the K most likely tokens (0 = off)", low=0, hint="(0 turns it off)",
              panel=Slider(0, 200, 1, "top-k"), remote_extra="top_k"),
        Param("min_p", "float", 0.0, "drop tokens less likely than min-p x the most likely one (0 = off)", low=0, high=1,
              panel=Slider(0.0, 1.0, 0.01, "min-p"), remote_extra="min_p"),
        Param("repetition_penalty", "float", 1.1, "> 1 discourages repeating tokens", low=0, open_low=True, hint="(1 = none)",
              panel=Slider(1.0, 2.0, 0.01, "repetition penalty"), remote_extra="repetition_penalty"),
        Param("no_repeat_ngram", "int", 0, "never repeat an n-gram of this size (0 = off)", low=0),
        Param("max_new_tokens", "int", 200, "length limit of each text, in tokens", low=1,
              panel=Slider(1, 2048, 1, "max new tokens"), remote="max_tokens"),
        Param("min_new_tokens", "int", 0, "write at least this many tokens", low=0, remote_extra="min_tokens"),
        _seed(remote="seed"),
        Param("n", "int", None, "number of samples", low=1, high=MAX_TEXTS, flags=("-n",), remote="n"),
        Param("system", "text", None, "system message for instruct models", metavar="TEXT", remote="messages"),
        Param("stop", "texts", None, "stop at any of these strings (\\n = newline)", metavar="STR", remote="stop"),
        Param("stream", "bool", True, "show the text when finished instead of as it comes", flags=("--no-stream",), negated=True,
              remote="stream"),
        Param("greedy", "bool", None, "always take the most likely token (no sampling)", remote="temperature"),
        Param("compile", "bool", None, "GPU fast path: a static KV cache and torch.compile of the forward (a compiled copy of the "
              "model, compiled on its first call; later calls reuse it)"),
        Param("show_probs", "bool", None, "shade each token by its probability, with the top 5 alternatives on hover "
              "(`.tokens` on the result; local models)"),
        Param("presence_penalty", "float", None, "remote models: > 0 steers away from tokens already used, toward new topics (-2 to 2)",
              low=-2, high=2, local=False, remote="presence_penalty"),
        Param("frequency_penalty", "float", None, "remote models: > 0 penalises tokens by how often they appeared (-2 to 2)",
              low=-2, high=2, local=False, remote="frequency_penalty"),
        Param("api", "choice", None, "remote models: chat (chat/completions, instruct models; the endpoint's default) or "
              "completions (base models that continue the text)", choices=("chat", "completions"), metavar="NAME", local=False, remote=OURS),
    ),
)

MAX_SWEEP_CELLS = 64  # a larger sweep needs --yes
LORA_WEIGHT = 10  # a LoRA weight beyond +-10 is a typo (0.8 written as 8, say)

PAINT = Task(
    "paint",
    (
        _model("paint", "sd-turbo", a1111="Model", axis="Checkpoint name"),
        Param("negative", "text", "", "what the picture should not show (needs --guidance above 1)", metavar="TEXT",
              a1111="Negative prompt"),
        Param("steps", "int", 25, "denoising steps (default: the model's, e.g. 1 for SD-Turbo, 25 for SD 1.5)", low=1, high=500,
              panel=Slider(1, 150, 1, "sampling steps"), a1111="Steps", axis="Steps"),
        Param("guidance", "float", 7.5, "how closely to follow the prompt (CFG scale; 0-1 = off, as SD-Turbo wants)", low=0, high=50,
              hint="(0-1 = no guidance)", panel=Slider(0.0, 30.0, 0.5, "CFG scale"), a1111="CFG scale", axis="CFG Scale"),
        Param("width", "int", None, "pixels, a multiple of 8 (default: the model's size)", low=64, high=2048, multiple_of=8,
              panel=Slider(64, 2048, 8, "width"), a1111="Size", remote="size", axis="Width"),
        Param("height", "int", None, "pixels, a multiple of 8 (default: the model's size)", low=64, high=2048, multiple_of=8,
              panel=Slider(64, 2048, 8, "height"), a1111="Size", remote="size", axis="Height"),
        _seed("seed of the first image; image i uses seed + i (drawn and recorded when not given)", a1111="Seed", remote_extra="seed",
              axis="Seed"),
        Param("n", "int", 1, "number of images (a batch, shown as one grid)", low=1, high=MAX_IMAGES, flags=("-n",), a1111="Batch size",
              remote="n"),
        Param("scheduler", "choice", "default", "euler, euler_a, dpm++, ddim, lcm (LCM models), or default (the model's own)",
              choices=("default", "euler", "euler_a", "dpm++", "ddim", "lcm"), metavar="NAME", a1111="Sampler", axis="Sampler"),
        Param("init", "image", None, "start from this image (image-to-image): a file, a URL, a variable, last or canvas",
              metavar="IMAGE", config=False, a1111="Init image", remote="image"),
        Param("strength", "float", 0.75, "with --init: how much to repaint, in (0, 1] (default 0.75; 0.5 for Turbo models)",
              low=0, high=1, open_low=True, hint="(how much of the init image is repainted)",
              panel=Slider(0.01, 1.0, 0.01, "denoising strength"), a1111="Denoising strength", needs="init",
              needs_why="image-to-image", axis="Denoising"),
        Param("mask", "image", None, "with --init: repaint only where this image is white (inpainting); canvas = the strokes drawn "
              "on the style canvas", metavar="IMAGE", config=False, needs="init",
              needs_why="inpainting: it marks what to repaint in the --init image", a1111="Mask image", remote="mask"),
        Param("mask_blur", "int", 4, "with --mask: soften the mask's edge by this many pixels, where the repainted part meets the "
              "kept one (default 4, as A1111; 0 = a hard edge)", low=0, high=64, needs="mask", needs_why="inpainting", metavar="PX",
              a1111="Mask blur"),
        Param("control", "image", None, "a ControlNet guide: a sketch (canvas), a photo for its edges, a depth map, a pose",
              metavar="IMAGE", config=False, a1111="ControlNet 0/Image"),
        Param("controlnet", "model", None, "with --control: the ControlNet, an alias (scribble, canny, depth, lineart, openpose; "
              "NAME-sdxl for SDXL), a hub id or a folder (default: the one for --control-mode)", metavar="MODEL", needs="control",
              needs_why="ControlNet: it reads the --control image", a1111="ControlNet 0/Model"),
        Param("control_mode", "choice", None, "with --control: how the image is read: scribble (dark strokes on a light ground), "
              "canny (the edges of a picture) or none (as it is: edges, a depth map, a pose); default scribble",
              choices=("scribble", "canny", "none"), metavar="MODE", needs="control", needs_why="ControlNet",
              a1111="ControlNet 0/Module", axis="ControlNet module"),
        Param("control_scale", "float", 1.0, "with --control: how strongly the ControlNet steers, 0-2 (default 1)", low=0, high=2,
              needs="control", needs_why="ControlNet", panel=Slider(0.0, 2.0, 0.05, "ControlNet weight"),
              a1111="ControlNet 0/Weight", axis="ControlNet weight"),
        Param("lora", "loras", None, "apply a LoRA, MODEL[:WEIGHT] (a .safetensors file, a folder, a hub id or an alias; weight "
              "default 1); repeat for several", low=-LORA_WEIGHT, high=LORA_WEIGHT, metavar="MODEL[:WEIGHT]", axis="LoRA weight"),
        Param("hires", "float", None, "hires fix: paint at the model's size, upscale by this factor and repaint at the larger size",
              low=1, high=4, open_low=True, metavar="SCALE", a1111="Hires upscale", axis="Hires upscale"),
        Param("hires_strength", "float", 0.5, "with --hires: how much of the larger picture is repainted, in (0, 1] (default 0.5)",
              low=0, high=1, open_low=True, needs="hires", needs_why="the hires fix", panel=Slider(0.01, 1.0, 0.01, "hires strength"),
              a1111="Denoising strength", axis="Hires denoising"),
        Param("hires_steps", "int", None, "with --hires: steps of the second pass (default: --steps, at least one denoising step)",
              low=1, high=500,
              needs="hires", needs_why="the hires fix", a1111="Hires steps", axis="Hires steps"),
        Param("sweep", "sweeps", None, "paint one picture per value, NAME=V1,V2,... (any flag with an axis: steps, guidance, seed, "
              "scheduler, m, lora, ...); up to three make the X, Y and Z of one labelled grid", metavar="NAME=V1,V2", config=False),
        Param("yes", "bool", None, f"paint a sweep of more than {MAX_SWEEP_CELLS} pictures", config=False),
        Param("compile", "bool", None, "GPU fast path: torch.compile of the UNet and VAE decoder, channels_last, fused QKV "
              "projections and SDPA attention (a compiled copy of the model, compiled on its first call; later calls reuse it)",
              a1111="Compile"),
        Param("enhance", "bool", None, "let the story model turn the prompt into a detailed painting prompt first (subject, style, "
              "light, composition); the recipe keeps both", config=False, remote=OURS),
        Param("save", "path", None, "also write the images as PNGs with their recipes into this folder", metavar="DIR", config=False,
              remote=OURS),
        Param("batch_pos", "int", None, "the image of a batch a recipe stands for", low=0, magic=False, config=False, a1111="Batch pos",
              remote=OURS),
        Param("quality", "choice", None, "remote models: standard or hd (dall-e-3); low, medium, high or auto (gpt-image-1)",
              choices=("standard", "hd", "low", "medium", "high", "auto"), metavar="NAME", local=False, remote="quality", a1111="Quality"),
        Param("style", "choice", None, "remote models: vivid or natural (dall-e-3)", choices=("vivid", "natural"), metavar="NAME",
              local=False, remote="style", a1111="Style"),
    ),
)

STYLIZE = Task(
    "stylize",
    (
        Param("method", "choice", "gatys",
              "gatys (neural style transfer on VGG19, the default), adain (any style image in one pass), cyclegan (a painter: "
              "--style monet, vangogh, cezanne or ukiyoe) or img2img (a text style in the cell body)",
              choices=("gatys", "adain", "cyclegan", "img2img"), metavar="NAME"),
        Param("model", "model", None,
              "gatys: VGG19 weights (default vgg19); adain: a folder with vgg_normalised.pth and decoder.pth (default adain); "
              "cyclegan: a generator .pth (default: the painter's); img2img: a paint model (default sd-turbo)",
              flags=("-m", "--model")),
        Param("steps", "int", 300, "gatys: iterations (default 300); img2img: denoising steps", low=1,
              panel=Slider(1, 1000, 1, "iterations"), methods=("gatys", "img2img")),
        Param("size", "int", 512, "longer side of the result, 32-2048 (gatys 512, 256 on the CPU; adain 512; cyclegan: the "
              "content's own, at most 1024, 512 on the CPU)", low=32, high=2048, metavar="PX", methods=("gatys", "adain", "cyclegan")),
        Param("alpha", "float", 1.0, "adain: how much style, from 0 (the content, through the decoder) to 1 (all style, the default)",
              low=0, high=1, metavar="A", panel=Slider(0.0, 1.0, 0.01, "AdaIN alpha"), methods=("adain",)),
        Param("live", "bool", None, "adain: run again on every stroke of the style canvas (preview size while you draw, full size "
              "when you stop); give canvas as --style or --content", config=False, methods=("adain",)),
        Param("style_weight", "float", 1e6, "how strongly to match the style (default 1e6)", low=0, metavar="W",
              panel=Slider(0, 10, 0.1, "style weight", log=True), methods=("gatys",)),
        Param("content_weight", "float", 1.0, "how strongly to keep the content (default 1)", low=0, metavar="W", methods=("gatys",)),
        Param("tv_weight", "float", 1e-6, "smoothness: total-variation weight (default 1e-6)", low=0, metavar="W", methods=("gatys",)),
        Param("init", "choice", "content", "start from the content (default) or from noise", choices=("content", "noise"),
              metavar="FROM", methods=("gatys",)),
        Param("optimizer", "choice", "lbfgs", "lbfgs (default; few iterations, sharp) or adam", choices=("lbfgs", "adam"),
              metavar="NAME", methods=("gatys",)),
        Param("lr", "float", None, "optimizer step size (default 1 for lbfgs, 0.02 for adam)", low=0, open_low=True, methods=("gatys",)),
        Param("preserve_color", "bool", False, "keep the content's colours (gatys, cyclegan: luminance-only; adain: the style "
              "recoloured after the content first, as its authors do)", methods=("gatys", "adain", "cyclegan")),
        Param("style_layers", "choices", ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"),
              "VGG19 layers for the style, comma-separated (default conv1_1,conv2_1,conv3_1,conv4_1,conv5_1)",
              choices=LAYER_NAMES, metavar="LAYERS", methods=("gatys",)),
        Param("content_layer", "choice", "conv4_2", "VGG19 layer for the content (default conv4_2)", choices=LAYER_NAMES,
              metavar="LAYER", methods=("gatys",)),
        Param("style_blend", "floats", None, "weights of the style images, in order (default: equal)", low=0, metavar="W",
              config=False, methods=("gatys", "adain")),
        Param("precision", "choice", None, "GPU fast path: fp32 (TF32 off), tf32 (TensorFloat-32 matmuls and convolutions) or amp "
              "(autocast to bfloat16, float16 where a GPU lacks it), tf32 and amp in channels_last (default: PyTorch's settings)",
              choices=("fp32", "tf32", "amp"), metavar="NAME", methods=("gatys", "adain", "cyclegan")),
        Param("strength", "float", None, "img2img: how much to repaint, in (0, 1]", low=0, high=1, open_low=True, methods=("img2img",)),
        Param("guidance", "float", None, "img2img: how closely to follow the text style", low=0, high=50, methods=("img2img",)),
        _seed("seed (gatys' noise init; img2img sampling), drawn and recorded when not given", methods=("gatys", "img2img")),
    ),
)

MAX_MUSIC_SECONDS = 300.0  # the hard cap of one %%compose piece, audio or MIDI: five minutes

COMPOSE = Task(
    "compose",
    (
        _model("compose (or midi)", "musicgen-small, or amt-small with --midi"),
        # -- %%compose --midi: notes (a MIDI file) from a symbolic model; `methods` says which mode a parameter is for
        Param("midi", "bool", None, "write notes (a MIDI file you can edit) with the Anticipatory Music Transformer instead of audio",
              config=False),
        Param("seconds", "float", 10.0, "seconds of new music (default 10; beyond the model's 30 s window it goes window by window; "
              "at most 300)", low=0, open_low=True, panel=Slider(1.0, 30.0, 0.5, "seconds")),
        Param("guidance", "float", 3.0, "how closely to follow the description: classifier-free guidance (model default 3; 1 or less = off)",
              low=0, hint="(up to 1 means no guidance)", panel=Slider(0.0, 10.0, 0.1, "guidance"), methods=("audio",)),
        Param("temperature", "float", 1.0, "randomness of the sampling: 0 = greedy, 1 = the model's own odds", low=0,
              hint="(0 means greedy)", panel=Slider(0.0, 2.0, 0.01, "temperature")),
        Param("top_k", "int", 250, "sample among the K most likely audio codes (default 250; 0 = all)", low=0, hint="(0 turns it off)",
              panel=Slider(0, 1000, 1, "top-k"), methods=("audio",)),
        Param("top_p", "float", 0.98, "--midi: nucleus sampling, keep the likeliest events up to this probability mass (default 0.98)",
              low=0, high=1, open_low=True, methods=("midi",)),
        _seed(),
        Param("n", "int", None, "number of pieces", low=1, high=MAX_PIECES, flags=("-n",)),
        Param("melody", "audio", None, "a WAV file, or a variable holding an audio result, whose melody to follow (melody models: musicgen-melody)",
              metavar="AUDIO", config=False, methods=("audio",)),
        Param("continue_from", "audio", None, "continue this audio (a WAV file, a variable holding an audio result, or last) with "
              "--seconds more", flags=("--continue",), metavar="AUDIO", config=False, methods=("audio",)),
        Param("compile", "bool", None, "GPU fast path: a static KV cache and transformers' compiled decoding where it supports "
              "the model (a copy of the model; on a GPU MusicGen already runs in float16)", methods=("audio",)),
        Param("overlap", "float", 10.0, "seconds of the piece so far that each next window continues from (default 10)", low=1, high=20,
              methods=("audio",)),
        Param("prompt_midi", "midi", None, "--midi: continue this MIDI (a .mid file, a variable holding a MIDI result, or last)",
              metavar="MIDI", config=False, methods=("midi",)),
        Param("instrument", "texts", None, "--midi: play only these instruments (General MIDI names such as piano, violin, \"alto sax\", "
              "or drums, or program numbers)", metavar="NAME", methods=("midi",)),
    ),
)

FINETUNE = Task(
    "finetune",
    (
        Param("base", "model", None, "the model to adapt (default: the story model)"),
        Param("epochs", "float", 3.0, "passes over the texts (default 3)", low=0, open_low=True),
        Param("max_steps", "int", None, "stop after this many training steps (overrides --epochs)", low=1),
        Param("lr", "float", None, "learning rate (default 5e-4 for LoRA, 5e-5 with --full)", low=0, high=1, open_low=True,
              open_high=True, hint="(e.g. 5e-4)"),
        Param("batch_size", "int", 4, "blocks per training step (default 4)", low=1),
        Param("block_size", "int", 128, "tokens per training block (default 128, at most the model's context)", low=2),
        Param("lora_r", "int", 8, "LoRA rank (default 8)", low=1),
        Param("lora_alpha", "float", 16, "LoRA scale alpha (default 16)", low=0, open_low=True),
        Param("full", "bool", None, "train every weight (small models) instead of a LoRA adapter"),
        Param("eval_split", "float", 0.1, "share of the blocks held out to measure perplexity (default 0.1; 0 = none)", low=0, high=0.5,
              hint="(0 = no held-out texts)"),
        _seed("seed for the held-out split, LoRA init and batch order (drawn and recorded when not given)"),
    ),
)

TASKS = {task.name: task for task in (STORY, PAINT, STYLIZE, COMPOSE, FINETUNE)}


def of(task):
    """The declarations of `task` ("story", "paint", ...)."""
    return TASKS[task]


def check(task, values):
    TASKS[task].check(values)
