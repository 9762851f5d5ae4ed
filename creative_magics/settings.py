"""User-configurable options, shared by the magics (`%config CreativeMagics.x = ...`) and the Python API."""

import os
import re

from traitlets import Bool, Dict, Enum, Float, Int, TraitError, Unicode, validate
from traitlets.config import Configurable

PROFILES = ("default", "tiny", "auto")
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
        help="default: hub models; tiny: small random models built offline; "
        "auto: the hub when it answers within 2 s, else tiny. Env: CREATIVE_MAGICS_PROFILE.",
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

    @validate("paint_defaults")
    def _check_paint_defaults(self, proposal):
        from .tasks.paint import PARAMS

        allowed = [p for p in PARAMS if p not in ("init", "save", "seed")]  # per call, never defaults
        unknown = sorted(set(proposal["value"]) - set(allowed))
        if unknown:
            raise TraitError(f"paint_defaults takes {', '.join(allowed)}; not {', '.join(map(str, unknown))}")
        # A default --strength waits for a call with --init, so check it as if one were given.
        values = {**proposal["value"], "init": "given"} if "strength" in proposal["value"] else proposal["value"]
        _check_values("paint_defaults", "paint", values)
        return proposal["value"]

    # -- %%compose
    compose_defaults = Dict(
        help="Defaults for %%compose (e.g. {'model': 'musicgen-medium', 'seconds': 15, 'guidance': 4}); "
        "flags and the panel win over them, and they win over the model's generation_config.",
    ).tag(config=True)

    @validate("compose_defaults")
    def _check_compose_defaults(self, proposal):
        from .tasks.compose import PARAMS

        allowed = [p for p in PARAMS if p not in ("seed", "melody")]  # per call, never defaults
        unknown = sorted(set(proposal["value"]) - set(allowed))
        if unknown:
            raise TraitError(f"compose_defaults takes {', '.join(allowed)}; not {', '.join(map(str, unknown))}")
        _check_values("compose_defaults", "compose", proposal["value"])
        return proposal["value"]

    # -- %%finetune
    finetune_defaults = Dict(
        help="Defaults for %%finetune (e.g. {'base': 'gpt2', 'epochs': 5, 'lora_r': 16}); flags win over them. "
        "Without a base, %%finetune adapts the story model.",
    ).tag(config=True)

    stylize_defaults = Dict(
        help="Defaults for %%stylize (e.g. {'steps': 500, 'style_weight': 1e5, 'optimizer': 'adam'}); "
        "flags and the panel win over them.",
    ).tag(config=True)

    vgg_weights = Unicode(
        "",
        help="A local VGG19 weights file for %%stylize (torchvision's vgg19-dcbb9e9d.pth, or .safetensors); "
        "empty = download torchvision's published weights on first use, hash-checked.",
    ).tag(config=True)

    trust_remote_code = Bool(
        False,
        help="Allow models that ship their own Python code. Off by default: it runs code from the hub.",
    ).tag(config=True)

    @validate("story_defaults", "stylize_defaults", "finetune_defaults")
    def _check_task_defaults(self, proposal):
        """A misspelt name (`temprature`) is refused in one line, as for paint and compose, not silently ignored."""
        import importlib

        option = proposal["trait"].name
        allowed = importlib.import_module(f".tasks.{option[: -len('_defaults')]}", __package__).PARAMS
        unknown = sorted(set(proposal["value"]) - set(allowed))
        if unknown:
            raise TraitError(f"{option} takes {', '.join(allowed)}; not {', '.join(map(str, unknown))}")
        _check_values(option, option[: -len("_defaults")], proposal["value"])
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

    @validate("aliases")
    def _check_aliases(self, proposal):
        for name, target in proposal["value"].items():
            if not isinstance(name, str) or not isinstance(target, str) or not name or not target:
                raise TraitError(f"aliases maps names to hub ids or folders (strings), not {name!r}: {target!r}")
        return proposal["value"]


def _check_values(option, task, values):
    """A value no call could use (`{'temperature': -3}`) is refused when it is set, in the task's own
    words, rather than failing every later call."""
    import importlib

    from .errors import CreativeError

    try:
        importlib.import_module(f".tasks.{task}", __package__).check(dict(values))
    except CreativeError as err:
        raise TraitError(f"{option}: {err}") from None
    except (TypeError, ValueError):
        raise TraitError(f"{option}: a value has the wrong type in {values!r}") from None
