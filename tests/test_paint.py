"""%%paint and creative_magics.paint: the same pixels as a plain diffusers call (text-to-image and
image-to-image), views that share the weights and load nothing, recipes that reproduce, previews,
Ctrl-C, the safety checker, a simulated GPU out-of-memory, and one-line errors for bad input."""

import functools
import socket

import numpy as np
import pytest
import torch
from PIL import Image

import creative_magics
from creative_magics import session, tiny, views
from creative_magics.errors import CreativeError
from creative_magics.tasks import paint as paint_task
from helpers import assert_one_line_error


_read_once = {}


@pytest.fixture(autouse=True)
def pipelines_read_once(ip):
    """Each test starts with an empty cache (the `ip` fixture) that still counts its loads; the tiny
    pipelines behind it are read from disk once per test run, to keep this file fast."""
    cache = session.current().cache
    load = cache.loader

    def load_once(spec, dtype):
        key = (spec.source, str(dtype))
        if key not in _read_once:
            _read_once[key] = load(spec, dtype)
        return _read_once[key]

    cache.loader = load_once


@pytest.fixture(scope="module")
def plain():
    """An independent pipeline from the same tiny folder: what a person would load by hand."""
    import transformers

    transformers.logging.set_verbosity_error()
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(str(tiny.ensure("tiny-sd")), local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def plain_images(pipe, recipe, init=None, scheduler=None):
    """The plain diffusers call for a recipe: one CPU generator per image, seeds seed, seed + 1, ..."""
    from diffusers import StableDiffusionImg2ImgPipeline

    p = recipe["params"]
    runner = StableDiffusionImg2ImgPipeline(**pipe.components) if init is not None else pipe
    runner.set_progress_bar_config(disable=True)
    own = runner.scheduler
    if scheduler is not None:
        runner.scheduler = scheduler.from_config(own.config)
    generators = [torch.Generator().manual_seed(recipe["seed"] + i) for i in range(p["n"])]
    kwargs = dict(
        prompt=recipe["prompt"],
        num_inference_steps=p["steps"],
        guidance_scale=p["guidance"],
        num_images_per_prompt=p["n"],
        generator=generators if p["n"] > 1 else generators[0],
    )
    if p["negative"]:
        kwargs["negative_prompt"] = p["negative"]
    if init is not None:
        kwargs.update(image=init, strength=p["strength"])
    else:
        kwargs.update(width=p["width"], height=p["height"])
    try:
        return runner(**kwargs).images
    finally:
        runner.scheduler = own


def same_pixels(ours, theirs):
    return len(ours) == len(theirs) and all(a.tobytes() == b.tobytes() and a.size == b.size for a, b in zip(ours, theirs))


def cached_pipeline():
    (entry,) = [e for e in session.current().cache.entries() if e.task == "paint"]
    return entry.obj


def paint_row():
    (row,) = [r for r in session.current().cache.table() if r["task"] == "paint"]
    return row


def no_more_loading(monkeypatch):
    def refuse(spec, dtype):
        raise AssertionError(f"loaded {spec.name} again")

    monkeypatch.setattr(session.current().cache, "loader", refuse)


@pytest.fixture()
def sketch(tmp_path):
    path = tmp_path / "sketch.png"
    Image.effect_noise((64, 64), 60).convert("RGB").save(path)
    return path


# -- the same pixels as a plain pipeline call ----------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        dict(model="sd-turbo", seed=7),  # 1 step, guidance 0: SD-Turbo's own settings
        dict(model="sd15", seed=3, steps=2, negative="blurry", n=2),
        dict(model="sd15", seed=11, steps=2, guidance=3.0, width=80, height=64),
    ],
    ids=["sd-turbo-defaults", "sd15-negative-batch", "sd15-size"],
)
def test_text_to_image_equals_a_plain_pipeline_call(ip, plain, params):
    result = creative_magics.paint("a red fox in the snow", **params)
    assert same_pixels(result.images, plain_images(plain, result.recipe))
    assert result.image is result.images[0] and len(result.images) == params.get("n", 1)
    assert result.seeds == [params["seed"] + i for i in range(params.get("n", 1))]


