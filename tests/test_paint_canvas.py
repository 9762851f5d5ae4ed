"""%%paint driven by the canvas: inpainting (--mask, --mask canvas), ControlNet (--control), LoRAs (--lora),
A1111 prompt weights and long prompts, the hires fix and X/Y/Z sweeps. Tiny models built locally in the real
layouts (SD 1.5, SDXL, an inpainting UNet, ControlNets from `ControlNetModel.from_unet`, LoRAs saved in
diffusers' format); each feature is checked against the plain diffusers call, bit for bit, where there is one."""

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

import creative_magics
from creative_magics import controls, params, prompt_weights, recipes, session, sweeps, tiny
from creative_magics.errors import CreativeError
from creative_magics.tasks import paint as paint_task
from helpers import assert_one_line_error

_read_once = {}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The tiny models run fastest on one thread (a busy 2-core machine makes torch's pool spin)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def pipelines_read_once(ip):
    """An empty cache per test that still counts its loads; each tiny model is read from disk once per run.
    A LoRA left in a pipeline by a test is taken out again (as the next call without it would)."""
    cache = session.current().cache
    load = cache.loader

    def load_once(spec, dtype):
        key = (spec.source, str(dtype))
        if key not in _read_once:
            _read_once[key] = load(spec, dtype)
        return _read_once[key]

    cache.loader = load_once
    yield
    for model in _read_once.values():
        if paint_task.loaded_loras(model):
            paint_task.set_loras(model, [])


def folder(name):
    return str(tiny.ensure(name))


@pytest.fixture(scope="module")
def plain():
    """An independent SD 1.5-shaped pipeline from the same tiny folder: what a person would load by hand."""
    import transformers

    transformers.logging.set_verbosity_error()
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(folder("tiny-sd"), local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def generator(seed):
    return torch.Generator().manual_seed(seed)


def same(a, b):
    return a.size == b.size and a.tobytes() == b.tobytes()


def paint_rows():
    return [row for row in session.current().cache.table() if row["task"] in ("paint", "controlnet")]


def no_more_loading(monkeypatch):
    def refuse(spec, dtype):
        raise AssertionError(f"loaded {spec.name} again")

    monkeypatch.setattr(session.current().cache, "loader", refuse)


def noise_picture(size=64, seed=0):
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8), "RGB")
    return small.resize((size, size), Image.Resampling.BICUBIC)


def square_mask(size=64, box=(16, 16, 47, 47)):
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).rectangle(box, fill=255)
    return mask


def sketch(shape="line"):
    picture = Image.new("RGB", (64, 64), "white")
    draw = ImageDraw.Draw(picture)
    if shape == "line":
        draw.line([(5, 5), (60, 60)], fill="black", width=4)
    else:
        draw.ellipse([10, 10, 54, 54], outline="black", width=4)
    return picture


# -- inpainting ------------------------------------------------------------------------------------------


def test_inpainting_with_a_plain_model_equals_the_diffusers_inpaint_pipeline(ip, plain):
    """Masked image-to-image through diffusers' inpainting pipeline (a 4-channel UNet), the mask's edge
    softened as A1111 does (4 px) and the init pasted back where the mask is black."""
    from diffusers import StableDiffusionInpaintPipeline

    init, mask = noise_picture(), square_mask()
    result = creative_magics.paint("a red fox", model="sd15", init=init, mask=mask, steps=4, seed=3, n=2)
    inpaint = StableDiffusionInpaintPipeline(**plain.components)
    inpaint.set_progress_bar_config(disable=True)
    soft = inpaint.mask_processor.blur(mask, blur_factor=4)
    theirs = inpaint(
        "a red fox", image=init, mask_image=soft, strength=0.75, num_inference_steps=4, guidance_scale=7.5, width=64, height=64,
        num_images_per_prompt=2, generator=[generator(3), generator(4)],
    ).images
    theirs = [inpaint.image_processor.apply_overlay(soft, init, image) for image in theirs]
    assert all(same(a, b) for a, b in zip(result.images, theirs)) and len(result.images) == 2
    p = result.recipe["params"]
    assert (p["strength"], p["mask_blur"]) == (0.75, 4) and "inpainting" in repr(result)


def test_pixels_outside_the_mask_keep_the_init_and_inside_they_change(ip, plain):
    """Outside the mask the picture is the init image itself, within (here: far below) the VAE round-trip
    error that decoding it would bring; inside, it is repainted."""
    init, mask = noise_picture(seed=1), square_mask()
    result = creative_magics.paint("a cat", model="sd15", init=init, mask=mask, strength=1.0, steps=4, seed=1, mask_blur=0)
    ours, before, inside = np.asarray(result.image, np.int16), np.asarray(init, np.int16), np.asarray(mask) > 127
    with torch.no_grad():
        x = plain.image_processor.preprocess(init)
        round_trip = plain.image_processor.postprocess(plain.vae.decode(plain.vae.encode(x).latent_dist.mode()).sample)[0]
    round_trip_error = np.abs(np.asarray(round_trip, np.int16) - before)[~inside].mean()
    assert round_trip_error > 1  # decoding would change them: keeping the pixels is what keeps them
    assert np.abs(ours - before)[~inside].max() <= round_trip_error
    assert np.array_equal(ours[~inside], before[~inside])
    assert np.abs(ours - before)[inside].mean() > 10


