"""%%paint -m ENDPOINT:MODEL: images/generations (size, n, quality, style, `b64_json`) and images/edits for
--init, against the OpenAI protocol stand-in (tests/openai_standin.py). No open images/generations server
runs here, so the stand-in is a PROTOCOL stand-in: it follows OpenAI's published images API (its fields,
its per-model rules, its multipart edits, its error shapes) and paints flat colours.
"""

import base64
import io

import numpy as np
import pytest
from PIL import Image

import creative_magics
from creative_magics.errors import CreativeError
from helpers import assert_one_line_error


@pytest.fixture()
def images(ip, standin):
    ip.run_line_magic("config", f"CreativeMagics.endpoints = {{'pics': {{'base_url': '{standin.url}'}}}}")
    ip.user_ns["photo"] = Image.fromarray(np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8), "RGB")
    return standin


def sent(server):
    return server.requests[-1]


def test_a_painting_carries_the_a1111_recipe_naming_endpoint_and_model_and_runs_again(images, ip, run):
    ran = run("%%paint -m pics:dall-e-3 --quality hd --style vivid --width 1792 --height 1024 -o lighthouse\na lighthouse at dusk")
    assert ran.ok and not ran.err, ran.err
    result = ip.user_ns["lighthouse"]
    path, body = sent(images)
    assert path == "/v1/images/generations"
    assert body == {"model": "dall-e-3", "prompt": "a lighthouse at dusk", "size": "1792x1024", "quality": "hd", "style": "vivid",
                    "response_format": "b64_json"}
    assert result.image.size == (1792, 1024) and result.seeds == []
    text = result.image.info["parameters"]
    assert text == 'a lighthouse at dusk\nSize: 1792x1024, Model: "pics:dall-e-3", Quality: hd, Style: vivid, Creative magics: 0.1.0'
    assert result.recipe["endpoint"] == "pics" and result.recipe["remote_model"] == "dall-e-3"
    assert result.recipe["revised_prompts"] == ["A detailed picture of a lighthouse at dusk"]
    assert repr(result) == "<ImageResult pics:dall-e-3 1792x1024, 1 image>"
    # the recipe travels in the PNG and runs again from it
    png = io.BytesIO(result._repr_png_())
    recipe = creative_magics.read_recipe(Image.open(png))
    assert recipe["model"] == "pics:dall-e-3" and recipe["params"] == {"width": 1792, "height": 1024, "quality": "hd", "style": "vivid"}
    again = creative_magics.paint(recipe=recipe)
    assert sent(images)[1] == body and again.image.info["parameters"] == text


def test_n_images_in_one_request_and_saved_with_their_recipes(images, ip, run, tmp_path):
    ran = run(f"%%paint -m pics:dall-e-2 -n 3 --width 256 --height 256 --save {tmp_path} -o three\na fox")
    assert ran.ok and not ran.err, ran.err
    result = ip.user_ns["three"]
    assert len(result.images) == 3 and sent(images)[1]["n"] == 3
    assert [image.getpixel((0, 0)) for image in result.images] == [(200, 40, 40), (40, 160, 60), (40, 60, 200)]
    files = sorted(tmp_path.glob("*.png"))
    assert len(files) == 3
    second = creative_magics.read_recipe(files[1])
    assert second["params"]["n"] == 3 and second["params"]["batch_pos"] == 1 and second["model"] == "pics:dall-e-2"
    assert "Batch pos: 1" in Image.open(files[1]).info["parameters"]


def test_gpt_image_models_get_no_response_format(images):
    creative_magics.paint("a fox", model="pics:gpt-image-1", quality="high")
    assert "response_format" not in sent(images)[1] and sent(images)[1]["quality"] == "high"


def test_init_goes_to_images_edits_as_a_png_upload(images, ip, run):
    ran = run("%%paint -m pics:dall-e-2 --init photo --width 512 --height 512 -o edited\nthe same, in winter")
    assert ran.ok and not ran.err, ran.err
    path, body = sent(images)
    assert path == "/v1/images/edits"
    filename, data = body["image"]
    assert filename == "init.png" and data.startswith(b"\x89PNG")
    upload = Image.open(io.BytesIO(data))
    assert upload.size == (128, 96) and upload.mode == "RGBA"
    assert body["prompt"] == "the same, in winter" and body["size"] == "512x512" and body["model"] == "dall-e-2"
    result = ip.user_ns["edited"]
    assert "image-to-image" in repr(result) and result.recipe["init_hash"]
    assert "Init image: photo" in result.image.info["parameters"]


