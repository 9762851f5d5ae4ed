"""CycleGAN's photo -> painting generator (Zhu et al. 2017): Johnson et al.'s ResNet generator with 9
residual blocks, instance normalisation, reflection padding; one pass per picture.

The modules and their indices follow junyanz/pytorch-CycleGAN-and-pix2pix's `ResnetGenerator`
(`--netG resnet_9blocks --norm instance --no_dropout`), so its published style_<painter>.pth files load
as they are. Their quirks are handled here: checkpoints saved before PyTorch 0.4 carry InstanceNorm
`running_mean` / `running_var` (and later `num_batches_tracked`) entries that a norm without running
statistics does not have, and a checkpoint saved from DataParallel prefixes every key with `module.`.
Images are RGB in [-1, 1] in and out (tanh).
"""

import torch
from torch import nn

from . import WeightsFile
from .layers import PAINTERS

NGF = 64  # channels after the first convolution
BLOCKS = 9
STRIDE = 4  # two stride-2 convolutions down, two transposed ones up
MIN_SIDE = 16  # reflection padding inside the residual blocks needs room at a quarter of the size

RELEASE = "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models"
# ngf 64, 9 blocks: 11,378,179 parameters, all float32.
PUBLISHED = {painter: WeightsFile(f"{RELEASE}/style_{painter}.pth", f"style_{painter}.pth", min_bytes=4 * 11_378_179) for painter in PAINTERS}
RUNNING_STATS = ("running_mean", "running_var", "num_batches_tracked")


def _norm(channels):
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class ResnetBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=True), _norm(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=True), _norm(dim),
        )

    def forward(self, x):
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """`self.model` is the published Sequential: model.1 the 7x7 input convolution, model.4 and model.7
    the downsampling ones, model.10-18 the residual blocks, model.19 and model.22 the upsampling, model.26 the output."""

    def __init__(self, ngf=NGF, blocks=BLOCKS):
        super().__init__()
        self.ngf, self.blocks = int(ngf), int(blocks)
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7, bias=True), _norm(ngf), nn.ReLU(True)]
        for mult in (1, 2):
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=True), _norm(ngf * mult * 2), nn.ReLU(True)]
        layers += [ResnetBlock(ngf * 4) for _ in range(blocks)]
        for mult in (4, 2):
            layers += [
                nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1, bias=True),
                _norm(ngf * mult // 2),
                nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        self.requires_grad_(False)
        self.eval()
        self.weights = []  # what was loaded (files and digests), for the recipe

    def forward(self, images):
        return self.model(images)

    def paint(self, images):
        """RGB (N, 3, H, W) in [0, 1], any size -> the painting, same size, in [0, 1]. The picture is
        padded by reflection to a multiple of the generator's stride and cropped back."""
        from .adain import pad_to_multiple

        height, width = images.shape[-2:]
        out = self.model(pad_to_multiple(images, STRIDE) * 2 - 1)
        return ((out[..., :height, :width] + 1) / 2).clamp(0, 1)


def clean_state(state):
    """The published state dict as our generator names it: no `module.` prefix, no InstanceNorm running
    statistics (pre-0.4 checkpoints), no non-tensor entries."""
    out = {}
    for key, value in state.items():
        if not torch.is_tensor(value):
            continue
        key = key[len("module."):] if key.startswith("module.") else key
        if key.rsplit(".", 1)[-1] in RUNNING_STATS:
            continue
        out[key] = value
    return out


def from_state_dict(state):
    """A generator with the width and number of blocks the state dict has (narrow test nets load too)."""
    state = clean_state(state)
    ngf = int(state["model.1.weight"].shape[0])
    blocks = len({key.split(".")[1] for key in state if ".conv_block." in key})
    net = ResnetGenerator(ngf, blocks)
    net.load_state_dict(state, strict=True)
    return net
