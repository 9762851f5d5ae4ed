"""Load a resolved ModelSpec with the real libraries' `from_pretrained`, safely and offline-aware.

Hub models are tried from the local cache first; only when they are missing is the hub asked, and
only if it answers within 2 s, so a closed network costs seconds, not a 49 s DNS wait.
"""

import contextlib
import os
import re
from dataclasses import dataclass
from urllib.parse import urlparse

from . import gguf_models, hub, paths, tiny
from .hf import dtype_kwarg, quiet, trusts_remote_code
from .errors import ModelNotAvailable, first_line
from .models import OWN_NETWORKS


@dataclass(eq=False)
class TextModel:
    """A causal LM and its tokenizer, moved together."""

    model: object
    tokenizer: object
    chat: object = None  # False: an instruct model used as a base model (it continues the text); None: as its tokenizer says

    def to(self, device=None, dtype=None):
        self.model.to(device=device, dtype=dtype)
        return self

    @property
    def is_chat(self):
        if self.chat is not None:
            return bool(self.chat)
        return bool(getattr(self.tokenizer, "chat_template", None))

    def used_as(self, chat):
        """The same model and tokenizer (nothing copied), used as an instruct model or not (`chat`; None: as it is)."""
        return self if chat is None else TextModel(self.model, self.tokenizer, chat)


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


@dataclass(eq=False)
class MidiModel:
    """-- %%compose --midi: a causal LM over the Anticipatory Music Transformer's event vocabulary (no
    tokenizer: its tokens are event numbers, see creative_magics.midi)."""

    model: object

    def to(self, device=None, dtype=None):
        self.model.to(device=device, dtype=dtype)
        return self


@dataclass(eq=False)
class ClipModel:
    """%creative similar: a CLIPModel and its processor (image preprocessing and tokenizer)."""

    model: object
    processor: object

    def to(self, device=None, dtype=None):
        self.model.to(device=device, dtype=dtype)
        return self


_dtype_kwarg = dtype_kwarg


def load_causal_lm(source, dtype, settings, **kwargs):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    trust = trusts_remote_code(settings)
    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(source, trust_remote_code=trust, **{_dtype_kwarg(): dtype}, **kwargs)
    model.eval()
    return TextModel(model, finish_tokenizer(tokenizer))


def finish_tokenizer(tokenizer):
    """Batches need a padding token; a model without one pads with its end-of-text token."""
    if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


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
            trust = trusts_remote_code(settings)
            if pipeline_class_name(source, **kwargs) in AMUSED_PIPELINES:
                from diffusers import AmusedPipeline  # diffusers' Auto classes do not list aMUSEd

                pipe = AmusedPipeline.from_pretrained(source, torch_dtype=dtype, trust_remote_code=trust, **kwargs)
            else:
                pipe = AutoPipelineForText2Image.from_pretrained(source, torch_dtype=dtype, trust_remote_code=trust, **kwargs)
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


# %%paint -m amused-256 / amused-512: the pipelines of VQGAN-token models (diffusers' class names).
AMUSED_PIPELINES = ("AmusedPipeline", "AmusedImg2ImgPipeline", "AmusedInpaintPipeline")


def pipeline_class_name(source, **kwargs):
    """The pipeline class a diffusers folder or repo names in its model_index.json (a JSON file; no code)."""
    from diffusers import DiffusionPipeline

    return DiffusionPipeline.load_config(source, **{k: v for k, v in kwargs.items() if k in ("local_files_only", "revision")}).get("_class_name")


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


