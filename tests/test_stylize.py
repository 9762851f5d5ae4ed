"""%stylize / %%stylize and creative_magics.stylize: results, recipes that reproduce, several styles,
colour preservation, Ctrl-C, the img2img method, and one-line errors for bad input."""

import numpy as np
import pytest
from PIL import Image

import creative_magics
from creative_magics import session
from helpers import assert_one_line_error

FAST = "--steps 4 --size 32 --seed 1"


def noise(seed, size=40):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "RGB")


@pytest.fixture()
def images(ip, tmp_path):
    ip.user_ns.update(content=noise(1), style=noise(2), style2=noise(3))
    path = tmp_path / "style.png"
    noise(2).save(path)
    return path


def test_line_form_makes_an_image_with_its_recipe(ip, run, images):
    ran = run(f"%stylize --content content --style style {FAST} -o styled")
    assert ran.ok, ran.err
    result = ip.user_ns["styled"]
    assert result.image.size == (32, 32) and len(result.images) == 1
    recipe = result.recipe
    assert (recipe["task"], recipe["method"], recipe["model"], recipe["seed"]) == ("stylize", "gatys", "vgg19", 1)
    assert recipe["content"] == "content" and recipe["style"] == ["style"]
    assert recipe["params"]["steps"] == 4 and recipe["sources"]["steps"] == "flag"
    assert recipe["sources"]["style_weight"] == "default"
    assert len(result.losses) == 4


def test_same_recipe_same_image_and_the_png_carries_it(ip, images, tmp_path):
    first = creative_magics.stylize("content", "style", steps=4, size=32, seed=3, init="noise")
    again = creative_magics.stylize("content", "style", steps=4, size=32, seed=3, init="noise")
    assert first.image.tobytes() == again.image.tobytes()
    path = tmp_path / "out.png"
    first.image.save(path)
    assert creative_magics.read_recipe(str(path)) == first.recipe
    text = Image.open(path).info["parameters"]
    assert "Seed: 3" in text and "Model: vgg19" in text  # readable by PNG-info tools too


def test_files_and_several_styles_blend(ip, run, images):
    ran = run(f"%stylize --content content --style {images} style2 --style-blend 3 1 {FAST} -o mix")
    assert ran.ok, ran.err
    recipe = ip.user_ns["mix"].recipe
    assert recipe["style"] == [str(images), "style2"] and recipe["params"]["style_blend"] == [3.0, 1.0]
    assert len(recipe["style_hash"]) == 2


def test_preserve_color_keeps_the_content_colours(ip, images):
    warm = Image.new("RGB", (40, 40), (220, 120, 40))
    plain = creative_magics.stylize(warm, noise(4), steps=4, size=32, seed=1)
    kept = creative_magics.stylize(warm, noise(4), steps=4, size=32, seed=1, preserve_color=True)
    chroma = lambda im: np.asarray(im.convert("YCbCr"), int)[..., 1:].mean(axis=(0, 1))
    target = chroma(warm)
    assert np.abs(chroma(kept.image) - target).max() <= np.abs(chroma(plain.image) - target).max()
    assert np.abs(chroma(kept.image) - target).max() < 3
    assert kept.recipe["params"]["preserve_color"] is True


def test_ctrl_c_keeps_the_current_image(ip, run, images, monkeypatch):
    from creative_magics import views

    calls = []
    original = views.ImageView.step

    def step(self, step, total, loss=None):
        calls.append(step)
        if step == 2:
            raise KeyboardInterrupt
        original(self, step, total, loss)

    monkeypatch.setattr(views.ImageView, "step", step)
    ran = run("%stylize --content content --style style --steps 30 --size 32 --seed 1 -o partial")
    assert ran.ok
    partial = ip.user_ns["partial"]
    assert partial.interrupted and partial.recipe["params"]["steps_done"] == 2 and partial.image is not None
    monkeypatch.setattr(views.ImageView, "step", original)
    assert run(f"%stylize --content content --style style {FAST}").ok  # the net stays usable
    (row,) = [r for r in session.current().cache.table() if r["task"] == "stylize"]
    assert row["loads"] == 1 and not row["in_use"]


def test_the_network_lives_in_the_cache(ip, run, images):
    run(f"%stylize --content content --style style {FAST}")
    run(f"%stylize --content content --style style {FAST}")
    (row,) = session.current().cache.table()
    assert (row["name"], row["task"], row["loads"], row["hits"]) == ("vgg19", "stylize", 1, 1)


