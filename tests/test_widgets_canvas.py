"""The style canvas without a front-end: strokes from injected mouse and touch events, rendered with
PIL; colour, size, opacity, eraser, undo, clear; loading images; and `canvas` as an IMAGE."""

import datetime
import http.server
import threading

import numpy as np
import pytest
from PIL import Image

import creative_magics
from creative_magics import media, recipes, refs, session
from creative_magics.errors import CreativeError
from creative_magics.magics import CreativeMagics
from creative_magics.widgets import canvas as canvas_module
from creative_magics.widgets.canvas import StyleCanvas
from creative_magics.widgets.common import ipywidgets_major
from helpers import assert_one_line_error

WHITE = (255, 255, 255)
NOW = datetime.datetime.now(datetime.timezone.utc)


def mouse(canvas, event, x, y):
    """What ipycanvas receives from the browser when the mouse acts on the canvas."""
    canvas.drawing._handle_frontend_event(None, {"event": event, "x": x, "y": y}, [])


def touch(canvas, event, points):
    canvas.drawing._handle_frontend_event(None, {"event": event, "touches": [{"x": x, "y": y} for x, y in points]}, [])


def drag(canvas, points):
    mouse(canvas, "mouse_down", *points[0])
    for point in points[1:]:
        mouse(canvas, "mouse_move", *point)
    mouse(canvas, "mouse_up", *points[-1])


def small(width=64, height=48):
    return creative_magics.canvas(width=width, height=height)


def test_percent_creative_canvas_opens_the_one_canvas(run):
    ran = run("%creative canvas --width 96 --height 64")
    assert ran.ok, ran.err
    canvas = canvas_module.open_canvas()
    assert isinstance(canvas, StyleCanvas) and canvas.size == (96, 64)
    assert canvas.drawing.width == 96 and canvas.drawing.height == 64
    assert "<creative_magics canvas 96x64: 0 strokes>" in ran.out
    assert creative_magics.canvas() is canvas
    assert run("%creative canvas").ok and canvas_module.open_canvas() is canvas


@pytest.mark.parametrize(
    "line, fragment",
    [
        ("%creative canvas --width 10", "the canvas width must be a whole number from 32 to 2048"),
        ("%creative canvas --height big", "argument --height: invalid int value: 'big'"),
        ("%creative canvas --depth 3", "unrecognized arguments: --depth 3"),
    ],
)
def test_bad_canvas_flags_are_one_line(run, line, fragment):
    assert_one_line_error(run(line), fragment)


def test_a_blank_canvas_is_white(ip):
    image = small().to_image()
    assert image.mode == "RGB" and image.size == (64, 48)
    assert image.getcolors() == [(64 * 48, WHITE)]


def test_a_mouse_stroke_is_kept_and_rendered(ip):
    canvas = small()
    canvas.color.value = "#ff0000"
    canvas.brush_size.value = 6
    drag(canvas, [(5, 10), (20, 10), (40, 10)])
    assert len(canvas.strokes) == 1
    stroke = canvas.strokes[0]
    assert stroke.points == [(5.0, 10.0), (20.0, 10.0), (40.0, 10.0)]
    assert (stroke.color, stroke.size, stroke.opacity, stroke.eraser) == ((255, 0, 0), 6.0, 1.0, False)
    image = canvas.to_image()
    for x in (5, 12, 20, 30, 40):
        assert image.getpixel((x, 10)) == (255, 0, 0)
    assert image.getpixel((30, 20)) == WHITE  # beyond the brush radius
    assert image.getpixel((30, 12)) == (255, 0, 0) and image.getpixel((30, 14)) == WHITE
    assert repr(canvas) == "<creative_magics canvas 64x48: 1 stroke>"


def test_moves_without_a_pressed_button_draw_nothing(ip):
    canvas = small()
    mouse(canvas, "mouse_move", 10, 10)
    mouse(canvas, "mouse_up", 12, 12)
    assert canvas.strokes == []


