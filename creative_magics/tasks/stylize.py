"""Style transfer, three ways (img2img, the fourth, is %%paint's and lives in the api):

- gatys (Gatys, Ecker and Bethge 2016): optimise an image so its VGG19 features match the content
  image's at one deep layer and its Gram matrices match the style images' at several layers, with a
  total-variation term for smoothness. Targets are computed once; each iteration runs the net only up
  to the deepest layer a loss needs. The quality reference, and hundreds of iterations.
- adain (Huang & Belongie 2017): one pass of an encoder, adaptive instance normalisation after any
  style image(s), and a decoder. Fast enough to follow a drawing on the style canvas.
- cyclegan (Zhu et al. 2017): one pass of a painter's generator (Monet, Van Gogh, Cezanne, Ukiyo-e).

Every network comes from the model cache.
"""

from .. import defaults, fast, params, seeds
from ..errors import CreativeError
from ..nets.layers import PAINTERS

TASK = params.STYLIZE
METHODS = TASK["method"].choices
OPTIMIZERS = TASK["optimizer"].choices
INITS = TASK["init"].choices
# Used when neither the user, the panel nor %config give a value; lr depends on the optimizer.
HOUSE_DEFAULTS = {p.name: p.default for p in TASK.params if "gatys" in p.methods and p.default is not None}
HOUSE_DEFAULTS["steps"] = TASK["steps"].default
RECORDED = ("steps", "size", "style_weight", "content_weight", "tv_weight", "init", "optimizer", "lr", "preserve_color",
            "style_layers", "content_layer")
CPU_SIZE = 256  # the default size when running on the CPU, where 512 px is slow
PREVIEW_EVERY = 10
DEFAULT_LR = {"lbfgs": 1.0, "adam": 0.02}
# Parameters of the Python API and the magic (besides content, style and the text style).
PARAMS = TASK.names
FEED_FORWARD = ("adain", "cyclegan")
MIN_SIDE = 16  # both networks need this many pixels on each side (nets.adain.MIN_SIDE, nets.cyclegan.MIN_SIDE)
CYCLEGAN_MAX_SIZE = {"cpu": 512, "gpu": 1024}  # cyclegan's default size: the content's own, at most this
RECORDED_FEED_FORWARD = {"adain": ("size", "alpha", "preserve_color"), "cyclegan": ("size", "preserve_color")}


def check(values):
    """One line for a value that cannot work: each against its declaration, then the rules between
    values. Values not given (None) pass."""
    blend = values.get("style_blend")
    TASK.check(values)
    if blend is not None and not sum(blend) > 0:
        raise CreativeError("style blend weights must be >= 0 and not all 0")


def check_method(method, given):
    """The flags given (names) must belong to `method`: --strength is img2img's, --style-weight gatys'."""
    for name in given:
        param = TASK.by_name.get(name)
        if param is not None and param.methods and method not in param.methods:
            owner = " or ".join(param.methods)
            raise CreativeError(f"{param.flag} belongs to --method {owner}, not {method}")


# -- images <-> tensors -----------------------------------------------------------------------


def fit_size(image, size):
    """Scale so the longer side is `size` pixels, keeping the aspect ratio."""
    from PIL import Image

    width, height = image.size
    scale = size / max(width, height)
    target = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image.resize(target, Image.Resampling.LANCZOS) if target != image.size else image


def to_tensor(image, device="cpu", dtype=None):
    """PIL RGB -> (1, 3, H, W) float tensor in [0, 1]."""
    import numpy as np
    import torch

    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    tensor = torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()
    return tensor.to(device=device, dtype=dtype or torch.float32)


def to_image(tensor):
    """(1, 3, H, W) tensor in [0, 1] -> PIL RGB."""
    from PIL import Image

    array = (tensor.detach()[0].clamp(0, 1).permute(1, 2, 0).float().cpu().numpy() * 255.0).round().astype("uint8")
    return Image.fromarray(array, "RGB")


def keep_colors(styled, content):
    """Luminance-only transfer: the styled image's luminance with the content image's colours."""
    from PIL import Image

    y, _, _ = styled.convert("YCbCr").split()
    _, cb, cr = content.resize(styled.size).convert("YCbCr").split()
    return Image.merge("YCbCr", (y, cb, cr)).convert("RGB")


# -- losses -------------------------------------------------------------------------------------


