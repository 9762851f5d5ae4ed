"""media: every way to name an image (file, URL, variable, array, last, canvas) and every way that
fails as one line; the A1111 `parameters` chunk written, read back, and read from the web UI's files."""

import http.server
import threading
import time

import numpy as np
import pytest
from PIL import Image

import creative_magics
from creative_magics import media, recipes, refs, session
from creative_magics.errors import CreativeError
from creative_magics.results import ImageResult


def one_line(excinfo):
    text = str(excinfo.value)
    assert "\n" not in text, text
    return text


@pytest.fixture()
def picture(tmp_path):
    path = tmp_path / "cat.png"
    Image.new("RGB", (40, 24), (200, 30, 10)).save(path)
    return path


@pytest.fixture()
def fresh_session():
    session.reset()
    yield session.current()
    session.reset()


# -- files -----------------------------------------------------------------------------------


def test_a_file_path_gives_an_rgb_image_and_its_label(picture):
    image, label = refs.image(str(picture))
    assert image.mode == "RGB" and image.size == (40, 24) and image.getpixel((0, 0)) == (200, 30, 10)
    assert label == str(picture)


def test_transparency_becomes_white(tmp_path):
    path = tmp_path / "clear.png"
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(path)
    image, _ = refs.image(str(path))
    assert image.getpixel((3, 3)) == (255, 255, 255)


def test_jpeg_and_grayscale_files(tmp_path):
    Image.new("L", (16, 16), 90).save(tmp_path / "g.jpg")
    image, _ = refs.image(str(tmp_path / "g.jpg"))
    assert image.mode == "RGB" and image.size == (16, 16)


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda d: d / "missing.png", "no file"),
        (lambda d: d, "is a folder"),
        (lambda d: _write(d / "notes.txt", b"just words"), "is not an image"),
        (lambda d: _write(d / "broken.png", _png_bytes()[:60]), "damaged image"),
    ],
    ids=["missing", "folder", "not-an-image", "truncated"],
)
def test_bad_files_are_one_line(tmp_path, make, fragment):
    with pytest.raises(CreativeError) as excinfo:
        refs.image(str(make(tmp_path)))
    assert fragment in one_line(excinfo)


def test_pixel_cap_is_checked_from_the_header(picture, monkeypatch):
    monkeypatch.setattr(media, "MAX_PIXELS", 100)
    with pytest.raises(CreativeError) as excinfo:
        refs.image(str(picture))
    assert "40x24" in one_line(excinfo) and "make it smaller" in str(excinfo.value)


def test_file_size_cap(picture, monkeypatch):
    monkeypatch.setattr(media, "MAX_FILE_BYTES", 10)
    with pytest.raises(CreativeError) as excinfo:
        refs.image(str(picture))
    assert "MB" in one_line(excinfo)


def _write(path, data):
    path.write_bytes(data)
    return path


def _png_bytes(size=(32, 32)):
    import io

    buffer = io.BytesIO()
    Image.effect_noise(size, 40).convert("RGB").save(buffer, "PNG")
    return buffer.getvalue()


# -- objects and variables ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "array, pixel",
    [
        (np.full((6, 5, 3), 7, np.uint8), (7, 7, 7)),
        (np.full((6, 5), 0.5), (128, 128, 128)),
        (np.full((3, 6, 5), 1.0, np.float32), (255, 255, 255)),  # channels first
        (np.full((6, 5, 4), 255, np.uint8), (255, 255, 255)),
        (np.full((6, 5, 1), 30.0), (30, 30, 30)),  # floats above 1 are 0-255 values
    ],
)
def test_numpy_arrays(array, pixel):
    image, label = refs.image(array)
    assert image.size == (5, 6) and image.getpixel((0, 0)) == pixel and label is None


@pytest.mark.parametrize(
    "value, fragment",
    [
        (np.zeros((4, 4, 7)), "shape (4, 4, 7)"),
        (np.array([["a", "b"]]), "not of numbers"),
        (np.full((4, 4), np.nan), "NaN"),
        (42, "is a int, not an image"),
    ],
)
def test_objects_that_are_not_images(value, fragment):
    with pytest.raises(CreativeError) as excinfo:
        refs.image("thing", {"thing": value})
    assert fragment in one_line(excinfo)