@pytest.mark.parametrize("name, cls", [("euler_a", "EulerAncestralDiscreteScheduler"), ("dpm++", "DPMSolverMultistepScheduler"), ("ddim", "DDIMScheduler")])
def test_schedulers_equal_a_plain_call_with_that_scheduler(ip, plain, name, cls):
    import diffusers

    result = creative_magics.paint("a lighthouse", model="sd15", scheduler=name, seed=2, steps=2)
    assert result.recipe["params"]["scheduler"] == name
    assert same_pixels(result.images, plain_images(plain, result.recipe, scheduler=getattr(diffusers, cls)))


def test_image_to_image_equals_a_plain_pipeline_call(ip, plain, sketch):
    result = creative_magics.paint("an oil painting", model="sd15", init=str(sketch), strength=0.5, steps=4, seed=5, n=2)
    init = Image.open(sketch).convert("RGB")
    assert result.recipe["params"]["init"] == str(sketch) and result.recipe["params"]["strength"] == 0.5
    assert same_pixels(result.images, plain_images(plain, result.recipe, init=init))


def test_turbo_image_to_image_defaults(ip, sketch):
    result = creative_magics.paint("a watercolor", init=str(sketch), seed=1)
    p, s = result.recipe["params"], result.recipe["sources"]
    assert (p["steps"], p["strength"], p["guidance"]) == (2, 0.5, 0.0)  # SD-Turbo's image-to-image settings
    assert (s["steps"], s["strength"]) == ("model", "model")


def test_init_image_is_fitted_to_the_model_size_keeping_its_shape(ip, tmp_path):
    Image.new("RGB", (300, 150), (90, 20, 20)).save(tmp_path / "wide.png")
    result = creative_magics.paint("a painting", model="sd15", init=str(tmp_path / "wide.png"), steps=2, seed=1)
    assert result.image.size == (128, 64)  # 2:1, about the model's 64x64 area, at least 64 high
    assert result.recipe["sources"]["width"] == "init image"
    given = creative_magics.paint("a painting", model="sd15", init=str(tmp_path / "wide.png"), steps=2, seed=1, height=80)
    assert given.image.size == (160, 80)


# -- views share the weights and load nothing ------------------------------------------------------


def test_image_to_image_after_text_to_image_loads_nothing_and_shares_the_weights(ip, monkeypatch, sketch):
    creative_magics.paint("a fox", seed=1)
    before = paint_row()
    no_more_loading(monkeypatch)
    creative_magics.paint("a fox", init=str(sketch), seed=1)
    after = paint_row()
    assert after["loads"] == before["loads"] == 1 and after["size_mb"] == before["size_mb"]
    base = cached_pipeline()
    img2img = paint_task.view(base, "img2img")
    assert type(img2img).__name__ == "StableDiffusionImg2ImgPipeline"
    assert img2img.unet is base.unet and img2img.vae is base.vae and img2img.text_encoder is base.text_encoder
    assert paint_task.shares_weights(base, img2img)  # no second copy of any tensor


def test_scheduler_swap_loads_nothing_and_leaves_the_cached_pipeline_alone(ip, monkeypatch):
    creative_magics.paint("a fox", seed=1)
    base = cached_pipeline()
    own = base.scheduler
    no_more_loading(monkeypatch)
    for name in ("euler_a", "dpm++", "ddim", "euler", "default"):
        result = creative_magics.paint("a fox", seed=1, scheduler=name)
        assert result.recipe["params"]["scheduler"] == ("euler" if name == "default" else name)
    assert base.scheduler is own and paint_row()["loads"] == 1
    assert paint_task.view(base, "txt2img", "dpm++").unet is base.unet
    assert paint_task.view(base, "txt2img", "euler").scheduler is own  # the model's own class: its own object


def test_lcm_is_refused_for_a_model_that_is_not_lcm(run):
    ran = run("%%paint --scheduler lcm --steps 1\na fox")
    assert_one_line_error(ran, "cannot use the 'lcm' scheduler", "LCM-distilled")
    assert run("%%paint --steps 1\na fox").ok


