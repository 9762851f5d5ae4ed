"""Model references: an alias, a hub id or a local folder -> a ModelSpec the cache can load.

Profiles decide what the built-in aliases mean: hub models (`default`), the offline tiny models
(`tiny`), or the hub when it answers and tiny otherwise (`auto`).
"""

import os
import re
from dataclasses import dataclass

from .errors import ModelNotAvailable

# Which loader serves which task: finetune adapts the story model, so they share one.
TASK_FAMILY = {
    "story": "causal_lm",
    "finetune": "causal_lm",
    "paint": "diffusion",
    "stylize": "vgg",
    "compose": "musicgen",
}


@dataclass(frozen=True)
class Alias:
    family: str
    source: str
    tiny: str
    note: str = ""
    base: str = ""  # %%paint: the architecture a model, ControlNet or LoRA is made for: "sd15", "sd2" or "sdxl"


BUILTIN_ALIASES = {
    # story: base models continue a text; instruct models follow a request (chat template).
    "gpt2": Alias("causal_lm", "openai-community/gpt2", "tiny-gpt2", "GPT-2 124M, base model"),
    "gpt2-medium": Alias("causal_lm", "openai-community/gpt2-medium", "tiny-gpt2", "GPT-2 355M, base model"),
    "distilgpt2": Alias("causal_lm", "distilbert/distilgpt2", "tiny-gpt2", "DistilGPT-2 82M, base model"),
    "smollm2": Alias("causal_lm", "HuggingFaceTB/SmolLM2-360M-Instruct", "tiny-chat", "SmolLM2 360M instruct"),
    "smollm2-135m": Alias("causal_lm", "HuggingFaceTB/SmolLM2-135M-Instruct", "tiny-chat", "SmolLM2 135M instruct"),
    "smollm2-1.7b": Alias("causal_lm", "HuggingFaceTB/SmolLM2-1.7B-Instruct", "tiny-chat", "SmolLM2 1.7B instruct"),
    "qwen2.5": Alias("causal_lm", "Qwen/Qwen2.5-0.5B-Instruct", "tiny-chat", "Qwen2.5 0.5B instruct"),
    "qwen2.5-1.5b": Alias("causal_lm", "Qwen/Qwen2.5-1.5B-Instruct", "tiny-chat", "Qwen2.5 1.5B instruct"),
    # paint
    "sd-turbo": Alias("diffusion", "stabilityai/sd-turbo", "tiny-sd", "SD-Turbo, 1-4 steps at 512 px", "sd2"),
    "sdxl-turbo": Alias("diffusion", "stabilityai/sdxl-turbo", "tiny-sdxl", "SDXL-Turbo, 1-4 steps at 512 px", "sdxl"),
    "sd15": Alias("diffusion", "stable-diffusion-v1-5/stable-diffusion-v1-5", "tiny-sd", "Stable Diffusion 1.5", "sd15"),
    "sdxl": Alias("diffusion", "stabilityai/stable-diffusion-xl-base-1.0", "tiny-sdxl", "Stable Diffusion XL base", "sdxl"),
    "sd15-inpaint": Alias("diffusion", "stable-diffusion-v1-5/stable-diffusion-inpainting", "tiny-sd-inpaint",
                          "Stable Diffusion 1.5 inpainting (--init and --mask)", "sd15"),
    "sdxl-inpaint": Alias("diffusion", "diffusers/stable-diffusion-xl-1.0-inpainting-0.1", "tiny-sdxl-inpaint",
                          "SDXL inpainting (--init and --mask)", "sdxl"),
    # paint: ControlNets (--controlnet), as their authors published them
    "scribble": Alias("controlnet", "lllyasviel/control_v11p_sd15_scribble", "tiny-controlnet", "ControlNet 1.1 scribble, SD 1.5", "sd15"),
    "canny": Alias("controlnet", "lllyasviel/control_v11p_sd15_canny", "tiny-controlnet", "ControlNet 1.1 canny edges, SD 1.5", "sd15"),
    "depth": Alias("controlnet", "lllyasviel/control_v11f1p_sd15_depth", "tiny-controlnet", "ControlNet 1.1 depth, SD 1.5", "sd15"),
    "lineart": Alias("controlnet", "lllyasviel/control_v11p_sd15_lineart", "tiny-controlnet", "ControlNet 1.1 line art, SD 1.5", "sd15"),
    "openpose": Alias("controlnet", "lllyasviel/control_v11p_sd15_openpose", "tiny-controlnet", "ControlNet 1.1 OpenPose, SD 1.5", "sd15"),
    "scribble-sd21": Alias("controlnet", "thibaud/controlnet-sd21-scribble-diffusers", "tiny-controlnet", "scribble ControlNet, SD 2.1 (SD-Turbo)", "sd2"),
    "canny-sd21": Alias("controlnet", "thibaud/controlnet-sd21-canny-diffusers", "tiny-controlnet", "canny ControlNet, SD 2.1 (SD-Turbo)", "sd2"),
    "depth-sd21": Alias("controlnet", "thibaud/controlnet-sd21-depth-diffusers", "tiny-controlnet", "depth ControlNet, SD 2.1 (SD-Turbo)", "sd2"),
    "openpose-sd21": Alias("controlnet", "thibaud/controlnet-sd21-openposev2-diffusers", "tiny-controlnet", "OpenPose ControlNet, SD 2.1", "sd2"),
    "scribble-sdxl": Alias("controlnet", "xinsir/controlnet-scribble-sdxl-1.0", "tiny-controlnet-sdxl", "scribble ControlNet, SDXL", "sdxl"),
    "canny-sdxl": Alias("controlnet", "diffusers/controlnet-canny-sdxl-1.0", "tiny-controlnet-sdxl", "canny ControlNet, SDXL", "sdxl"),
    "depth-sdxl": Alias("controlnet", "diffusers/controlnet-depth-sdxl-1.0", "tiny-controlnet-sdxl", "depth ControlNet, SDXL", "sdxl"),
    "lineart-sdxl": Alias("controlnet", "xinsir/controlnet-union-sdxl-1.0", "tiny-controlnet-sdxl",
                          "ControlNet union (line art and more), SDXL", "sdxl"),
    "openpose-sdxl": Alias("controlnet", "thibaud/controlnet-openpose-sdxl-1.0", "tiny-controlnet-sdxl", "OpenPose ControlNet, SDXL", "sdxl"),
    # paint: LoRAs (--lora)
    "lcm-lora-sd15": Alias("lora", "latent-consistency/lcm-lora-sdv1-5", "tiny-lora", "LCM LoRA: 4 steps with --scheduler lcm, SD 1.5", "sd15"),
    "lcm-lora-sdxl": Alias("lora", "latent-consistency/lcm-lora-sdxl", "tiny-lora-sdxl", "LCM LoRA: 4 steps with --scheduler lcm, SDXL", "sdxl"),
    "pixel-art-xl": Alias("lora", "nerijs/pixel-art-xl", "tiny-lora-sdxl", "pixel art style LoRA, SDXL", "sdxl"),
    # stylize
    "vgg19": Alias("vgg", "torchvision:vgg19", "tiny-vgg19", "VGG19 features, torchvision's ImageNet weights"),
    # compose
    "musicgen-small": Alias("musicgen", "facebook/musicgen-small", "tiny-musicgen", "MusicGen 300M"),
    "musicgen-medium": Alias("musicgen", "facebook/musicgen-medium", "tiny-musicgen", "MusicGen 1.5B"),
    "musicgen-large": Alias("musicgen", "facebook/musicgen-large", "tiny-musicgen", "MusicGen 3.3B"),
    "musicgen-melody": Alias("musicgen", "facebook/musicgen-melody", "tiny-musicgen-melody", "MusicGen melody 1.5B, --melody"),
    "musicgen-melody-large": Alias("musicgen", "facebook/musicgen-melody-large", "tiny-musicgen-melody", "MusicGen melody 3.3B, --melody"),
}

