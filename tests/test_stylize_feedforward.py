"""%stylize --method adain and --method cyclegan: one pass of our own networks (nets/adain.py,
nets/cyclegan.py) on the tiny random weights, through the same loaders and cache as the published ones.

Determinism, AdaIN's statistics at alpha 1 and 0, blends, CycleGAN at odd sizes, the published state
dicts' quirks, recipes that re-run, and one line for each mix-up of the two methods."""

import numpy as np
import pytest
import torch
from PIL import Image

import creative_magics
from creative_magics import session
from creative_magics.nets import adain as adain_net
from creative_magics.nets import cyclegan as cyclegan_net
from helpers import assert_one_line_error


def noise(seed, size=(40, 40)):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")


@pytest.fixture()
def images(ip, tmp_path):
    ip.user_ns.update(content=noise(1, (48, 40)), style=noise(2), style2=noise(3, (30, 50)))
    path = tmp_path / "style.png"
    noise(2).save(path)
    return path


def pixels(result):
    return np.asarray(result.image, dtype=np.int16)


# -- AdaIN -------------------------------------------------------------------------------------------


def test_adain_makes_an_image_with_a_recipe_that_names_the_method_and_the_weights(ip, run, images):
    ran = run("%stylize --method adain --content content --style style --size 64 -o styled")
    assert ran.ok, ran.err
    result = ip.user_ns["styled"]
    assert result.image.size == (64, 53)
    recipe = result.recipe
    assert (recipe["task"], recipe["method"], recipe["model"], recipe["seed"]) == ("stylize", "adain", "adain", None)
    assert recipe["content"] == "content" and recipe["style"] == ["style"]
    assert recipe["params"] == {"size": 64, "alpha": 1.0, "preserve_color": False}
    assert recipe["sources"]["size"] == "flag" and recipe["sources"]["alpha"] == "default"
    assert [w["file"] for w in recipe["weights"]] == ["vgg_normalised.safetensors", "decoder.safetensors"]
    assert all(len(w["sha256"]) == 64 for w in recipe["weights"])
    assert "seed" not in repr(result) and "adain" in repr(result)


def test_adain_is_deterministic_and_its_png_recipe_runs_again(ip, run, images, tmp_path):
    first = creative_magics.stylize("content", "style", method="adain", size=64, alpha=0.7)
    again = creative_magics.stylize("content", "style", method="adain", size=64, alpha=0.7)
    assert first.image.tobytes() == again.image.tobytes()
    path = tmp_path / "adain.png"
    first.image.save(path)
    recipe = creative_magics.read_recipe(str(path))
    assert recipe == first.recipe
    rerun = creative_magics.stylize(recipe=recipe)
    assert rerun.image.tobytes() == first.image.tobytes() and rerun.recipe["method"] == "adain"
    ran = run(f"%stylize --recipe {path} -o from_png")
    assert ran.ok, ran.err
    assert ip.user_ns["from_png"].image.tobytes() == first.image.tobytes()
    text = Image.open(path).info["parameters"]
    assert "Sampler: AdaIN" in text and "Alpha: 0.7" in text and "Model: adain" in text


def test_adain_is_the_same_in_a_fresh_session(ip, images):
    first = creative_magics.stylize("content", "style", method="adain", size=48)
    session.reset()
    session.current().attach(ip.magics_manager.registry["CreativeMagics"])
    assert creative_magics.stylize("content", "style", method="adain", size=48).image.tobytes() == first.image.tobytes()


def decoder_inputs(net):
    """The relu4_1 features the decoder is given, caught by a hook on the network the cache holds."""
    seen = []
    handle = net.decoder.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    return seen, handle


def channel_stats(features):
    return adain_net.mean_std(features)


@pytest.mark.parametrize("alpha", [1.0, 0.0])
def test_adain_statistics_match_the_style_at_alpha_1_and_the_content_at_alpha_0(ip, images, alpha):
    content = noise(4, (64, 64))
    y, x = np.mgrid[0:64, 0:64]
    style = Image.fromarray(np.where((np.sin(x / 5 + y / 9) > 0)[..., None], [230, 90, 30], [20, 30, 120]).astype(np.uint8))
    creative_magics.stylize(content, style, method="adain", size=64)  # warm the net
    net = session.current().cache.get("stylize", session.current().resolve("stylize", None, method="adain"))
    seen, handle = decoder_inputs(net)
    try:
        creative_magics.stylize(content, style, method="adain", size=64, alpha=alpha)
    finally:
        handle.remove()
    (features,) = seen
    to = lambda image: torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)[None]
    with torch.no_grad():
        content_features, style_features = net.encode(to(content)), net.encode(to(style))
    mean, std = channel_stats(features)
    if alpha == 1.0:
        (style_mean, style_std), (content_mean, content_std) = channel_stats(style_features), channel_stats(content_features)
        apart = max(float((style_mean - content_mean).abs().max()), float((style_std - content_std).abs().max()))
        assert apart > 0.01  # the two images' statistics differ, so matching one of them means something
        assert float((mean - style_mean).abs().max()) < apart / 1000
        assert float((std - style_std).abs().max()) < apart / 100  # (eps in the variance)
    else:
        assert torch.equal(features, content_features)


