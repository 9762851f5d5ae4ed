"""The tiny Stable Diffusion and MusicGen builders: they save real layouts that the usual loaders read
back offline, generate quickly, and build byte for byte the same every time."""

import os
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"

import pytest
import torch

from creative_magics.tiny import diffusion, music


def _files(folder):
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in Path(folder).rglob("*") if path.is_file()}


def _build_twice(build, tmp_path_factory):
    first, second = tmp_path_factory.mktemp("first"), tmp_path_factory.mktemp("second")
    build(str(first))
    build(str(second))
    return first, second


@pytest.fixture(scope="module")
def sd_builds(tmp_path_factory):
    return _build_twice(diffusion.build, tmp_path_factory)


@pytest.fixture(scope="module")
def musicgen_builds(tmp_path_factory):
    return _build_twice(music.build, tmp_path_factory)


def test_sd_layout_and_determinism(sd_builds):
    first, second = sd_builds
    files = _files(first)
    for name in [
        "model_index.json",
        "scheduler/scheduler_config.json",
        "tokenizer/tokenizer_config.json",
        "text_encoder/model.safetensors",
        "unet/diffusion_pytorch_model.safetensors",
        "vae/diffusion_pytorch_model.safetensors",
    ]:
        assert name in files
    assert files == _files(second)


def test_sd_loads_and_generates(sd_builds):
    from diffusers import AutoPipelineForImage2Image, AutoPipelineForText2Image, EulerDiscreteScheduler

    pipe = AutoPipelineForText2Image.from_pretrained(sd_builds[0], local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    assert type(pipe).__name__ == "StableDiffusionPipeline"
    assert isinstance(pipe.scheduler, EulerDiscreteScheduler)
    assert pipe.safety_checker is None and pipe.tokenizer.model_max_length == 77
    assert pipe.text_encoder.config.vocab_size == len(pipe.tokenizer) == 49408

    def paint(p, **kwargs):
        return p("a red kite over a green hill", num_inference_steps=2, generator=torch.Generator().manual_seed(0), **kwargs).images[0]

    image = paint(pipe)
    assert image.size == (64, 64)
    assert list(paint(pipe).getdata()) == list(image.getdata())

    img2img = AutoPipelineForImage2Image.from_pipe(pipe)
    img2img.set_progress_bar_config(disable=True)
    assert img2img.unet is pipe.unet
    assert paint(img2img, image=image, strength=0.9).size == (64, 64)


def test_musicgen_layout_and_determinism(musicgen_builds):
    first, second = musicgen_builds
    files = _files(first)
    for name in ["config.json", "generation_config.json", "model.safetensors", "processor_config.json", "tokenizer.json"]:
        assert name in files
    assert files == _files(second)


def test_musicgen_loads_and_generates(musicgen_builds):
    from transformers import AutoProcessor, MusicgenForConditionalGeneration

    processor = AutoProcessor.from_pretrained(musicgen_builds[0], local_files_only=True)
    model = MusicgenForConditionalGeneration.from_pretrained(musicgen_builds[0], local_files_only=True)
    assert type(processor).__name__ == "MusicgenProcessor"
    assert type(processor.tokenizer).__name__ == "T5Tokenizer"
    assert model.config.audio_encoder.num_quantizers >= model.config.decoder.num_codebooks
    assert model.config.sampling_rate == 32000 and model.config.audio_encoder.frame_rate == 50
    assert model.generation_config.do_sample and model.generation_config.guidance_scale == 3.0
    assert model.generation_config.max_new_tokens == 30 * 50

    inputs = processor(text=["lo-fi piano"], padding=True, return_tensors="pt")
    assert processor.tokenizer.unk_token_id not in inputs["input_ids"][0].tolist()

    def play():
        torch.manual_seed(0)
        return model.generate(**inputs, max_new_tokens=16, do_sample=True)

    audio = play()
    assert audio.shape[:2] == (1, 1) and audio.shape[-1] > 0
    assert torch.isfinite(audio).all()
    assert torch.equal(audio, play())


# -- %%paint's canvas features: SDXL, inpainting, ControlNets and LoRAs in their real layouts ------------------

PAINT_BUILDS = {
    "sdxl": (diffusion.build_xl, "StableDiffusionXLPipeline"),
    "sd-inpaint": (diffusion.build_inpaint, "StableDiffusionInpaintPipeline"),
    "sdxl-inpaint": (diffusion.build_xl_inpaint, "StableDiffusionXLInpaintPipeline"),
    "controlnet": (diffusion.build_controlnet, "ControlNetModel"),
    "controlnet-sdxl": (lambda dest: diffusion.build_controlnet(dest, xl=True), "ControlNetModel"),
    "lora": (diffusion.build_lora, None),
    "lora-sdxl": (lambda dest: diffusion.build_lora(dest, xl=True), None),
}


@pytest.mark.parametrize("name", list(PAINT_BUILDS))
def test_paint_builds_have_real_layouts_and_are_deterministic(name, tmp_path_factory):
    import json

    build, class_name = PAINT_BUILDS[name]
    first, second = _build_twice(build, tmp_path_factory)
    files = _files(first)
    assert files == _files(second)
    if name.startswith("lora"):
        from safetensors.torch import load_file

        keys = load_file(os.path.join(first, "pytorch_lora_weights.safetensors"))
        prefixes = {key.split(".")[0] for key in keys}
        assert prefixes == ({"unet", "text_encoder", "text_encoder_2"} if name.endswith("sdxl") else {"unet", "text_encoder"})
        assert all(".lora_A." in key or ".lora_B." in key for key in keys)  # diffusers' own key names
        return
    config = json.loads(files["model_index.json" if "Pipeline" in class_name else "config.json"])
    assert config["_class_name"] == class_name
    if name.endswith("inpaint"):
        assert json.loads(files["unet/config.json"])["in_channels"] == 9  # the image and the mask beside the latents
    if name == "controlnet-sdxl":
        assert config["addition_embed_type"] == "text_time" and config["cross_attention_dim"] == 64


def test_a_controlnet_copies_the_unets_encoder(tmp_path):
    from diffusers import ControlNetModel, StableDiffusionPipeline

    diffusion.build(str(tmp_path / "sd"))
    diffusion.build_controlnet(str(tmp_path / "cn"))
    unet = StableDiffusionPipeline.from_pretrained(str(tmp_path / "sd"), local_files_only=True).unet
    controlnet = ControlNetModel.from_pretrained(str(tmp_path / "cn"))
    assert torch.equal(controlnet.conv_in.weight, unet.conv_in.weight)  # ControlNetModel.from_unet
    assert controlnet.controlnet_down_blocks[0].weight.abs().sum() > 0  # its zero convolutions made non-zero
