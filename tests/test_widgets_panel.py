"""The slider panel without a front-end: values become the next run's defaults (a flag still wins),
the recipe says where each came from, seeds, reset, model lists, and "Run again" / live re-runs."""

import html

import pytest

import creative_magics
from creative_magics import api, session
from creative_magics.session import Call
from creative_magics.widgets import panel as panel_module
from creative_magics.widgets.panel import Panel
from helpers import assert_one_line_error

STORY = "%%story -m gpt2 --max-new-tokens 4 --seed 3 -o tale\nOnce upon a time"


def panel_layer(task):
    """What the next call of `task` takes from the panel: the defaults layer it registered in the session."""
    return dict(session.current().default_layers(task)).get("panel", {})


def panel():
    return creative_magics.panel()


def as_if_run(task, inputs, **given):
    """The session's record of a call of `task` made with the flags `given` (what "Run again" makes again)."""
    s = session.current()
    s.calls[task] = Call(task, inputs, given, "flag")
    s.last_task = task


def test_percent_creative_panel_shows_the_one_panel(run):
    ran = run("%creative panel")
    assert ran.ok, ran.err
    opened = panel_module.open_panel()
    assert isinstance(opened, Panel)
    assert creative_magics.panel() is opened
    assert "<creative_magics panel: nothing set, the magics use their defaults>" in ran.out


def test_panel_takes_no_arguments(run):
    assert_one_line_error(run("%creative panel now"), "usage: %creative panel")


def test_an_untouched_panel_changes_nothing(ip):
    panel()
    assert all(panel_layer(task) == {} for task in ("story", "paint", "stylize", "compose"))
    result = creative_magics.story("Once", model="gpt2", seed=1, max_new_tokens=3)
    assert "panel" not in result.recipe["sources"].values()


def test_a_moved_slider_is_the_default_and_the_recipe_says_panel(ip, run):
    p = panel()
    p.controls["story"]["temperature"].value = 1.3  # what a released slider does
    p.controls["story"]["top_k"].value = 7
    assert panel_layer("story") == {"temperature": 1.3, "top_k": 7}
    assert run(STORY).ok
    recipe = ip.user_ns["tale"].recipe
    assert recipe["params"]["temperature"] == 1.3 and recipe["params"]["top_k"] == 7
    assert recipe["sources"]["temperature"] == "panel" and recipe["sources"]["top_k"] == "panel"
    assert recipe["sources"]["top_p"] == "default"
    assert repr(p) == "<creative_magics panel: story: temperature=1.3, top_k=7>"


def test_a_flag_on_the_magic_line_still_wins(ip, run):
    panel().controls["story"]["temperature"].value = 1.3
    assert run("%%story -m gpt2 --max-new-tokens 4 --temperature 0.5 -o tale\nOnce").ok
    recipe = ip.user_ns["tale"].recipe
    assert recipe["params"]["temperature"] == 0.5 and recipe["sources"]["temperature"] == "flag"


def test_panel_beats_config(ip, run):
    ip.run_line_magic("config", "CreativeMagics.story_defaults = {'temperature': 0.3, 'top_k': 9}")
    p = panel()
    assert p.controls["story"]["temperature"].value == 0.3  # the panel starts from the configured value
    p.controls["story"]["temperature"].value = 1.1
    assert run(STORY).ok
    recipe = ip.user_ns["tale"].recipe
    assert (recipe["params"]["temperature"], recipe["sources"]["temperature"]) == (1.1, "panel")
    assert (recipe["params"]["top_k"], recipe["sources"]["top_k"]) == (9, "config")


def test_image_controls_feed_paint_and_stylize(ip):
    p = panel()
    p.set_values("paint", steps=4, guidance=3.5, width=256, height=192, strength=0.6)
    p.set_values("stylize", style_weight=1e4, steps=50)
    p.seeds["image"].value = 77
    s = session.current()
    assert panel_layer("paint") == {"steps": 4, "guidance": 3.5, "width": 256, "height": 192, "strength": 0.6, "seed": 77}
    assert panel_layer("stylize") == {"style_weight": 1e4, "steps": 50, "seed": 77}
    assert panel_layer("story") == {}


def test_stylize_iterations_and_paint_steps_are_separate(ip):
    p = panel()
    p.controls["stylize"]["steps"].value = 120
    assert panel_layer("paint") == {}
    assert panel_layer("stylize") == {"steps": 120}


