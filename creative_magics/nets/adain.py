"""Arbitrary style transfer with adaptive instance normalisation (Huang & Belongie 2017): a VGG19 encoder
up to relu4_1, AdaIN (the content features take each channel's mean and spread from the style's), and
a decoder back to pixels. One pass, no optimisation.

The layers and their indices follow naoto0804/pytorch-AdaIN, so its published `vgg_normalised.pth` (the
authors' normalised VGG19, converted from their Torch release) and `decoder.pth` load as they are.
Images are RGB in [0, 1]; the encoder's first 1x1 convolution does the normalisation itself.
"""

import torch
from torch import nn

from . import WeightsFile

# Output channels of the encoder's four blocks (relu1_1 .. relu4_1).
ENCODER_WIDTHS = (64, 128, 256, 512)
# The encoder's convolutions by Sequential index, and the decoder's, as in the published state dicts.
ENCODER_CONVS = (0, 2, 5, 9, 12, 16, 19, 22, 25, 29)
DECODER_CONVS = (1, 5, 8, 11, 14, 18, 21, 25, 28)
LAST_ENCODER_LAYER = 30  # relu4_1: vgg_normalised.pth holds VGG19 to relu5_4; AdaIN uses the layers up to here
STRIDE = 8  # three poolings: the decoder gives back sizes in multiples of 8
MIN_SIDE = 16  # smaller images leave relu4_1 too few positions for a channel's statistics

RELEASE = "https://github.com/naoto0804/pytorch-AdaIN/releases/download/v0.0.0"
ENCODER_FILE = WeightsFile(f"{RELEASE}/vgg_normalised.pth", "vgg_normalised.pth", min_bytes=4 * 20_024_396)  # VGG19 to relu5_4
DECODER_FILE = WeightsFile(f"{RELEASE}/decoder.pth", "decoder.pth", min_bytes=4 * 3_505_219)
PUBLISHED = (ENCODER_FILE, DECODER_FILE)


def _conv(cin, cout, kernel=3):
    return nn.Conv2d(cin, cout, (kernel, kernel))


def encoder(widths=ENCODER_WIDTHS):
    """The normalised VGG19 up to relu4_1, index for index as in vgg_normalised.pth."""
    w1, w2, w3, w4 = widths
    pad = lambda: nn.ReflectionPad2d((1, 1, 1, 1))
    pool = lambda: nn.MaxPool2d((2, 2), (2, 2), (0, 0), ceil_mode=True)
    layers = [_conv(3, 3, 1)]
    layers += [pad(), _conv(3, w1), nn.ReLU(), pad(), _conv(w1, w1), nn.ReLU(), pool()]  # relu1_1 at 3
    layers += [pad(), _conv(w1, w2), nn.ReLU(), pad(), _conv(w2, w2), nn.ReLU(), pool()]  # relu2_1 at 10
    layers += [pad(), _conv(w2, w3), nn.ReLU()]  # relu3_1 at 17
    for _ in range(3):
        layers += [pad(), _conv(w3, w3), nn.ReLU()]
    layers += [pool(), pad(), _conv(w3, w4), nn.ReLU()]  # relu4_1 at 30
    return nn.Sequential(*layers)


def decoder(widths=ENCODER_WIDTHS):
    """The decoder, mirror of the encoder, index for index as in decoder.pth."""
    w1, w2, w3, w4 = widths
    pad = lambda: nn.ReflectionPad2d((1, 1, 1, 1))
    up = lambda: nn.Upsample(scale_factor=2, mode="nearest")
    layers = [pad(), _conv(w4, w3), nn.ReLU(), up()]
    for _ in range(3):
        layers += [pad(), _conv(w3, w3), nn.ReLU()]
    layers += [pad(), _conv(w3, w2), nn.ReLU(), up()]
    layers += [pad(), _conv(w2, w2), nn.ReLU(), pad(), _conv(w2, w1), nn.ReLU(), up()]
    layers += [pad(), _conv(w1, w1), nn.ReLU(), pad(), _conv(w1, 3)]
    return nn.Sequential(*layers)


def mean_std(features, eps=1e-5):
    """Each channel's mean and standard deviation over its positions, (N, C, 1, 1) each (as the authors
    compute them: unbiased variance, eps added before the square root)."""
    n, c = features.shape[:2]
    flat = features.reshape(n, c, -1)
    return flat.mean(dim=2).view(n, c, 1, 1), (flat.var(dim=2) + eps).sqrt().view(n, c, 1, 1)


def adaptive_instance_norm(content, style):
    """The content features normalised per channel, then given the style features' mean and spread."""
    content_mean, content_std = mean_std(content)
    style_mean, style_std = mean_std(style)
    return (content - content_mean) / content_std * style_std + style_mean


