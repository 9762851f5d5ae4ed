"""Gatys style transfer: the losses equal an independent reference computation, and they fall."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from creative_magics import session
from creative_magics.errors import CreativeError
from creative_magics.tasks import stylize as task


def tiny_vgg():
    session.reset()
    current = session.current()
    current.settings.profile = "tiny"
    return current.cache.get("stylize", "vgg19")


def pattern(seed, size=48):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "RGB")


def reference_features(weights, x, layer_names):
    """VGG19 by hand: conv 3x3 + ReLU, max-pool after each block; torchvision's 16 convs, in order."""
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x = (x - mean) / std
    convs_per_block = [2, 2, 4, 4, 4]
    out, index = {}, 0
    for block, convs in enumerate(convs_per_block, start=1):
        for conv in range(1, convs + 1):
            x = F.relu(F.conv2d(x, weights[f"{index}.weight"], weights[f"{index}.bias"], padding=1))
            out[f"conv{block}_{conv}"] = x
            index += 2
        x = F.max_pool2d(x, 2)
        index += 1
    return {name: out[name] for name in layer_names}


def reference_losses(weights, image, content, style, sw, cw, tvw):
    def gram(f):
        n, c, h, w = f.shape
        m = f.view(c, h * w)
        return m @ m.t() / (c * h * w)

    layers = ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"]
    fi = reference_features(weights, image, layers + ["conv4_2"])
    fc = reference_features(weights, content, ["conv4_2"])
    fs = reference_features(weights, style, layers)
    content_loss = ((fi["conv4_2"] - fc["conv4_2"]) ** 2).mean()
    style_loss = sum(((gram(fi[l]) - gram(fs[l])) ** 2).mean() for l in layers) / len(layers)
    tv = (image[:, :, 1:, :] - image[:, :, :-1, :]).abs().mean() + (image[:, :, :, 1:] - image[:, :, :, :-1]).abs().mean()
    return content_loss, style_loss, tv, cw * content_loss + sw * style_loss + tvw * tv


def test_step_zero_losses_match_an_independent_reference():
    net = tiny_vgg()
    weights = {k: v for k, v in net.features.state_dict().items()}
    content, style = task.to_tensor(pattern(1)), task.to_tensor(pattern(2))
    image = torch.rand(content.shape, generator=torch.Generator().manual_seed(0))
    targets = task.Targets(net, content, [style], [1.0], task.HOUSE_DEFAULTS["style_layers"], task.HOUSE_DEFAULTS["content_layer"])
    ours = task.losses(net, image, targets, style_weight=1e6, content_weight=1.0, tv_weight=1e-6)
    ref = reference_losses(weights, image, content, style, 1e6, 1.0, 1e-6)
    for name, expected in zip(("content", "style", "tv", "total"), ref):
        assert torch.allclose(ours[name], expected, rtol=1e-5, atol=0), name
    assert ours["style"] > 0 and ours["content"] > 0


def test_two_styles_blend_their_gram_matrices():
    net = tiny_vgg()
    a, b = task.to_tensor(pattern(3)), task.to_tensor(pattern(4))
    content = task.to_tensor(pattern(5))
    blended = task.Targets(net, content, [a, b], [3.0, 1.0], ["conv1_1"], "conv4_2").grams["conv1_1"]
    only_a = task.Targets(net, content, [a], [1.0], ["conv1_1"], "conv4_2").grams["conv1_1"]
    only_b = task.Targets(net, content, [b], [1.0], ["conv1_1"], "conv4_2").grams["conv1_1"]
    assert torch.allclose(blended, 0.75 * only_a + 0.25 * only_b, rtol=1e-5)


@pytest.mark.parametrize("optimizer, lr", [("adam", 0.01), ("lbfgs", None)])
def test_the_loss_falls(optimizer, lr):
    net = tiny_vgg()
    values = dict(task.HOUSE_DEFAULTS, steps=30, size=48, init="noise", optimizer=optimizer, lr=lr, seed=0)
    _, history, interrupted, _ = task.transfer(net, pattern(6), [pattern(7)], values)
    assert not interrupted and len(history) == 30
    assert history[-1]["total"] < 0.5 * history[0]["total"]


def test_ctrl_c_returns_the_current_image():
    net = tiny_vgg()
    seen = []

    def stop_at_five(step, steps, loss, preview):
        seen.append(step)
        if step == 5:
            raise KeyboardInterrupt

    values = dict(task.HOUSE_DEFAULTS, steps=50, size=48, init="noise", optimizer="adam", lr=0.01, seed=0)
    image, history, interrupted, _ = task.transfer(net, pattern(6), [pattern(7)], values, stop_at_five)
    assert interrupted and len(history) == 5 and image.size == (48, 48)


def test_preserve_color_keeps_the_content_chroma():
    ramp = np.linspace(60, 200, 32, dtype=np.uint8)
    content = Image.fromarray(np.stack([np.tile(ramp, (32, 1)), np.full((32, 32), 90, np.uint8), np.tile(ramp[:, None], (1, 32))], -1))
    styled = Image.fromarray(np.repeat((np.asarray(pattern(9, 32).convert("L")) // 2 + 64)[..., None], 3, -1))
    kept = task.keep_colors(styled, content).convert("YCbCr")
    _, cb, cr = kept.split()
    _, cb0, cr0 = content.convert("YCbCr").split()
    assert np.abs(np.asarray(cb, int) - np.asarray(cb0, int)).mean() < 1.5
    assert np.abs(np.asarray(cr, int) - np.asarray(cr0, int)).mean() < 1.5
    y, y_styled = np.asarray(kept.split()[0], int), np.asarray(styled.convert("L"), int)
    assert np.abs(y - y_styled).mean() < 3  # the texture's light and dark stay


def test_fit_size_keeps_the_aspect_ratio():
    assert task.fit_size(Image.new("RGB", (400, 200)), 100).size == (100, 50)


@pytest.mark.parametrize(
    "values, fragment",
    [
        ({"size": 16}, "--size must be a whole number from 32 to 2048"),
        ({"size": 5000}, "--size must be a whole number from 32 to 2048"),
        ({"style_weight": -1}, "style-weight must be >= 0"),
        ({"content_weight": -0.1}, "content-weight must be >= 0"),
        ({"tv_weight": -1}, "tv-weight must be >= 0"),
        ({"steps": 0}, "--steps must be a whole number >= 1"),
        ({"optimizer": "sgd"}, "optimizer must be lbfgs or adam"),
        ({"init": "zeros"}, "init must be content or noise"),
        ({"style_layers": ["conv9_9"]}, "--style-layers: unknown 'conv9_9'"),
        ({"style_blend": [0, 0]}, "blend weights must be >= 0 and not all 0"),
    ],
)
def test_bad_values(values, fragment):
    with pytest.raises(CreativeError, match=fragment.replace("(", r"\(")):
        task.check(values)
