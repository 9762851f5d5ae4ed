"""Load a resolved ModelSpec with the real libraries' `from_pretrained`, safely and offline-aware.

Hub models are tried from the local cache first; only when they are missing is the hub asked, and
only if it answers within 2 s, so a closed network costs seconds, not a 49 s DNS wait.
"""

import contextlib
import os
import re
from dataclasses import dataclass

from . import hub, tiny
from .hf import quiet, trusts_remote_code
from .errors import ModelNotAvailable, first_line


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
    # -- %%compose: the T5 tokenizer, and for melody models the melody feature extractor's settings;
    # `processor` is None for those where transformers cannot build it (it needs torchaudio).
    tokenizer: object = None
    melody_features: dict = None

    def to(self, device=None, dtype=None):
        self.model.to(device=device, dtype=dtype)
        return self


def _dtype_kwarg():
    import transformers

    major, minor = (int(p) for p in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def load_causal_lm(source, dtype, settings, **kwargs):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    trust = trusts_remote_code(settings)
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
    verbosity = diffusers_logging.get_verbosity()
    # Silent while loading, errors too: a folder that does not load is said in one line by load_model.
    diffusers_logging.set_verbosity(diffusers_logging.CRITICAL + 1)
    try:
        import warnings

        with warnings.catch_warnings():
            # %%paint: diffusers >= 0.42 prefers `dtype` and warns on stderr; older ones take only `torch_dtype`.
            warnings.filterwarnings("ignore", message=".*torch_dtype.*deprecated", category=FutureWarning)
            pipe = AutoPipelineForText2Image.from_pretrained(
                source, torch_dtype=dtype, trust_remote_code=trusts_remote_code(settings), **kwargs
            )
    finally:
        diffusers_logging.set_verbosity(verbosity)
        diffusers_logging.enable_progress_bar()
    return pipe


def load_controlnet(source, dtype, settings, **kwargs):
    """%%paint: a ControlNet (diffusers' ControlNetModel), cached like any model; safetensors only."""
    import transformers

    transformers.logging.set_verbosity_error()
    from diffusers import ControlNetModel
    from diffusers.utils import logging as diffusers_logging

    verbosity = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity(diffusers_logging.CRITICAL + 1)
    try:
        model = ControlNetModel.from_pretrained(source, torch_dtype=dtype, use_safetensors=True, **kwargs)
    finally:
        diffusers_logging.set_verbosity(verbosity)
    return model.eval()


def load_musicgen(source, dtype, settings, **kwargs):
    """MusicGen, or MusicGen-melody when the config says so (its model_type)."""
    from transformers import AutoConfig, AutoProcessor, MusicgenForConditionalGeneration

    trust = trusts_remote_code(settings)
    config = AutoConfig.from_pretrained(source, trust_remote_code=trust, **kwargs)
    if config.model_type == "musicgen_melody":
        return _load_musicgen_melody(source, config, dtype, trust, **kwargs)
    if config.model_type != "musicgen":
        raise ValueError(f"its model type is {config.model_type!r}, not musicgen")
    processor = AutoProcessor.from_pretrained(source, trust_remote_code=trust, **kwargs)
    model = MusicgenForConditionalGeneration.from_pretrained(
        source, config=config, trust_remote_code=trust, **{_dtype_kwarg(): dtype}, **kwargs
    )
    model.eval()
    return MusicModel(model, processor, tokenizer=processor.tokenizer)


def _load_musicgen_melody(source, config, dtype, trust, **kwargs):
    from transformers import AutoProcessor, AutoTokenizer, MusicgenMelodyForConditionalGeneration
    from transformers.feature_extraction_utils import FeatureExtractionMixin

    model = MusicgenMelodyForConditionalGeneration.from_pretrained(
        source, config=config, trust_remote_code=trust, **{_dtype_kwarg(): dtype}, **kwargs
    )
    model.eval()
    features, _ = FeatureExtractionMixin.get_feature_extractor_dict(source, **kwargs)  # a JSON file, no code
    try:
        processor = AutoProcessor.from_pretrained(source, trust_remote_code=trust, **kwargs)
        tokenizer = processor.tokenizer
    except ImportError:  # transformers' melody feature extractor needs torchaudio; audio.melody_chroma stands in
        processor = None
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust, **kwargs)
    return MusicModel(model, processor, tokenizer=tokenizer, melody_features=features)