def test_lcm_runs_on_an_lcm_model(ip, plain, tmp_path):
    from diffusers import LCMScheduler, StableDiffusionPipeline

    folder = tmp_path / "tiny-lcm"
    StableDiffusionPipeline(**{**plain.components, "scheduler": LCMScheduler.from_config(plain.scheduler.config)}).save_pretrained(folder)
    result = creative_magics.paint("a fox", model=str(folder), scheduler="lcm", steps=2, guidance=1.0, seed=4)
    assert result.recipe["params"]["scheduler"] == "lcm"
    assert same_pixels(result.images, plain_images(plain, result.recipe, scheduler=LCMScheduler))


# -- recipes -------------------------------------------------------------------------------------------


def test_recipe_records_every_value_and_where_it_came_from(ip, run):
    ip.magics_manager.registry["CreativeMagics"].paint_defaults = {"guidance": 2.5, "model": "sd15"}
    run("%%paint --steps 2 --seed 9 -o r\na fox")
    recipe = ip.user_ns["r"].recipe
    p, s = recipe["params"], recipe["sources"]
    assert recipe["task"] == "paint" and recipe["model"] == "sd15" and recipe["seed"] == 9 and recipe["prompt"] == "a fox"
    assert (p["steps"], s["steps"]) == (2, "flag")
    assert (p["guidance"], s["guidance"]) == (2.5, "config")
    assert (p["width"], s["width"]) == (64, "model")
    assert (p["scheduler"], s["scheduler"]) == ("euler", "model")
    assert (p["n"], s["n"]) == (1, "default")
    assert set(p) == {"negative", "steps", "guidance", "width", "height", "n", "scheduler"}


def test_a_default_strength_applies_to_image_to_image_only(ip, sketch):
    ip.magics_manager.registry["CreativeMagics"].paint_defaults = {"strength": 0.6}
    plain_run = creative_magics.paint("a fox", steps=1, seed=1)
    assert "strength" not in plain_run.recipe["params"]
    from_image = creative_magics.paint("a fox", init=str(sketch), seed=1)
    assert (from_image.recipe["params"]["strength"], from_image.recipe["sources"]["strength"]) == (0.6, "config")


def test_an_image_object_init_must_be_given_again_to_rerun(ip, run, tmp_path):
    source = Image.new("RGB", (64, 64), (30, 90, 200))
    result = creative_magics.paint("a lake", model="sd15", init=source, strength=0.5, steps=2, seed=2)
    assert result.recipe["params"]["init"] is None and "Init image: (an image object)" in result.image.info["parameters"]
    result.save(tmp_path)
    recipe = creative_magics.read_recipe(result.paths[0])
    with pytest.raises(CreativeError, match="cannot name: pass that image with --init"):
        creative_magics.paint(recipe=recipe)
    assert same_pixels(creative_magics.paint(recipe=recipe, init=source).images, result.images)


def test_paint_defaults_are_checked(ip):
    from traitlets import TraitError

    with pytest.raises(TraitError, match="paint_defaults takes"):
        ip.magics_manager.registry["CreativeMagics"].paint_defaults = {"stepz": 3}


def test_a_drawn_seed_is_recorded_and_the_recipe_reproduces_the_images(ip):
    first = creative_magics.paint("a harbour", model="sd15", steps=2, n=2)
    assert isinstance(first.recipe["seed"], int)
    again = creative_magics.paint(recipe=first.recipe)
    assert same_pixels(again.images, first.images)
    assert again.recipe["params"] == first.recipe["params"]


