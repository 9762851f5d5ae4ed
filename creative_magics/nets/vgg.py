"""VGG19's convolutional part in torchvision's layer order, so torchvision's published state dict
loads into it as is (keys `features.N.weight`), without depending on torchvision."""

import torch
from torch import nn

from .layers import CONVS_PER_BLOCK, LAYER_INDEX

# Output channels of the five blocks.
VGG19_WIDTHS = (64, 128, 256, 512, 512)

# ImageNet statistics the published weights were trained with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

TORCHVISION_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"


class VGG19Features(nn.Module):
    """`self.features` is the torchvision Sequential; `forward` returns the ReLU outputs of the named layers."""

    def __init__(self, widths=VGG19_WIDTHS):
        super().__init__()
        self.widths = tuple(int(w) for w in widths)
        layers, channels = [], 3
        for width, convs in zip(self.widths, CONVS_PER_BLOCK):
            for _ in range(convs):
                layers += [nn.Conv2d(channels, width, kernel_size=3, padding=1), nn.ReLU(inplace=False)]
                channels = width
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def normalize(self, images):
        """RGB in [0, 1] -> the ImageNet-normalised input the weights expect."""
        return (images - self.mean.to(images.dtype)) / self.std.to(images.dtype)

    def forward(self, images, layers):
        """Activations (after ReLU) at the named layers, for RGB images in [0, 1] of shape (N, 3, H, W)."""
        wanted = {LAYER_INDEX[name] + 1: name for name in layers}
        last = max(wanted)
        out, x = {}, self.normalize(images)
        for index, module in enumerate(self.features):
            x = module(x)
            if index in wanted:
                out[wanted[index]] = x
            if index >= last:
                break
        return out

    def load_features(self, state_dict):
        """Load torchvision's VGG19 state dict (classifier keys are ignored)."""
        features = {k[len("features."):]: v for k, v in state_dict.items() if k.startswith("features.")}
        self.features.load_state_dict(features, strict=True)
        return self
