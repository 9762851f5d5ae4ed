"""creative_magics.batch with the local backend, and --batch on the magics: results in item order equal to
the same calls one by one, each in the gallery; a bad item fails alone in its slot; Ctrl-C keeps what
finished; --sweep with --batch; one-line errors. The Ray backend is in test_batch_ray.py."""

import numpy as np
import pytest

import creative_magics
from creative_magics import session
from creative_magics.batches import BatchResult, FailedItem
from helpers import assert_one_line_error

SMALL = {"steps": 2, "width": 64, "height": 64}


def pixels(result):
    return [np.asarray(image) for image in result.images]


def same_pictures(a, b):
    return len(a.images) == len(b.images) and all(np.array_equal(x, y) for x, y in zip(pixels(a), pixels(b)))


def test_a_local_batch_equals_the_calls_one_by_one_in_order_and_joins_the_gallery(ip):
    items = [{"prompt": f"a lighthouse {i}", "seed": 10 + i, **SMALL} for i in range(3)]
    before = len(session.current().results)
    seen = []
    done = creative_magics.batch("paint", items, on_result=lambda index, slot: seen.append(index), progress=False)
    assert isinstance(done, BatchResult) and len(done) == 3 and not done.failures
    assert seen == [0, 1, 2]
    assert len(session.current().results) == before + 3  # each joined the gallery as it came
    assert list(session.current().results)[-3:] == list(done)
    alone = [creative_magics.paint(**item) for item in items]
    for batched, single in zip(done, alone):
        assert same_pictures(batched, single)
        assert batched.recipe["seed"] == single.recipe["seed"] and batched.recipe["params"] == single.recipe["params"]
    assert done.recipe["task"] == "batch" and done.recipe["of"] == "paint" and done.recipe["items"] == 3 and done.recipe["failed"] == []
    assert len(done.images) == 3 and done.recipes == [r.recipe for r in done]


def test_a_bad_item_fails_alone_with_its_one_line_and_the_batch_recipe_lists_it(ip):
    items = [{"prompt": "a fox", "seed": 1, **SMALL}, {"prompt": "a fox", "seed": 2, "steps": -3}, 42, {"prompt": "a fox", "seed": 3, **SMALL}]
    done = creative_magics.batch("paint", items, progress=False)
    assert [isinstance(slot, FailedItem) for slot in done] == [False, True, True, False]
    assert "--steps" in done[1].error and "\n" not in done[1].error
    assert "dict" in done[2].error
    assert done[1].recipe["failed"] is True and done[1].recipe["item"] == 1
    assert [f["item"] for f in done.recipe["failed"]] == [1, 2]
    assert same_pictures(done[3], creative_magics.paint(**items[3]))
    assert "2 done, 2 failed" in repr(done)


def test_ctrl_c_cancels_the_pending_items_and_keeps_the_finished_ones(ip):
    items = [{"prompt": f"a boat {i}", "seed": i, **SMALL} for i in range(5)]

    def stop_after_two(index, slot):
        if index == 1:
            raise KeyboardInterrupt

    done = creative_magics.batch("paint", items, on_result=stop_after_two, progress=False)
    assert done.interrupted and len(done) == 5
    assert [isinstance(slot, FailedItem) for slot in done] == [False, False, True, True, True]
    assert all(slot.cancelled for slot in done[2:]) and done.recipe["cancelled"] == [2, 3, 4]
    assert same_pictures(done[1], creative_magics.paint(**items[1]))


def test_strings_are_prompts_and_defaults_are_below_each_item(ip):
    done = creative_magics.batch("paint", ["a red door", {"prompt": "a blue door", "seed": 9}], defaults={"seed": 4, **SMALL}, progress=False)
    assert [slot.recipe["prompt"] for slot in done] == ["a red door", "a blue door"]
    assert [slot.recipe["seed"] for slot in done] == [4, 9]


def test_story_and_compose_batches(ip):
    stories = creative_magics.batch("story", ["Once", "The sea"], defaults={"seed": 1, "max_new_tokens": 5}, progress=False)
    assert [s.recipe["prompt"] for s in stories] == ["Once", "The sea"]
    assert stories[0].text == creative_magics.story("Once", seed=1, max_new_tokens=5).text
    music = creative_magics.batch("compose", ["calm piano"], defaults={"seed": 1, "seconds": 0.5}, progress=False)
    assert music[0].recipe["task"] == "compose" and music[0].audio.size > 0


