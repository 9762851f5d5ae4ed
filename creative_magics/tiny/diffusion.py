"""Stable Diffusion-shaped pipelines with random weights: the real SD 1.5 and SDXL configs shrunk (UNet and
VAE 32-64 wide, CLIP text encoders 32 wide with 2 layers), the real CLIP tokenizer, 64x64 images. The
config and tokenizer files are bundled in creative_magics/data/sd15/ and data/sdxl/ (SDXL's tokenizers
share SD 1.5's vocabulary; its second one pads with "!").

Beside them, what %%paint's canvas features need, built from the same weights: inpainting UNets (9 input
channels), ControlNets made with `ControlNetModel.from_unet`, and LoRAs saved in diffusers' format."""

import json
from importlib import resources

DATA = "data/sd15"
DATA_XL = "data/sdxl"


def _config(name, data=DATA):
    text = resources.files("creative_magics").joinpath(f"{data}/{name}").read_text(encoding="utf-8")
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


def _tokenizer(**overrides):
    from transformers import CLIPTokenizer

    with resources.as_file(resources.files("creative_magics").joinpath(f"{DATA}/tokenizer")) as folder:
        return CLIPTokenizer.from_pretrained(folder, **overrides)


def _unet(in_channels=4):
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
        in_channels=in_channels,
    )
    return UNet2DConditionModel(**config)


def _unet_xl(in_channels=4):
    """SDXL's UNet shrunk: its block types, the text-and-time embedding of its micro-conditioning."""
    from diffusers import UNet2DConditionModel

    config = _config("unet/config.json", DATA_XL)
    time_dim = 8
    config.update(
        block_out_channels=(32, 64),
        down_block_types=tuple(config["down_block_types"][:2]),
        up_block_types=tuple(config["up_block_types"][1:]),
        layers_per_block=1,
        transformer_layers_per_block=(1, 1),
        attention_head_dim=(2, 4),
        cross_attention_dim=64,  # the two text encoders' 32 + 32
        addition_time_embed_dim=time_dim,
        projection_class_embeddings_input_dim=6 * time_dim + 32,  # six size numbers + the pooled text (32)
        sample_size=8,
        in_channels=in_channels,
    )
    return UNet2DConditionModel(**config)


def _vae(data=DATA):
    from diffusers import AutoencoderKL

    config = _config("vae/config.json", data)
    # Four blocks, as in SD 1.5, keep the VAE's 8x downscale: 8x8 latents make 64x64 images.
    config.update(block_out_channels=(32, 32, 64, 64), layers_per_block=1, sample_size=64)
    return AutoencoderKL(**config)


def _text_config(name, data=DATA):
    from transformers import CLIPTextConfig

    config = _config(name, data)
    for key in ("architectures", "torch_dtype", "transformers_version"):
        config.pop(key, None)
    config.update(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4, projection_dim=32)
    return CLIPTextConfig(**config)


def _text_encoder():
    from transformers import CLIPTextModel

    return CLIPTextModel(_text_config("text_encoder/config.json"))


def _parts(in_channels=4):
    """The SD 1.5 pipeline's components, seeded so every build (and every model built from it) is the same."""
    import torch
    from diffusers import EulerDiscreteScheduler

    # SD 1.5's PNDM scheduler fails below 4 steps; Euler, from the same config, runs in 1-2 steps.
    scheduler = EulerDiscreteScheduler.from_config(_config("scheduler/scheduler_config.json"))
    torch.manual_seed(0)
    unet = _unet(in_channels)
    torch.manual_seed(1)
    vae = _vae()
    torch.manual_seed(2)
    text_encoder = _text_encoder()
    return dict(vae=vae.eval(), text_encoder=text_encoder.eval(), tokenizer=_tokenizer(), unet=unet.eval(), scheduler=scheduler)