def load_midi_lm(source, dtype, settings, **kwargs):
    """An Anticipatory Music Transformer (a GPT-2 over 55,028 event tokens); another vocabulary is refused."""
    from transformers import AutoConfig, AutoModelForCausalLM

    from .midi import VOCAB_SIZE

    trust = trusts_remote_code(settings)
    config = AutoConfig.from_pretrained(source, trust_remote_code=trust, **kwargs)
    if getattr(config, "vocab_size", None) != VOCAB_SIZE:
        raise ValueError(
            f"it is a {config.model_type} model whose vocabulary is not the Anticipatory Music Transformer's {VOCAB_SIZE} event tokens"
        )
    model = AutoModelForCausalLM.from_pretrained(source, config=config, trust_remote_code=trust, **{_dtype_kwarg(): dtype}, **kwargs)
    model.eval()
    return MidiModel(model)


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
    net.weights = [{"file": os.path.basename(path)}]  # for the recipe (torchvision's file name carries its hash)
    return net.to(dtype=dtype)


# -- %stylize's feed-forward networks: AdaIN and the CycleGAN painters ---------------------------------


def read_state(path):
    """A state dict from a .safetensors file, or from a .pth read with torch.load(weights_only=True): tensors
    and plain containers only, so a booby-trapped pickle is refused instead of run."""
    import torch

    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"it holds a {type(state).__name__}, not a state dict")
    return state


def _weights_in(folder, stem):
    """The weights file `stem`.safetensors (preferred) or `stem`.pth in `folder`, or None."""
    for suffix in (".safetensors", ".pth"):
        path = os.path.join(folder, stem + suffix)
        if os.path.isfile(path):
            return path
    return None


def describe_weights(paths, urls=None):
    """What the recipe says of the weights used: each file's name, SHA-256 and (when downloaded) URL."""
    import hashlib

    described = []
    for path, url in zip(paths, urls or [None] * len(paths)):
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(2**20), b""):
                digest.update(block)
        entry = {"file": os.path.basename(path), "sha256": digest.hexdigest()}
        if url:
            entry["url"] = url
        described.append(entry)
    return described


def load_adain(source, dtype, settings, urls=None, **kwargs):
    """AdaIN from a folder with the authors' two files: vgg_normalised (the encoder) and decoder, each
    .safetensors or .pth (weights_only). Widths come from the weights, so narrow nets load too."""
    from .nets import adain

    encoder_path, decoder_path = _weights_in(source, "vgg_normalised"), _weights_in(source, "decoder")
    missing = [name for name, path in (("vgg_normalised.pth", encoder_path), ("decoder.pth", decoder_path)) if path is None]
    if missing:
        raise ValueError(f"it has no {' and no '.join(missing)}")
    net = adain.from_state_dicts(read_state(encoder_path), read_state(decoder_path))
    net.weights = describe_weights([encoder_path, decoder_path], urls)
    return net.to(dtype=dtype)


def load_cyclegan(source, dtype, settings, urls=None, **kwargs):
    """A CycleGAN ResNet generator from a .pth (weights_only) or .safetensors file, or a folder holding
    model.safetensors, latest_net_G.pth (the authors' checkpoint name) or one .pth file."""
    from .nets import cyclegan

    path = source
    if os.path.isdir(source):
        path = _weights_in(source, "model") or _weights_in(source, "latest_net_G")
        if path is None:
            candidates = sorted(name for name in os.listdir(source) if name.endswith((".pth", ".safetensors")))
            if len(candidates) != 1:
                raise ValueError("it has no model.safetensors or latest_net_G.pth (nor exactly one .pth file)")
            path = os.path.join(source, candidates[0])
    net = cyclegan.from_state_dict(read_state(path))
    net.weights = describe_weights([path], urls)
    return net.to(dtype=dtype)


def load_clip(source, dtype, settings, **kwargs):
    from transformers import CLIPModel, CLIPProcessor

    trust = trusts_remote_code(settings)
    processor = CLIPProcessor.from_pretrained(source, trust_remote_code=trust, **kwargs)
    model = CLIPModel.from_pretrained(source, trust_remote_code=trust, **{_dtype_kwarg(): dtype}, **kwargs)
    return ClipModel(model.eval(), processor)


LOADERS = {
    "causal_lm": load_causal_lm,
    "clip": load_clip,
    "diffusion": load_diffusion,
    "musicgen": load_musicgen,
    "midi": load_midi_lm,
    "vgg": load_vgg,
    "controlnet": load_controlnet,
    "adain": load_adain,
    "cyclegan": load_cyclegan,
}
NETWORK_NAMES = {"vgg": "VGG19", "adain": "AdaIN", "cyclegan": "CycleGAN generator"}