def test_leaving_the_canvas_ends_the_stroke(ip):
    canvas = small()
    mouse(canvas, "mouse_down", 10, 10)
    mouse(canvas, "mouse_move", 30, 10)
    mouse(canvas, "mouse_out", 63, 10)
    mouse(canvas, "mouse_move", 40, 40)
    assert len(canvas.strokes) == 1 and canvas.strokes[0].points[-1] == (63.0, 10.0)


def test_a_finger_or_pen_draws_with_touch_events(ip):
    canvas = small()
    touch(canvas, "touch_start", [(10, 30)])
    touch(canvas, "touch_move", [(30, 30)])
    touch(canvas, "touch_end", [])
    assert canvas.strokes[0].points == [(10.0, 30.0), (30.0, 30.0)]
    assert canvas.to_image().getpixel((20, 30)) == (0, 0, 0)


def test_a_click_makes_a_dot(ip):
    canvas = small()
    canvas.brush_size.value = 5
    mouse(canvas, "mouse_down", 30, 20)
    mouse(canvas, "mouse_up", 30, 20)
    image = canvas.to_image()
    assert image.getpixel((30, 20)) == (0, 0, 0) and image.getpixel((31, 21)) == (0, 0, 0)
    assert image.getpixel((36, 20)) == WHITE


def test_opacity_blends_with_what_is_below(ip):
    canvas = small()
    canvas.draw([(0, 20), (63, 20)], color="#ff0000", size=8, opacity=0.5)
    red, green, blue = canvas.to_image().getpixel((30, 20))
    assert red == 255 and abs(green - 128) <= 1 and abs(blue - 128) <= 1
    # one stroke crossing itself is not darker where it overlaps (as in painting programs)
    canvas.clear()
    canvas.draw([(10, 10), (50, 10), (50, 40), (30, 10)], color="#0000ff", size=6, opacity=0.5)
    assert canvas.to_image().getpixel((40, 10)) == canvas.to_image().getpixel((20, 10))


def test_the_eraser_takes_paint_away(ip):
    canvas = small()
    canvas.draw([(0, 20), (63, 20)], color="black", size=10)
    canvas.eraser.value = True
    drag(canvas, [(30, 5), (30, 40)])
    image = canvas.to_image()
    assert image.getpixel((30, 20)) == WHITE and image.getpixel((10, 20)) == (0, 0, 0)


def test_the_eraser_shows_a_loaded_image_again(ip):
    canvas = small()
    canvas.load(Image.new("RGB", (64, 48), (0, 200, 0)))
    canvas.draw([(0, 20), (63, 20)], color="black", size=10)
    canvas.draw([(30, 5), (30, 40)], size=4, eraser=True)
    image = canvas.to_image()
    assert image.getpixel((30, 20)) == (0, 200, 0) and image.getpixel((10, 20)) == (0, 0, 0)


def test_undo_and_clear(ip):
    canvas = small()
    canvas.draw([(5, 5), (20, 5)])
    canvas.draw([(5, 30), (20, 30)])
    canvas.undo_button.click()
    assert len(canvas.strokes) == 1 and canvas.to_image().getpixel((10, 30)) == WHITE
    canvas.clear_button.click()
    assert canvas.strokes == [] and canvas.to_image().getcolors() == [(64 * 48, WHITE)]
    canvas.undo()  # undoing the clear brings the drawing back
    assert len(canvas.strokes) == 1 and canvas.to_image().getpixel((10, 5)) == (0, 0, 0)
    canvas.undo()
    assert canvas.undo() is False
    assert "Nothing to undo" in canvas.status.value


def write_png(path, color, size=(32, 32)):
    Image.new("RGB", size, color).save(path)
    return str(path)


