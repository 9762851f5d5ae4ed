"""A narrow VGG19 (same layers, 4-16 channels) with random weights, saved as torchvision names them."""

import json
import os

WIDTHS = (4, 8, 8, 16, 16)


def build(dest):
    import torch
    from safetensors.torch import save_file

    from ..nets.vgg import VGG19Features

    torch.manual_seed(0)
    net = VGG19Features(WIDTHS)
    state = {f"features.{k}": v.contiguous() for k, v in net.features.state_dict().items()}
    save_file(state, os.path.join(dest, "model.safetensors"))
    with open(os.path.join(dest, "config.json"), "w") as f:
        json.dump({"architecture": "vgg19", "widths": list(WIDTHS)}, f)
