"""A Stable Diffusion 1.5-shaped pipeline with random weights: the real SD 1.5 configs shrunk (UNet and
VAE 32-64 wide, CLIP text encoder 32 wide with 2 layers), the real CLIP tokenizer, 64x64 images.
The config and tokenizer files are bundled in creative_magics/data/sd15/."""

import json
from importlib import resources

DATA = "data/sd15"


def _config(name):
    text = resources.files("creative_magics").joinpath(f"{DATA}/{name}").read_text(encoding="utf-8")
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


def _tokenizer():
    from transformers import CLIPTokenizer

    with resources.as_file(resources.files("creative_magics").joinpath(f"{DATA}/tokenizer")) as folder:
        return CLIPTokenizer.from_pretrained(folder)


def _unet():
    from diffusers import UNet2DConditionModel

    config = _config("unet/config.json")
    config.update(
        block_out_channels=(32, 64),
        down_block_types=(config["down_block_types"][0], config["down_block_types"][-1]),
        up_block_types=(config["up_block_types"][0], config["up_block_types"][-1]),
        layers_per_block=1,
        cross_attention_dim=32,
        attention_head_dim=2,
        sample_size=8,
    )
    return UNet2DConditionModel(**config)


def _vae():
    from diffusers import AutoencoderKL

    config = _config("vae/config.json")
    # Four blocks, as in SD 1.5, keep the VAE's 8x downscale: 8x8 latents make 64x64 images.
    config.update(block_out_channels=(32, 32, 64, 64), layers_per_block=1, sample_size=64)
    return AutoencoderKL(**config)


def _text_encoder():
    from transformers import CLIPTextConfig, CLIPTextModel

    config = _config("text_encoder/config.json")
    config.pop("architectures", None)
    config.pop("torch_dtype", None)
    config.pop("transformers_version", None)
    config.update(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4, projection_dim=32)
    return CLIPTextModel(CLIPTextConfig(**config))


def build(dest):
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

    # SD 1.5's PNDM scheduler fails below 4 steps; Euler, from the same config, runs in 1-2 steps.
    scheduler = EulerDiscreteScheduler.from_config(_config("scheduler/scheduler_config.json"))
    torch.manual_seed(0)
    unet = _unet()
    torch.manual_seed(1)
    vae = _vae()
    torch.manual_seed(2)
    text_encoder = _text_encoder()
    pipe = StableDiffusionPipeline(
        vae=vae.eval(),
        text_encoder=text_encoder.eval(),
        tokenizer=_tokenizer(),
        unet=unet.eval(),
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(dest, safe_serialization=True)