def test_an_inpainting_model_inpaints_and_refuses_to_paint_from_text(ip, run, monkeypatch):
    init, mask = noise_picture(), square_mask()
    result = creative_magics.paint("a boat", model="sd15-inpaint", init=init, mask=mask, steps=2, seed=1)
    assert result.recipe["params"]["strength"] == 1.0 and result.recipe["sources"]["strength"] == "model"  # its model card's
    (entry,) = [e for e in session.current().cache.entries() if e.task == "paint"]
    assert entry.obj.unet.config.in_channels == 9
    view = paint_task.view(entry.obj, "inpaint")
    assert type(view).__name__ == "StableDiffusionInpaintPipeline" and paint_task.shares_weights(entry.obj, view)
    assert_one_line_error(run("%%paint -m sd15-inpaint --steps 2\na boat"), "sd15-inpaint is an inpainting model", "--mask")


def test_sdxl_inpaints_with_its_inpainting_model_and_with_the_base(ip):
    init, mask = noise_picture(), square_mask()
    for model in ("sdxl-inpaint", "sdxl"):
        result = creative_magics.paint("a boat", model=model, init=init, mask=mask, steps=2, seed=1, guidance=5, mask_blur=0)
        ours, before, inside = np.asarray(result.image, np.int16), np.asarray(init, np.int16), np.asarray(mask) > 127
        assert np.array_equal(ours[~inside], before[~inside]) and np.abs(ours - before)[inside].mean() > 5, model


def test_inpainting_after_text_to_image_loads_nothing_and_shares_the_weights(ip, monkeypatch):
    creative_magics.paint("a fox", model="sd15", steps=1, seed=1)
    no_more_loading(monkeypatch)
    creative_magics.paint("a fox", model="sd15", init=noise_picture(), mask=square_mask(), steps=2, seed=1)
    (entry,) = [e for e in session.current().cache.entries() if e.task == "paint"]
    assert session.current().cache.table()[0]["loads"] == 1
    view = paint_task.view(entry.obj, "inpaint")
    assert view.unet is entry.obj.unet and paint_task.shares_weights(entry.obj, view)


def test_a_mask_of_another_size_is_resized_with_a_note(ip, run):
    ip.user_ns.update(photo=noise_picture(), big_mask=square_mask(128, (32, 32, 95, 95)))
    ran = run("%%paint -m sd15 --init photo --mask big_mask --steps 2 --seed 1 -o fixed\na fox")
    assert ran.ok and "the mask (128x128) was resized to the --init image's 64x64" in ran.out
    assert ip.user_ns["fixed"].image.size == (64, 64)


def test_mask_mistakes_are_one_line(ip, run):
    ip.user_ns.update(photo=noise_picture(), black=Image.new("L", (64, 64), 0), mask=square_mask())
    assert_one_line_error(run("%%paint --mask mask\na fox"), "--mask is for inpainting", "add --init IMAGE")
    assert_one_line_error(run("%%paint -m sd15 --init photo --mask black\na fox"), "the mask is all black")
    assert_one_line_error(run("%%paint -m sd15 --init photo --mask nowhere\na fox"), "no variable or file named 'nowhere'")
    assert session.current().cache.entries() == []  # all refused before anything loaded


def test_mask_canvas_repaints_where_strokes_were_drawn(ip, run):
    canvas = creative_magics.canvas(width=64, height=64)
    canvas.clear()
    ip.user_ns["photo"] = noise_picture(seed=2)
    canvas.load("photo")  # the picture to change, under the strokes
    canvas.draw([(20, 32), (44, 32)], color="red", size=10)
    mask = canvas.to_mask()
    assert mask.getextrema() == (0, 255) and mask.getpixel((32, 32)) == 255 and mask.getpixel((2, 2)) == 0
    assert run("%%paint -m sd15 --init photo --mask canvas --strength 1 --steps 2 --seed 4 --mask-blur 0 -o fixed\na blue river").ok
    fixed = ip.user_ns["fixed"]
    assert fixed.recipe["params"]["mask"] == "canvas" and fixed.recipe["mask_hash"] == creative_magics.media.image_hash(mask)
    ours, before, drawn = np.asarray(fixed.image, np.int16), np.asarray(ip.user_ns["photo"], np.int16), np.asarray(mask) > 0
    assert np.array_equal(ours[~drawn], before[~drawn]) and np.abs(ours - before)[drawn].mean() > 10
    canvas.draw([(5, 5)], size=4)  # the mask changed: the recipe no longer matches it
    again = run("%paint --recipe fixed")
    assert_one_line_error(again, "the mask 'canvas' is not the one this recipe started from")


# -- ControlNet ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_controlnet():
    from diffusers import ControlNetModel

    return ControlNetModel.from_pretrained(folder("tiny-controlnet"))


def test_a_controlnet_call_equals_a_plain_controlnet_pipeline_call(ip, plain, tiny_controlnet):
    from diffusers import StableDiffusionControlNetPipeline

    result = creative_magics.paint("a fox", model="sd15", control=sketch(), steps=2, seed=1, control_scale=0.8)
    pipe = StableDiffusionControlNetPipeline(**plain.components, controlnet=tiny_controlnet)
    pipe.set_progress_bar_config(disable=True)
    guide = controls.guide(sketch(), "scribble", (64, 64))
    theirs = pipe("a fox", image=guide, num_inference_steps=2, guidance_scale=7.5, width=64, height=64,
                  controlnet_conditioning_scale=0.8, generator=generator(1)).images[0]
    assert same(result.image, theirs)
    p = result.recipe["params"]
    assert (p["controlnet"], p["control_mode"], p["control_scale"]) == ("scribble", "scribble", 0.8)
    assert result.recipe["sources"]["controlnet"] == "default" and "ControlNet" in repr(result)


