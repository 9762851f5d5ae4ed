"""A tiny CLIP (transformers' CLIPModel, 8 wide, one layer each side) whose weights are set by hand, not
random: an image embeds as the layer-normed mean colour of its pixels, a text as the layer-normed sum of
its colour words (red, green, blue, ... in RGB). So in tests a red square ranks first for "red", and the
ranking code is checked against known answers while loading through the real CLIPModel and processor.

How: every attention is uniform (zero queries and keys) with identity values and outputs, the MLPs add
nothing (zero second layer), so the image's first token and the text's end token take the mean of the
(layer-normed) tokens; the patch embedding averages each colour channel; colour words embed as RGB.
"""

WIDTH = 8
IMAGE_SIZE = 32
PATCH = 16
# words and the colour they embed as, in the real CLIP vocabulary bundled for the tiny Stable Diffusion
COLOURS = {
    "red": (1, 0, 0), "green": (0, 1, 0), "blue": (0, 0, 1), "yellow": (1, 1, 0), "cyan": (0, 1, 1),
    "magenta": (1, 0, 1), "white": (1, 1, 1), "black": (0, 0, 0), "orange": (1, 0.5, 0), "purple": (0.5, 0, 0.5),
}


def _plain_layer(layer):
    """Uniform attention that adds the mean of the tokens; an MLP that adds nothing."""
    import torch

    attention = layer.self_attn
    for projection in (attention.q_proj, attention.k_proj):
        projection.weight.zero_()
        projection.bias.zero_()
    for projection in (attention.v_proj, attention.out_proj):
        projection.weight.copy_(torch.eye(WIDTH))
        projection.bias.zero_()
    layer.mlp.fc2.weight.zero_()
    layer.mlp.fc2.bias.zero_()


def build(dest):
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    from .diffusion import _tokenizer

    tokenizer = _tokenizer()
    shared = dict(hidden_size=WIDTH, intermediate_size=16, num_hidden_layers=1, num_attention_heads=1, projection_dim=WIDTH)
    config = CLIPConfig(
        text_config=dict(shared, vocab_size=len(tokenizer), max_position_embeddings=77, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id),
        vision_config=dict(shared, image_size=IMAGE_SIZE, patch_size=PATCH, num_channels=3),
        projection_dim=WIDTH,
    )
    torch.manual_seed(0)
    model = CLIPModel(config).eval()
    with torch.no_grad():
        vision, text = model.vision_model, model.text_model
        vision.embeddings.class_embedding.zero_()
        vision.embeddings.position_embedding.weight.zero_()
        patch = vision.embeddings.patch_embedding.weight  # (WIDTH, 3, PATCH, PATCH): channel c -> its mean
        patch.zero_()
        for channel in range(3):
            patch[channel, channel] = 1.0 / (PATCH * PATCH)
        for layer in list(vision.encoder.layers) + list(text.encoder.layers):
            _plain_layer(layer)
        text.embeddings.position_embedding.weight.zero_()
        words = text.embeddings.token_embedding.weight
        words.zero_()
        vocab = tokenizer.get_vocab()
        for word, rgb in COLOURS.items():
            if f"{word}</w>" not in vocab:  # one token each, or the word is left out (it would land on the unknown token)
                continue
            words[vocab[f"{word}</w>"], :3] = torch.tensor(rgb, dtype=words.dtype) * 4
        for projection in (model.visual_projection, model.text_projection):
            projection.weight.copy_(torch.eye(WIDTH))
    model.save_pretrained(dest, safe_serialization=True)
    images = CLIPImageProcessor(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, image_mean=[0, 0, 0], image_std=[1, 1, 1],
    )
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(dest)
