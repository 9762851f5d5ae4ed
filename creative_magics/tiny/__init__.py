"""Tiny random models for every task, built locally and deterministically, saved in the usual
Hugging Face layouts and loaded by the same loaders as real models. They make the whole product
run offline: tests, CI, and the `tiny` profile.
"""

import os
import shutil
import tempfile
import threading

from ..nets.layers import PAINTERS
from ..paths import home

# Bump when a builder changes, so old builds are not reused.
TINY_VERSION = "3"  # 3: the tiny MusicGen's codebooks are random (they were zero) and its text weighs more

def _text(dest, chat):
    from . import text

    (text.build_chat if chat else text.build_base)(dest)


def _diffusion(dest, build="build", **kwargs):
    from . import diffusion

    getattr(diffusion, build)(dest, **kwargs)


def _vgg(dest):
    from . import vgg

    vgg.build(dest)


def _adain(dest):
    from . import adain

    adain.build(dest)


def _cyclegan(painter):
    def build(dest):
        from . import cyclegan

        cyclegan.build(dest, painter)

    return build


def _amused(dest):
    from . import amused

    amused.build(dest)


def _music(dest):
    from . import music

    music.build(dest)


def _music_melody(dest):
    from . import music_melody

    music_melody.build(dest)


def _midi(dest):
    from . import midi

    midi.build(dest)


def _clip(dest):
    from . import clip

    clip.build(dest)


# Each builder imports its module (and torch) only when it runs.
BUILDERS = {
    "tiny-gpt2": lambda dest: _text(dest, chat=False),
    "tiny-chat": lambda dest: _text(dest, chat=True),
    "tiny-sd": _diffusion,
    # %%paint: SDXL, inpainting, ControlNets and LoRAs in their real layouts
    "tiny-sdxl": lambda dest: _diffusion(dest, "build_xl"),
    "tiny-sd-inpaint": lambda dest: _diffusion(dest, "build_inpaint"),
    "tiny-sdxl-inpaint": lambda dest: _diffusion(dest, "build_xl_inpaint"),
    "tiny-controlnet": lambda dest: _diffusion(dest, "build_controlnet"),
    "tiny-controlnet-sdxl": lambda dest: _diffusion(dest, "build_controlnet", xl=True),
    "tiny-lora": lambda dest: _diffusion(dest, "build_lora"),
    "tiny-lora-sdxl": lambda dest: _diffusion(dest, "build_lora", xl=True),
    "tiny-vgg19": _vgg,
    "tiny-adain": _adain,  # %stylize --method adain
    **{f"tiny-cyclegan-{painter}": _cyclegan(painter) for painter in PAINTERS},  # %stylize --method cyclegan
    "tiny-amused": _amused,  # %%paint -m amused-256 / amused-512
    "tiny-musicgen": _music,
    "tiny-musicgen-melody": _music_melody,  # %%compose --melody
    "tiny-amt": _midi,  # %%compose --midi
    "tiny-clip": _clip,  # %creative similar: a CLIP whose embeddings are set by hand (colours)
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
        build = BUILDERS[name]
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