def test_adain_alpha_blends_linearly_between_the_content_and_the_style_features(images):
    net = adain_net.AdaIN((4, 8, 8, 16))
    torch.manual_seed(0)
    content, style = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 24, 40)
    full = net.transferred_features(content, [style], alpha=1.0)
    none = net.transferred_features(content, [style], alpha=0.0)
    half = net.transferred_features(content, [style], alpha=0.5)
    assert torch.allclose(half, (full + none) / 2, atol=1e-6)


def test_several_styles_blend_and_a_zero_weight_drops_one(ip, run, images):
    ran = run(f"%stylize --method adain --content content --style {images} style2 --style-blend 3 1 --size 48 -o mix")
    assert ran.ok, ran.err
    recipe = ip.user_ns["mix"].recipe
    assert recipe["style"] == [str(images), "style2"] and recipe["params"]["style_blend"] == [3.0, 1.0]
    assert len(recipe["style_hash"]) == 2
    alone = creative_magics.stylize("content", "style", method="adain", size=48)
    dropped = creative_magics.stylize("content", ["style", "style2"], method="adain", size=48, style_blend=[1, 0])
    assert np.abs(pixels(alone) - pixels(dropped)).max() <= 1
    assert np.abs(pixels(ip.user_ns["mix"]) - pixels(alone)).max() > 1


def test_adain_preserve_color_recolours_the_style_first(ip, images):
    warm = Image.new("RGB", (48, 48), (220, 120, 40))
    plain = creative_magics.stylize(warm, noise(6), method="adain", size=48)
    kept = creative_magics.stylize(warm, noise(6), method="adain", size=48, preserve_color=True)
    assert kept.recipe["params"]["preserve_color"] is True
    assert kept.image.tobytes() != plain.image.tobytes()
    coloured = adain_net.coral(torch.rand(3, 20, 20), torch.full((3, 20, 20), 0.5) + torch.rand(3, 20, 20) * 0.1)
    assert coloured.shape == (3, 20, 20) and torch.isfinite(coloured).all()


def test_the_adain_net_lives_in_the_cache(ip, run, images):
    for _ in range(2):
        assert run("%stylize --method adain --content content --style style --size 32").ok
    (row,) = session.current().cache.table()
    assert (row["name"], row["task"], row["loads"], row["hits"], row["source"]) == ("adain", "stylize", 1, 1, "tiny-adain")


def test_the_published_encoder_with_all_its_layers_loads(tmp_path):
    """vgg_normalised.pth holds VGG19 to relu5_4 (53 modules); AdaIN takes the layers up to relu4_1."""
    full = torch.nn.Sequential(*adain_net.encoder((4, 8, 8, 16)), torch.nn.ReflectionPad2d(1), torch.nn.Conv2d(16, 16, 3))
    state = {k: v for k, v in full.state_dict().items()}
    assert "32.weight" in state
    decoder = adain_net.decoder((4, 8, 8, 16)).state_dict()
    net = adain_net.from_state_dicts(state, {f"module.{k}": v for k, v in decoder.items()})
    assert torch.equal(net.encoder[29].weight, state["29.weight"]) and net.widths == (4, 8, 8, 16)


# -- CycleGAN ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(37, 53), (17, 101), (64, 64), (101, 16)])
def test_cyclegan_paints_any_size_and_gives_it_back(ip, size):
    picture = noise(7, size)
    result = creative_magics.stylize(picture, "monet", method="cyclegan")
    assert result.image.size == size
    assert result.recipe["params"]["size"] == max(size)


def test_cyclegan_pads_to_its_stride_and_crops_back():
    torch.manual_seed(0)
    net = cyclegan_net.ResnetGenerator(ngf=4)
    odd = torch.rand(1, 3, 37, 53)
    padded = torch.nn.functional.pad(odd, (0, 3, 0, 3), mode="reflect")
    with torch.no_grad():
        expected = ((net(padded * 2 - 1)[..., :37, :53] + 1) / 2).clamp(0, 1)
        assert torch.equal(net.paint(odd), expected)
        even = torch.rand(1, 3, 32, 48)
        assert torch.equal(net.paint(even), ((net(even * 2 - 1) + 1) / 2).clamp(0, 1))