def test_the_control_image_steers_the_picture(ip):
    line = creative_magics.paint("a fox", model="sd15", control=sketch("line"), steps=2, seed=1)
    ring = creative_magics.paint("a fox", model="sd15", control=sketch("ring"), steps=2, seed=1)
    assert not same(line.image, ring.image)
    off = creative_magics.paint("a fox", model="sd15", control=sketch("ring"), control_scale=0.0, steps=2, seed=1)
    assert same(off.image, creative_magics.paint("a fox", model="sd15", steps=2, seed=1).image)  # weight 0: the plain picture


def test_scribble_and_canny_guides():
    import cv2

    drawn = sketch()
    scribble = np.asarray(controls.guide(drawn, "scribble", (64, 64)))
    assert scribble[32, 32].tolist() == [255, 255, 255] and scribble[5, 60].tolist() == [0, 0, 0]  # white strokes on black
    photo = noise_picture(seed=4)
    canny = np.asarray(controls.guide(photo, "canny", (64, 64)))[..., 0]
    assert np.array_equal(canny, cv2.Canny(np.asarray(photo.convert("L")), 100, 200))  # OpenCV's detector, A1111's thresholds
    assert controls.guide(photo, "none", (32, 32)).size == (32, 32)


def test_the_controlnet_is_cached_once_and_shares_the_base_weights(ip, monkeypatch):
    creative_magics.paint("a fox", model="sd15", control=sketch(), steps=1, seed=1)
    no_more_loading(monkeypatch)
    creative_magics.paint("a fox", model="sd15", control=sketch("ring"), control_mode="canny", steps=1, seed=2)
    creative_magics.paint("a fox", model="sd15", init=noise_picture(), control=sketch(), steps=2, seed=2)  # image-to-image + ControlNet
    creative_magics.paint("a fox", model="sd15", init=noise_picture(), mask=square_mask(), control=sketch(), steps=2, seed=2)  # inpainting too
    rows = {row["task"]: row for row in paint_rows()}
    assert rows["paint"]["loads"] == rows["controlnet"]["loads"] == 1
    base = [e for e in session.current().cache.entries() if e.task == "paint"][0].obj
    controlnet = [e for e in session.current().cache.entries() if e.task == "controlnet"][0].obj
    for mode, name in (("txt2img", "StableDiffusionControlNetPipeline"), ("inpaint", "StableDiffusionControlNetInpaintPipeline")):
        view = paint_task.view(base, mode, controlnet=controlnet)
        assert type(view).__name__ == name and view.unet is base.unet and view.controlnet is controlnet


def test_sdxl_takes_an_sdxl_controlnet_by_default(ip):
    result = creative_magics.paint("a fox", model="sdxl", control=sketch(), steps=2, seed=1)
    assert result.recipe["params"]["controlnet"] == "scribble-sdxl" and result.image.size == (64, 64)
    canny = creative_magics.paint("a fox", model="sdxl", control=sketch(), control_mode="canny", steps=2, seed=1)
    assert canny.recipe["params"]["controlnet"] == "canny-sdxl"


def test_control_canvas_paints_the_sketch(ip, run):
    canvas = creative_magics.canvas(width=64, height=64)
    canvas.clear()
    canvas.draw([(8, 56), (32, 8), (56, 56)], color="black", size=4)
    assert run("%%paint -m sd15 --control canvas --steps 2 --seed 2 -o drawn\na mountain").ok
    drawn = ip.user_ns["drawn"]
    assert drawn.recipe["params"]["control"] == "canvas" and drawn.recipe["control_hash"] == creative_magics.media.image_hash(canvas.to_image())
    assert same(drawn.image, creative_magics.paint("a mountain", model="sd15", control=canvas.to_image(), steps=2, seed=2).image)


def test_controlnet_mistakes_are_one_line(ip, run, tmp_path):
    ip.user_ns["drawing"] = sketch()
    assert_one_line_error(run("%%paint -m sd15 --control drawing --controlnet canny-sdxl\na fox"),
                          "--controlnet canny-sdxl is a ControlNet for SDXL", "sd15 is an SD 1.5 model: use canny")
    assert_one_line_error(run("%%paint -m sd15 --control drawing --controlnet nobody/no-such-controlnet\na fox"),
                          "not in the local Hugging Face cache")
    assert_one_line_error(run("%%paint -m sd15 --control drawing --control-mode none\na fox"), "name the ControlNet that reads it with --controlnet")
    assert_one_line_error(run("%%paint -m sd15 --controlnet canny\na fox"), "--controlnet is for ControlNet", "add --control")
    assert_one_line_error(run(f"%%paint -m sd15 --control drawing --controlnet {folder('tiny-controlnet-sdxl')}\na fox"),
                          "is a ControlNet for SDXL models and does not fit sd15")
    assert run("%%paint -m sd15 --control drawing --steps 1\na fox").ok  # and the next call works