def load_model(spec, dtype, settings=None, *, resolve=None, warm=None):
    """Load `spec` on the CPU in `dtype`. Raises ModelNotAvailable with one line when it cannot be had.

    A fine-tuned adapter also needs `resolve(task, ref)` for its base model and `warm(spec)`, the
    cache's warm copy of that base (or None), so the base is not read from disk again. A spec with fast
    paths (--compile) is loaded afresh and made fast (fast.apply): the eager copy is never changed."""
    if spec.fast:
        from dataclasses import replace

        from . import fast

        return fast.apply(_load_model(replace(spec, fast=()), dtype, settings, resolve=resolve, warm=None), spec)
    return _load_model(spec, dtype, settings, resolve=resolve, warm=warm)


def _load_model(spec, dtype, settings=None, *, resolve=None, warm=None):
    load = LOADERS[spec.family]
    if spec.kind == "tiny":
        with quiet():
            return load(str(tiny.ensure(spec.source)), dtype, settings, local_files_only=True)
    if spec.kind == "gguf":  # a .gguf file, or REPO:FILE.gguf
        model, tokenizer = gguf_models.load(spec, dtype, settings)
        return TextModel(model.eval(), finish_tokenizer(tokenizer))
    if spec.kind == "package":  # the offline text model, converted once from its package's GGUF file
        folder = gguf_models.ensure_converted(spec.source, settings)
        with quiet():
            return load(str(folder), dtype, settings, local_files_only=True)
    if spec.kind == "adapter":  # %%finetune: a LoRA folder loads as its base with the adapter merged in
        from .finetuned import load_adapter

        return load_adapter(spec, dtype, settings, resolve=resolve, warm=warm, load=load_model)
    if spec.kind == "local":
        marker = FOLDER_MARKERS.get(spec.family)
        if marker and os.path.isdir(spec.source) and not os.path.isfile(os.path.join(spec.source, marker)):
            raise ModelNotAvailable(f"{spec.source!r} is not a {spec.family} model folder: it has no {marker}")
        try:
            with quiet():
                if spec.family in OWN_NETWORKS:
                    return load(spec.source, dtype, settings)
                return load(spec.source, dtype, settings, local_files_only=True)
        except Exception as err:  # the user's folder or file is not a model of this kind: one line
            raise ModelNotAvailable(f"{spec.source!r} does not hold a loadable {spec.family} model: {first_line(err)}") from None
    if spec.kind == "download":  # our networks' published weights, fetched once and verified before use
        where, urls = published_weights(spec.source)
        try:
            return load(where, dtype, settings, urls=urls)
        except Exception as err:  # a damaged or booby-trapped file: one line, and it never runs
            raise ModelNotAvailable(
                f"{where!r} does not hold loadable {NETWORK_NAMES[spec.family]} weights ({first_line(err)}): delete it to download it again"
            ) from None
    if spec.kind == "torchvision":
        path = _torchvision_weights(settings)
        check_hash(path)
        try:
            net = load(path, dtype, settings)
        except Exception as err:  # a file of the user's that is not what it should be: say so in one line
            raise ModelNotAvailable(f"{path!r} is not a VGG19 weights file: {first_line(err)}") from None
        from .nets import vgg

        if os.path.basename(path) == os.path.basename(vgg.TORCHVISION_URL):
            net.weights[0]["url"] = vgg.TORCHVISION_URL
        return net
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


# -- published weights files (AdaIN, CycleGAN): downloaded once, verified before every use --------------

MAX_WEIGHTS_BYTES = 2 * 2**30  # no published file of ours comes near this


def weights_folder(kind):
    """Where downloaded weights of `kind` ("adain", "cyclegan") live: CREATIVE_MAGICS_HOME/weights/KIND."""
    return paths.home() / "weights" / kind