def test_variables_by_name(picture):
    pil = Image.new("RGB", (8, 8), (1, 2, 3))
    result = ImageResult(images=[pil], recipe={})

    class Canvas:
        def to_image(self):
            return Image.new("RGB", (8, 8), (9, 9, 9))

    names = {"pil": pil, "arr": np.zeros((8, 8, 3), np.uint8), "res": result, "board": Canvas(), "where": str(picture)}
    assert refs.image("pil", names)[0].getpixel((0, 0)) == (1, 2, 3)
    assert refs.image("arr", names)[0].getpixel((0, 0)) == (0, 0, 0)
    assert refs.image("res", names)[0].getpixel((0, 0)) == (1, 2, 3)
    assert refs.image("board", names)[0].getpixel((0, 0)) == (9, 9, 9)
    image, label = refs.image("where", names)  # a variable holding a path
    assert image.size == (40, 24) and label == "where"
    with pytest.raises(CreativeError) as excinfo:
        refs.image("nowhere", names)
    assert "no variable or file named 'nowhere'" in one_line(excinfo)


def test_a_result_without_images_is_refused():
    stopped = ImageResult(images=[], recipe={})
    with pytest.raises(CreativeError, match="holds no image"):
        refs.image("stopped", {"stopped": stopped})


def test_last_is_the_latest_image_result(fresh_session):
    with pytest.raises(CreativeError) as excinfo:
        refs.image("last")
    assert "no image made yet" in one_line(excinfo)
    fresh_session.remember(ImageResult(images=[Image.new("RGB", (8, 8), (5, 5, 5))], recipe={}))
    fresh_session.remember(object())  # a result of another kind does not count
    image, label = refs.image("last")
    assert image.getpixel((1, 1)) == (5, 5, 5) and label == "last"


def test_canvas_before_and_after_the_widgets_add_it(fresh_session, monkeypatch):
    with pytest.raises(CreativeError) as excinfo:
        refs.image("canvas")
    assert one_line(excinfo) == "no style canvas yet: %creative canvas opens one"
    drawing = lambda: Image.new("RGB", (8, 8), (4, 4, 4))
    fresh_session.add_image_source("canvas", drawing)  # what the style canvas does when it opens
    image, label = refs.image("canvas")
    assert image.getpixel((0, 0)) == (4, 4, 4) and label == "canvas"
    fresh_session.remove_image_source("canvas", drawing)  # ... and when it closes
    with pytest.raises(CreativeError, match="no style canvas yet"):
        refs.image("canvas")


def test_empty_reference():
    with pytest.raises(CreativeError, match="is empty"):
        refs.image("  ")


# -- URLs --------------------------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    routes = {}

    def do_GET(self):
        status, kind, body, delay = self.routes.get(self.path, (404, "text/plain", b"not here", 0))
        if delay:
            time.sleep(delay)
        try:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    png = _png_bytes((20, 10))
    _Handler.routes = {
        "/cat.png": (200, "image/png", png, 0),
        "/plain.bin": (200, "application/octet-stream", png, 0),
        "/page.html": (200, "text/html; charset=utf-8", b"<html></html>", 0),
        "/fake.png": (200, "image/png", b"not really a png", 0),
        "/slow.png": (200, "image/png", png, 2.0),
    }
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_an_image_url_is_fetched(server):
    image, label = refs.image(f"{server}/cat.png")
    assert image.size == (20, 10) and label == f"{server}/cat.png"
    assert refs.image(f"{server}/plain.bin")[0].size == (20, 10)


def test_a_variable_holding_a_url(server):
    image, _ = refs.image("link", {"link": f"{server}/cat.png"})
    assert image.size == (20, 10)


@pytest.mark.parametrize(
    "path, fragment",
    [
        ("/page.html", "is text/html, not an image"),
        ("/missing.png", "HTTP 404"),
        ("/fake.png", "is not an image"),
    ],
)
def test_bad_urls_are_one_line(server, path, fragment):
    with pytest.raises(CreativeError) as excinfo:
        refs.image(server + path)
    assert fragment in one_line(excinfo)


