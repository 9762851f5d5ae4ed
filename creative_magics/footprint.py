"""How much memory a model will take once loaded, estimated before anything loads, so that a model that
cannot fit is refused in one line instead of the Linux OOM killer ending the kernel.

The estimate counts every tensor the model's files hold, in the precision it will be loaded in (an fp16
file loaded in float32 on the CPU takes twice its size): from the safetensors headers (read by the
safetensors library, no weights read), from a GGUF file's tensor table (every tensor is dequantized), from
the hub's safetensors headers when the model is not downloaded yet, else from the files' sizes.
"""

import dataclasses
import json
import math
import os
import re
from dataclasses import dataclass

# Bytes per element of the tensors that keep their type whatever the load precision (the rest are floats).
INTEGER_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "U16": 2, "I16": 2, "U32": 4, "I32": 4, "U64": 8, "I64": 8}
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt", ".ckpt")
# `name.fp16.safetensors`, `name.fp16-00001-of-00002.safetensors`: a variant diffusers loads only when asked.
_VARIANT = re.compile(r"\.(fp16|bf16|fp32|ema|non_ema|non-ema)(\.|-\d)")


# While it loads, a model holds more than its weights for a moment. Measured here (RSS peak / weights):
# 1.1 for a safetensors file already in the load precision (the tensors map the file), 1.5 for one that is
# converted (fp16 -> float32) or a GGUF file being dequantized.
PEAK_SAME_PRECISION = 1.15
PEAK_CONVERTED = 1.6
# Running a model the first time adds more than its weights: the libraries' kernels and work buffers, the
# tokenizer. benchmarks/bench_memory.py measured 115-150 MiB beyond the weights for two text models.
RUN_ALLOWANCE = 160 * 2**20


@dataclass(frozen=True)
class Estimate:
    """What a model takes once loaded (`nbytes`) and while it loads (`peak`), in bytes."""

    nbytes: int
    converted: bool  # its weights are converted while loading (another precision, a GGUF dequantization, a pickle)
    running: int = 0  # what running it adds beyond the weights (RUN_ALLOWANCE for a model estimated from its files)

    @property
    def peak(self):
        return int(self.nbytes * (PEAK_CONVERTED if self.converted else PEAK_SAME_PRECISION)) + self.running

    def __add__(self, other):
        return Estimate(self.nbytes + other.nbytes, self.converted or other.converted, max(self.running, other.running))


NOTHING = Estimate(0, False)


def element_bytes(dtype):
    """Bytes of one element of a torch dtype (float32 -> 4)."""
    import torch

    return torch.empty((), dtype=dtype).element_size()


# Bytes per element of the floating-point types as stored (converted when the load precision differs).
FLOAT_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1}


def tensors_estimate(tensors, float_bytes):
    """An Estimate of (stored dtype name, number of elements) pairs, loaded with floats of `float_bytes` each."""
    total, converted = 0, False
    for stored, numel in tensors:
        total += numel * INTEGER_BYTES.get(stored, float_bytes)
        converted = converted or (stored not in INTEGER_BYTES and FLOAT_BYTES.get(stored) != float_bytes)
    return Estimate(total, converted)


def safetensors_estimate(path, float_bytes):
    """What the tensors of a .safetensors file take once loaded (read from its header alone)."""
    from safetensors import safe_open

    with safe_open(path, framework="pt") as f:
        pieces = [f.get_slice(name) for name in f.keys()]
        return tensors_estimate(((p.get_dtype(), math.prod(p.get_shape())) for p in pieces), float_bytes)


def gguf_estimate(path, float_bytes):
    """What a GGUF file's tensors take once dequantized (transformers dequantizes every one)."""
    import gguf

    return Estimate(sum(int(t.n_elements) for t in gguf.GGUFReader(path).tensors) * float_bytes, True)


def file_estimate(path, float_bytes):
    if path.endswith(".safetensors"):
        return safetensors_estimate(path, float_bytes)
    if path.endswith(".gguf"):
        return gguf_estimate(path, float_bytes)
    return Estimate(os.path.getsize(path), True)  # a pickled checkpoint: its size is the best guess


# -- which files of a folder a load reads ---------------------------------------------------------


def weight_files(folder):
    """The weight files `from_pretrained` reads from a model folder: a diffusers pipeline's components
    (model_index.json), or one model's files (an index's shards, model.safetensors, ...)."""
    names = _listing(folder)
    if "model_index.json" in names:
        found = []
        for component in pipeline_components(os.path.join(folder, "model_index.json")):
            sub = os.path.join(folder, component)
            found += [os.path.join(component, name) for name in choose_weights(_listing(sub))]
        return [os.path.join(folder, name) for name in found]
    return [os.path.join(folder, name) for name in choose_weights(names)]


def pipeline_components(index_path):
    with open(index_path, encoding="utf-8") as f:
        index = json.load(f)
    return [name for name, value in index.items() if isinstance(value, list) and len(value) == 2 and None not in value]