# -- LoRAs ---------------------------------------------------------------------------------------------------


def test_a_lora_of_weight_0_equals_the_base_and_the_next_call_without_it_too(ip, monkeypatch):
    base = creative_magics.paint("a fox", model="sd15", steps=2, seed=1)
    no_more_loading(monkeypatch)
    zero = creative_magics.paint("a fox", model="sd15", steps=2, seed=1, lora="lcm-lora-sd15:0")
    full = creative_magics.paint("a fox", model="sd15", steps=2, seed=1, lora="lcm-lora-sd15")
    after = creative_magics.paint("a fox", model="sd15", steps=2, seed=1)
    assert same(zero.image, base.image) and not same(full.image, base.image) and same(after.image, base.image)
    pipe = [e for e in session.current().cache.entries() if e.task == "paint"][0].obj
    from peft.tuners.tuners_utils import BaseTunerLayer

    assert paint_task.loaded_loras(pipe) == {} and not any(isinstance(m, BaseTunerLayer) for m in pipe.unet.modules())
    assert full.recipe["params"]["lora"] == ["lcm-lora-sd15:1"] and "lora" not in after.recipe["params"]


def test_a_lora_equals_diffusers_load_lora_weights_and_set_adapters(ip):
    from diffusers import StableDiffusionPipeline

    ours = creative_magics.paint("a fox", model="sd15", steps=2, seed=5, lora=["lcm-lora-sd15:0.7"])
    pipe = StableDiffusionPipeline.from_pretrained(folder("tiny-sd"), local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    pipe.load_lora_weights(folder("tiny-lora"), adapter_name="style")
    pipe.set_adapters(["style"], adapter_weights=[0.7])
    theirs = pipe("a fox", num_inference_steps=2, guidance_scale=7.5, width=64, height=64, generator=generator(5)).images[0]
    assert same(ours.image, theirs)


def test_the_same_loras_at_the_same_weights_set_nothing_again_and_a_new_weight_applies(ip, monkeypatch):
    """A warm call with the LoRAs of the last call skips set_adapters (it walks every layer); a new weight sets them."""
    first = creative_magics.paint("a fox", model="sd15", steps=2, seed=3, lora="lcm-lora-sd15:0.7")
    pipe = [e for e in session.current().cache.entries() if e.task == "paint"][0].obj
    calls = []
    real = pipe.set_adapters
    monkeypatch.setattr(pipe, "set_adapters", lambda *a, **k: (calls.append((a, k)), real(*a, **k))[1])
    again = creative_magics.paint("a fox", model="sd15", steps=2, seed=3, lora="lcm-lora-sd15:0.7")
    assert calls == [] and same(again.image, first.image)
    other = creative_magics.paint("a fox", model="sd15", steps=2, seed=3, lora="lcm-lora-sd15:0.2")
    assert len(calls) == 1 and not same(other.image, first.image)
    back = creative_magics.paint("a fox", model="sd15", steps=2, seed=3, lora="lcm-lora-sd15:0.7")
    assert len(calls) == 2 and same(back.image, first.image)


def test_switching_loras_never_reloads_the_base(ip, monkeypatch, tmp_path):
    import shutil

    shutil.copy(f"{folder('tiny-lora')}/pytorch_lora_weights.safetensors", tmp_path / "mine.safetensors")
    creative_magics.paint("a fox", model="sd15", steps=1, seed=1)
    no_more_loading(monkeypatch)
    a = creative_magics.paint("a fox", model="sd15", steps=2, seed=1, lora=f"{tmp_path}/mine.safetensors:0.5")
    b = creative_magics.paint("a fox", model="sd15", steps=2, seed=1, lora=["lcm-lora-sd15:0.5"])
    both = creative_magics.paint("a fox", model="sd15", steps=2, seed=1, lora=[f"{tmp_path}/mine.safetensors:0.25", "lcm-lora-sd15:0.25"])
    assert same(a.image, b.image)  # the same weights under two names
    assert not same(both.image, a.image) and both.recipe["params"]["lora"] == [f"{tmp_path}/mine.safetensors:0.25", "lcm-lora-sd15:0.25"]
    pipe = [e for e in session.current().cache.entries() if e.task == "paint"][0].obj
    assert sorted(paint_task.loaded_loras(pipe)) == sorted(paint_task.adapter_name(n) for n in (f"{tmp_path}/mine.safetensors", "lcm-lora-sd15"))


def kohya_names(state):
    """A diffusers-format LoRA in Kohya's (A1111's) layout: `lora_unet_..._to_q.lora_down.weight`, `.lora_up`, `.alpha`."""
    out = {}
    for key, value in state.items():
        part, _, rest = key.partition(".")
        module, _, kind = rest.rpartition(".lora_")
        stem = ("lora_unet_" if part == "unet" else "lora_te_") + module.replace(".", "_")
        out[f"{stem}.{'lora_down' if kind.startswith('A') else 'lora_up'}.weight"] = value
        if kind.startswith("A"):
            out[f"{stem}.alpha"] = torch.tensor(float(value.shape[0]))  # alpha = rank: a scale of 1, as saved
    return out


def test_a_kohya_lora_loads_as_diffusers_loads_it(ip, tmp_path):
    from safetensors.torch import load_file, save_file

    state = load_file(f"{folder('tiny-lora')}/pytorch_lora_weights.safetensors")
    save_file(kohya_names(state), tmp_path / "kohya-style.safetensors")
    ours = creative_magics.paint("a fox", model="sd15", steps=2, seed=1, lora=f"{tmp_path}/kohya-style.safetensors:0.6")
    same_weights = creative_magics.paint("a fox", model="sd15", steps=2, seed=1, lora="lcm-lora-sd15:0.6")
    assert np.abs(np.asarray(ours.image, np.int16) - np.asarray(same_weights.image, np.int16)).max() <= 1


def test_an_lcm_lora_allows_the_lcm_scheduler(ip):
    result = creative_magics.paint("a fox", model="sd15", lora="lcm-lora-sd15", scheduler="lcm", steps=2, guidance=1.0, seed=1)
    assert result.recipe["params"]["scheduler"] == "lcm"


def test_a_lora_in_the_recipe_and_the_a1111_text(ip, tmp_path):
    result = creative_magics.paint("a fox", model="sd15", steps=2, seed=9, lora="lcm-lora-sd15:0.8", save=str(tmp_path))
    text = result.image.info["parameters"]
    assert text.startswith("a fox <lora:lcm-lora-sd15:0.8>\n")
    recipe = creative_magics.read_recipe(result.paths[0])
    assert recipe["prompt"] == "a fox" and recipe["params"]["lora"] == ["lcm-lora-sd15:0.8"]
    assert same(creative_magics.paint(recipe=recipe).image, result.image)


def test_lora_mistakes_are_one_line_and_leave_the_model_as_it_was(ip, run, tmp_path):
    assert run("%%paint -m sd15 --steps 2 --seed 1 -o before\na fox").ok
    assert_one_line_error(run("%%paint -m sd15 --lora lcm-lora-sdxl\na fox"), "--lora lcm-lora-sdxl is a LoRA for SDXL", "use lcm-lora-sd15")
    assert_one_line_error(run(f"%%paint -m sd15 --lora {folder('tiny-lora-sdxl')}\na fox"), "does not fit sd15", "made for another model")
    assert_one_line_error(run("%%paint -m sd15 --lora lcm-lora-sd15:strong\na fox"), "the weight after ':' must be a number")
    (tmp_path / "pickled.bin").write_bytes(b"not a safetensors file")
    assert_one_line_error(run(f"%%paint -m sd15 --lora {tmp_path}/pickled.bin\na fox"), "only .safetensors LoRA files are read")
    assert_one_line_error(run("%%paint -m sd15 --lora nobody/no-such-lora\na fox"), "is not in the local Hugging Face cache")
    assert run("%%paint -m sd15 --steps 2 --seed 1 -o after\na fox").ok
    assert same(ip.user_ns["after"].image, ip.user_ns["before"].image)
    assert [row["loads"] for row in paint_rows()] == [1]


@pytest.mark.parametrize(
    "item, expected",
    [("style", ("style", 1.0)), ("style:0.8", ("style", 0.8)), ("owner/repo:-1", ("owner/repo", -1.0)),
     ("owner/repo:file.safetensors", ("owner/repo:file.safetensors", 1.0)), ("owner/repo:file.safetensors:0.5", ("owner/repo:file.safetensors", 0.5)),
     (("style", 0.3), ("style", 0.3))],
)
def test_lora_syntax(item, expected):
    assert params.parse_lora(item) == expected


# -- A1111 prompt weights and long prompts ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a (red:1.3) fox", [("a ", 1.0), ("red", 1.3), (" fox", 1.0)]),
        ("(red) [blue]", [("red", 1.1), (" ", 1.0), ("blue", 1 / 1.1)]),
        ("((red))", [("red", pytest.approx(1.21))]),
        (r"a \(fox\)", [("a (fox)", 1.0)]),
        ("(open", [("open", 1.1)]),
        ("stray) and ]", [("stray) and ]", 1.0)]),
    ],
)
def test_a1111_weights_become_fragments(text, expected):
    assert prompt_weights.fragments(text) == expected