def test_load_a_file_fits_it_into_the_canvas(ip, tmp_path):
    canvas = small(64, 48)
    canvas.source.value = write_png(tmp_path / "wide.png", (0, 0, 255), size=(128, 48))
    canvas.load_button.click()
    image = canvas.to_image()
    assert image.getpixel((32, 24)) == (0, 0, 255)
    assert image.getpixel((32, 2)) == WHITE  # letterboxed: the aspect ratio is kept
    assert "Loaded" in canvas.status.value
    canvas.draw([(0, 24), (63, 24)], color="red", size=2)
    assert canvas.to_image().getpixel((32, 24)) == (255, 0, 0)
    assert repr(canvas).endswith("1 stroke>") and "image '" in repr(canvas)


def test_load_a_variable_and_last(ip):
    canvas = small()
    ip.user_ns["sketch"] = np.full((48, 64, 3), 40, dtype=np.uint8)
    canvas.load("sketch")
    assert canvas.to_image().getpixel((0, 0)) == (40, 40, 40)

    class Picture:
        kind = "image"
        recipe = {"task": "paint", "seed": 1}
        image = Image.new("RGB", (64, 48), (9, 8, 7))

    session.current().remember(Picture())
    canvas.source.value = "last"
    canvas.load_button.click()
    assert canvas.to_image().getpixel((0, 0)) == (9, 8, 7)


def test_load_a_url(ip, tmp_path):
    write_png(tmp_path / "dot.png", (250, 100, 0))

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        canvas = small()
        canvas.load(f"http://127.0.0.1:{server.server_address[1]}/dot.png")
        assert canvas.to_image().getpixel((32, 24)) == (250, 100, 0)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_bad_sources_say_so_in_the_status_line(ip, tmp_path):
    canvas = small()
    for text, fragment in (
        ("no_such_thing", "no variable or file named 'no_such_thing'"),
        (str(tmp_path / "missing.png"), "no file"),
        ("canvas", "the canvas cannot load itself"),
        ("", "Type a path"),
    ):
        canvas.source.value = text
        canvas.load_button.click()
        assert fragment in canvas.status.value.replace("&#x27;", "'"), canvas.status.value
    assert canvas.strokes == [] and canvas.loaded_label is None


def test_upload_an_image(ip, tmp_path):
    import io

    buffer = io.BytesIO()
    Image.new("RGB", (10, 10), (1, 2, 3)).save(buffer, "PNG")
    data = buffer.getvalue()
    canvas = small()
    if ipywidgets_major() >= 8:
        canvas.upload.value = ({"name": "up.png", "type": "image/png", "size": len(data), "content": memoryview(data), "last_modified": NOW},)
        assert canvas.upload.value == ()  # emptied, so the same file can be chosen again
    else:
        canvas.upload.set_trait("value", {"up.png": {"metadata": {"name": "up.png", "type": "image/png", "size": len(data)}, "content": data}})
        assert canvas.upload.value == {}
    assert canvas.to_image().getpixel((32, 24)) == (1, 2, 3)
    assert canvas.loaded_label == "up.png"


def test_upload_of_a_non_image_says_so(ip):
    canvas = small()
    if ipywidgets_major() >= 8:
        canvas.upload.value = ({"name": "notes.txt", "type": "text/plain", "size": 5, "content": memoryview(b"hello"), "last_modified": NOW},)
    else:
        canvas.upload.set_trait("value", {"notes.txt": {"metadata": {"name": "notes.txt"}, "content": b"hello"}})
    assert "is not an image" in canvas.status.value and canvas.loaded_label is None


def test_resize_keeps_the_drawing(ip):
    canvas = small(64, 64)
    canvas.draw([(0, 32), (63, 32)], color="red", size=8)
    creative_magics.canvas(width=128, height=128)
    assert canvas.size == (128, 128) and canvas.drawing.width == 128
    assert canvas.to_image().getpixel((64, 64)) == (255, 0, 0)


def test_canvas_before_one_is_opened_is_one_line(ip):
    assert session.current().image_source("canvas") is None
    with pytest.raises(CreativeError, match="no style canvas yet: %creative canvas opens one"):
        refs.image("canvas")