def test_each_painter_is_its_own_generator_and_the_recipe_says_which(ip, run, images):
    ran = run("%stylize --method cyclegan --content content --style vangogh -o gogh")
    assert ran.ok, ran.err
    recipe = ip.user_ns["gogh"].recipe
    assert (recipe["method"], recipe["model"], recipe["style"], recipe["seed"]) == ("cyclegan", "cyclegan-vangogh", ["vangogh"], None)
    assert [w["file"] for w in recipe["weights"]] == ["model.safetensors"]
    monet = creative_magics.stylize("content", "monet", method="cyclegan")
    assert monet.image.tobytes() != ip.user_ns["gogh"].image.tobytes()
    again = creative_magics.stylize("content", "vangogh", method="cyclegan")
    assert again.image.tobytes() == ip.user_ns["gogh"].image.tobytes()
    rows = {row["name"]: row for row in session.current().cache.table()}
    assert set(rows) == {"cyclegan-vangogh", "cyclegan-monet"} and rows["cyclegan-vangogh"]["hits"] == 1
    rerun = creative_magics.stylize(recipe=recipe)
    assert rerun.image.tobytes() == again.image.tobytes()
    other = creative_magics.stylize(recipe=recipe, style="cezanne")  # a painter given anew wins over the recipe's
    assert other.recipe["model"] == "cyclegan-cezanne"


def test_cyclegan_size_and_preserve_color(ip, images):
    big = creative_magics.stylize(noise(8, (80, 60)), "ukiyoe", method="cyclegan", size=40)
    assert big.image.size == (40, 30)
    warm = Image.new("RGB", (40, 40), (220, 120, 40))
    plain = creative_magics.stylize(warm, "ukiyoe", method="cyclegan")
    kept = creative_magics.stylize(warm, "ukiyoe", method="cyclegan", preserve_color=True)
    chroma = lambda im: np.asarray(im.convert("YCbCr"), int)[..., 1:].mean(axis=(0, 1))
    assert np.abs(chroma(kept.image) - chroma(warm)).max() < np.abs(chroma(plain.image) - chroma(warm)).max() / 2
    assert kept.recipe["params"]["preserve_color"] is True


def test_published_checkpoint_quirks_load(tmp_path):
    """Pre-0.4 checkpoints carry InstanceNorm running statistics; DataParallel ones prefix `module.`."""
    torch.manual_seed(1)
    net = cyclegan_net.ResnetGenerator(ngf=4)
    state = {f"module.{k}": v for k, v in net.state_dict().items()}
    for index in (2, 5, 8, 20, 23):
        state[f"module.model.{index}.running_mean"] = torch.zeros(4)
        state[f"module.model.{index}.running_var"] = torch.ones(4)
        state[f"module.model.{index}.num_batches_tracked"] = torch.tensor(0)
    state["module.model.10.conv_block.2.running_mean"] = torch.zeros(16)
    loaded = cyclegan_net.from_state_dict(state)
    assert (loaded.ngf, loaded.blocks) == (4, 9)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.paint(x), net.paint(x))


def test_our_own_cyclegan_file_loads_with_m(ip, run, images, tmp_path):
    torch.manual_seed(2)
    net = cyclegan_net.ResnetGenerator(ngf=4, blocks=9)
    path = tmp_path / "latest_net_G.pth"
    torch.save(net.state_dict(), path)
    ran = run(f"%stylize --method cyclegan --content content --style monet -m {path} -o mine")
    assert ran.ok, ran.err
    assert ip.user_ns["mine"].recipe["model"] == str(path)
    assert ip.user_ns["mine"].recipe["weights"][0]["file"] == "latest_net_G.pth"


