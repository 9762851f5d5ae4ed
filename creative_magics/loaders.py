"""Load a resolved ModelSpec with the real libraries' `from_pretrained`, safely and offline-aware.

Hub models are tried from the local cache first; only when they are missing is the hub asked, and
only if it answers within 2 s, so a closed network costs seconds, not a 49 s DNS wait.
"""

import contextlib
import os
from dataclasses import dataclass

from . import hub, tiny
from .errors import ModelNotAvailable


@dataclass(eq=False)
class TextModel:
    """A causal LM and its tokenizer, moved together."""

    model: object
    tokenizer: object

    def to(self, device=None, dtype=None):
        self.model.to(device=device, dtype=dtype)
        return self

    @property
    def is_chat(self):
        return bool(getattr(self.tokenizer, "chat_template", None))


@dataclass(eq=False)
class MusicModel:
    """A MusicGen model and its processor (tokenizer + audio feature extractor)."""

    model: object
    processor: object

    def to(self, device=None, dtype=None):
        self.model.to(device=device, dtype=dtype)
        return self


@contextlib.contextmanager
def quiet():
    """Silence the libraries' loading bars and chatter (they would land in notebooks' stderr)."""
    import transformers

    verbosity = transformers.logging.get_verbosity()
    bars = transformers.utils.logging.is_progress_bar_enabled()
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(verbosity)
        if bars:
            transformers.utils.logging.enable_progress_bar()


def _dtype_kwarg():
    import transformers

    major, minor = (int(p) for p in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def load_causal_lm(source, dtype, settings, **kwargs):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    trust = bool(getattr(settings, "trust_remote_code", False))
    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(source, trust_remote_code=trust, **{_dtype_kwarg(): dtype}, **kwargs)
    model.eval()
    if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return TextModel(model, tokenizer)


def load_diffusion(source, dtype, settings, **kwargs):
    import transformers

    transformers.logging.set_verbosity_error()  # diffusers' import otherwise warns about torchvision on stderr
    from diffusers import AutoPipelineForText2Image
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.disable_progress_bar()
    try:
        pipe = AutoPipelineForText2Image.from_pretrained(source, torch_dtype=dtype, **kwargs)
    finally:
        diffusers_logging.enable_progress_bar()
    return pipe


def load_musicgen(source, dtype, settings, **kwargs):
    from transformers import AutoProcessor, MusicgenForConditionalGeneration

    processor = AutoProcessor.from_pretrained(source, **kwargs)
    model = MusicgenForConditionalGeneration.from_pretrained(source, **{_dtype_kwarg(): dtype}, **kwargs)
    model.eval()
    return MusicModel(model, processor)


def load_vgg(source, dtype, settings, **kwargs):
    """A VGG19 feature net from a folder (config.json + model.safetensors) or a weights file."""
    import json

    import torch

    from .nets.vgg import VGG19_WIDTHS, VGG19Features

    widths = VGG19_WIDTHS
    path = source
    if os.path.isdir(source):
        config = os.path.join(source, "config.json")
        if os.path.exists(config):
            with open(config) as f:
                widths = json.load(f).get("widths", VGG19_WIDTHS)
        path = os.path.join(source, "model.safetensors")
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        state = load_file(path)
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    net = VGG19Features(widths).load_features(state)
    return net.to(dtype=dtype)


LOADERS = {
    "causal_lm": load_causal_lm,
    "diffusion": load_diffusion,
    "musicgen": load_musicgen,
    "vgg": load_vgg,
}


def load_model(spec, dtype, settings=None):
    """Load `spec` on the CPU in `dtype`. Raises ModelNotAvailable with one line when it cannot be had."""
    load = LOADERS[spec.family]
    if spec.kind == "tiny":
        with quiet():
            return load(str(tiny.ensure(spec.source)), dtype, settings, local_files_only=True)
    if spec.kind == "local":
        try:
            with quiet():
                if spec.family == "vgg":
                    return load(spec.source, dtype, settings)
                return load(spec.source, dtype, settings, local_files_only=True)
        except (OSError, ValueError, KeyError, RuntimeError) as err:
            raise ModelNotAvailable(f"folder {spec.source!r} does not hold a loadable {spec.family} model: {_first_line(err)}") from None
    if spec.kind == "torchvision":
        return load(_torchvision_weights(settings), dtype, settings)
    try:
        with quiet():
            return load(spec.source, dtype, settings, local_files_only=True)
    except (OSError, ValueError) as err:
        cached_error = err
    if not hub.hub_reachable():
        raise ModelNotAvailable(
            f"model {spec.name!r} ({spec.source}) is not in the local Hugging Face cache and the hub is unreachable: "
            f"download it where there is network (`hf download {spec.source}`), pass a local folder with -m, "
            f"or use the offline models: %config CreativeMagics.profile = 'tiny'"
        ) from None
    try:
        return load(spec.source, dtype, settings)
    except (OSError, ValueError) as err:
        if "local" in str(err).lower() and "cache" in str(err).lower():
            err = cached_error
        raise ModelNotAvailable(f"could not load {spec.name!r} from the hub: {_first_line(err)}") from None


def _torchvision_weights(settings):
    """torchvision's published VGG19 weights: a configured local file, else downloaded once (hash-checked)."""
    import torch

    from .nets.vgg import TORCHVISION_URL

    local = getattr(settings, "vgg_weights", "") if settings is not None else ""
    if local:
        if not os.path.exists(os.path.expanduser(local)):
            raise ModelNotAvailable(f"vgg_weights file {local!r} does not exist")
        return os.path.expanduser(local)
    cached = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(TORCHVISION_URL))
    if os.path.exists(cached):
        return cached
    if not hub.reachable_url(TORCHVISION_URL):
        raise ModelNotAvailable(
            "the VGG19 weights are not downloaded yet and download.pytorch.org is unreachable: "
            "set %config CreativeMagics.vgg_weights = 'path/to/vgg19.pth', or use profile 'tiny'"
        )
    torch.hub.load_state_dict_from_url(TORCHVISION_URL, check_hash=True, map_location="cpu", weights_only=True)
    return cached


def _first_line(err):
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