def test_a_mask_goes_with_the_init_image_transparent_where_to_repaint(images, ip):
    """--mask arrives with W2 4/9 (inpainting); the remote side already takes one: white = repaint."""
    from creative_magics import remote, session
    from creative_magics.tasks import paint as task

    point = remote.endpoint("pics", ip.magics_manager.registry["CreativeMagics"].endpoints)
    connection = remote.Connection(point, "dall-e-2", 30)
    photo = ip.user_ns["photo"]
    mask = Image.new("L", photo.size, 0)
    mask.paste(255, (0, 0, 64, 96))
    task.paint_remote(connection, "a door", {"n": 1}, {}, model_name="pics:dall-e-2", init=(photo, "photo", "h"), mask=mask)
    sent_mask = Image.open(io.BytesIO(sent(images)[1]["mask"][1]))
    assert sent_mask.mode == "RGBA" and sent_mask.getpixel((10, 10))[3] == 0 and sent_mask.getpixel((100, 10))[3] == 255
    with pytest.raises(CreativeError, match="--mask needs --init"):
        task.paint_remote(connection, "a door", {}, {}, model_name="pics:dall-e-2", mask=mask)
    assert session.current().cache.entries() == []


def test_a_server_without_images_edits_says_so_in_one_line(ip, run):
    from openai_standin import StandIn

    bare = StandIn(edits=False).start()
    try:
        ip.run_line_magic("config", f"CreativeMagics.endpoints = {{'bare': {{'base_url': '{bare.url}'}}}}")
        ip.user_ns["photo"] = Image.new("RGB", (64, 64), "white")
        assert_one_line_error(run("%%paint -m bare:dall-e-2 --init photo\na fox"), "endpoint 'bare' offers no images/edits for 'dall-e-2'")
        assert run("%%paint -m bare:dall-e-2 --width 256 --height 256\na fox").ok  # the kernel goes on
    finally:
        bare.stop()


@pytest.mark.parametrize(
    "cell, fragment",
    [
        ("%%paint -m pics:dall-e-3 -n 2\na fox", "refused the request to images/generations (400); it said: Invalid 'n'"),
        ("%%paint -m pics:dall-e-3 --width 512 --height 512\na fox", "'512x512' is not one of"),
        ("%%paint -m pics:dall-e-2 --quality hd\na fox", "Invalid value: 'hd'"),
        ("%%paint -m pics:dall-e-3 --init photo\na fox", "Image editing is not supported for dall-e-3"),
        ("%%paint -m pics:no-such-painter\na fox", "has no model 'no-such-painter'; it serves:"),
        ("%%paint -m pics:fault-500\na fox", "failed with a server error (500) on images/generations"),
        ("%%paint -m pics:fault-garbage\na fox", "answered images/generations with something that is not an OpenAI-style response"),
        ("%%paint -m pics:dall-e-3 --steps 4\na fox", "--steps cannot be sent to pics:dall-e-3"),
        ("%%paint -m pics:dall-e-3 --guidance 4\na fox", "--guidance cannot be sent"),
        ("%%paint -m pics:dall-e-3 --negative blur\na fox", "--negative cannot be sent"),
        ("%%paint -m pics:dall-e-3 --seed 4\na fox", "list 'seed' in the endpoint's 'extra_params'"),
        ("%%paint -m pics:dall-e-3 --scheduler euler\na fox", "--scheduler cannot be sent"),
        ("%%paint -m pics:dall-e-3 --width 1024\na fox", "give both --width and --height"),
        ("%%paint --quality hd\na fox", "--quality is for remote models (ENDPOINT:MODEL)"),
        ("%%paint --style natural\na fox", "--style is for remote models"),
    ],
)
def test_mistakes_and_refusals_are_one_line_and_painting_goes_on(images, run, cell, fragment):
    assert_one_line_error(run(cell), fragment)
    assert run("%%paint -m pics:dall-e-2 --width 256 --height 256\nstill fine").ok


def test_a_malformed_image_is_one_line(images, monkeypatch, run):
    from openai_standin import Handler

    def broken(handler, body, model, revise):
        handler._send(200, {"created": 0, "data": [{"b64_json": base64.b64encode(b"not a png").decode()}]})

    monkeypatch.setattr(Handler, "_images", broken)
    assert_one_line_error(run("%%paint -m pics:dall-e-2\na fox"), "not an OpenAI-style response", "is not an image")


def test_the_panels_sliders_that_a_server_cannot_take_are_said_not_sent(images, ip, run):
    from creative_magics.widgets import panel

    opened = panel.open_panel()
    opened.set_values("paint", steps=7, guidance=3.0)
    try:
        ran = run("%%paint -m pics:dall-e-2 --width 256 --height 256\na fox")
    finally:
        opened.close()
    assert ran.ok and not ran.err, ran.err
    assert "Not used by pics:dall-e-2: --steps 7 (panel), --guidance 3 (panel)." in ran.out
    assert "steps" not in sent(images)[1]