def choose_weights(names):
    """Of a folder's file names, the weights one model loads: safetensors first (not a variant when there is
    a plain one; an index's shards), else pickled checkpoints."""
    names = list(names)
    for index in (n for n in names if n.endswith(".safetensors.index.json") and not _VARIANT.search(n)):
        return sorted(set(_index_shards(index, names)))
    for suffix in WEIGHT_SUFFIXES:
        chosen = [n for n in names if n.endswith(suffix) and "/" not in n]
        named = [n for n in chosen if n.startswith(("model", "diffusion_pytorch_model", "pytorch_model"))]
        chosen = named or chosen
        plain = [n for n in chosen if not _VARIANT.search(n)]
        if plain or chosen:
            return sorted(plain or chosen)
    return []


def _index_shards(index, names):
    return [name for name in names if name.endswith(".safetensors") and not _VARIANT.search(name) and name.startswith(index.split(".safetensors")[0])]


def _listing(folder):
    try:
        return sorted(os.listdir(folder))
    except OSError:
        return []


def folder_estimate(folder, float_bytes):
    files = weight_files(folder)
    return sum((file_estimate(path, float_bytes) for path in files), NOTHING) if files else None


# -- by kind of model --------------------------------------------------------------------------------


def estimate(spec, dtype, resolve=None):
    """The Estimate of `spec` loaded in `dtype` and run (RUN_ALLOWANCE included in its peak); None when that
    cannot be told without loading (a tiny model, a hub model neither downloaded nor reachable)."""
    found = _weights_estimate(spec, dtype, resolve)
    return None if found is None else dataclasses.replace(found, running=RUN_ALLOWANCE)


def _weights_estimate(spec, dtype, resolve):
    float_bytes = element_bytes(dtype)
    kind = spec.kind
    try:
        if kind == "local":
            if os.path.isdir(spec.source):
                return folder_estimate(spec.source, float_bytes)
            return file_estimate(spec.source, float_bytes) if os.path.isfile(spec.source) else None
        if kind == "hub":
            folder = cached_snapshot(spec.source)
            if folder is not None:
                return folder_estimate(folder, float_bytes)
            return hub_estimate(spec.source, float_bytes)
        if kind == "gguf":
            path = cached_gguf(spec.source)
            return gguf_estimate(path, float_bytes) if path else None
        if kind == "package":
            from . import gguf_models

            converted = gguf_models.converted_folder(spec.source)
            if (converted / "model.safetensors").is_file():
                return folder_estimate(str(converted), float_bytes)
            path = gguf_models.package_file(spec.source)
            return gguf_estimate(path, float_bytes) if path else None
        if kind == "adapter" and resolve is not None:
            from . import finetuned

            base = _weights_estimate(finetuned.base_spec(spec.source, resolve), dtype, resolve)
            own = folder_estimate(spec.source, float_bytes)
            return None if base is None else base + (own or NOTHING)
        if kind == "torchvision":
            return _torchvision_bytes()
    except Exception:  # a damaged or unreadable file: no estimate, and the loader says what is wrong in one line
        return None
    return None


def cached_snapshot(repo):
    """The local Hugging Face cache's folder of `repo`, or None when it was never downloaded."""
    from huggingface_hub import snapshot_download

    from .hf import quiet

    try:
        with quiet():
            return snapshot_download(repo, local_files_only=True)
    except Exception:  # not in the cache (huggingface_hub raises several kinds)
        return None


def cached_gguf(source):
    if ":" not in source or os.path.isfile(source):
        return source if os.path.isfile(source) else None
    repo, _, filename = source.partition(":")
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, filename)
    return found if isinstance(found, str) else None


def hub_estimate(repo, float_bytes):
    """What a hub model not downloaded yet will take, when the hub answers: its safetensors headers (read
    remotely, a few KB each), else its weight files' sizes."""
    from . import hub

    if not hub.hub_reachable():
        return None
    sizes = hub_file_sizes(repo)
    if not sizes:
        return None
    names = list(sizes)
    if "model_index.json" in names:
        chosen = []
        for component in hub_pipeline_components(repo):
            inside = [n.split("/", 1)[1] for n in names if n.startswith(component + "/")]
            chosen += [f"{component}/{n}" for n in choose_weights(inside)]
    else:
        chosen = choose_weights(names)
    total = NOTHING
    for name in chosen:
        header = hub_header_estimate(repo, name, float_bytes) if name.endswith(".safetensors") else None
        total += header if header is not None else Estimate(sizes.get(name) or 0, True)
    return total if total.nbytes else None


def hub_file_sizes(repo):
    """{file name: size} of a hub repo (one request), or {} when it cannot be had."""
    try:
        from huggingface_hub import HfApi

        info = HfApi().model_info(repo, files_metadata=True, timeout=10)
    except Exception:
        return {}
    return {s.rfilename: s.size for s in info.siblings or [] if s.size is not None}


def hub_pipeline_components(repo):
    try:
        from huggingface_hub import hf_hub_download

        return pipeline_components(hf_hub_download(repo, "model_index.json"))
    except Exception:
        return []


def hub_header_estimate(repo, filename, float_bytes):
    try:
        from huggingface_hub import HfApi

        metadata = HfApi().parse_safetensors_file_metadata(repo, filename)
    except Exception:
        return None
    return tensors_estimate(((t.dtype, math.prod(t.shape)) for t in metadata.tensors.values()), float_bytes)


def _torchvision_bytes():
    import torch

    from .nets.vgg import TORCHVISION_URL

    path = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(TORCHVISION_URL))
    return Estimate(os.path.getsize(path), True) if os.path.isfile(path) else None