def test_saved_pngs_carry_recipes_that_reproduce_each_image(ip, run, tmp_path):
    out = tmp_path / "out"
    ran = run(f"%%paint -m sd15 --steps 2 --seed 40 -n 3 --save {out} -o batch\na castle")
    batch = ip.user_ns["batch"]
    assert ran.ok and [p.name for p in batch.paths] == ["00000-40.png", "00001-41.png", "00002-42.png"]
    assert f"saved {batch.paths[2]}" in ran.out
    recipe = creative_magics.read_recipe(batch.paths[2])
    assert recipe["seed"] == 42 and recipe["params"]["n"] == 3 and recipe["params"]["batch_pos"] == 2
    assert run(f"%paint --recipe {batch.paths[2]} -o again").ok  # the line magic: the recipe's own prompt
    again = ip.user_ns["again"]
    assert same_pixels(again.images, [batch.images[2]]) and again.seeds == [42]
    assert creative_magics.read_recipe(again.image) == recipe


def test_recipe_flags_win(ip, run, tmp_path):
    run(f"%%paint -m sd15 --steps 2 --seed 5 --save {tmp_path}\na castle")
    path = next(tmp_path.glob("*.png"))
    run(f"%paint --recipe {path} --seed 6 --guidance 2 -o changed")
    changed = ip.user_ns["changed"]
    assert changed.recipe["seed"] == 6 and changed.recipe["params"]["guidance"] == 2.0
    assert changed.recipe["sources"]["steps"] == "recipe" and changed.recipe["sources"]["guidance"] == "flag"
    run(f"%%paint --recipe {path} -o other\na different prompt")
    assert ip.user_ns["other"].recipe["prompt"] == "a different prompt"


def test_recipe_from_a_variable(ip, run):
    run("%%paint -m sd15 --steps 2 --seed 8 -o first\na bridge")
    assert run("%paint --recipe first -o second").ok
    assert same_pixels(ip.user_ns["second"].images, ip.user_ns["first"].images)


def test_image_to_image_recipe_reproduces_and_checks_its_init_image(ip, run, sketch, tmp_path):
    result = creative_magics.paint("ink drawing", model="sd15", init=str(sketch), strength=0.75, steps=2, seed=3)
    result.save(tmp_path)
    recipe = creative_magics.read_recipe(result.paths[0])
    assert recipe["params"]["init"] == str(sketch) and recipe["init_hash"] == result.recipe["init_hash"]
    assert same_pixels(creative_magics.paint(recipe=recipe).images, result.images)
    Image.new("RGB", (64, 64), (1, 2, 3)).save(sketch)  # the file changed since
    ran = run(f"%paint --recipe {result.paths[0]}")
    assert_one_line_error(ran, "is not the one this recipe started from")


def test_an_a1111_recipe_runs_with_our_model(ip, run, tmp_path):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text(
        "parameters",
        "a castle\nNegative prompt: fog\nSteps: 2, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 77, "
        "Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Denoising strength: 0.7, Version: v1.9.4",
    )
    Image.new("RGB", (8, 8)).save(tmp_path / "webui.png", pnginfo=info)
    assert run(f"%paint --recipe {tmp_path / 'webui.png'} -m sd15 --width 64 --height 64 -o r").ok
    recipe = ip.user_ns["r"].recipe
    assert recipe["seed"] == 77 and recipe["prompt"] == "a castle"
    assert recipe["params"]["scheduler"] == "dpm++" and recipe["params"]["negative"] == "fog"
    assert "strength" not in recipe["params"]  # the web UI's hires-fix strength: no init image here


def test_prompt_interpolation_and_output(ip, run):
    ip.user_ns["animal"] = "fox"
    ran = run("%%paint --steps 1 --seed 2 -o pic\nA {animal} and {unknown} {{braces}}")
    pic = ip.user_ns["pic"]
    assert pic.recipe["prompt"] == "A fox and {unknown} {{braces}}"
    assert ran.out.strip() == repr(pic) == "<ImageResult sd-turbo seed=2 64x64, 1 image>"
    assert pic.image.info["parameters"].startswith("A fox and {unknown} {{braces}}\nSteps: 1, Sampler: Euler, CFG scale: 0, Seed: 2, Size: 64x64, Model: sd-turbo")


def test_last_is_the_latest_image(ip, run):
    run("%%paint --steps 1 --seed 3 -o base\na fox")
    assert run("%%paint --init last --seed 1 -o next\na fox, oil painting").ok
    assert ip.user_ns["next"].recipe["params"]["init"] == "last"
    assert ip.user_ns["next"].recipe["init_hash"] == creative_magics.media.image_hash(ip.user_ns["base"].image)