def gram(features):
    """Gram matrix of (N, C, H, W) features, normalised by C*H*W."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


def total_variation(image):
    return (image[..., 1:, :] - image[..., :-1, :]).abs().mean() + (image[..., :, 1:] - image[..., :, :-1]).abs().mean()


class Targets:
    """What the result should match: the content features and the blended style Gram matrices."""

    def __init__(self, net, content, styles, blend, style_layers, content_layer):
        import torch

        with torch.no_grad():
            self.content = net(content, [content_layer])[content_layer]
            total = float(sum(blend))
            self.grams = {}
            for style, weight in zip(styles, blend):
                features = net(style, style_layers)
                for layer in style_layers:
                    contribution = gram(features[layer]) * (weight / total)
                    self.grams[layer] = self.grams.get(layer, 0) + contribution
        self.style_layers = tuple(style_layers)
        self.content_layer = content_layer


def losses(net, image, targets, style_weight, content_weight, tv_weight):
    """The weighted loss terms for `image`: dict of content, style, tv and total (tensors)."""
    import torch.nn.functional as F

    features = net(image, list(targets.style_layers) + [targets.content_layer])
    content = F.mse_loss(features[targets.content_layer], targets.content)
    style = sum(F.mse_loss(gram(features[layer]), targets.grams[layer]) for layer in targets.style_layers) / len(
        targets.style_layers
    )
    tv = total_variation(image)
    total = content_weight * content + style_weight * style + tv_weight * tv
    return {"content": content, "style": style, "tv": tv, "total": total}


# -- the optimisation ---------------------------------------------------------------------------


def transfer(net, content_image, style_images, values, on_progress=None):
    """Run the optimisation. Returns (PIL image, loss history, interrupted).

    on_progress(step, steps, loss, image_or_None) is called after every iteration, with the current
    image every PREVIEW_EVERY iterations. Ctrl-C returns the image as it is.
    """
    import torch

    device = next(net.parameters()).device
    dtype = next(net.parameters()).dtype
    mode = values.get("precision")
    with fast.precision(mode, device), in_memory_format(net, fast.memory_format(mode)) as layout:
        content = to_tensor(content_image, device, dtype).contiguous(memory_format=layout)
        styles = [to_tensor(fit_size(style, values["size"]), device, dtype).contiguous(memory_format=layout) for style in style_images]
        return _optimise(net, content, content_image, styles, values, on_progress)


def in_memory_format(net, layout):
    """--precision tf32/amp: `net` in channels_last for the block, and back as it was after (the cached net stays as it is)."""
    import contextlib

    import torch

    @contextlib.contextmanager
    def block():
        if layout is torch.contiguous_format:
            yield layout
            return
        net.to(memory_format=layout)
        try:
            yield layout
        finally:
            net.to(memory_format=torch.contiguous_format)

    return block()


def _optimise(net, content, content_image, styles, values, on_progress):
    import torch

    device, dtype = content.device, content.dtype
    blend = values.get("style_blend") or [1.0] * len(styles)
    targets = Targets(net, content, styles, blend, values["style_layers"], values["content_layer"])

    generator = torch.Generator(device="cpu").manual_seed(values["seed"])
    if values["init"] == "noise":
        start = torch.rand(content.shape, generator=generator).to(device=device, dtype=dtype)
    else:
        start = content.clone(memory_format=torch.contiguous_format)  # L-BFGS flattens the gradient: the image stays contiguous
    image = start.requires_grad_(True)
    weights = (values["style_weight"], values["content_weight"], values["tv_weight"])
    lr = values.get("lr") or DEFAULT_LR[values["optimizer"]]
    if values["optimizer"] == "lbfgs":
        # Zero tolerances: with small losses L-BFGS would otherwise stop after a step or two.
        optimizer = torch.optim.LBFGS([image], lr=lr, max_iter=1, tolerance_grad=0.0, tolerance_change=0.0, history_size=50)
    else:
        optimizer = torch.optim.Adam([image], lr=lr)

    history = []
    last = {}

    def closure():
        optimizer.zero_grad(set_to_none=True)
        terms = losses(net, image, targets, *weights)
        terms["total"].backward()
        last.update({k: float(v.detach()) for k, v in terms.items()})
        return terms["total"]

    interrupted = False
    try:
        for step in range(1, values["steps"] + 1):
            optimizer.step(closure)
            with torch.no_grad():
                image.clamp_(0, 1)
            history.append(dict(last))
            if on_progress is not None:
                preview = to_image(image) if step % PREVIEW_EVERY == 0 else None
                on_progress(step, values["steps"], last["total"], preview)
    except KeyboardInterrupt:
        interrupted = True
    result = to_image(image)
    if values["preserve_color"]:
        result = keep_colors(result, content_image)
    return result, history, interrupted, lr


def stylize(net, content_image, style_images, values, sources=None, model_name="", labels=None, on_progress=None):
    """Style transfer with merged `values` (None = not given; the house defaults fill the rest).

    Returns an ImageResult whose recipe names the images (as labels and content hashes) and every value used.
    """
    from ..media import image_hash
    from ..recipes import with_recipe_text
    from ..results import ImageResult

    device = next(net.parameters()).device
    house = dict(HOUSE_DEFAULTS, size=CPU_SIZE if device.type == "cpu" else HOUSE_DEFAULTS["size"])
    values, sources = defaults.fill(values, sources, ("default", house))
    values["style_layers"] = tuple(values["style_layers"])
    if not style_images:
        raise CreativeError("no style image: give --style IMAGE (a file, URL, variable, `last` or `canvas`)")
    if values.get("style_blend") is not None and len(values["style_blend"]) != len(style_images):
        raise CreativeError(f"{len(values['style_blend'])} blend weights for {len(style_images)} style images")
    check(values)
    values["seed"] = seeds.choose(values.get("seed"))

    content = fit_size(content_image, values["size"])
    image, history, interrupted, lr = transfer(net, content, style_images, values, on_progress)
    labels = labels or {}
    values["lr"] = lr
    params = {name: values[name] for name in RECORDED}
    params.update(style_layers=list(values["style_layers"]), steps_done=len(history))
    if values.get("style_blend") is not None:
        params["style_blend"] = list(values["style_blend"])
    recorded_sources = {name: sources.get(name, "default") for name in RECORDED}
    if values.get("precision"):  # a fast path asked for is part of how the picture was made
        params["precision"] = values["precision"]
        recorded_sources["precision"] = sources.get("precision", "default")
    recipe = {
        "task": "stylize",
        "method": "gatys",
        "model": model_name,
        "weights": list(getattr(net, "weights", None) or []),
        "seed": values["seed"],
        "content": labels.get("content"),
        "content_hash": image_hash(content_image),
        "style": labels.get("style") or [None] * len(style_images),
        "style_hash": [image_hash(s) for s in style_images],
        "params": params,
        "sources": recorded_sources,
    }
    if interrupted:
        recipe["interrupted"] = True
    image = with_recipe_text(image, recipe_text(recipe, image.size), recipe)
    notes = [f"stopped after {len(history)} of {values['steps']} iterations"] if interrupted else []
    return ImageResult(images=[image], recipe=recipe, seeds=[values["seed"]], interrupted=interrupted, notes=notes, losses=history)


def recipe_text(recipe, size):
    """A summary in the AUTOMATIC1111 `parameters` format, for PNG-info readers; the whole recipe
    travels beside it as JSON (see recipes.with_recipe_text)."""
    from .._version import __version__

    p = recipe["params"]
    styles = ", ".join(str(s) for s in recipe["style"] if s) or "an image"
    if recipe.get("method") in FEED_FORWARD:
        fields = [("Steps", 1), ("Sampler", "AdaIN" if recipe["method"] == "adain" else "CycleGAN"), ("Size", f"{size[0]}x{size[1]}"),
                  ("Model", recipe["model"])]
        if "alpha" in p:
            fields.append(("Alpha", p["alpha"]))
        fields += [("Preserve color", p["preserve_color"]), ("Creative magics", __version__)]
        line = ", ".join(f"{key}: {value}" for key, value in fields)
        after = f"the painter {styles}" if recipe["method"] == "cyclegan" else styles
        return f"{recipe['method']} style transfer of {recipe['content'] or 'an image'} after {after}\n{line}"
    fields = [
        ("Steps", p["steps_done"]),
        ("Sampler", "L-BFGS" if p["optimizer"] == "lbfgs" else "Adam"),
        ("Seed", recipe["seed"]),
        ("Size", f"{size[0]}x{size[1]}"),
        ("Model", recipe["model"]),
        ("Style weight", p["style_weight"]),
        ("Content weight", p["content_weight"]),
        ("TV weight", p["tv_weight"]),
        ("Init", p["init"]),
        ("Preserve color", p["preserve_color"]),
        ("Creative magics", __version__),
    ]
    line = ", ".join(f"{key}: {value}" for key, value in fields)
    return f"style transfer of {recipe['content'] or 'an image'} after {styles}\n{line}"


# -- the feed-forward methods: adain and cyclegan -----------------------------------------------------


def check_fits(image, what, method, size):
    """An image `size` scaling leaves under MIN_SIDE pixels on a side is refused in one line."""
    width, height = image.size
    if min(width, height) < MIN_SIDE:
        raise CreativeError(
            f"the {what} is {width}x{height} px at --size {size}: {method} needs at least {MIN_SIDE} px on each side; "
            "use a larger --size or a less elongated image"
        )


def _feed_forward_values(net, method, values, sources, content_size):
    """The values a feed-forward run uses: the merged ones, then the house's (cyclegan's size: the content's own, capped)."""
    device = next(net.parameters()).device
    house = {"preserve_color": TASK["preserve_color"].default}
    if method == "adain":
        house.update(size=TASK["size"].default, alpha=TASK["alpha"].default)
    else:
        cap = CYCLEGAN_MAX_SIZE["cpu" if device.type == "cpu" else "gpu"]
        house["size"] = max(TASK["size"].low, min(max(content_size), cap))
    values, sources = defaults.fill(values, sources, ("default", house))
    check(values)
    return values, sources


