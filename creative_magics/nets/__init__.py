"""Networks we define ourselves, loading the published state dicts of their authors' releases:
the VGG19 features for Gatys' style transfer (vgg.py), AdaIN's encoder and decoder (adain.py) and the
CycleGAN painters' generator (cyclegan.py). Nothing here runs code that came with the weights."""

from dataclasses import dataclass


@dataclass(frozen=True)
class WeightsFile:
    """A published weights file: where it is downloaded from, what it is called on disk, and how it is
    verified before use (a file shorter than its tensors is truncated; a published SHA-256 must match)."""

    url: str
    name: str
    min_bytes: int  # the tensors alone take this many bytes (float32)
    sha256: str = None  # the digest its authors publish, where they publish one
