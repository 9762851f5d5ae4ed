"""The gallery without a front-end: every result of the session as a tile (kinds known and unknown),
select one to see it large with its recipe, load it into the panel, use it as `last`, save it."""

import io
import json
from html import escape

import ipywidgets as widgets
import numpy as np
import pytest
from PIL import Image

import creative_magics
from creative_magics import media, recipes, refs, session
from creative_magics.widgets import gallery as gallery_module
from creative_magics.widgets.gallery import Gallery
from ipycanvas import Canvas


class Picture:
    kind = "image"

    def __init__(self, color, seed=1):
        self.images = [Image.new("RGB", (64, 48), color)]
        self.recipe = {"task": "paint", "model": "sd-turbo", "seed": seed, "prompt": "p", "params": {"steps": 3, "guidance": 2.0, "width": 64, "height": 48}}

    @property
    def image(self):
        return self.images[0]


class Music:
    kind = "audio"
    sample_rate = 8000

    def __init__(self):
        self.audio = np.sin(np.linspace(0, 60, 8000, dtype=np.float32))[None, :]
        self.recipe = {"task": "compose", "model": "musicgen-small", "seed": 2, "params": {"seconds": 1.0}}


class Mystery:
    """A kind the gallery has never heard of."""

    kind = "hologram"
    recipe = {"task": "hologram", "seed": None}

    def __str__(self):
        return "a shimmering thing"


def panel_layer(task):
    """What the next call of `task` takes from the panel: the defaults layer it registered in the session."""
    return dict(session.current().default_layers(task)).get("panel", {})


def story(seed=3):
    return creative_magics.story("Once upon a time", model="gpt2", seed=seed, max_new_tokens=4)


def test_percent_creative_gallery_shows_the_results(run):
    assert run("%%story -m gpt2 --max-new-tokens 3 --seed 1\nHello").ok
    ran = run("%creative gallery")
    assert ran.ok, ran.err
    assert "<creative_magics gallery: 1 result: 1 text>" in ran.out
    assert creative_magics.gallery() is gallery_module.open_gallery()


def test_an_empty_gallery_says_how_to_fill_it(ip):
    gallery = creative_magics.gallery()
    assert gallery.results == [] and gallery.tiles.children == ()
    assert "No results yet" in gallery.empty.value
    assert repr(gallery) == "<creative_magics gallery: 0 results>"


def test_every_kind_gets_a_tile_and_new_results_join(ip):
    first = story()
    gallery = creative_magics.gallery()
    assert gallery.results == [first]
    s = session.current()
    for result in (Picture((200, 0, 0)), Music(), Mystery()):
        s.remember(result)  # made after the gallery opened: it grows by itself
    assert len(gallery.tiles.children) == 4
    faces = [tile.children[0] for tile in gallery.tiles.children]
    pictures = [tile.picture for tile in gallery.tiles.children]
    assert all(isinstance(face, Canvas) for face in faces)  # every thumbnail takes clicks
    assert all((face.width, face.height) == (128, 128) for face in faces)  # the tiles line up
    card = gallery_module.square(pictures[1])
    assert card.getpixel((64, 64)) == (200, 0, 0) and card.getpixel((2, 2)) == (245, 245, 245)  # centred, not stretched
    card = np.asarray(pictures[0].convert("L"))
    assert card.shape == (128, 128) and card.min() < 128  # a card with the text drawn on it
    assert pictures[0].tobytes() == gallery_module.text_card(gallery_module.snippet(first)).tobytes()
    assert "Once upon a time" not in gallery_module.snippet(first)  # the text, not the prompt
    assert pictures[1].size == (64, 48) and pictures[1].getpixel((0, 0)) == (200, 0, 0)  # never enlarged
    assert pictures[2].size == (128, 48)  # a waveform
    assert pictures[3].tobytes() == gallery_module.text_card("a shimmering thing").tobytes()
    labels = [tile.children[1].description for tile in gallery.tiles.children]
    assert labels == ["#1 text seed 3", "#2 image seed 1", "#3 audio seed 2", "#4 hologram"]
    assert repr(gallery) == "<creative_magics gallery: 4 results: 1 text, 1 image, 1 audio, 1 hologram>"