# The model each task uses when none is named.
DEFAULT_MODELS = {"story": "smollm2", "paint": "sd-turbo", "stylize": "vgg19", "compose": "musicgen-small"}
# %%paint: the ControlNet each --control-mode uses when none is named, by the base model's architecture.
DEFAULT_CONTROLNETS = {
    ("scribble", "sd15"): "scribble", ("canny", "sd15"): "canny",
    ("scribble", "sd2"): "scribble-sd21", ("canny", "sd2"): "canny-sd21",
    ("scribble", "sdxl"): "scribble-sdxl", ("canny", "sdxl"): "canny-sdxl",
}
# The alias of a ControlNet kind (its name's stem: "canny") for each architecture: "canny", "canny-sd21", "canny-sdxl".
BASE_SUFFIXES = {"sd15": "", "sd2": "-sd21", "sdxl": "-sdxl"}
# The names of the architectures (Alias.base) in messages.
BASE_NAMES = {"sd15": "SD 1.5", "sd2": "SD 2.x", "sdxl": "SDXL"}

# Offline tiny models, built on first use by creative_magics.tiny.
TINY_FAMILY = {
    "tiny-gpt2": "causal_lm",
    "tiny-chat": "causal_lm",
    "tiny-sd": "diffusion",
    "tiny-sdxl": "diffusion",
    "tiny-sd-inpaint": "diffusion",
    "tiny-sdxl-inpaint": "diffusion",
    "tiny-controlnet": "controlnet",
    "tiny-controlnet-sdxl": "controlnet",
    "tiny-lora": "lora",
    "tiny-lora-sdxl": "lora",
    "tiny-vgg19": "vgg",
    "tiny-musicgen": "musicgen",
    "tiny-musicgen-melody": "musicgen",
}