def test_init_from_a_variable(ip, run):
    ip.user_ns["photo"] = np.full((64, 64, 3), 120, np.uint8)
    assert run("%%paint --init photo --seed 1 -o r\nan oil painting").ok
    assert ip.user_ns["r"].recipe["params"]["init"] == "photo"


# -- progress, previews, Ctrl-C ---------------------------------------------------------------------


def test_progress_and_cheap_previews(ip, monkeypatch):
    from diffusers import AutoencoderKL

    monkeypatch.setattr(paint_task, "PREVIEW_MIN_INTERVAL_S", 0.0)
    decodes = []
    original = AutoencoderKL.decode
    monkeypatch.setattr(AutoencoderKL, "decode", lambda self, *a, **k: decodes.append(1) or original(self, *a, **k))
    steps, previews = [], []
    result = creative_magics.paint(
        "a fox", model="sd15", steps=4, seed=1, n=2, on_step=lambda s, t: steps.append((s, t)), on_preview=lambda imgs, s, t: previews.append((imgs, s))
    )
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert [s for _, s in previews] == [1, 2, 3]  # every few steps (here each), the final image replaces them
    assert all(len(imgs) == 2 and imgs[0].size == (8, 8) for imgs, _ in previews)  # latent-sized, one per image
    assert len(decodes) == 1 and len(result.images) == 2  # the VAE decodes once, at the end


def test_ctrl_c_returns_the_last_preview_and_the_pipeline_stays_usable(ip, plain):
    from creative_magics.previews import Previewer

    def stop_at_two(step, total):
        if step == 2:
            raise KeyboardInterrupt

    stopped = creative_magics.paint("a fox", model="sd15", steps=3, seed=6, on_step=stop_at_two)
    assert stopped.interrupted and stopped.recipe["interrupted"] and stopped.recipe["stopped_at_step"] == 2
    assert stopped.image.size == (64, 64) and "(stopped at step 2/3: previews)" in repr(stopped)

    seen = {}

    def keep_step_two(pipe, index, t, tensors):
        if index == 1:
            seen["preview"] = Previewer(pipe).images(tensors["latents"])[0].resize((64, 64), Image.Resampling.BILINEAR)
        return tensors

    plain("a fox", num_inference_steps=3, guidance_scale=7.5, width=64, height=64, generator=torch.Generator().manual_seed(6), callback_on_step_end=keep_step_two)
    assert stopped.image.tobytes() == seen["preview"].tobytes()  # stopped within the third step

    full = creative_magics.paint("a fox", model="sd15", steps=3, seed=6)
    assert not full.interrupted and same_pixels(full.images, plain_images(plain, full.recipe))
    assert paint_row()["in_use"] is False


def test_ctrl_c_in_the_magic_shows_and_stores_the_preview(ip, run, monkeypatch):
    original = views.ImageView.step

    def step(self, done, total):
        if done == 1:
            raise KeyboardInterrupt
        original(self, done, total)

    monkeypatch.setattr(views.ImageView, "step", step)
    ran = run("%%paint -m sd15 --steps 3 --seed 1 -o partial\na fox")
    assert ran.ok and ip.user_ns["partial"].interrupted
    assert "stopped at step 1/3" in ran.out
    monkeypatch.setattr(views.ImageView, "step", original)
    assert run("%%paint --steps 1\na fox").ok


def test_terminal_progress_bar(run, monkeypatch):
    monkeypatch.setattr(views, "PAINT_TERMINAL_BAR_DELAY_S", 0.0)
    ran = run("%%paint -m sd15 --steps 3 --seed 1\na fox")
    assert ran.ok and "paint:" in ran.err and "/3 [" in ran.err  # tqdm redraws at most every 0.1 s
    monkeypatch.setattr(views, "PAINT_TERMINAL_BAR_DELAY_S", 60.0)
    ran = run("%%paint -m sd15 --steps 3 --seed 1\na fox")
    assert ran.ok and ran.err == ""  # a quick run draws no bar


