"""%%paint -m amused-256 / amused-512: diffusers' AmusedPipeline (VQGAN tokens, MUSE-style) through the
same loader, cache, views, recipes and PNG chunks as every paint; the tiny aMUSEd stands in for both.
The pixels equal a plain AmusedPipeline call; the model card's defaults (12 steps, guidance 10) apply."""

import numpy as np
import pytest
import torch
from PIL import Image

import creative_magics
from creative_magics import session, tiny
from creative_magics.tasks import paint as paint_task
from helpers import assert_one_line_error


@pytest.fixture(scope="module")
def plain():
    """An aMUSEd pipeline loaded by hand from the same tiny folder."""
    import transformers

    transformers.logging.set_verbosity_error()
    from diffusers import AmusedPipeline
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()
    pipe = AmusedPipeline.from_pretrained(str(tiny.ensure("tiny-amused")), local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def plain_call(pipe, recipe, seed, init=None):
    from diffusers import AmusedImg2ImgPipeline

    p = recipe["params"]
    runner = AmusedImg2ImgPipeline(**pipe.components) if init is not None else pipe
    runner.set_progress_bar_config(disable=True)
    kwargs = dict(prompt=recipe["prompt"], num_inference_steps=p["steps"], guidance_scale=p["guidance"], generator=torch.Generator().manual_seed(seed))
    if p["negative"]:
        kwargs["negative_prompt"] = p["negative"]
    if init is not None:
        kwargs.update(image=init, strength=p["strength"])
    else:
        kwargs.update(width=p["width"], height=p["height"])
    return runner(**kwargs).images[0]


@pytest.mark.parametrize("model", ["amused-256", "amused-512"])
def test_text_to_image_equals_a_plain_amused_call_with_the_model_cards_defaults(ip, plain, model):
    result = creative_magics.paint("a lighthouse at dusk", model=model, seed=5)
    recipe = result.recipe
    assert (recipe["params"]["steps"], recipe["params"]["guidance"]) == (12, 10.0)
    assert recipe["sources"]["steps"] == "model" and recipe["sources"]["guidance"] == "model"
    assert result.image.size == (64, 64)  # the tiny stand-in keeps its own size
    assert result.image.tobytes() == plain_call(plain, recipe, 5).tobytes()


def test_a_batch_gives_image_i_the_seed_plus_i(ip, plain):
    result = creative_magics.paint("a red kite", model="amused-256", seed=9, n=3, steps=2, negative="blurry", guidance=4.0)
    assert result.seeds == [9, 10, 11] and result.steps_done == result.steps_total == 6
    for image, seed in zip(result.images, result.seeds):
        assert image.tobytes() == plain_call(plain, result.recipe, seed).tobytes()
    one = creative_magics.paint("a red kite", model="amused-256", seed=10, n=1, steps=2, negative="blurry", guidance=4.0)
    assert one.image.tobytes() == result.images[1].tobytes()


def test_image_to_image_equals_a_plain_amused_img2img_call(ip, plain):
    init = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8), "RGB")
    ip.user_ns["sketch"] = init
    result = creative_magics.paint("an oil painting", model="amused-256", init="sketch", steps=4, seed=2)
    assert result.recipe["params"]["strength"] == 0.5 and result.recipe["sources"]["strength"] == "model"
    assert result.steps_total == 2
    assert result.image.tobytes() == plain_call(plain, result.recipe, 2, init=init).tobytes()


def test_the_recipe_in_the_png_runs_again(ip, run, tmp_path):
    ran = run("%%paint -m amused-256 --steps 3 --seed 4 -o tokens\na blue bird")
    assert ran.ok, ran.err
    first = ip.user_ns["tokens"]
    path = tmp_path / "bird.png"
    first.image.save(path)
    text = Image.open(path).info["parameters"]
    assert "Model: amused-256" in text and "Steps: 3" in text and "Seed: 4" in text
    recipe = creative_magics.read_recipe(str(path))
    assert recipe["model"] == "amused-256"
    again = creative_magics.paint(recipe=recipe)
    assert again.image.tobytes() == first.image.tobytes()
    ran = run(f"%paint --recipe {path} -o again")
    assert ran.ok, ran.err
    assert ip.user_ns["again"].image.tobytes() == first.image.tobytes()


def test_views_share_the_weights_and_load_nothing(ip, monkeypatch):
    creative_magics.paint("a fox", model="amused-256", steps=1, seed=1)
    (entry,) = session.current().cache.entries()
    pipe = entry.obj
    assert type(pipe).__name__ == "AmusedPipeline"
    monkeypatch.setattr(session.current().cache, "loader", lambda spec, dtype: pytest.fail("loaded again"))
    creative_magics.paint("a fox", model="amused-512", init=Image.new("RGB", (64, 64), "red"), steps=2, seed=1)
    img2img = paint_task.view(pipe, "img2img")
    assert type(img2img).__name__ == "AmusedImg2ImgPipeline" and paint_task.shares_weights(pipe, img2img)
    assert paint_task.view(pipe, "txt2img") is not pipe  # the cached pipeline itself is never changed
    (row,) = session.current().cache.table()
    assert row["loads"] == 1  # amused-256 and amused-512 share the tiny stand-in


def test_only_amuseds_own_scheduler_and_progress_is_reported(ip, run):
    assert_one_line_error(run("%%paint -m amused-256 --scheduler euler\na fox"), "cannot use the 'euler' scheduler; it can use default")
    steps = []
    creative_magics.paint("a fox", model="amused-256", steps=3, seed=1, on_step=lambda done, total: steps.append((done, total)))
    assert steps == [(1, 3), (2, 3), (3, 3)]
    assert run("%%paint -m amused-256 --steps 1 --seed 1\nstill fine").ok


def test_the_panel_shows_amuseds_defaults(ip):
    values = creative_magics.api.model_defaults("paint", "amused-512")
    assert (values["steps"], values["guidance"], values["width"], values["height"]) == (12, 10.0, 512, 512)


def test_the_tiny_amused_builds_the_same_bytes_every_time_in_the_hub_layout(tmp_path):
    from pathlib import Path

    from creative_magics.tiny import amused

    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        amused.build(str(folder))
    files = lambda folder: {p.relative_to(folder).as_posix(): p.read_bytes() for p in Path(folder).rglob("*") if p.is_file()}
    assert files(first) == files(second)
    assert {"model_index.json", "vqvae/diffusion_pytorch_model.safetensors", "transformer/diffusion_pytorch_model.safetensors",
            "text_encoder/model.safetensors", "scheduler/scheduler_config.json"} <= set(files(first))
    assert '"AmusedPipeline"' in (first / "model_index.json").read_text()
