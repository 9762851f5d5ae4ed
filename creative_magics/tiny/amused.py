"""An aMUSEd-shaped pipeline (VQGAN tokens, MUSE-style) with random weights: a VQ model with an 8x
downscale (64x64 images are 8x8 tokens), a one-layer UVit2D transformer, a 32-wide CLIP text encoder
with projection, the real CLIP tokenizer (bundled with the tiny SD), and aMUSEd's scheduler. Shrunk
from diffusers' own aMUSEd test components; saved with save_pretrained like the hub's amused-256."""


def build(dest):
    import torch
    from diffusers import AmusedPipeline, AmusedScheduler, UVit2DModel, VQModel
    from diffusers.utils import logging as diffusers_logging
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    from .diffusion import _tokenizer

    torch.manual_seed(0)
    transformer = UVit2DModel(
        hidden_size=32, use_bias=False, hidden_dropout=0.0, cond_embed_dim=32, micro_cond_encode_dim=2,
        micro_cond_embed_dim=10, encoder_hidden_size=32, vocab_size=32, codebook_size=8, in_channels=16,
        block_out_channels=32, num_res_blocks=1, downsample=True, upsample=True, block_num_heads=2,
        num_hidden_layers=1, num_attention_heads=2, attention_dropout=0.0, intermediate_size=37,
        layer_norm_eps=1e-6, ln_elementwise_affine=True, sample_size=8,
    )
    torch.manual_seed(1)
    vqvae = VQModel(
        act_fn="silu", block_out_channels=[8, 8, 8, 8], down_block_types=["DownEncoderBlock2D"] * 4, in_channels=3,
        latent_channels=8, layers_per_block=1, norm_num_groups=8, num_vq_embeddings=8, out_channels=3, sample_size=64,
        up_block_types=["UpDecoderBlock2D"] * 4, mid_block_add_attention=False, lookup_from_codebook=True,
    )
    torch.manual_seed(2)
    text_encoder = CLIPTextModelWithProjection(
        CLIPTextConfig(
            bos_token_id=49406, eos_token_id=49407, pad_token_id=49407, hidden_size=32, intermediate_size=37,
            num_attention_heads=4, num_hidden_layers=2, vocab_size=49408, projection_dim=32, max_position_embeddings=77,
        )
    )
    verbosity = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()  # aMUSEd's pipelines are marked deprecated in diffusers and say so
    try:
        pipe = AmusedPipeline(
            vqvae=vqvae.eval(), tokenizer=_tokenizer(), text_encoder=text_encoder.eval(), transformer=transformer.eval(),
            scheduler=AmusedScheduler(mask_token_id=31),
        )
    finally:
        diffusers_logging.set_verbosity(verbosity)
    pipe.save_pretrained(dest, safe_serialization=True)