def test_a_weighted_prompt_equals_compels_embeddings_in_a_plain_pipeline(ip, plain):
    from compel import Compel

    ours = creative_magics.paint("a (red:1.3) fox, [blurry]", model="sd15", steps=2, seed=1, negative="(ugly:1.2)")
    compel = Compel(tokenizer=plain.tokenizer, text_encoder=plain.text_encoder, truncate_long_prompts=False)
    embeds, negative = compel.pad_conditioning_tensors_to_same_length([compel("a (red)1.3 fox, (blurry)0.9090909090909091"), compel("(ugly)1.2")])
    theirs = plain(prompt_embeds=embeds, negative_prompt_embeds=negative, num_inference_steps=2, guidance_scale=7.5, width=64, height=64,
                   generator=generator(1)).images[0]
    assert same(ours.image, theirs)
    unweighted = creative_magics.paint("a red fox, blurry", model="sd15", steps=2, seed=1, negative="ugly")
    assert not same(ours.image, unweighted.image)
    assert ours.recipe["prompt"] == "a (red:1.3) fox, [blurry]" and ours.recipe["params"]["negative"] == "(ugly:1.2)"  # as written
    assert ours.image.info["parameters"].startswith("a (red:1.3) fox, [blurry]\nNegative prompt: (ugly:1.2)\n")