def test_select_shows_it_large_with_its_recipe(ip):
    result = story(seed=11)
    gallery = creative_magics.gallery()
    gallery.tiles.children[0].children[1].click()
    assert gallery.selected is result
    large = gallery.large.outputs
    assert len(large) == 1 and large[0]["output_type"] == "display_data"
    assert result.text[:20] in json.dumps(large[0]["data"])
    assert "&quot;seed&quot;: 11" in gallery.recipe.value
    assert not gallery.panel_button.disabled and not gallery.last_button.disabled and not gallery.save_button.disabled


def test_a_large_picture_is_stored_as_base64_png(ip):
    session.current().remember(Picture((0, 0, 255)))
    gallery = creative_magics.gallery()
    gallery.select(0)
    data = gallery.large.outputs[0]["data"]
    assert "text/plain" in data
    for mime, value in data.items():
        assert isinstance(value, str), mime  # JSON-ready: a notebook stores PNG as base64 text


def test_select_out_of_range_is_one_line(ip):
    gallery = creative_magics.gallery()
    with pytest.raises(creative_magics.errors.CreativeError, match="the gallery has results"):
        gallery.select(3)


def test_use_as_last(ip):
    s = session.current()
    older, newer = Picture((1, 1, 1), seed=5), Picture((2, 2, 2), seed=6)
    s.remember(older)
    s.remember(newer)
    tale = story()
    gallery = creative_magics.gallery()
    gallery.select(0)
    gallery.last_button.click()
    assert "`last` is now #1 image seed 5" in gallery.status.value
    assert s.last() is older and s.last("image") is older
    assert s.last("text") is tale  # `last` of another kind is untouched
    image, label = refs.image("last")
    assert label == "last" and image.getpixel((0, 0)) == (1, 1, 1)
    fresh = story(seed=9)  # a new result is `last` again
    assert s.last() is fresh and s.last("image") is newer


def test_load_into_panel(ip):
    s = session.current()
    s.remember(Picture((0, 0, 0), seed=42))
    gallery = creative_magics.gallery()
    gallery.select(0)
    gallery.panel_button.click()
    assert "The panel now holds its steps, guidance, width, height, model, seed" in gallery.status.value
    assert panel_layer("paint") == {"steps": 3, "guidance": 2.0, "width": 64, "height": 48, "model": "sd-turbo", "seed": 42}
    assert creative_magics.panel().tabs.selected_index == 1


def test_load_into_panel_is_off_for_kinds_without_controls(ip):
    session.current().remember(Mystery())
    gallery = creative_magics.gallery()
    gallery.select(0)
    assert gallery.panel_button.disabled
    gallery._act(gallery.load_into_panel)
    assert "the panel has no controls for hologram" in gallery.status.value


def test_a_loaded_story_recipe_drives_the_next_story(ip, run):
    story(seed=21)
    gallery = creative_magics.gallery()
    gallery.select(0)
    gallery.load_into_panel()
    assert run("%%story --max-new-tokens 4 -o again\nOnce upon a time").ok
    again = ip.user_ns["again"]
    assert again.recipe["seed"] == 21 and again.recipe["model"] == "gpt2"
    assert again.text == session.current().results[0].text


def test_save_each_kind(ip, tmp_path):
    s = session.current()
    tale = story()
    s.remember(Picture((10, 20, 30)))
    s.remember(Mystery())
    gallery = creative_magics.gallery()
    gallery.folder.value = str(tmp_path / "out")
    gallery.select(0)
    gallery.save_button.click()
    text = (tmp_path / "out" / "result-001.txt").read_text()
    assert text.startswith("Once upon a time") and tale.text in text
    assert json.loads((tmp_path / "out" / "result-001.recipe.json").read_text())["seed"] == 3
    gallery.select(1)
    said = gallery.save()
    assert (tmp_path / "out" / "result-002.png").exists() and "result-002.png" in said
    assert Image.open(tmp_path / "out" / "result-002.png").getpixel((0, 0)) == (10, 20, 30)
    gallery.select(2)
    gallery.save()
    assert (tmp_path / "out" / "result-003.txt").read_text().strip() == "a shimmering thing"