def load_vgg(source, dtype, settings, **kwargs):
    """A VGG19 feature net from a folder (model.safetensors) or a weights file (.safetensors or a
    torchvision .pth read with weights_only=True). Widths come from the weights, so narrow nets load too."""
    import torch

    from .nets.vgg import LAYER_INDEX, VGG19Features

    path = os.path.join(source, "model.safetensors") if os.path.isdir(source) else source
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        state = load_file(path)
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    widths = [state[f"features.{LAYER_INDEX[f'conv{block}_1']}.weight"].shape[0] for block in range(1, 6)]
    net = VGG19Features(widths).load_features(state)
    return net.to(dtype=dtype)


LOADERS = {
    "causal_lm": load_causal_lm,
    "diffusion": load_diffusion,
    "musicgen": load_musicgen,
    "vgg": load_vgg,
    "controlnet": load_controlnet,
}


def load_model(spec, dtype, settings=None, *, resolve=None, warm=None):
    """Load `spec` on the CPU in `dtype`. Raises ModelNotAvailable with one line when it cannot be had.

    A fine-tuned adapter also needs `resolve(task, ref)` for its base model and `warm(spec)`, the
    cache's warm copy of that base (or None), so the base is not read from disk again."""
    load = LOADERS[spec.family]
    if spec.kind == "tiny":
        with quiet():
            return load(str(tiny.ensure(spec.source)), dtype, settings, local_files_only=True)
    if spec.kind == "adapter":  # %%finetune: a LoRA folder loads as its base with the adapter merged in
        from .finetuned import load_adapter

        return load_adapter(spec, dtype, settings, resolve=resolve, warm=warm, load=load_model)
    if spec.kind == "local":
        marker = FOLDER_MARKERS.get(spec.family)
        if marker and os.path.isdir(spec.source) and not os.path.isfile(os.path.join(spec.source, marker)):
            raise ModelNotAvailable(f"{spec.source!r} is not a {spec.family} model folder: it has no {marker}")
        try:
            with quiet():
                if spec.family == "vgg":
                    return load(spec.source, dtype, settings)
                return load(spec.source, dtype, settings, local_files_only=True)
        except Exception as err:  # the user's folder or file is not a model of this kind: one line
            raise ModelNotAvailable(f"{spec.source!r} does not hold a loadable {spec.family} model: {first_line(err)}") from None
    if spec.kind == "torchvision":
        path = _torchvision_weights(settings)
        check_hash(path)
        try:
            return load(path, dtype, settings)
        except Exception as err:  # a file of the user's that is not what it should be: say so in one line
            raise ModelNotAvailable(f"{path!r} is not a VGG19 weights file: {first_line(err)}") from None
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
        raise ModelNotAvailable(f"could not load {spec.name!r} from the hub: {first_line(err)}") from None


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
    os.makedirs(os.path.dirname(cached), exist_ok=True)
    try:
        with _socket_timeout(DOWNLOAD_STALL_S):
            torch.hub.download_url_to_file(TORCHVISION_URL, cached, hash_prefix=_hash_prefix(cached))
    except RuntimeError as err:  # torch.hub's hash check
        raise ModelNotAvailable(f"the downloaded VGG19 weights are damaged ({first_line(err)}); try again") from None
    except OSError as err:  # a stalled or dropped connection (torch.hub removes its partial file)
        raise ModelNotAvailable(f"downloading the VGG19 weights failed ({first_line(err)}); try again") from None
    return cached


# torch.hub's download takes no timeout; a server that stalls this long mid-download is given up on.
DOWNLOAD_STALL_S = 60