def adain(net, content_image, style_images, values, sources=None, model_name="", labels=None, on_progress=None):
    """Arbitrary style transfer in one pass (see nets/adain.py) with merged `values` (None = not given).

    Several style images blend by `style_blend` at the features (AdaIN of each, weighted); `alpha` keeps
    that much of the style. Returns an ImageResult whose recipe names the method, the weights and the images.
    """
    import torch

    from ..nets.adain import coral

    if not style_images:
        raise CreativeError("no style image: give --style IMAGE (a file, URL, variable, `last` or `canvas`)")
    values, sources = _feed_forward_values(net, "adain", values, sources, content_image.size)
    blend = values.get("style_blend")
    if blend is not None and len(blend) != len(style_images):
        raise CreativeError(f"{len(blend)} blend weights for {len(style_images)} style images")
    size = values["size"]
    content = fit_size(content_image, size)
    check_fits(content, "content image", "adain", size)
    styles = [fit_size(style, size) for style in style_images]
    for style in styles:
        check_fits(style, "style image", "adain", size)

    parameter = next(net.parameters())
    device, dtype = parameter.device, parameter.dtype
    mode = values.get("precision")
    with fast.precision(mode, device), in_memory_format(net, fast.memory_format(mode)) as layout, torch.no_grad():
        content_tensor = to_tensor(content, device, dtype).contiguous(memory_format=layout)
        style_tensors = [to_tensor(style, device, dtype).contiguous(memory_format=layout) for style in styles]
        if values["preserve_color"]:  # the authors' way: the style recoloured after the content first
            style_tensors = [coral(s[0].float(), content_tensor[0].float()).to(dtype).unsqueeze(0) for s in style_tensors]
        image = to_image(net.stylize(content_tensor, style_tensors, blend, values["alpha"]))
    if on_progress is not None:
        on_progress(1, 1, None, None)
    recipe = _feed_forward_recipe("adain", net, content_image, style_images, values, sources, model_name, labels)
    return _feed_forward_result(image, recipe)


