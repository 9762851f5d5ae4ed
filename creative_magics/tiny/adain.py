"""A narrow AdaIN net (the same layers, 4-16 channels) with random weights, saved as the published files
name their tensors (vgg_normalised's `0.weight` ..., decoder's `1.weight` ...), in safetensors.

PyTorch's default initialisation shrinks a signal through a dozen ReLU layers until the decoder gives a
constant (black, once clamped); He initialisation keeps it, and the last layer is scaled so that a
random picture comes out around mid-grey with a visible spread: the tiny net's pictures follow their inputs."""

import json
import os

WIDTHS = (4, 8, 8, 16)


def build(dest):
    import torch
    from safetensors.torch import save_file

    from ..nets.adain import AdaIN

    torch.manual_seed(0)
    net = AdaIN(WIDTHS)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                torch.nn.init.zeros_(module.bias)
        probe = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
        out = net.decoder(net.transferred_features(probe, [probe.flip(-1)]))
        last = net.decoder[-1]
        last.weight.mul_(0.2 / float(out.std().clamp_min(1e-6)))
        last.bias.fill_(0.5)
        last.bias.sub_(float(net.decoder(net.transferred_features(probe, [probe.flip(-1)])).mean()) - 0.5)
    save_file({k: v.contiguous() for k, v in net.encoder.state_dict().items()}, os.path.join(dest, "vgg_normalised.safetensors"))
    save_file({k: v.contiguous() for k, v in net.decoder.state_dict().items()}, os.path.join(dest, "decoder.safetensors"))
    with open(os.path.join(dest, "config.json"), "w") as f:
        json.dump({"architecture": "adain", "widths": list(WIDTHS), "init": "he, last layer calibrated"}, f)