def test_save_into_a_file_is_refused(ip, tmp_path):
    story()
    (tmp_path / "taken").write_text("x")
    gallery = creative_magics.gallery()
    gallery.select(0)
    gallery.folder.value = str(tmp_path / "taken")
    gallery.save_button.click()
    assert "is a file; give a folder" in gallery.status.value


def test_saving_a_paint_result_keeps_its_recipe_in_the_png(ip, run, tmp_path):
    from creative_magics.magics import CreativeMagics

    if not hasattr(CreativeMagics, "paint"):
        pytest.skip("%%paint is not in this build yet")
    assert run("%%paint --steps 1 --width 64 --height 64 --seed 4\na boat").ok
    gallery = creative_magics.gallery()
    gallery.select(0)
    gallery.folder.value = str(tmp_path)
    gallery.save()
    png = sorted(tmp_path.glob("*.png"))[0]
    assert creative_magics.read_recipe(str(png))["seed"] == 4


def test_closing_stops_listening(ip):
    gallery = creative_magics.gallery()
    gallery.close()
    story()
    assert gallery.tiles.children == ()
    assert creative_magics.gallery() is not gallery
    assert isinstance(creative_magics.gallery(), Gallery)


def test_only_the_latest_results_are_kept_and_their_tiles_follow(ip):
    """A long session does not hold every picture forever: beyond keep_results the oldest results are
    let go, from `last` and from the gallery, which keeps numbering results as the session made them."""
    ip.run_line_magic("config", "CreativeMagics.keep_results = 3")
    s = session.current()
    made = [Picture((10 * i, 0, 0), seed=i) for i in range(5)]
    s.remember(made[0])
    gallery = creative_magics.gallery()
    gallery.select(0)
    for picture in made[1:]:
        s.remember(picture)
    assert list(s.results) == made[2:] and s.let_go == 2
    assert gallery.results == made[2:] and len(gallery.tiles.children) == 3
    assert [tile.children[1].description for tile in gallery.tiles.children] == ["#3 image seed 2", "#4 image seed 3", "#5 image seed 4"]
    assert gallery.select(4) is made[4]
    with pytest.raises(creative_magics.errors.CreativeError, match="#2 was let go.*keep_results"):
        gallery.select(1)
    with pytest.raises(creative_magics.errors.CreativeError, match="results 2 to 4, not 7"):
        gallery.select(7)
    # The result selected before it was let go can still be saved, but not made `last`.
    gallery.selected, gallery._selected_number = made[0], 0
    with pytest.raises(creative_magics.errors.CreativeError, match="let go"):
        gallery.use_as_last()
    assert s.number_of(made[0]) is None and s.number_of(made[3]) == 3


def test_keep_results_must_be_positive(ip):
    ip.run_line_magic("config", "CreativeMagics.keep_results = 0")
    assert session.current().settings.keep_results == 100


def test_clicking_a_thumbnail_selects_it(ip):
    """The thumbnail itself takes the click (a mouse down on its canvas), not only the caption button."""
    first, second = story(seed=4), story(seed=5)
    gallery = creative_magics.gallery()
    face = gallery.tiles.children[1].children[0]
    face._handle_frontend_event(None, {"event": "mouse_down", "x": 10, "y": 12}, [])
    assert gallery.selected is second and "#2 text seed 5" in gallery.title.value
    gallery.tiles.children[0].children[0]._handle_frontend_event(None, {"event": "mouse_down", "x": 1, "y": 1}, [])
    assert gallery.selected is first


def test_a_midi_result_shows_its_piano_roll_and_saves_a_midi_file(ip, tmp_path):
    from creative_magics import audio, midi

    notes = creative_magics.compose("a tune", midi=True, seconds=1, seed=3)
    face = gallery_module.face_of(notes)
    assert face.size[0] == gallery_module.THUMB  # the piano roll, not a text card
    gallery = creative_magics.gallery()
    assert gallery_module.label_of(0, notes) == "#1 midi seed 3"
    gallery.folder.value = str(tmp_path / "out")
    gallery.select(0)
    gallery.save()
    saved = tmp_path / "out" / "result-001.mid"
    assert saved.read_bytes() == notes.midi and audio.read_recipe(saved)["params"]["midi"] is True
    assert midi.read_notes(saved.read_bytes()) == notes.notes