def test_canvas_is_an_image_source_everywhere(ip):
    canvas = small()
    canvas.draw([(0, 0), (63, 47)], color="#00ff00", size=4)
    image, label = refs.image("canvas")
    assert label == "canvas" and np.array_equal(np.asarray(image), np.asarray(canvas.to_image()))
    assert np.array_equal(np.asarray(session.current().image_source("canvas")()), np.asarray(canvas.to_image()))
    canvas.close()  # a closed canvas is no image source any more
    with pytest.raises(CreativeError, match="no style canvas yet"):
        refs.image("canvas")
    assert np.array_equal(np.asarray(media.to_rgb(canvas)), np.asarray(canvas.to_image()))


def test_the_browser_gets_the_pil_rendering_losslessly(ip, monkeypatch):
    canvas = small()
    sent = []
    monkeypatch.setattr(canvas.drawing, "put_image_data", lambda data, x=0, y=0: sent.append((np.array(data), x, y)))
    drag(canvas, [(5, 5), (30, 30)])
    pixels, x, y = sent[-1]
    assert (x, y) == (0, 0) and pixels.shape == (48, 64, 4)  # RGBA: ipycanvas sends RGB as lossy JPEG
    assert np.array_equal(pixels[..., :3], np.asarray(canvas.to_image())) and (pixels[..., 3] == 255).all()


@pytest.mark.skipif(not hasattr(CreativeMagics, "paint"), reason="%%paint is not in this build yet")
def test_paint_init_canvas_starts_from_the_drawing(ip, run):
    canvas = small(64, 64)
    drag(canvas, [(10, 10), (50, 50)])
    ran = run("%%paint --init canvas --steps 2 --width 64 --height 64 --seed 1 -o painted\na red square")
    assert ran.ok, ran.err
    recipe = ip.user_ns["painted"].recipe
    assert recipe["params"]["init"] == "canvas"
    assert recipe["init_hash"] == media.image_hash(canvas.to_image())


@pytest.mark.skipif(not hasattr(CreativeMagics, "paint"), reason="%%paint is not in this build yet")
def test_paint_init_canvas_without_a_canvas_is_one_line(run):
    assert_one_line_error(run("%%paint --init canvas --steps 1 --width 64 --height 64\nx"), "no style canvas yet: %creative canvas opens one")


@pytest.mark.skipif(not hasattr(CreativeMagics, "stylize"), reason="%%stylize is not in this build yet")
def test_stylize_style_canvas_uses_the_drawing(ip, run):
    canvas = small(64, 64)
    canvas.draw([(0, 32), (63, 32)], color="blue", size=20)
    ip.user_ns["content"] = Image.new("RGB", (64, 64), (200, 180, 160))
    ran = run("%stylize --content content --style canvas --steps 2 --size 32 --seed 1 -o styled")
    assert ran.ok, ran.err
    assert ip.user_ns["styled"].image is not None


def test_strokes_and_pixels_agree_while_another_thread_draws(ip):
    """JupyterLab may deliver widget messages on a kernel subshell, in another thread than the cell
    reading the canvas: a stroke that is listed is always already painted."""
    canvas = creative_magics.canvas()
    canvas.clear()
    done = threading.Event()

    def draw():
        for i in range(40):  # 2-pixel vertical lines 5 pixels apart: each adds its own columns
            canvas.draw([(10 + 5 * i, 10), (10 + 5 * i, 200)], color="black", size=2)
        done.set()

    drawer = threading.Thread(target=draw)
    drawer.start()
    seen = []
    while not done.is_set():
        listed = len(canvas.strokes)  # what a cell does: list, then take the picture
        columns = int((np.asarray(canvas.to_image().convert("L")) < 128).any(axis=0).sum())
        seen.append((listed, columns))
    drawer.join()
    assert len(seen) > 1 and len(canvas.strokes) == 40
    assert all(columns >= 2 * listed for listed, columns in seen), [s for s in seen if s[1] < 2 * s[0]][:3]
