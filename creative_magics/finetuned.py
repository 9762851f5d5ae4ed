"""Fine-tuned models by name: each lives in `home()/models/NAME` with a `creative_magics.json` that says
what it was adapted from, so `%%story -m NAME` finds it in this kernel and after a restart.

A LoRA folder (peft's adapter_config.json + weights) loads as its base model with the adapter merged in;
a full fine-tune is a plain model folder. The folders themselves are the registry: nothing else to
keep in step.
"""

import json
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path

from . import paths
from .errors import CreativeError

METADATA = "creative_magics.json"
ADAPTER_CONFIG = "adapter_config.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


def models_dir():
    return paths.home() / "models"


def folder(name):
    return models_dir() / name


def check_name(name):
    if not isinstance(name, str) or not _NAME.match(name) or name.endswith(".") or ".." in name:
        raise CreativeError(
            f"{name!r} cannot name a model: use letters, digits, '-', '_' or '.', starting with a letter or digit (64 at most)"
        )
    return name


def metadata(path):
    """The creative_magics.json of a fine-tuned model folder, or None when there is none (or it is unreadable)."""
    try:
        with open(os.path.join(path, METADATA), encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def registered():
    """{name: metadata} of the fine-tuned models in the models folder, by name."""
    root = models_dir()
    if not root.is_dir():
        return {}
    found = {}
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        data = metadata(entry)
        if data is not None:
            found[entry.name] = data
    return found


def aliases():
    """{name: folder} for every fine-tuned model, in the form `models.resolve` takes user aliases."""
    return {name: str(folder(name)) for name in registered()}


def is_adapter_folder(path):
    return os.path.isfile(os.path.join(path, ADAPTER_CONFIG))


def describe(data):
    """'LoRA on gpt2' / 'full fine-tune of gpt2' from a model's metadata."""
    how = "LoRA on" if data.get("method") == "lora" else "full fine-tune of"
    return f"{how} {data.get('base', '?')}"


def taken(name, user_aliases=None):
    """Why `name` is already in use (a phrase), or None when it is free."""
    from .models import BUILTIN_ALIASES, TINY_FAMILY

    data = metadata(folder(name)) if folder(name).is_dir() else None
    if data is not None:
        return f"a fine-tuned model ({describe(data)})"
    if folder(name).exists():
        return f"a folder in {models_dir()}"
    if name in (user_aliases or {}):
        return "one of your %config aliases"
    if name in BUILTIN_ALIASES or name in TINY_FAMILY:
        return "a built-in model alias"
    return None


def save(name, write):
    """Write a model folder with `write(tmp_folder)`, then put it in place as `name` in one step.

    An interrupted or failed write leaves the previous model of that name (if any) untouched.
    """
    root = models_dir()
    root.mkdir(parents=True, exist_ok=True)
    target = folder(name)
    scratch = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    old = None
    try:
        write(scratch)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{name}-old-", dir=root))
            os.rename(target, old / name)
        os.rename(scratch, target)
    except BaseException:
        if old is not None and not target.exists():
            os.rename(old / name, target)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return target


def write_metadata(path, data):
    with open(os.path.join(path, METADATA), "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True)


# -- loading --------------------------------------------------------------------------------


def base_spec(path, resolve):
    """The ModelSpec of the model an adapter folder was trained on: from our metadata, else from peft's
    adapter_config.json (`base_model_name_or_path`, resolved like `-m` by `resolve(task, ref)`)."""
    from .models import ModelSpec

    data = metadata(path) or {}
    spec = data.get("base_spec")
    if isinstance(spec, dict) and {"name", "family", "kind", "source"} <= set(spec):
        return ModelSpec(spec["name"], spec["family"], spec["kind"], spec["source"])
    try:
        with open(os.path.join(path, ADAPTER_CONFIG), encoding="utf-8") as f:
            ref = json.load(f).get("base_model_name_or_path")
    except (OSError, ValueError):
        ref = None
    if not ref:
        raise CreativeError(f"adapter folder {str(path)!r} does not say which model it adapts (base_model_name_or_path)")
    return resolve("story", ref)


def _warm_copy(spec, dtype, warm):
    """A copy of the base model when the cache holds it warm on the CPU and no call is using it (no
    reading from disk); None otherwise."""
    import copy

    text_model = warm(spec) if warm is not None else None
    if text_model is None:
        return None
    model = copy.deepcopy(text_model.model).to(dtype=dtype)
    return type(text_model)(model, text_model.tokenizer)


def need_peft():
    import importlib.util

    if importlib.util.find_spec("peft") is None:
        raise CreativeError("LoRA needs the peft library: pip install peft (or pip install 'creative_magics[train]')")


def load_adapter(spec, dtype, settings, *, resolve, warm, load):
    """A TextModel: the adapter's base (copied from the warm cache, else loaded with `load`) with the LoRA
    weights merged in."""
    need_peft()
    from peft import PeftModel
    from transformers import AutoTokenizer

    from .errors import ModelNotAvailable
    from .hf import quiet, trusts_remote_code

    path = spec.source
    base = base_spec(path, resolve)
    text_model = _warm_copy(base, dtype, warm) or load(base, dtype, settings, resolve=resolve, warm=warm)
    try:
        with quiet(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecation chatter of peft and transformers
            adapted = PeftModel.from_pretrained(text_model.model, path)
            model = adapted.merge_and_unload()
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        text = str(err).strip().splitlines()
        raise ModelNotAvailable(
            f"adapter {spec.name!r} ({path}) does not fit its base {base.name!r}: {text[0] if text else type(err).__name__}"
        ) from None
    model.eval()
    tokenizer = text_model.tokenizer
    if os.path.isfile(os.path.join(path, "tokenizer_config.json")):
        with quiet():
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=trusts_remote_code(settings))
        if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
            tokenizer.pad_token = tokenizer.eos_token
    return type(text_model)(model, tokenizer)


def forget_warm(cache, path):
    """Drop a warm copy of the model in `path` (it was just replaced on disk), unless a call is using it."""
    path = str(path)
    if any(entry.spec.source == path and not entry.users for entry in cache.entries()):
        try:
            cache.evict(path)
        except CreativeError:
            pass
