"""A narrow CycleGAN generator (9 residual blocks, 4 channels wide) with random weights per painter,
saved as the published checkpoints name their tensors (`model.1.weight` ...), in safetensors."""

import json
import os

from ..nets.layers import PAINTERS

NGF = 4


def build(dest, painter):
    import torch
    from safetensors.torch import save_file

    from ..nets.cyclegan import ResnetGenerator

    torch.manual_seed(10 + PAINTERS.index(painter))  # each painter its own random weights
    net = ResnetGenerator(NGF)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, os.path.join(dest, "model.safetensors"))
    with open(os.path.join(dest, "config.json"), "w") as f:
        json.dump({"architecture": "cyclegan-resnet_9blocks", "painter": painter, "ngf": NGF}, f)