def test_img2img_restyles_through_the_paint_pipeline(ip, run, images):
    ran = run("%%stylize --content content --method img2img --steps 2 --strength 0.5 --seed 4 -o water\na watercolor painting")
    assert ran.ok, ran.err
    result = ip.user_ns["water"]
    assert result.recipe["task"] == "paint" and result.recipe["params"]["init"] == "content"
    assert result.recipe["prompt"] == "a watercolor painting"
    again = creative_magics.paint("a watercolor painting", init=ip.user_ns["content"], steps=2, strength=0.5, seed=4)
    assert again.image.tobytes() == result.image.tobytes()
    assert [r["task"] for r in session.current().cache.table()] == ["paint"]  # one pipeline, shared


def test_last_and_the_python_api(ip, images):
    creative_magics.stylize(ip.user_ns["content"], ip.user_ns["style"], steps=2, size=32, seed=1)
    again = creative_magics.stylize("last", "style", steps=2, size=32, seed=1)
    assert again.recipe["content"] == "last"


def test_empty_cell_body_points_to_the_line_form(run, images):
    ran = run("%%stylize --content content --style style")
    lines = ran.error_lines
    assert len(lines) == 1 and "line magic %stylize" in lines[0]


@pytest.mark.parametrize(
    "line, fragment",
    [
        ("--style style", "no content image"),
        ("--content content", "no style image"),
        ("--content content --style nofile.png", "no file 'nofile.png'"),
        ("--content notes.png --style style", "is not an image"),
        ("--content content --style style --size 16", "--size must be a whole number from 32 to 2048"),
        ("--content content --style style --size 9000", "--size must be a whole number from 32 to 2048"),
        ("--content content --style style --style-weight -1", "style-weight must be >= 0"),
        ("--content content --style style --content-weight -1", "content-weight must be >= 0"),
        ("--content content --style style --tv-weight -1", "tv-weight must be >= 0"),
        ("--content content --style style --steps 0", "--steps must be a whole number >= 1"),
        ("--content content --style style --optimizer sgd", "optimizer must be lbfgs or adam"),
        ("--content content --style style --init zeros", "init must be content or noise"),
        ("--content content --style style --style-layers conv9_1", "--style-layers: unknown 'conv9_1'"),
        ("--content content --style style style2 --style-blend 1", "1 blend weights for 2 style images"),
        ("--content content --style style --method magic", "method must be gatys, adain, cyclegan or img2img"),
        ("--content content --style style --strength 0.5", "--strength belongs to --method img2img"),
        ("--content content --method img2img", "describe the style in the cell body"),
        ("--content content --style style --method img2img", "not from --style images"),
        ("--content content --style style --styel-weight 3", "unrecognized arguments: --styel-weight"),
        ("--content content --style style -m gpt2", "'gpt2' is not a stylize model"),
    ],
)
def test_bad_input_is_one_line_and_the_next_call_works(ip, run, images, tmp_path, monkeypatch, line, fragment):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.png").write_text("not a picture")
    assert_one_line_error(run(f"%stylize {line}"), fragment)
    assert run(f"%stylize --content content --style style {FAST}").ok


def test_text_style_without_img2img_is_one_line(run, images):
    assert_one_line_error(run("%%stylize --content content --style style\nwatercolor"), "a text style needs --method img2img")


def test_wrong_weights_hash_is_one_line(ip, run, images, tmp_path):
    import torch

    bad = tmp_path / "vgg19-dcbb9e9d.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, bad)
    magics = ip.magics_manager.registry["CreativeMagics"]
    magics.profile = "default"
    magics.vgg_weights = str(bad)
    assert_one_line_error(run(f"%stylize --content content --style style {FAST}"), "has the wrong hash")
    magics.profile = "tiny"
    assert run(f"%stylize --content content --style style {FAST}").ok


def test_live_previews_are_shown_at_the_size_of_the_result(ip, images, monkeypatch):
    """The picture being optimised is shown as wide as the result, so it does not jump when done."""
    import re

    from creative_magics import views

    shown = []

    class Handle:
        def update(self, bundle, raw=False):
            shown.append(bundle)

    monkeypatch.setattr(views, "rich_frontend", lambda: True)
    monkeypatch.setattr("IPython.display.display", lambda bundle, raw=False, display_id=None: Handle())
    view = views.ImageView(label="stylize")
    result = creative_magics.stylize(noise(3, 60), noise(4), steps=20, size=48, seed=1, **view.callbacks())
    widths = {int(w) for b in shown for w in re.findall(r'width="(\d+)"', b.get("text/html", ""))}
    assert widths == {result.image.width} and result.image.width == 48