# -- one line for each mix-up ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line, fragment",
    [
        ("--method cyclegan --content content --style picasso", "unknown painter 'picasso': --method cyclegan paints as monet"),
        ("--method cyclegan --content content --style style", "--method cyclegan takes a painter, not a style image"),
        ("--method cyclegan --content content --style monet vangogh", "paints after one painter"),
        ("--method cyclegan --content content", "no painter: give --style monet|vangogh|cezanne|ukiyoe"),
        ("--method adain --content content --style monet", "--style monet is a CycleGAN painter, not a style image"),
        ("--method adain --content content --style style --alpha 1.5", "--alpha must be in [0, 1], not 1.5"),
        ("--method adain --content content --style style --alpha -0.1", "--alpha must be in [0, 1]"),
        ("--method adain --content long --style style --size 64", "the content image is 64x1 px at --size 64: adain needs at least 16 px"),
        ("--method adain --content content --style long --size 64", "the style image is 64x1 px"),
        ("--method cyclegan --content long --style monet", "the content image is 500x6 px at --size 500: cyclegan needs at least 16"),
        ("--method adain --content content --style style --steps 10", "--steps belongs to --method gatys or img2img, not adain"),
        ("--method adain --content content --style style --seed 3", "--seed belongs to --method gatys or img2img, not adain"),
        ("--method cyclegan --content content --style monet --alpha 0.5", "--alpha belongs to --method adain, not cyclegan"),
        ("--method cyclegan --content content --style monet --style-blend 1", "--style-blend belongs to --method gatys or adain"),
        ("--content content --style style --alpha 0.5", "--alpha belongs to --method adain, not gatys"),
        ("--content content --style canvas --live", "--live belongs to --method adain, not gatys"),
        ("--method adain --content content --style style --live", "--live runs again on every stroke of the style canvas"),
        ("--method adain --content content --style style -m someone/adain", "is not an alias or a folder holding vgg_normalised.pth"),
        ("--method adain --content content --style style -m vgg19", "'vgg19' is not a stylize --method adain model"),
        ("--method cyclegan --content content --style monet -m adain", "'adain' is not a stylize --method cyclegan model"),
        ("--method adain --content content --style style -m {tmp}", "does not hold a loadable adain model: it has no vgg_normalised.pth"),
    ],
)
def test_mix_ups_are_one_line_and_the_next_call_works(ip, run, images, tmp_path, line, fragment):
    ip.user_ns["long"] = noise(9, (500, 6))
    assert_one_line_error(run(f"%stylize {line.replace('{tmp}', str(tmp_path))}"), fragment)
    assert all(row["loads"] == 1 for row in session.current().cache.table())
    assert run("%stylize --method adain --content content --style style --size 32").ok


def test_a_variable_named_like_a_painter_is_an_image_for_adain(ip, images, monkeypatch):
    monkeypatch.setitem(ip.user_ns, "monet", noise(10))  # gone after this test: later ones mean the painter
    result = creative_magics.stylize("content", "monet", method="adain", size=32)
    assert result.recipe["style"] == ["monet"]
    painted = creative_magics.stylize("content", "monet", method="cyclegan")  # for cyclegan, the painter
    assert painted.recipe["model"] == "cyclegan-monet"


def test_a_recipe_whose_image_changed_is_refused(ip, images):
    result = creative_magics.stylize("content", "style", method="adain", size=32)
    ip.user_ns["content"] = noise(11, (48, 40))
    with pytest.raises(creative_magics.errors.CreativeError, match="the content image 'content' is not the one this recipe used"):
        creative_magics.stylize(recipe=result.recipe)
    objects = creative_magics.stylize(noise(1), noise(2), method="adain", size=32)
    with pytest.raises(creative_magics.errors.CreativeError, match="restyled an image object it cannot name"):
        creative_magics.stylize(recipe=objects.recipe)


@pytest.mark.parametrize("build", ["adain", "cyclegan"])
def test_the_tiny_networks_build_the_same_bytes_every_time_in_the_published_names(tmp_path, build):
    from pathlib import Path

    from creative_magics.tiny import adain as tiny_adain
    from creative_magics.tiny import cyclegan as tiny_cyclegan

    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        folder.mkdir()
        tiny_adain.build(str(folder)) if build == "adain" else tiny_cyclegan.build(str(folder), "cezanne")
    files = lambda folder: {p.name: p.read_bytes() for p in Path(folder).iterdir()}
    assert files(first) == files(second)
    from safetensors.torch import load_file

    if build == "adain":
        assert set(files(first)) == {"vgg_normalised.safetensors", "decoder.safetensors", "config.json"}
        assert "29.weight" in load_file(str(first / "vgg_normalised.safetensors")) and "28.weight" in load_file(str(first / "decoder.safetensors"))
    else:
        state = load_file(str(first / "model.safetensors"))
        assert "model.26.weight" in state and "model.18.conv_block.5.weight" in state


def test_an_img2img_recipe_points_to_paint(ip, run, images):
    result = creative_magics.stylize("content", prompt="a watercolor", method="img2img", steps=2, strength=0.5, seed=1)
    ip.user_ns["water"] = result
    assert_one_line_error(run("%stylize --recipe water"), "not a stylize recipe (--method img2img makes paint recipes: run it again with %paint --recipe)")