def _parts_xl(in_channels=4):
    import torch
    from diffusers import EulerDiscreteScheduler
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    scheduler = EulerDiscreteScheduler.from_config(_config("scheduler/scheduler_config.json", DATA_XL))
    torch.manual_seed(0)
    unet = _unet_xl(in_channels)
    torch.manual_seed(1)
    vae = _vae(DATA_XL)
    torch.manual_seed(2)
    text_encoder = CLIPTextModel(_text_config("text_encoder/config.json", DATA_XL))
    torch.manual_seed(3)
    text_encoder_2 = CLIPTextModelWithProjection(_text_config("text_encoder_2/config.json", DATA_XL))
    return dict(
        vae=vae.eval(),
        text_encoder=text_encoder.eval(),
        text_encoder_2=text_encoder_2.eval(),
        tokenizer=_tokenizer(),
        tokenizer_2=_tokenizer(pad_token="!"),  # SDXL's second tokenizer (OpenCLIP's) pads with "!"
        unet=unet.eval(),
        scheduler=scheduler,
    )


def build(dest):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline(**_parts(), safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(dest, safe_serialization=True)


def build_inpaint(dest):
    """SD 1.5 inpainting's layout: a UNet that also reads the masked image and the mask (9 input channels)."""
    from diffusers import StableDiffusionInpaintPipeline

    pipe = StableDiffusionInpaintPipeline(**_parts(in_channels=9), safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(dest, safe_serialization=True)


def build_xl(dest):
    from diffusers import StableDiffusionXLPipeline

    StableDiffusionXLPipeline(**_parts_xl(), add_watermarker=False).save_pretrained(dest, safe_serialization=True)


def build_xl_inpaint(dest):
    from diffusers import StableDiffusionXLInpaintPipeline

    StableDiffusionXLInpaintPipeline(**_parts_xl(in_channels=9), add_watermarker=False).save_pretrained(dest, safe_serialization=True)


def build_controlnet(dest, xl=False):
    """A ControlNet as its authors made theirs: the base UNet's encoder copied (`ControlNetModel.from_unet`),
    here with its zero convolutions given small random weights, so the control image changes the picture."""
    import torch
    from diffusers import ControlNetModel

    unet = (_parts_xl() if xl else _parts())["unet"]
    controlnet = ControlNetModel.from_unet(unet)
    torch.manual_seed(4)
    with torch.no_grad():
        for block in [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block, controlnet.controlnet_cond_embedding.conv_out]:
            block.weight.normal_(0.0, 0.2)
    controlnet.save_pretrained(dest, safe_serialization=True)


def build_lora(dest, xl=False):
    """A LoRA in diffusers' format (what `save_lora_weights` writes, and LoRAs on the hub hold): rank 4 on
    the UNet's attention and on the text encoder(s), with random weights so it changes the picture."""
    import torch
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
    from peft import LoraConfig, inject_adapter_in_model

    parts = _parts_xl() if xl else _parts()
    torch.manual_seed(5)
    unet = LoraConfig(r=4, lora_alpha=4, init_lora_weights=False, target_modules=["to_q", "to_k", "to_v", "to_out.0"])
    text = LoraConfig(r=4, lora_alpha=4, init_lora_weights=False, target_modules=["q_proj", "k_proj", "v_proj", "out_proj"])
    layers = {}
    for name in ("unet", "text_encoder", "text_encoder_2") if xl else ("unet", "text_encoder"):
        model = inject_adapter_in_model(unet if name == "unet" else text, parts[name], adapter_name="default")
        # peft's names (`...to_q.lora_A.default.weight`) without the adapter's: the layout diffusers saves and loads;
        # the text encoders' under `text_model.`, as the LoRAs people publish have them (made with transformers 4)
        prefix = "" if name == "unet" else "text_model."
        layers[f"{name}_lora_layers"] = {
            prefix + key.replace(".default.", "."): value for key, value in model.state_dict().items() if ".lora_" in key
        }
    pipeline = StableDiffusionXLPipeline if xl else StableDiffusionPipeline
    pipeline.save_lora_weights(dest, safe_serialization=True, **layers)