def test_paint_batch_from_a_variable_and_from_a_text_file_with_the_line_flags_as_defaults(ip, run, tmp_path):
    ip.user_ns["prompts"] = ["a tree", {"prompt": "a hill", "seed": 8}]
    ran = run("%paint --batch prompts --steps 2 --width 64 --height 64 --seed 5 -o made")
    assert ran.ok, ran.err
    made = ip.user_ns["made"]
    assert [slot.recipe["seed"] for slot in made] == [5, 8] and made[0].recipe["params"]["steps"] == 2
    assert "batch of 2 paint items here: 2 done" in ran.out
    listed = tmp_path / "prompts.txt"
    listed.write_text("a cloud\n\na river\n", encoding="utf-8")
    ran = run(f"%paint --batch {listed} --steps 2 --width 64 --height 64 --seed 5 -o from_file")
    assert ran.ok, ran.err
    assert [slot.recipe["prompt"] for slot in ip.user_ns["from_file"]] == ["a cloud", "a river"]


def test_the_cell_body_is_the_default_prompt_of_items_without_one(ip, run):
    ip.user_ns["seeds"] = [{"seed": 1}, {"seed": 2}]
    ran = run("%%paint --batch seeds --steps 2 --width 64 --height 64 -o made\na quiet harbour")
    assert ran.ok, ran.err
    assert [(s.recipe["prompt"], s.recipe["seed"]) for s in ip.user_ns["made"]] == [("a quiet harbour", 1), ("a quiet harbour", 2)]


def test_a_sweep_with_a_batch_paints_one_grid_per_item(ip, run):
    ip.user_ns["prompts"] = ["a kite", "a ship"]
    ran = run("%paint --batch prompts --sweep steps=1,2 --seed 3 --width 64 --height 64 -o grids")
    assert ran.ok, ran.err
    grids = ip.user_ns["grids"]
    assert len(grids) == 2 and all(len(g.images) == 2 and len(g.recipes) == 2 for g in grids)
    assert [r["params"]["steps"] for r in grids[1].recipes] == [1, 2]
    alone = creative_magics.paint("a ship", sweep=["steps=1,2"], seed=3, width=64, height=64)
    assert same_pictures(grids[1], alone)


def test_story_batch_magic_shows_each_text(ip, run):
    ip.user_ns["openings"] = ["Once", "Later"]
    ran = run("%story --batch openings --seed 1 --max-new-tokens 4 -o told")
    assert ran.ok, ran.err
    assert "[0] Once" in ran.out and "[1] Later" in ran.out and ran.out.index("[0] Once") < ran.out.index("[1] Later")


@pytest.mark.parametrize(
    "line, fragment",
    [
        ("%paint --ray a cat", "--batch"),
        ("%paint --workers 2 a cat", "--batch"),
        ("%paint --batch no_such_thing", "no such variable or text file"),
        ("%paint --batch empty", "empty"),
        ("%compose --batch tunes --save x.wav", "--save"),
    ],
)
def test_batch_flags_give_one_line_errors(ip, run, line, fragment):
    ip.user_ns["empty"] = []
    ip.user_ns["tunes"] = ["calm"]
    assert_one_line_error(run(line), fragment)
    assert run("%paint --steps 1 --width 64 --height 64 a cat").ok


@pytest.mark.parametrize(
    "kwargs, fragment",
    [({"backend": "spark"}, "local or ray"), ({"workers": 0}, "workers"), ({"backend": "local", "workers": 1.5}, "workers")],
)
def test_batch_arguments_are_checked_in_one_line(ip, kwargs, fragment):
    from creative_magics.errors import CreativeError

    with pytest.raises(CreativeError, match=fragment):
        creative_magics.batch("paint", ["a cat"], progress=False, **kwargs)
    with pytest.raises(CreativeError, match="story, paint"):
        creative_magics.batch("finetune", ["a cat"], progress=False)


def test_creative_workers_without_ray_workers_says_how_to_start_them(ip, run):
    ran = run("%creative workers")
    assert ran.ok and "No Ray workers yet" in ran.out


def test_for_ray_workers_notebook_names_become_the_images_and_paths_stay(ip, tmp_path):
    from PIL import Image

    from creative_magics import batches

    photo = Image.new("RGB", (64, 64), "red")
    path = tmp_path / "p.png"
    photo.save(path)
    made = creative_magics.paint("a seed picture", seed=1, **SMALL)
    names = {"photo": photo}
    items = [{"prompt": "a", "init": "photo"}, {"prompt": "b", "init": "last"}, {"prompt": "c", "init": str(path)},
             {"prompt": "d", "init": "no_such_picture"}, "not a dict"]
    ready, refused = batches.for_workers("paint", items, {"strength": 0.5}, names)
    assert np.array_equal(np.asarray(ready[0]["init"]), np.asarray(photo)) and ready[0]["strength"] == 0.5
    assert np.array_equal(np.asarray(ready[1]["init"]), np.asarray(made.image))
    assert ready[2]["init"] == str(path)  # the workers open paths themselves
    assert ready[3]["init"] == "no_such_picture"  # no such variable: left for the worker, which says so in that slot
    assert [index for index, _ in refused] == [4] and "dict" in refused[0][1]