def test_download_size_cap(server, monkeypatch):
    monkeypatch.setattr(media, "MAX_FILE_BYTES", 100)
    with pytest.raises(CreativeError) as excinfo:
        refs.image(f"{server}/cat.png")
    assert "MB" in one_line(excinfo)


def test_an_unreachable_url_fails_at_once():
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(CreativeError) as excinfo:
        refs.image(f"http://127.0.0.1:{port}/cat.png")
    assert "could not reach" in one_line(excinfo)


def test_a_slow_server_is_not_waited_for(server, monkeypatch):
    monkeypatch.setattr(media, "URL_TIMEOUT_S", 0.3)
    with pytest.raises(CreativeError) as excinfo:
        refs.image(f"{server}/slow.png")
    assert "within 0 s" in one_line(excinfo) or "did not answer" in str(excinfo.value)


def test_other_schemes_are_refused():
    with pytest.raises(CreativeError, match="only http:// and https://"):
        refs.image("file:///etc/passwd")


# -- recipes -----------------------------------------------------------------------------------

RECIPE = {
    "task": "paint",
    "model": "sd15",
    "seed": 1234,
    "prompt": "a lighthouse at dusk,\nwaves: stormy",
    "params": {
        "negative": "blurry, low quality",
        "steps": 20,
        "guidance": 7.5,
        "width": 512,
        "height": 768,
        "n": 4,
        "scheduler": "euler_a",
        "init": "pics/sketch, v2.png",
        "strength": 0.6,
    },
    "init_hash": "0123456789ab",
}


def test_recipe_text_is_the_a1111_format():
    text = recipes.recipe_text(RECIPE, batch_pos=2)
    prompt, negative, last = text.split("\n")[:2], text.split("\n")[2], text.split("\n")[3]
    assert prompt == ["a lighthouse at dusk,", "waves: stormy"]
    assert negative == "Negative prompt: blurry, low quality"
    assert last.startswith("Steps: 20, Sampler: Euler a, CFG scale: 7.5, Seed: 1236, Size: 512x768, Model: sd15, ")
    assert 'Init image: "pics/sketch, v2.png"' in last and "Batch size: 4, Batch pos: 2" in last


def test_recipe_round_trips_through_a_png(tmp_path):
    image = recipes.with_recipe_text(Image.new("RGB", (8, 8)), recipes.recipe_text(RECIPE, batch_pos=2))
    image.save(tmp_path / "out.png")  # a plain save writes the chunk
    with Image.open(tmp_path / "out.png") as reread:
        assert reread.info["parameters"] == image.info["parameters"]  # what A1111's PNG info reads
    recipe = creative_magics.read_recipe(tmp_path / "out.png")
    assert recipe["prompt"] == RECIPE["prompt"] and recipe["model"] == "sd15" and recipe["seed"] == 1236
    assert recipe["init_hash"] == "0123456789ab"
    assert recipe["params"] == {**RECIPE["params"], "batch_pos": 2}
    assert "extra" not in recipe


def test_notebook_png_and_grid_carry_the_recipe():
    image = recipes.with_recipe_text(Image.new("RGB", (8, 8)), "a cat\nSteps: 1, Sampler: Euler, Seed: 3")
    import io

    with Image.open(io.BytesIO(image._repr_png_())) as shown:
        assert shown.info["parameters"].startswith("a cat")
    sheet = media.grid([image, image.copy()])
    assert sheet.info["parameters"] == image.info["parameters"]


def test_unicode_prompts_use_an_international_text_chunk(tmp_path):
    text = recipes.recipe_text({**RECIPE, "prompt": "un café à l'aube 🌅"})
    recipes.with_recipe_text(Image.new("RGB", (8, 8)), text).save(tmp_path / "u.png")
    assert creative_magics.read_recipe(str(tmp_path / "u.png"))["prompt"] == "un café à l'aube 🌅"


