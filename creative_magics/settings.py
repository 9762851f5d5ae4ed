"""User-configurable options, shared by the magics (`%config CreativeMagics.x = ...`) and the Python API."""

import os
import re

from traitlets import Bool, Dict, Enum, Float, TraitError, Unicode, validate
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

    trust_remote_code = Bool(
        False,
        help="Allow models that ship their own Python code. Off by default: it runs code from the hub.",
    ).tag(config=True)

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