def test_controls_start_at_the_tasks_house_defaults(ip):
    from creative_magics.tasks import story as story_task

    p = panel()
    for name, widget in p.controls["story"].items():
        assert widget.value == pytest.approx(story_task.HOUSE_DEFAULTS[name])


def test_seed_box_random_and_reuse_last(ip, run):
    p = panel()
    assert run(STORY).ok
    p.seeds["story"].value = 5
    assert panel_layer("story") == {"seed": 5}
    p.seeds["story"].value = -1
    assert panel_layer("story") == {}
    assert p.reuse_last_seed("story") == 3  # the seed of the last story
    assert p.values("story") == {"seed": 3}
    p.random_seed("story")
    assert p.values("story") == {}
    assert p.reuse_last_seed("image") is None
    assert "No image result yet" in p.run_status.value


def test_seed_buttons_click(ip, run):
    p = panel()
    assert run(STORY).ok
    row = p.tabs.children[0].children[-1]  # the story tab's seed row: box, random, reuse last
    box, random_button, reuse_button = row.children
    reuse_button.click()
    assert box.value == 3
    random_button.click()
    assert box.value == -1


def test_reset_sets_nothing_again(ip):
    p = panel()
    p.set_values("story", temperature=1.5, model="gpt2", seed=4)
    p.set_values("paint", steps=3)
    p.reset_button.click()
    assert all(p.values(task) == {} for task in ("story", "paint", "stylize", "compose"))
    assert p.controls["story"]["temperature"].value == pytest.approx(0.8)


def test_model_dropdowns_list_aliases_yours_and_warm_models(ip):
    ip.run_line_magic("config", "CreativeMagics.aliases = {'mine': 'gpt2'}")
    p = panel()
    story_models = [value for _, value in p.models["story"].options]
    assert story_models[0] == "" and "gpt2" in story_models and "smollm2" in story_models and "mine" in story_models
    assert "sd-turbo" in [value for _, value in p.models["paint"].options]
    assert "vgg19" in [value for _, value in p.models["stylize"].options]
    assert "musicgen-small" in [value for _, value in p.models["compose"].options]
    assert "sd-turbo" not in story_models
    creative_magics.story("Hi", model="tiny-gpt2", max_new_tokens=2)
    p.refresh_models()
    labels = dict((value, label) for label, value in p.models["story"].options)
    assert labels["tiny-gpt2"] == "tiny-gpt2 (warm)" and labels["mine"] == "mine (yours)"
    p.models["story"].value = "tiny-gpt2"
    assert p.values("story") == {"model": "tiny-gpt2"}
    result = creative_magics.story("Hi", max_new_tokens=2)
    assert result.recipe["model"] == "tiny-gpt2"


def test_run_again_reruns_the_last_magic_with_the_current_values(ip, run):
    p = panel()
    assert run(STORY).ok
    before = len(session.current().results)
    p.controls["story"]["temperature"].value = 1.7
    p.run_button.click()
    p.wait()
    results = session.current().results
    assert len(results) == before + 1
    assert results[-1].recipe["params"]["temperature"] == 1.7
    assert results[-1].recipe["sources"]["temperature"] == "panel"
    assert results[-1].recipe["seed"] == 3  # the magic line's --seed
    shown = "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in p.output.outputs)
    assert results[-1].text in shown
    assert "Ran %%story again" in p.run_status.value


def test_a_flag_wins_over_a_slider_moved_before_the_call(ip, run):
    p = panel()
    p.controls["story"]["temperature"].value = 1.7  # moved first ...
    assert run("%%story -m gpt2 --max-new-tokens 3 --temperature 0.5\nOnce").ok  # ... then the cell's flag
    p.run_again()
    p.wait()
    assert session.current().results[-1].recipe["params"]["temperature"] == 0.5
    assert "--temperature on the magic line wins over the panel" in p.run_status.value


def test_a_slider_moved_after_the_call_reaches_its_run_again(ip, run):
    p = panel()
    assert run("%%story -m gpt2 --max-new-tokens 3 --temperature 0.5\nOnce").ok
    p.controls["story"]["temperature"].value = 1.7  # moved after the cell: the newest wish
    p.run_again()
    p.wait()
    rerun = session.current().results[-1]
    assert rerun.recipe["params"]["temperature"] == 1.7 and rerun.recipe["sources"]["temperature"] == "panel"
    assert rerun.recipe["params"]["max_new_tokens"] == 3  # the line's other flags still hold
    assert "the panel's temperature replaces the magic line's" in html.unescape(p.run_status.value)