def test_notebook_display_ends_with_a_fresh_stable_output(ip, monkeypatch):
    shown = []

    class Handle:
        def update(self, bundle, raw=False):
            shown.append(("update", bundle))

    def display(bundle, raw=False, display_id=None):
        shown.append(("display", bundle))
        return Handle() if display_id else None

    monkeypatch.setattr(views, "rich_frontend", lambda: True)
    monkeypatch.setattr("IPython.display.display", display)
    monkeypatch.setattr(views, "PAINT_UPDATE_INTERVAL_S", 0.0)
    monkeypatch.setattr(paint_task, "PREVIEW_MIN_INTERVAL_S", 0.0)
    view = views.ImageView()
    result = creative_magics.paint("a fox", model="sd15", steps=3, seed=1, on_step=view.step, on_preview=view.preview)
    view.finish(result)
    kinds = [kind for kind, _ in shown]
    assert kinds[0] == "display" and shown[0][1] == {"text/plain": "", "text/html": ""}  # what nbval sees live: nothing
    assert kinds[-2:] == ["update", "display"] and shown[-2][1] == {"text/plain": "", "text/html": ""}
    assert any("data:image/png;base64," in b.get("text/html", "") for k, b in shown if k == "update")  # previews
    assert any("3/3" in b.get("text/plain", "") for k, b in shown if k == "update")  # the tqdm line
    final = shown[-1][1]
    assert final["text/plain"] == "<ImageResult sd15 seed=1 64x64, 1 image>" and final["image/png"]


# -- safety checker ------------------------------------------------------------------------------------


@pytest.fixture()
def checked_model(plain, tmp_path):
    """The tiny pipeline plus a tiny CLIP safety checker that flags every image."""
    from diffusers import StableDiffusionPipeline
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPImageProcessor

    small = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=1, num_attention_heads=2)
    config = CLIPConfig(text_config=small, vision_config={**small, "image_size": 32, "patch_size": 8}, projection_dim=32)
    torch.manual_seed(0)
    checker = StableDiffusionSafetyChecker(config).eval()
    checker.concept_embeds_weights.data.fill_(-2.0)  # every cosine similarity is above the threshold
    features = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    folder = tmp_path / "tiny-checked"
    pipe = StableDiffusionPipeline(**{**plain.components, "safety_checker": checker, "feature_extractor": features}, requires_safety_checker=True)
    pipe.save_pretrained(folder)
    return folder


def test_safety_checker_follows_the_model_and_config_turns_it_off(ip, run, checked_model):
    ran = run(f"%%paint -m {checked_model} --steps 2 --seed 4 -o flagged\na fox")
    assert ran.ok and "blacked out by the model's safety checker" in ran.out and "safety_checker = False" in ran.out
    assert np.asarray(ip.user_ns["flagged"].image).max() == 0
    ip.magics_manager.registry["CreativeMagics"].safety_checker = False
    ran = run(f"%%paint -m {checked_model} --steps 2 --seed 4 -o free\na fox")
    assert ran.ok and "safety checker" not in ran.out
    free = creative_magics.paint("a fox", model="sd15", steps=2, seed=4, guidance=ip.user_ns["free"].recipe["params"]["guidance"])
    assert same_pixels(ip.user_ns["free"].images, free.images)  # same weights, no checker
    assert cached_pipeline_for(checked_model).safety_checker is not None  # the cached model is untouched


def cached_pipeline_for(folder):
    (entry,) = [e for e in session.current().cache.entries() if e.spec.source == str(folder)]
    return entry.obj


# -- GPU out of memory (simulated) ---------------------------------------------------------------------


def _oom_on_calls(monkeypatch, failing):
    from diffusers import StableDiffusionPipeline

    original = StableDiffusionPipeline.__call__
    calls = []

    @functools.wraps(original)
    def call(self, *args, **kwargs):
        calls.append(1)
        if len(calls) in failing:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(StableDiffusionPipeline, "__call__", call)
    return calls