def cyclegan(net, content_image, painter, values, sources=None, model_name="", label=None, on_progress=None):
    """A photo painted by a CycleGAN painter's generator in one pass (see nets/cyclegan.py), at any size:
    padded to the generator's stride and cropped back. Returns an ImageResult."""
    import torch

    if painter not in PAINTERS:
        raise CreativeError(f"unknown painter {painter!r}: --method cyclegan paints as {', '.join(PAINTERS)}")
    values, sources = _feed_forward_values(net, "cyclegan", values, sources, content_image.size)
    size = values["size"]
    content = fit_size(content_image, size)
    check_fits(content, "content image", "cyclegan", size)
    parameter = next(net.parameters())
    mode = values.get("precision")
    with fast.precision(mode, parameter.device), in_memory_format(net, fast.memory_format(mode)) as layout, torch.no_grad():
        image = to_image(net.paint(to_tensor(content, parameter.device, parameter.dtype).contiguous(memory_format=layout)))
    if values["preserve_color"]:
        image = keep_colors(image, content)
    if on_progress is not None:
        on_progress(1, 1, None, None)
    labels = {"content": label, "style": [painter]}
    recipe = _feed_forward_recipe("cyclegan", net, content_image, [], values, sources, model_name, labels)
    return _feed_forward_result(image, recipe)


def _feed_forward_recipe(method, net, content_image, style_images, values, sources, model_name, labels):
    from ..media import image_hash

    labels = labels or {}
    recorded = RECORDED_FEED_FORWARD[method]
    params = {name: values[name] for name in recorded}
    used_sources = {name: (sources or {}).get(name, "default") for name in recorded}
    if method == "adain" and values.get("style_blend") is not None:
        params["style_blend"] = list(values["style_blend"])
        used_sources["style_blend"] = (sources or {}).get("style_blend", "default")
    if values.get("precision"):
        params["precision"] = values["precision"]
        used_sources["precision"] = (sources or {}).get("precision", "default")
    recipe = {
        "task": "stylize",
        "method": method,
        "model": model_name,
        "weights": list(getattr(net, "weights", None) or []),
        "seed": None,  # one deterministic pass: nothing is drawn
        "content": labels.get("content"),
        "content_hash": image_hash(content_image),
        "style": labels.get("style") or [None] * len(style_images),
        "params": params,
        "sources": used_sources,
    }
    if method == "adain":
        recipe["style_hash"] = [image_hash(s) for s in style_images]
    return recipe


def _feed_forward_result(image, recipe):
    from ..recipes import with_recipe_text
    from ..results import ImageResult

    image = with_recipe_text(image, recipe_text(recipe, image.size), recipe)
    return ImageResult(images=[image], recipe=recipe, seeds=[], steps_done=1, steps_total=1)