def test_a_plain_prompt_is_the_pipelines_own_text_and_escapes_are_literal(ip, plain):
    escaped = creative_magics.paint(r"a \(fox\)", model="sd15", steps=2, seed=1)
    theirs = plain("a (fox)", num_inference_steps=2, guidance_scale=7.5, width=64, height=64, generator=generator(1)).images[0]
    assert same(escaped.image, theirs)


def test_tokens_past_77_change_the_picture_and_nothing_is_cut_off(ip, capsys):
    filler = ", ".join(["a quiet harbour at dawn"] * 16)  # about 96 tokens
    pieces = prompt_weights.fragments(filler)
    first = creative_magics.paint(f"{filler}, a red fox", model="sd15", steps=2, seed=1)
    second = creative_magics.paint(f"{filler}, a blue whale", model="sd15", steps=2, seed=1)
    pipe = [e for e in session.current().cache.entries() if e.task == "paint"][0].obj
    assert prompt_weights.token_count(pipe.tokenizer, filler) > 77 and pieces == [(filler, 1.0)]
    assert not same(first.image, second.image)
    assert "truncated" not in capsys.readouterr().err
    long_negative = creative_magics.paint("a fox", model="sd15", steps=2, seed=1, negative=filler)
    assert long_negative.image.size == (64, 64)


def test_sdxl_weights_and_long_prompts(ip):
    import diffusers

    plain = creative_magics.paint("a red fox", model="sdxl", steps=2, seed=1, guidance=5)
    weighted = creative_magics.paint("a (red:1.4) fox", model="sdxl", steps=2, seed=1, guidance=5)
    long = creative_magics.paint("a red fox, " + ", ".join(["a quiet harbour at dawn"] * 16), model="sdxl", steps=2, seed=1, guidance=5)
    assert not same(plain.image, weighted.image) and not same(plain.image, long.image)
    pipe = [e for e in session.current().cache.entries() if e.task == "paint"][0].obj
    assert isinstance(pipe, diffusers.StableDiffusionXLPipeline)
    encoded = prompt_weights.embeddings(pipe, [("a red fox", 1.0)], [("", 1.0)])
    own = pipe.encode_prompt("a red fox", device="cpu", num_images_per_prompt=1, do_classifier_free_guidance=True)
    assert all(torch.equal(a, b) for a, b in zip(own, (encoded[k] for k in ("prompt_embeds", "negative_prompt_embeds", "pooled_prompt_embeds", "negative_pooled_prompt_embeds"))))


def test_prompt_editing_is_refused_in_one_line(run):
    assert_one_line_error(run("%%paint -m sd15\na [cat:dog:0.5] on a sofa"), "prompt editing [from:to:when]")
    assert_one_line_error(run("%%paint -m sd15\na fox <lora:lcm-lora-sd15:0.8>"), "put it on the magic line: --lora lcm-lora-sd15:0.8")


# -- hires fix -----------------------------------------------------------------------------------------------


def test_hires_paints_upscales_and_repaints_as_plain_diffusers_calls_would(ip, plain):
    from diffusers import StableDiffusionImg2ImgPipeline

    result = creative_magics.paint("a fox", model="sd15", steps=2, seed=1, hires=1.5, hires_steps=4, hires_strength=0.6)
    assert result.image.size == (96, 96) and "hires x1.5" in repr(result)
    first = plain("a fox", num_inference_steps=2, guidance_scale=7.5, width=64, height=64, generator=generator(1)).images[0]
    img2img = StableDiffusionImg2ImgPipeline(**plain.components)
    img2img.set_progress_bar_config(disable=True)
    theirs = img2img("a fox", image=first.resize((96, 96), Image.Resampling.LANCZOS), strength=0.6, num_inference_steps=4,
                     guidance_scale=7.5, generator=generator(1)).images[0]
    assert same(result.image, theirs)
    p = result.recipe["params"]
    assert (p["width"], p["hires"], p["hires_strength"], p["hires_steps"]) == (64, 1.5, 0.6, 4)
    text = result.image.info["parameters"]
    assert "Denoising strength: 0.6, Hires upscale: 1.5, Hires steps: 4, Hires upscaler: Lanczos" in text
    again = creative_magics.read_recipe(result.image)
    assert (again["params"]["hires"], again["params"]["hires_strength"]) == (1.5, 0.6)
    assert same(creative_magics.paint(recipe=again).image, result.image)


def test_hires_batch_and_progress(ip):
    steps = []
    result = creative_magics.paint("a fox", model="sd15", steps=2, seed=1, hires=2, n=2, on_step=lambda s, t: steps.append((s, t)))
    assert [im.size for im in result.images] == [(128, 128)] * 2
    assert steps == [(1, 3), (2, 3), (3, 3)]  # two steps, then int(2 x 0.5) of the second pass: one bar over both


def test_hires_mistakes_are_one_line(ip, run):
    ip.user_ns["photo"] = noise_picture()
    assert_one_line_error(run("%%paint -m sd15 --hires 2 --init photo\na fox"), "--hires is for text-to-image")
    assert_one_line_error(run("%%paint -m sd15 --hires-strength 0.4\na fox"), "--hires-strength is for the hires fix: add --hires SCALE")
    assert_one_line_error(run("%%paint -m sd15 --hires 4 --width 1024 --height 1024\na fox"), "makes 4096x4096, larger than 2048")
    assert_one_line_error(run("%%paint -m sd15 --hires 1\na fox"), "--hires must be in (1, 4]")