def published_files(source):
    """(folder kind, WeightsFile list, what to call them) of a `download:NAME` source."""
    from .nets import adain, cyclegan

    name = source.split(":", 1)[1]
    if name == "adain":
        return "adain", list(adain.PUBLISHED), "the AdaIN weights (vgg_normalised.pth, decoder.pth)"
    painter = name[len("cyclegan-"):]
    return "cyclegan", [cyclegan.PUBLISHED[painter]], f"the CycleGAN {painter} generator (style_{painter}.pth)"


def published_weights(source):
    """(what the loader reads: a folder for AdaIN, the file for a painter; the files' URLs), downloading
    what is missing. Files already here are verified again (size, and the hash where one is published)."""
    kind, files, what = published_files(source)
    folder = weights_folder(kind)
    for item in files:
        path = folder / item.name
        if path.exists():
            verify_weights(path, item)
            continue
        if not hub.reachable_url(item.url):
            host = urlparse(item.url).hostname
            raise ModelNotAvailable(
                f"{what} are not downloaded yet and {host} is unreachable: put {item.name} into {folder} "
                "(or pass your own with -m), or use profile 'tiny'"
            )
        download_weights(item, path, what)
    urls = [item.url for item in files]
    return (str(folder) if kind == "adain" else str(folder / files[0].name)), urls


def download_weights(item, path, what):
    """Fetch `item` to `path`: under a read deadline, into a partial file that becomes `path` only once
    all the bytes the server announced came and the file passes verify_weights."""
    import hashlib
    import http.client
    import urllib.request

    os.makedirs(os.path.dirname(path), exist_ok=True)
    part = f"{path}.part"
    try:
        with _socket_timeout(DOWNLOAD_STALL_S):
            with urllib.request.urlopen(item.url, timeout=DOWNLOAD_STALL_S) as response:
                announced = response.headers.get("Content-Length")
                received, digest = 0, hashlib.sha256()
                with open(part, "wb") as out:
                    for block in iter(lambda: response.read(2**20), b""):
                        received += len(block)
                        if received > MAX_WEIGHTS_BYTES:
                            raise ModelNotAvailable(f"{item.url} sends more than {MAX_WEIGHTS_BYTES // 2**30} GB: not the published weights")
                        out.write(block)
                        digest.update(block)
        if announced is not None and received != int(announced):
            raise ModelNotAvailable(f"the download of {item.name} stopped at {received} of {announced} bytes; try again")
        verify_weights(part, item, digest=digest.hexdigest(), name=item.name)
        os.replace(part, path)
    except (OSError, http.client.HTTPException) as err:  # a refused, stalled or dropped connection
        raise ModelNotAvailable(f"downloading {what} failed ({first_line(err)}); try again") from None
    finally:
        if os.path.exists(part):
            os.remove(part)


def verify_weights(path, item, digest=None, name=None):
    """A weights file shorter than its tensors is truncated; one whose published SHA-256 differs is not the
    published file. Either is refused in one line before anything reads it."""
    import hashlib

    name = name or os.path.basename(str(path))
    size = os.path.getsize(path)
    if size < item.min_bytes:
        raise ModelNotAvailable(
            f"{name} is {size:,} bytes, less than the {item.min_bytes:,} its tensors take: the file is truncated; "
            f"delete {str(path)!r} and let it download again"
        )
    if item.sha256:
        if digest is None:
            hashed = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(2**20), b""):
                    hashed.update(block)
            digest = hashed.hexdigest()
        if digest != item.sha256:
            raise ModelNotAvailable(
                f"{name} has the wrong hash (SHA-256 {digest[:12]}..., published {item.sha256[:12]}...): "
                f"the file is damaged or not the published weights; delete {str(path)!r} and let it download again"
            )


# The file every saved model folder of a family has (save_pretrained writes it first).
FOLDER_MARKERS = {"causal_lm": "config.json", "musicgen": "config.json", "midi": "config.json", "diffusion": "model_index.json", "controlnet": "config.json", "clip": "config.json"}



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