def test_out_of_memory_evicts_the_other_models_and_retries_once(ip, plain, monkeypatch):
    session.current().cache.get("story", "gpt2")
    creative_magics.paint("a fox", steps=1, seed=1)
    calls = _oom_on_calls(monkeypatch, failing={1})
    result = creative_magics.paint("a fox", model="sd15", steps=2, seed=8)
    assert len(calls) == 2 and same_pixels(result.images, plain_images(plain, result.recipe))
    assert [e.task for e in session.current().cache.entries()] == ["paint"]  # gpt2 was evicted, the painter kept


def test_out_of_memory_twice_is_one_line_and_the_model_stays(ip, run, monkeypatch):
    assert run("%%paint --steps 1\na fox").ok
    calls = _oom_on_calls(monkeypatch, failing={1, 2})
    ran = run("%%paint --steps 1 --width 128 --height 128\na fox")
    assert_one_line_error(ran, "out of GPU memory at 128x128", "smaller --width/--height", "%config CreativeMagics.cpu_offload = True")
    assert len(calls) == 2
    assert run("%%paint --steps 1\na fox").ok and paint_row()["loads"] == 1


def test_cpu_offload_option_uses_diffusers_model_offload(ip, monkeypatch):
    """No GPU here: the accelerator is faked, and enable_model_cpu_offload only recorded."""
    from diffusers import DiffusionPipeline

    from creative_magics import devices

    calls = []
    monkeypatch.setattr(DiffusionPipeline, "enable_model_cpu_offload", lambda self, gpu_id=None, device=None: calls.append(("on", device)))
    monkeypatch.setattr(DiffusionPipeline, "remove_all_hooks", lambda self: calls.append(("off", None)))
    creative_magics.paint("a fox", steps=1, seed=1)
    assert calls == []  # off by default
    ip.magics_manager.registry["CreativeMagics"].cpu_offload = True
    creative_magics.paint("a fox", steps=1, seed=1)
    assert calls == []  # no effect on the CPU
    monkeypatch.setattr(devices, "is_accelerator", lambda device: True)
    creative_magics.paint("a fox", steps=1, seed=1)
    creative_magics.paint("a fox", steps=1, seed=2)
    assert calls == [("on", "cpu")]  # once per pipeline view
    assert paint_row()["device"] == "cpu"  # kept in host memory
    ip.magics_manager.registry["CreativeMagics"].cpu_offload = False
    creative_magics.paint("a fox", steps=1, seed=1)
    assert calls == [("on", "cpu"), ("off", None)]


# -- bad input: one line, no traceback, the cache intact ---------------------------------------------


@pytest.fixture()
def bad_files(tmp_path, monkeypatch):
    (tmp_path / "notes.txt").write_text("not a picture")
    Image.new("RGB", (300, 300)).save(tmp_path / "big.png")
    Image.new("RGB", (64, 64)).save(tmp_path / "ok.png")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setattr(creative_magics.media, "MAX_PIXELS", 200 * 200)
    return {"dir": tmp_path, "closed": closed}


