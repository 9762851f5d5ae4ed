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
    "midi": "midi",  # -- %%compose --midi: symbolic music (notes), listed by `%creative aliases` as its own task
}


@dataclass(frozen=True)
class Alias:
    family: str
    source: str
    tiny: str
    note: str = ""


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
    "sd-turbo": Alias("diffusion", "stabilityai/sd-turbo", "tiny-sd", "SD-Turbo, 1-4 steps at 512 px"),
    "sdxl-turbo": Alias("diffusion", "stabilityai/sdxl-turbo", "tiny-sd", "SDXL-Turbo, 1-4 steps at 512 px"),
    "sd15": Alias("diffusion", "stable-diffusion-v1-5/stable-diffusion-v1-5", "tiny-sd", "Stable Diffusion 1.5"),
    "sdxl": Alias("diffusion", "stabilityai/stable-diffusion-xl-base-1.0", "tiny-sd", "Stable Diffusion XL base"),
    # stylize
    "vgg19": Alias("vgg", "torchvision:vgg19", "tiny-vgg19", "VGG19 features, torchvision's ImageNet weights"),
    # compose
    "musicgen-small": Alias("musicgen", "facebook/musicgen-small", "tiny-musicgen", "MusicGen 300M"),
    "musicgen-medium": Alias("musicgen", "facebook/musicgen-medium", "tiny-musicgen", "MusicGen 1.5B"),
    "musicgen-large": Alias("musicgen", "facebook/musicgen-large", "tiny-musicgen", "MusicGen 3.3B"),
    "musicgen-melody": Alias("musicgen", "facebook/musicgen-melody", "tiny-musicgen-melody", "MusicGen melody 1.5B, --melody"),
    "musicgen-melody-large": Alias("musicgen", "facebook/musicgen-melody-large", "tiny-musicgen-melody", "MusicGen melody 3.3B, --melody"),
    # compose --midi: the Anticipatory Music Transformer (Stanford CRFM, Apache-2.0), notes instead of audio
    "amt-small": Alias("midi", "stanford-crfm/music-small-800k", "tiny-amt", "Anticipatory Music Transformer 128M, --midi"),
    "amt-medium": Alias("midi", "stanford-crfm/music-medium-800k", "tiny-amt", "Anticipatory Music Transformer 360M, --midi"),
    "amt-large": Alias("midi", "stanford-crfm/music-large-800k", "tiny-amt", "Anticipatory Music Transformer 780M, --midi"),
}

# The model each task uses when none is named.
DEFAULT_MODELS = {"story": "smollm2", "paint": "sd-turbo", "stylize": "vgg19", "compose": "musicgen-small", "midi": "amt-small"}

# Offline tiny models, built on first use by creative_magics.tiny.
TINY_FAMILY = {
    "tiny-gpt2": "causal_lm",
    "tiny-chat": "causal_lm",
    "tiny-sd": "diffusion",
    "tiny-vgg19": "vgg",
    "tiny-musicgen": "musicgen",
    "tiny-musicgen-melody": "musicgen",
    "tiny-amt": "midi",
}

_HUB_ID = re.compile(r"^[\w.\-]{1,96}(/[\w.\-]{1,96})?$")


@dataclass(frozen=True)
class ModelSpec:
    """A resolved reference: what to load (`source`), how (`family`), and what to call it (`name`)."""

    name: str
    family: str
    kind: str  # "hub" | "local" | "tiny" | "torchvision" | "adapter" (a LoRA folder, see adapters.py)
    source: str

    @property
    def key(self):
        return (self.family, self.source)


def family_of(task):
    return TASK_FAMILY[task]


def _names_for(family):
    return sorted(n for n, a in BUILTIN_ALIASES.items() if a.family == family)


def resolve(task, ref, *, aliases=None, profile="default"):
    """Resolve `ref` (alias, tiny name, local folder or hub id) for `task` under an effective profile.

    `profile` is `default` or `tiny` here; `auto` is decided by the session before calling.
    """
    family = family_of(task)
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
        return _checked(ModelSpec(name, TINY_FAMILY[ref], "tiny", ref), family, task)
    if ref in BUILTIN_ALIASES:
        alias = BUILTIN_ALIASES[ref]
        if profile == "tiny":
            return _checked(ModelSpec(name, alias.family, "tiny", alias.tiny), family, task)
        kind = "torchvision" if alias.source.startswith("torchvision:") else "hub"
        return _checked(ModelSpec(name, alias.family, kind, alias.source), family, task)
    path = os.path.expanduser(ref)
    if os.path.isdir(path):
        if family == "causal_lm" and os.path.isfile(os.path.join(path, "adapter_config.json")):
            return ModelSpec(name, family, "adapter", os.path.abspath(path))  # -- %%finetune: a LoRA folder
        return ModelSpec(name, family, "local", os.path.abspath(path))
    if os.path.isfile(path) and family == "vgg":
        return ModelSpec(name, family, "local", os.path.abspath(path))
    if ref.startswith((".", "/", "~")) or os.sep in ref.replace("/", "") or not _HUB_ID.match(ref) or ".." in ref:
        raise ModelNotAvailable(
            f"model {name!r} is not an alias, a local folder or a Hugging Face hub id; {task} aliases: {', '.join(_names_for(family))}"
        )
    return ModelSpec(name, family, "hub", ref)


def family_named(ref, aliases=None):
    """The family an alias or tiny name stands for (following your aliases), or None for a folder or hub id."""
    ref, user, seen = str(ref).strip(), aliases or {}, set()
    while ref in user and ref not in seen and not (ref in BUILTIN_ALIASES and user[ref] == BUILTIN_ALIASES[ref].source):
        seen.add(ref)
        ref = user[ref]
    if ref in TINY_FAMILY:
        return TINY_FAMILY[ref]
    alias = BUILTIN_ALIASES.get(ref)
    return alias.family if alias is not None else None


def _checked(spec, family, task):
    if spec.family != family:
        raise ModelNotAvailable(
            f"{spec.name!r} is not a {task} model; {task} aliases: {', '.join(_names_for(family))}"
        )
    return spec
