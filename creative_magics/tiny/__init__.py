"""Tiny random models for every task, built locally and deterministically, saved in the usual
Hugging Face layouts and loaded by the same loaders as real models. They make the whole product
run offline: tests, CI, and the `tiny` profile.
"""

import importlib
import os
import shutil
import tempfile
import threading

from ..paths import home

# Bump when a builder changes, so old builds are not reused.
TINY_VERSION = "3"  # 3: the tiny MusicGen's codebooks are random (they were zero) and its text weighs more

BUILDERS = {
    "tiny-gpt2": "creative_magics.tiny.text:build_base",
    "tiny-chat": "creative_magics.tiny.text:build_chat",
    "tiny-sd": "creative_magics.tiny.diffusion:build",
    "tiny-vgg19": "creative_magics.tiny.vgg:build",
    "tiny-musicgen": "creative_magics.tiny.music:build",
    "tiny-musicgen-melody": "creative_magics.tiny.music_melody:build",  # -- %%compose --melody
}

_lock = threading.Lock()


def root():
    return home() / "tiny" / f"v{TINY_VERSION}"


def ensure(name):
    """The folder of tiny model `name`, built on first use. Safe across threads and processes:
    each build goes to a temporary folder that is renamed into place in one step."""
    if name not in BUILDERS:
        raise KeyError(name)
    target = root() / name
    if (target / ".complete").exists():
        return target
    with _lock:
        if (target / ".complete").exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        module_name, func_name = BUILDERS[name].split(":")
        build = getattr(importlib.import_module(module_name), func_name)
        scratch = tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent)
        try:
            build(scratch)
            open(os.path.join(scratch, ".complete"), "w").close()
            if target.exists() and not (target / ".complete").exists():
                shutil.rmtree(target, ignore_errors=True)
            try:
                os.rename(scratch, target)
            except OSError:
                if not (target / ".complete").exists():  # someone else's half build: not ours to keep
                    raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return target