_HUB_ID = re.compile(r"^[\w.\-]{1,96}(/[\w.\-]{1,96})?$")


@dataclass(frozen=True)
class ModelSpec:
    """A resolved reference: what to load (`source`), how (`family`), and what to call it (`name`)."""

    name: str
    family: str
    kind: str  # "hub" | "local" | "tiny" | "torchvision" | "adapter" (a LoRA folder, see adapters.py)
    source: str
    base: str = ""  # %%paint: the architecture an alias says it is for (Alias.base), "" when not known before loading

    @property
    def key(self):
        return (self.family, self.source)


def family_of(task):
    return TASK_FAMILY[task]


def _names_for(family):
    return sorted(n for n, a in BUILTIN_ALIASES.items() if a.family == family)


# What messages call the families that are not a task's own (%%paint's ControlNets and LoRAs).
FAMILY_WORDS = {"controlnet": "ControlNet", "lora": "LoRA"}


def resolve(task, ref, *, aliases=None, profile="default", family=None):
    """Resolve `ref` (alias, tiny name, local folder or hub id) for `task` under an effective profile;
    `family` names another family than the task's own (%%paint's "controlnet" and "lora").

    `profile` is `default` or `tiny` here; `auto` is decided by the session before calling.
    """
    family = family or family_of(task)
    task = FAMILY_WORDS.get(family, task)
    ref = str(ref).strip()
    if not ref:
        raise ModelNotAvailable(f"no model given; {task} models: {', '.join(_names_for(family))}")
    user = aliases or {}
    seen = set()
    name = ref
    while ref in user and ref not in seen:
        seen.add(ref)
        builtin = BUILTIN_ALIASES.get(ref)
        if builtin is not None and user[ref] == builtin.source:
            break
        ref = user[ref]
    if ref in TINY_FAMILY:
        return _checked(ModelSpec(name, TINY_FAMILY[ref], "tiny", ref, TINY_BASES.get(ref, "")), family, task)
    if ref in BUILTIN_ALIASES:
        alias = BUILTIN_ALIASES[ref]
        if profile == "tiny":
            return _checked(ModelSpec(name, alias.family, "tiny", alias.tiny, alias.base), family, task)
        kind = "torchvision" if alias.source.startswith("torchvision:") else "hub"
        return _checked(ModelSpec(name, alias.family, kind, alias.source, alias.base), family, task)
    path = os.path.expanduser(ref)
    if os.path.isdir(path):
        if family == "causal_lm" and os.path.isfile(os.path.join(path, "adapter_config.json")):
            return ModelSpec(name, family, "adapter", os.path.abspath(path))  # -- %%finetune: a LoRA folder
        return ModelSpec(name, family, "local", os.path.abspath(path))
    if os.path.isfile(path) and family in ("vgg", "lora"):
        return ModelSpec(name, family, "local", os.path.abspath(path))
    if family == "lora" and ":" in ref:  # REPO:FILE.safetensors
        repo, _, weight_name = ref.partition(":")
        if _HUB_ID.match(repo) and "/" in repo and weight_name.endswith(".safetensors") and "/" not in weight_name.replace("\\", "/"):
            return ModelSpec(name, family, "hub", ref)
    if ref.startswith((".", "/", "~")) or os.sep in ref.replace("/", "") or not _HUB_ID.match(ref) or ".." in ref:
        raise ModelNotAvailable(
            f"model {name!r} is not an alias, a local folder or a Hugging Face hub id; {task} aliases: {', '.join(_names_for(family))}"
        )
    return ModelSpec(name, family, "hub", ref)


# The architecture of each tiny model that stands in for one.
TINY_BASES = {
    "tiny-sd": "sd15", "tiny-sd-inpaint": "sd15", "tiny-controlnet": "sd15", "tiny-lora": "sd15",
    "tiny-sdxl": "sdxl", "tiny-sdxl-inpaint": "sdxl", "tiny-controlnet-sdxl": "sdxl", "tiny-lora-sdxl": "sdxl",
}


def _checked(spec, family, task):
    if spec.family != family:
        raise ModelNotAvailable(
            f"{spec.name!r} is not a {task} model; {task} aliases: {', '.join(_names_for(family))}"
        )
    return spec