@contextlib.contextmanager
def _socket_timeout(seconds):
    """Sockets opened inside wait at most `seconds` for each read (urllib's default is forever)."""
    import socket

    before = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(before)


_HASHED_NAME = re.compile(r"-([a-f0-9]{8,})\.")


def _hash_prefix(path):
    """torch.hub's convention: `name-<first hex digits of the SHA-256>.pth`."""
    match = _HASHED_NAME.search(os.path.basename(path))
    return match.group(1) if match else None


def check_hash(path):
    """A weights file named by torch.hub's convention must match its hash, as torch.hub checks on download."""
    import hashlib

    prefix = _hash_prefix(path)
    if prefix is None:
        return
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            digest.update(block)
    if not digest.hexdigest().startswith(prefix):
        raise ModelNotAvailable(
            f"{os.path.basename(path)} has the wrong hash (its SHA-256 does not start with {prefix}): "
            "the file is damaged or not the published weights; delete it and let it download again"
        )


# The file every saved model folder of a family has (save_pretrained writes it first).
FOLDER_MARKERS = {"causal_lm": "config.json", "musicgen": "config.json", "diffusion": "model_index.json", "controlnet": "config.json"}



# -- %%paint --lora: where a LoRA's weights are -------------------------------------------------

LORA_FILE = "pytorch_lora_weights.safetensors"  # the name diffusers saves a LoRA under


def locate_lora(spec):
    """(local folder, weight file name) of a LoRA: a tiny one, a .safetensors file, a folder, or a hub repo
    (`REPO` or `REPO:FILE.safetensors`) from the local cache, downloaded only when missing and the hub
    answers. Only .safetensors files are read: a pickled .bin/.pt/.ckpt could run code when loaded."""
    name = spec.name
    if spec.kind == "tiny":
        return str(tiny.ensure(spec.source)), LORA_FILE
    if spec.kind == "local":
        if os.path.isfile(spec.source):
            if not spec.source.endswith(".safetensors"):
                raise ModelNotAvailable(f"--lora {name}: only .safetensors LoRA files are read (a pickled file could run code)")
            return os.path.dirname(spec.source), os.path.basename(spec.source)
        return spec.source, _lora_file_in(spec.source, name)
    repo, _, weight_name = spec.source.partition(":")
    patterns = [weight_name] if weight_name else ["*.safetensors"]
    from huggingface_hub import snapshot_download

    try:
        with quiet():
            folder = snapshot_download(repo, allow_patterns=patterns, local_files_only=True)
        if weight_name and not os.path.isfile(os.path.join(folder, weight_name)):
            raise FileNotFoundError(weight_name)
        return folder, weight_name or _lora_file_in(folder, name)
    except ModelNotAvailable:
        raise
    except Exception:  # not in the local cache (huggingface_hub's errors differ between versions)
        pass
    if not hub.hub_reachable():
        raise ModelNotAvailable(
            f"LoRA {name!r} ({repo}) is not in the local Hugging Face cache and the hub is unreachable: download it where "
            f"there is network (`hf download {repo}`), or give a .safetensors file with --lora"
        ) from None
    try:
        with quiet():
            folder = snapshot_download(repo, allow_patterns=patterns)
    except (OSError, ValueError) as err:
        raise ModelNotAvailable(f"could not download LoRA {name!r}: {first_line(err)}") from None
    return folder, weight_name or _lora_file_in(folder, name)


def _lora_file_in(folder, name):
    files = sorted(f for f in os.listdir(folder) if f.endswith(".safetensors"))
    if LORA_FILE in files:
        return LORA_FILE
    if len(files) == 1:
        return files[0]
    if not files:
        raise ModelNotAvailable(f"--lora {name}: {folder!r} holds no .safetensors LoRA file")
    raise ModelNotAvailable(f"--lora {name}: {folder!r} holds {len(files)} .safetensors files; name one ({files[0]}, ...)")