@pytest.mark.parametrize(
    "line, body, fragment",
    [
        ("--width 65", "a fox", "--width must be a multiple of 8 from 64 to 2048, not 65"),
        ("--width 32", "a fox", "--width must be a multiple of 8"),
        ("--height 4096", "a fox", "--height must be a multiple of 8"),
        ("--width abc", "a fox", "invalid int value: 'abc'"),
        ("--steps 0", "a fox", "--steps must be a whole number from 1 to 500, not 0"),
        ("--guidance -1", "a fox", "--guidance must be in [0, 50]"),
        ("-n 0", "a fox", "-n must be a whole number from 1 to 16"),
        ("--seed -1", "a fox", "seed must be a whole number"),
        ("--init {dir}/ok.png --strength 0", "a fox", "--strength must be in (0, 1]"),
        ("--init {dir}/ok.png --strength 1.5", "a fox", "--strength must be in (0, 1]"),
        ("--strength 0.5", "a fox", "--strength is for image-to-image: add --init IMAGE"),
        ("--init {dir}/ok.png --strength 0.4 --steps 2", "a fox", "leaves no denoising step: use --steps 3 or more"),
        ("--scheduler heun", "a fox", "--scheduler must be default, euler, euler_a, dpm++, ddim or lcm, not 'heun'"),
        ("--init {dir}/missing.png", "a fox", "no file '"),
        ("--init {dir}/notes.txt", "a fox", "is not an image"),
        ("--init {dir}/big.png", "a fox", "is 300x300; images up to 40,000 pixels"),
        ("--init http://127.0.0.1:{closed}/cat.png", "a fox", "could not reach http://127.0.0.1:"),
        ("--init nothing_here", "a fox", "no variable or file named 'nothing_here'"),
        ("--save {dir}/notes.txt", "a fox", "--save needs a folder"),
        ("--recipe {dir}/none.png", "a fox", "no file"),
        ("--recipe {dir}/ok.png", "a fox", "carries no recipe"),
        ("", "   \n  ", "the prompt is empty"),
        ("--stepz 3", "a fox", "unrecognized arguments: --stepz"),
        ("-o 'not a name'", "a fox", "-o needs a Python variable name"),
        ("-m nobody/no-such-model", "a fox", "not in the local Hugging Face cache"),
        ("-m gpt2", "a fox", "'gpt2' is not a paint model"),
    ],
)
def test_bad_input_is_one_line_and_the_next_call_works(ip, run, bad_files, line, body, fragment):
    assert run("%%paint --steps 1\nwarm up").ok
    ran = run(f"%%paint {line.format(**bad_files)}\n{body}")
    assert_one_line_error(ran, fragment)
    assert run("%%paint --steps 1\nstill fine").ok
    assert paint_row()["loads"] == 1 and paint_row()["in_use"] is False


def test_unknown_keyword_in_the_python_api(ip):
    with pytest.raises(CreativeError, match="unknown parameter"):
        creative_magics.paint("a fox", stepz=2)


def test_a_recipe_of_another_task_is_refused(ip):
    with pytest.raises(CreativeError, match="not a paint recipe"):
        creative_magics.paint(recipe={"task": "story", "prompt": "x"})


def test_live_previews_are_shown_at_the_size_of_the_result(ip, monkeypatch):
    """A preview is computed at the latents' size (1/8) but shown as wide as the finished picture, so the
    picture does not jump when the result replaces it; a batch's previews as wide as its grid."""
    import re

    from creative_magics import media

    monkeypatch.setattr(views, "rich_frontend", lambda: True)
    monkeypatch.setattr("IPython.display.display", lambda bundle, raw=False, display_id=None: type("H", (), {"update": lambda self, b, raw=False: shown.append(b)})())
    monkeypatch.setattr(paint_task, "PREVIEW_MIN_INTERVAL_S", 0.0)
    for n, size in ((1, (96, 64)), (3, (96, 64))):
        shown = []
        view = views.ImageView()
        result = creative_magics.paint("a fox", model="sd15", steps=4, seed=1, n=n, width=size[0], height=size[1], **view.callbacks())
        widths = {int(w) for b in shown for w in re.findall(r'<img src="data:image/png;base64,[^"]*" width="(\d+)"', b.get("text/html", ""))}
        final = media.grid(result.images).width
        assert widths == {final}, (n, widths, final)


def test_the_line_form_takes_the_words_after_the_flags_as_the_prompt(ip, run):
    """IPython's hint for `%%paint -n 4 a red fox` (no body) is the line magic: it paints that prompt."""
    hinted = run("%%paint -n 2 --seed 5 a red fox")
    assert not hinted.ok and "%paint" in hinted.err
    ran = run("%paint -n 2 --seed 5 a red fox -o fox")
    assert ran.ok, ran.err
    fox = ip.user_ns["fox"]
    assert fox.recipe["prompt"] == "a red fox" and len(fox.images) == 2
    cell = run("%%paint -n 2 --seed 5 -o again\na red fox")
    assert cell.ok and [i.tobytes() for i in ip.user_ns["again"].images] == [i.tobytes() for i in fox.images]