def test_pickled_images_keep_the_recipe():
    import pickle

    image = recipes.with_recipe_text(Image.new("RGB", (4, 4), (1, 2, 3)), "p\nSteps: 1, Sampler: Euler, Seed: 3")
    again = pickle.loads(pickle.dumps(image))
    assert again.info["parameters"] == image.info["parameters"] and again.tobytes() == image.tobytes()


A1111_TEXT = (
    "masterpiece, a castle on a hill, (sunset:1.2)\n"
    "Negative prompt: lowres, bad anatomy\n"
    "Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 3141592653, Size: 512x768, "
    'Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.7, Hires upscale: 2, Lora hashes: "a: 1, b: 2", '
    "Version: v1.9.4"
)


def test_a_genuine_a1111_file_is_read(tmp_path):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("parameters", A1111_TEXT)
    Image.new("RGB", (8, 8)).save(tmp_path / "webui.png", pnginfo=info)
    recipe = recipes.read_recipe(tmp_path / "webui.png")
    assert recipe["prompt"] == "masterpiece, a castle on a hill, (sunset:1.2)"
    assert recipe["seed"] == 3141592653 and recipe["model"] == "v1-5-pruned-emaonly"
    assert recipe["params"] == {
        "negative": "lowres, bad anatomy",
        "steps": 28,
        "guidance": 6.5,
        "width": 512,
        "height": 768,
        "scheduler": "dpm++",
        "hires": 2.0,  # a text-to-image hires fix: its Denoising strength is the second pass's
        "hires_strength": 0.7,
    }
    assert recipe["extra"] == {
        "Schedule type": "Karras",
        "Model hash": "6ce0161689",
        "Lora hashes": "a: 1, b: 2",
        "Version": "v1.9.4",
    }


def test_an_a1111_sampler_we_do_not_have_keeps_the_models_own():
    image = recipes.with_recipe_text(Image.new("RGB", (4, 4)), "x\nSteps: 3, Sampler: Heun, CFG scale: 7, Seed: 1")
    recipe = recipes.read_recipe(image)
    assert "scheduler" not in recipe["params"] and recipe["extra"] == {"Sampler": "Heun"}


def test_a_prompt_without_settings_line():
    image = recipes.with_recipe_text(Image.new("RGB", (4, 4)), "just a prompt, nothing: else")
    assert recipes.read_recipe(image)["prompt"] == "just a prompt, nothing: else"


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda d: d / "none.png", "no file"),
        (lambda d: _write(d / "plain.png", _png_bytes()), "carries no recipe"),
        (lambda d: _write(d / "t.txt", b"hello"), "not an image with a recipe"),
    ],
)
def test_read_recipe_errors(tmp_path, make, fragment):
    with pytest.raises(CreativeError) as excinfo:
        recipes.read_recipe(make(tmp_path))
    assert fragment in one_line(excinfo)


def test_read_recipe_rejects_other_objects():
    with pytest.raises(CreativeError, match="PNG file or a PIL image"):
        recipes.read_recipe(42)


# -- grids and saving ----------------------------------------------------------------------------


def test_grid_is_compact():
    images = [Image.new("RGB", (512, 512), (i * 40, 0, 0)) for i in range(6)]
    sheet = media.grid(images)
    assert sheet.width <= 1024 and sheet.height < sheet.width  # 4 + 2 in two rows
    assert media.grid(images[:1]) is images[0] and media.grid([]) is None


def test_save_numbers_files_like_the_web_ui(tmp_path):
    images = [recipes.with_recipe_text(Image.new("RGB", (4, 4)), f"p\nSteps: 1, Sampler: Euler, Seed: {s}") for s in (7, 8)]
    first = media.save_images(images, tmp_path / "out", seeds=[7, 8])
    second = media.save_images(images[:1], tmp_path / "out", seeds=[7])
    assert [p.name for p in first + second] == ["00000-7.png", "00001-8.png", "00002-7.png"]
    assert recipes.read_recipe(first[1])["seed"] == 8


def test_save_into_a_file_is_refused(tmp_path):
    (tmp_path / "taken").write_text("x")
    with pytest.raises(CreativeError, match="needs a folder"):
        media.check_folder(tmp_path / "taken")