def coral(source, target):
    """`source`'s colours moved to `target`'s (mean and covariance of RGB), as the authors' --preserve_color
    does to the style image before the transfer. Both (3, H, W) in [0, 1]."""

    def flat_stats(image):
        flat = image.reshape(3, -1)
        mean, std = flat.mean(dim=1, keepdim=True), flat.std(dim=1, keepdim=True) + 1e-5  # (a flat colour has none)
        return flat, mean, std

    def sqrt_matrix(m):
        u, d, v = torch.svd(m)
        return u @ d.pow(0.5).diag() @ v.t()

    eye = torch.eye(3, dtype=source.dtype, device=source.device)
    s_flat, s_mean, s_std = flat_stats(source)
    s_norm = (s_flat - s_mean) / s_std
    t_flat, t_mean, t_std = flat_stats(target)
    t_norm = (t_flat - t_mean) / t_std
    moved = sqrt_matrix(t_norm @ t_norm.t() + eye) @ torch.inverse(sqrt_matrix(s_norm @ s_norm.t() + eye)) @ s_norm
    return (moved * t_std + t_mean).view(source.shape).clamp(0, 1)


class AdaIN(nn.Module):
    """The encoder, the AdaIN step and the decoder. `stylize` is the whole transfer."""

    def __init__(self, widths=ENCODER_WIDTHS, decoder_widths=None):
        super().__init__()
        self.widths = tuple(int(w) for w in widths)
        self.encoder = encoder(self.widths)
        self.decoder = decoder(tuple(decoder_widths or self.widths))
        self.requires_grad_(False)
        self.eval()
        self.weights = []  # what was loaded (files and digests), for the recipe

    def encode(self, images):
        """relu4_1 features of RGB images in [0, 1], (N, 3, H, W)."""
        return self.encoder(images)

    def transferred_features(self, content, styles, blend=None, alpha=1.0):
        """relu4_1 features the decoder turns into the picture: AdaIN of the content after each style,
        blended by `blend` (normalised), then `alpha` of that and 1 - alpha of the content's own."""
        blend = list(blend) if blend else [1.0] * len(styles)
        total = float(sum(blend))
        content_features = self.encode(content)
        mixed = 0
        for style, weight in zip(styles, blend):
            mixed = mixed + (weight / total) * adaptive_instance_norm(content_features, self.encode(style))
        return alpha * mixed + (1 - alpha) * content_features

    def stylize(self, content, styles, blend=None, alpha=1.0):
        """The content (1, 3, H, W) restyled after `styles` (each (1, 3, h, w), any size), same size, in [0, 1].
        The content is padded by reflection to a multiple of the stride and cropped back."""
        height, width = content.shape[-2:]
        padded = pad_to_multiple(content, STRIDE)
        out = self.decoder(self.transferred_features(padded, styles, blend, alpha))
        return out[..., :height, :width].clamp(0, 1)

    def load_encoder(self, state):
        """vgg_normalised.pth's keys (`0.weight` ... ); the layers past relu4_1 are not used."""
        kept = {k: v for k, v in _unprefixed(state).items() if int(k.split(".")[0]) <= LAST_ENCODER_LAYER}
        self.encoder.load_state_dict(kept, strict=True)
        return self

    def load_decoder(self, state):
        self.decoder.load_state_dict(_unprefixed(state), strict=True)
        return self


def _unprefixed(state):
    """A state dict without a `module.` prefix (saved from DataParallel) and without non-tensor entries."""
    out = {}
    for key, value in state.items():
        if not torch.is_tensor(value):
            continue
        out[key[len("module."):] if key.startswith("module.") else key] = value
    return out


def encoder_widths(state):
    """The four block widths an encoder state dict was made with (from its weights' shapes)."""
    state = _unprefixed(state)
    return tuple(int(state[f"{index}.weight"].shape[0]) for index in (2, 9, 16, 29))


def decoder_widths(state):
    """(w1, w2, w3, w4) of a decoder state dict: 21 maps w2 -> w1, 14 w3 -> w2, 1 w4 -> w3."""
    state = _unprefixed(state)
    first = state["1.weight"].shape
    return (int(state["21.weight"].shape[0]), int(state["14.weight"].shape[0]), int(first[0]), int(first[1]))


def from_state_dicts(encoder_state, decoder_state):
    """An AdaIN net with the widths the two state dicts have (narrow test nets load too)."""
    net = AdaIN(encoder_widths(encoder_state), decoder_widths(decoder_state))
    return net.load_encoder(encoder_state).load_decoder(decoder_state)


def pad_to_multiple(images, multiple):
    """Reflection-pad the bottom and right edges of (N, C, H, W) up to multiples of `multiple`."""
    import torch.nn.functional as F

    height, width = images.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if not pad_h and not pad_w:
        return images
    return F.pad(images, (0, pad_w, 0, pad_h), mode="reflect")