# -- sweeps --------------------------------------------------------------------------------------------------


def test_each_cell_of_a_sweep_equals_the_same_paint_alone(ip, run):
    assert run("%%paint -m sd15 --seed 3 --sweep guidance=3,7 --sweep steps=1,2 -o grid\na lighthouse").ok
    grid = ip.user_ns["grid"]
    assert len(grid.images) == len(grid.recipes) == 4 and grid.seeds == [3] * 4
    assert [(r["params"]["guidance"], r["params"]["steps"]) for r in grid.recipes] == [(3, 1), (7, 1), (3, 2), (7, 2)]  # X fastest
    for image, recipe in zip(grid.images, grid.recipes):
        p = recipe["params"]
        alone = creative_magics.paint("a lighthouse", model="sd15", seed=3, guidance=p["guidance"], steps=p["steps"])
        assert same(image, alone.image)
        assert same(creative_magics.paint(recipe=recipe).image, image)  # each recipe makes its cell alone
    assert grid.recipes[1]["sources"]["guidance"] == "sweep" and repr(grid).endswith("sweep guidance x steps, 4 of 4 cells>")


def test_a_sweep_is_one_labelled_grid_with_its_recipe(ip):
    grid = creative_magics.paint("a fox", model="sd15", steps=1, seed=2, sweep={"guidance": [3, 5, 7], "scheduler": ["euler", "ddim"]})
    sheet = grid.grid()
    assert sheet is grid.sheet and sheet.width > 3 * 64 and sheet.height > 2 * 64  # three columns, two rows, labels beside
    text = sheet.info["parameters"]
    assert "Script: X/Y/Z plot, X Type: CFG Scale, X Values: \"3, 5, 7\", Y Type: Sampler, Y Values: \"euler, ddim\"" in text
    again = creative_magics.paint(recipe=creative_magics.read_recipe(sheet))
    assert len(again.images) == 6 and all(same(a, b) for a, b in zip(again.images, grid.images))
    assert [r["params"]["scheduler"] for r in grid.recipes] == ["euler"] * 3 + ["ddim"] * 3


def test_a_sweep_over_three_axes_with_lora_weights(ip):
    grid = creative_magics.paint("a fox", model="sd15", steps=1, seed=2, lora="lcm-lora-sd15", sweep=["lora=0,1", "seed=1,2", "guidance=2,3"])
    assert len(grid.images) == 8 and [r["params"]["lora"] for r in grid.recipes] == [["lcm-lora-sd15:0"], ["lcm-lora-sd15:1"]] * 4
    assert [r["seed"] for r in grid.recipes] == [1, 1, 2, 2] * 2 and [r["params"]["guidance"] for r in grid.recipes] == [2] * 4 + [3] * 4
    zero = creative_magics.paint("a fox", model="sd15", steps=1, seed=1, guidance=2)
    assert same(grid.images[0], zero.image)  # weight 0 is the base model
    assert grid.sheet.width > 2 * (2 * 64)  # one X/Y grid per Z value, side by side


def test_a_sweep_over_models(ip):
    grid = creative_magics.paint("a fox", steps=1, seed=2, sweep="m=sd15,sdxl")
    assert [r["model"] for r in grid.recipes] == ["sd15", "sdxl"]
    assert same(grid.images[1], creative_magics.paint("a fox", model="sdxl", steps=1, seed=2).image)


def test_sweep_progress_covers_the_whole_sweep(ip):
    seen = []
    creative_magics.paint("a fox", model="sd15", seed=1, sweep="steps=1,2,3", on_step=lambda s, t: seen.append((s, t)))
    assert [s for s, _ in seen] == [1, 2, 3, 4, 5, 6] and seen[-1] == (6, 6)


def test_ctrl_c_keeps_the_cells_done(ip):
    def stop_in_the_third_cell(step, total):
        if step == 3:
            raise KeyboardInterrupt

    grid = creative_magics.paint("a fox", model="sd15", steps=1, seed=1, sweep="guidance=1,2,3,4", on_step=stop_in_the_third_cell)
    assert grid.interrupted and len(grid.images) == len(grid.recipes) == 2 and grid.recipe["cells"] == 4
    assert "stopped after 2 of 4 cells" in grid.notes[-1] and grid.sheet is not None
    assert creative_magics.paint("a fox", model="sd15", steps=1, seed=1).image is not None  # the model stays usable