def test_run_again_with_nothing_run_yet_says_so(ip):
    p = panel()
    p.run_again()
    assert "Nothing to run again yet" in p.run_status.value
    assert not p.runner.busy


def test_only_a_call_that_ran_to_the_end_is_remembered(ip, run):
    assert run(STORY).ok
    remembered = session.current().last_call("story")
    assert remembered.given == {"model": "gpt2", "max_new_tokens": 4, "seed": 3} and remembered.source == "flag"
    assert remembered.inputs["prompt"] == "Once upon a time\n" and remembered.output == "tale"
    assert_one_line_error(run("%%story -m gpt2 --top-p 5\nOnce"), "top-p must be in (0, 1]")
    assert session.current().last_call("story") is remembered
    assert run("%creative models").ok and session.current().last_call("story") is remembered


def test_a_rerun_that_fails_shows_one_line_in_the_panel(ip):
    p = panel()
    as_if_run("story", {"prompt": "Once"}, model="gpt2", top_p=5.0)
    p.run_again()
    p.wait()
    streams = [o for o in p.output.outputs if o["output_type"] == "stream"]
    assert [o["name"] for o in streams] == ["stderr"]
    assert streams[0]["text"].strip().splitlines() == ["UsageError: --top-p must be in (0, 1], not 5"]
    assert "failed" in p.run_status.value


def test_live_reruns_once_after_a_burst_of_slider_releases(ip, run):
    p = panel()
    p.runner.delay = 0.3
    assert run(STORY).ok
    before = len(session.current().results)
    p.live.value = True
    for value in (0.9, 1.0, 1.1, 1.2):
        p.controls["story"]["temperature"].value = value
    p.wait()
    results = session.current().results
    assert len(results) == before + 1
    assert results[-1].recipe["params"]["temperature"] == 1.2
    p.live.value = False
    p.controls["story"]["temperature"].value = 0.7
    p.wait()
    assert len(session.current().results) == before + 1  # not live: nothing runs


def test_live_never_runs_two_at_once_and_never_piles_up(ip, monkeypatch):
    import threading

    p = panel()
    p.runner.delay = 0
    release, started = threading.Event(), threading.Event()
    seen, active, most = [], [0], [0]

    def slow_run(call, above=None, **callbacks):
        active[0] += 1
        most[0] = max(most[0], active[0])
        seen.append(dict(above or []).get("panel", {}).get("temperature"))
        started.set()
        release.wait()
        active[0] -= 1
        raise creative_magics.errors.CreativeError("not really run")

    monkeypatch.setattr(api, "run_again", slow_run)
    as_if_run("story", {"prompt": "Once"})
    p.live.value = True
    p.controls["story"]["temperature"].value = 0.9
    started.wait()
    for value in (1.0, 1.1, 1.2, 1.3, 1.4):  # released while the first run works
        p.controls["story"]["temperature"].value = value
    release.set()
    p.wait()
    assert seen == [0.9, 1.4]  # the one in flight, then one run with the latest value
    assert most[0] == 1


def test_load_recipe_sets_the_controls(ip, run):
    assert run(STORY).ok
    recipe = dict(ip.user_ns["tale"].recipe)
    recipe["params"] = dict(recipe["params"], temperature=1.9, max_new_tokens=4000)
    p = panel()
    loaded = p.load_recipe(recipe)
    assert {"temperature", "max_new_tokens", "model", "seed"} <= set(loaded)
    values = p.values("story")
    assert values["temperature"] == 1.9 and values["max_new_tokens"] == 4000  # the slider widened
    assert values["model"] == "gpt2" and values["seed"] == 3
    with pytest.raises(creative_magics.errors.CreativeError, match="no controls for finetune"):
        p.load_recipe({"task": "finetune"})


def test_closing_the_panel_drops_its_values(ip):
    p = panel()
    p.controls["story"]["temperature"].value = 1.5
    p.close()
    assert panel_layer("story") == {}
    assert creative_magics.panel() is not p


