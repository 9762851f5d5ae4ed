"""Iterations per second of %stylize against a plain PyTorch loop doing the same work (the usual
tutorial implementation: the whole VGG19 feature stack every iteration, same losses, same L-BFGS),
interleaved in one process, on a full-size VGG19 (random weights: timing does not depend on them).
Issue 4/8 asks for a ratio >= 1.0.

    python benchmarks/bench_stylize.py [--size 128] [--steps 10] [--runs 3] [--quick]
"""

import argparse

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from common import emit_result, interleaved, report


def plain_loop(features, content, style, steps, style_indices, content_index, amp=False, channels_last=False):
    """Style transfer as a tutorial writes it: run every layer every iteration, pick activations by
    index; same losses and L-BFGS as %stylize, on the content's device. benchmarks/gpu.py also asks for
    channels_last (the net's input; the optimised image stays contiguous, as L-BFGS .view()s its
    gradient) and bfloat16 autocast."""
    device = content.device
    mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1)

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp)

    def activations(x):
        out, x = {}, (x - mean) / std
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        for index, module in enumerate(features):
            x = module(x)
            out[index] = x
        return out

    def gram(f):
        _, c, h, w = f.shape
        m = f.reshape(c, h * w)
        return m @ m.t() / (c * h * w)

    with torch.no_grad(), autocast():
        target_content = activations(content)[content_index]
        style_acts = activations(style)
        target_grams = [gram(style_acts[i]) for i in style_indices]
    image = content.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([image], max_iter=1, tolerance_grad=0.0, tolerance_change=0.0, history_size=50)

    def closure():
        optimizer.zero_grad()
        with autocast():
            acts = activations(image)
            loss = F.mse_loss(acts[content_index], target_content)
            loss = loss + 1e6 * sum(F.mse_loss(gram(acts[i]), g) for i, g in zip(style_indices, target_grams)) / len(style_indices)
            tv = (image[..., 1:, :] - image[..., :-1, :]).abs().mean() + (image[..., :, 1:] - image[..., :, :-1]).abs().mean()
            loss = loss + 1e-6 * tv
        loss.float().backward()
        return loss

    for _ in range(steps):
        optimizer.step(closure)
        with torch.no_grad():
            image.clamp_(0, 1)
    return image


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="64 px, 2 iterations, 1 run: checks the plumbing")
    args = parser.parse_args()
    if args.quick:
        args.size, args.steps, args.runs = 64, 2, 1

    from creative_magics import session
    from creative_magics.nets.vgg import LAYER_INDEX, VGG19Features
    from creative_magics.tasks import stylize as task

    torch.manual_seed(0)
    net = VGG19Features().eval()  # full width, random weights
    rng = np.random.default_rng(0)
    content_image = Image.fromarray(rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8))
    style_image = Image.fromarray(rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8))
    content, style = task.to_tensor(content_image), task.to_tensor(style_image)
    style_indices = [LAYER_INDEX[name] + 1 for name in task.STYLE_LAYERS]  # after the ReLU
    content_index = LAYER_INDEX[task.CONTENT_LAYER] + 1

    import contextlib
    import io
    import os
    import tempfile

    from IPython.testing.globalipapp import start_ipython
    from safetensors.torch import save_file

    folder = tempfile.mkdtemp(prefix="vgg19-random-")
    save_file({f"features.{k}": v.contiguous() for k, v in net.features.state_dict().items()}, os.path.join(folder, "model.safetensors"))
    ip = start_ipython()
    ip.run_line_magic("load_ext", "creative_magics")
    ip.user_ns.update(content_image=content_image, style_image=style_image)
    line = f"--content content_image --style style_image -m {folder} --size {args.size} --steps {args.steps} --seed 0"

    def ours():
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            ip.run_line_magic("stylize", line)

    def plain():
        plain_loop(net.features, content, style, args.steps, style_indices, content_index)

    ours()
    plain()
    medians = interleaved(args.runs, plain=plain, ours=ours)
    rate = {name: args.steps / seconds for name, seconds in medians.items()}
    report(
        f"%stylize vs a plain PyTorch loop: full VGG19, {args.size} px, {args.steps} L-BFGS iterations, CPU, median of {args.runs}",
        [
            ("plain loop", f"{rate['plain']:.2f} it/s"),
            ("%stylize", f"{rate['ours']:.2f} it/s"),
            ("ratio ours / plain", f"{rate['ours'] / rate['plain']:.2f}"),
        ],
    )
    emit_result(
        "`%stylize` / plain PyTorch loop, iterations per second",
        f"{rate['ours'] / rate['plain']:.2f} ({rate['ours']:.2f} vs {rate['plain']:.2f} it/s, {args.size} px)",
        rate["ours"] / rate["plain"],
    )
    session.reset()


if __name__ == "__main__":
    main()