def test_sweep_mistakes_are_one_line(ip, run, monkeypatch):
    assert_one_line_error(run("%%paint --sweep temperature=1,2\na fox"), "--sweep temperature: unknown name; sweep one of")
    assert_one_line_error(run("%%paint --sweep steps=1,0\na fox"), "--sweep steps: --steps must be a whole number from 1 to 500, not 0")
    assert_one_line_error(run("%%paint --sweep steps=1,two\na fox"), "--sweep steps: --steps takes whole numbers, not 'two'")
    assert_one_line_error(run("%%paint -n 2 --sweep steps=1,2\na fox"), "a sweep paints one picture per cell: drop -n")
    assert_one_line_error(run("%%paint --sweep steps=1 --sweep steps=2\na fox"), "steps is swept twice")
    assert_one_line_error(run("%%paint --sweep lora=0,1\na fox"), "a LoRA weight sweep weighs one --lora MODEL; this call has 0")
    assert_one_line_error(run("%%paint --sweep m=sd15,gpt2\na fox"), "'gpt2' is not a paint model")
    assert_one_line_error(run("%%paint --sweep seed=1,2 --sweep steps=1,2 --sweep guidance=1,2 --sweep width=64,72\na fox"), "up to 3 names")
    big = "--sweep seed=" + ",".join(str(i) for i in range(9)) + " --sweep guidance=" + ",".join(str(i) for i in range(8))
    assert_one_line_error(run(f"%%paint {big}\na fox"), "this sweep paints 9 x 8 = 72 pictures, more than 64: add --yes")
    assert session.current().cache.entries() == []  # refused before anything loaded
    monkeypatch.setattr(params, "MAX_SWEEP_CELLS", 2)
    assert_one_line_error(run("%%paint -m sd15 --steps 1 --sweep seed=1,2,3\na fox"), "more than 2: add --yes")
    assert run("%%paint -m sd15 --steps 1 --sweep seed=1,2,3 --yes -o many\na fox").ok and len(ip.user_ns["many"].images) == 3


def test_sweep_cells_are_plain_parameter_dicts():
    """What a batch of calls can take as it is: one dict of parameters per picture, in grid order."""
    made = sweeps.axes(params.PAINT, ["steps=10,20", "guidance=3,7"])
    assert sweeps.cells(made) == [{"steps": 10, "guidance": 3.0}, {"steps": 20, "guidance": 3.0}, {"steps": 10, "guidance": 7.0},
                                  {"steps": 20, "guidance": 7.0}]
    assert [axis.written for axis in made] == ["steps=10,20", "guidance=3,7"]
    assert sweeps.cells(sweeps.axes(params.PAINT, "lora=0.5", {"lora": "x:1"}), {"lora": "x:1"}) == [{"lora": ["x:0.5"]}]


def test_the_panel_sweeps_one_slider(ip, run):
    panel = creative_magics.panel()
    assert run("%%paint -m sd15 --steps 1 --seed 4 -o first\na fox").ok
    assert "guidance" in [value for _, value in panel.sweep_name.options]
    panel.sweep_name.value = "guidance"
    assert panel.sweep_values.value  # values around the slider's, to start from
    assert panel.sweep("guidance", "2, 4") == "guidance=2,4"
    panel.wait(timeout=600)
    swept = session.current().last("image")
    assert len(swept.images) == 2 and swept.recipe["params"]["sweep"] == ["guidance=2,4"] and swept.recipe["sources"]["sweep"] == "panel"
    assert ip.user_ns["first"] is swept  # stored where the cell's -o stored its result, as "Run again" does
    assert [r["params"]["guidance"] for r in swept.recipes] == [2, 4]
    assert panel.sweep("guidance", "1, nope") is None and "takes numbers" in panel.run_status.value


# -- recipes read back ---------------------------------------------------------------------------------------


def test_an_a1111_controlnet_and_hires_recipe_is_read():
    text = (
        "a castle <lora:lcm-lora-sd15:0.6>\nNegative prompt: fog\nSteps: 20, Sampler: Euler, CFG scale: 7, Seed: 5, Size: 512x512, "
        'Model: v1-5, Denoising strength: 0.55, Hires upscale: 2, Hires steps: 10, Hires upscaler: Latent, ControlNet 0: '
        '"Module: canny, Model: control_v11p_sd15_canny [d14c016b], Weight: 0.9, Resize Mode: Crop and Resize, Guidance Start: 0", '
        'Script: X/Y/Z plot, X Type: CFG Scale, X Values: "5, 7", Version: v1.9.4'
    )
    image = recipes.with_recipe_text(Image.new("RGB", (8, 8)), text)
    recipe = creative_magics.read_recipe(image)
    p = recipe["params"]
    assert recipe["prompt"] == "a castle" and p["lora"] == ["lcm-lora-sd15:0.6"]
    assert (p["hires"], p["hires_strength"], p["hires_steps"]) == (2.0, 0.55, 10) and "strength" not in p
    assert (p["controlnet"], p["control_mode"], p["control_scale"]) == ("canny", "canny", 0.9)
    assert p["sweep"] == ["guidance=5,7"] and recipe["extra"] == {"Version": "v1.9.4"}


def test_every_sweepable_parameter_has_an_axis_name_and_every_axis_a_parameter():
    names = sweeps.sweepable(params.PAINT)
    assert {"steps", "guidance", "cfg scale", "seed", "scheduler", "m", "model", "lora", "hires-strength", "control-scale"} <= set(names)
    assert "n" not in names and "batch_pos" not in names.values()


def test_paint_checks_run_before_anything_loads(ip):
    with pytest.raises(CreativeError, match="--mask is for inpainting"):
        creative_magics.paint("a fox", mask=square_mask())
    assert session.current().cache.entries() == []


def test_the_sweep_suggestion_follows_its_slider_until_edited(ip):
    panel = creative_magics.panel()
    panel.sweep_name.value = "guidance"
    panel.controls["paint"]["guidance"].value = 4.0
    assert panel.sweep_values.value == "2, 4, 6"
    panel.sweep_values.value = "1, 9"
    panel.controls["paint"]["guidance"].value = 8.0
    assert panel.sweep_values.value == "1, 9"