def test_paint_takes_the_image_controls_and_says_panel(ip, run):
    from creative_magics.magics import CreativeMagics

    if not hasattr(CreativeMagics, "paint"):
        pytest.skip("%%paint is not in this build yet")
    p = panel()
    p.set_values("paint", steps=2, width=64, height=64)
    p.seeds["image"].value = 77
    assert run("%%paint --width 72 -o picture\na boat").ok
    recipe = ip.user_ns["picture"].recipe
    assert recipe["seed"] == 77
    assert (recipe["params"]["steps"], recipe["sources"]["steps"]) == (2, "panel")
    assert (recipe["params"]["height"], recipe["sources"]["height"]) == (64, "panel")
    assert (recipe["params"]["width"], recipe["sources"]["width"]) == (72, "flag")


def test_help_lists_the_widget_commands(run):
    out = run("%creative").out
    assert "%creative panel" in out and "%creative canvas [--width W --height H]" in out and "%creative gallery" in out


def test_the_image_controls_follow_the_model_chosen(ip):
    """SD-Turbo is chosen: 1 step, guidance 0, 512 px (its model card); SD 1.5: 25 steps, 7.5."""
    p = panel()
    p.models["paint"].value = "sd-turbo"
    shown = {name: widget.value for name, widget in p.controls["paint"].items()}
    assert (shown["steps"], shown["guidance"], shown["width"], shown["height"]) == (1, 0.0, 512, 512)
    p.models["paint"].value = "sd15"
    shown = {name: widget.value for name, widget in p.controls["paint"].items()}
    assert (shown["steps"], shown["guidance"], shown["width"], shown["height"]) == (25, 7.5, 512, 512)
    assert panel_layer("paint") == {"model": "sd15"}  # following the model touches nothing


def test_nudging_a_followed_slider_starts_from_the_models_value(ip):
    p = panel()
    p.models["paint"].value = "sd-turbo"
    p.controls["paint"]["steps"].value += 1  # one notch right, as a person would
    assert panel_layer("paint") == {"model": "sd-turbo", "steps": 2}


def test_the_controls_follow_the_model_the_task_used_last(ip, run):
    assert run("%%paint -m sd15 --steps 1 --seed 1\na fox").ok
    p = panel()
    assert p.controls["paint"]["steps"].value == 25 and p.controls["paint"]["guidance"].value == 7.5
    assert run("%%paint -m sd-turbo --seed 1\na fox").ok  # the panel follows the next run too
    assert p.controls["paint"]["steps"].value == 1 and p.controls["paint"]["guidance"].value == 0.0


def test_the_panel_opens_on_the_tab_of_the_last_task(ip, run):
    assert run("%%compose --seconds 0.1 --seed 1\npiano").ok
    assert panel().tabs.selected_index == 2  # Music
    assert run("%%paint --steps 1 --seed 1\na fox").ok
    assert panel().tabs.selected_index == 1  # Image
    assert run(STORY).ok
    assert panel().tabs.selected_index == 0  # Story


def test_a_slider_moved_after_a_paint_reaches_that_paints_run_again(ip, run):
    p = panel()
    assert run("%%paint -m sd15 --steps 2 --guidance 3 --seed 5\na lighthouse").ok
    p.controls["paint"]["steps"].value = 3  # moved after the cell, over its --steps 2
    p.controls["paint"]["guidance"].value = 4.5
    p.run_again()
    p.wait()
    rerun = session.current().results[-1]
    recipe = rerun.recipe
    assert recipe["task"] == "paint" and recipe["seed"] == 5 and recipe["model"] == "sd15"
    assert (recipe["params"]["steps"], recipe["sources"]["steps"]) == (3, "panel")
    assert (recipe["params"]["guidance"], recipe["sources"]["guidance"]) == (4.5, "panel")
    again = creative_magics.paint(recipe=recipe)  # the Run again's recipe makes the same picture
    assert again.image.tobytes() == rerun.image.tobytes()
    images = [o for o in p.output.outputs if "image/png" in o.get("data", {})]
    assert images and images[-1]["data"]["text/plain"] == repr(rerun)  # shown as the cell shows it


def test_panel_values_never_reach_a_call_after_it_closes(ip):
    p = panel()
    p.controls["story"]["temperature"].value = 1.5
    p.close()
    assert session.current().default_layers("story") == []
