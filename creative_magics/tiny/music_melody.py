"""A MusicGen-melody-shaped model with random weights: the tiny MusicGen's text encoder, codec and
tokenizer (see tiny/music.py) with a melody decoder that also reads a 12-bin chroma of a melody, saved in
the layout of facebook/musicgen-melody (its preprocessor_config.json is written by hand, because
transformers' melody feature extractor cannot be built without torchaudio)."""

import json
import os

from . import music

NUM_CHROMA = 12
CHROMA_LENGTH = 235  # chroma frames of 30 s at 32 kHz with a hop of 4096 samples, as musicgen-melody

# What facebook/musicgen-melody's preprocessor_config.json holds.
FEATURE_EXTRACTOR = {
    "chunk_length": 30,
    "feature_extractor_type": "MusicgenMelodyFeatureExtractor",
    "feature_size": NUM_CHROMA,
    "hop_length": 4096,
    "n_fft": 16384,
    "num_chroma": NUM_CHROMA,
    "padding_side": "left",
    "padding_value": 0.0,
    "processor_class": "MusicgenMelodyProcessor",
    "return_attention_mask": False,
    "sampling_rate": music.SAMPLING_RATE,
    "stem_indices": [3, 2],
}


def _config(vocab_size):
    from transformers import MusicgenMelodyConfig, MusicgenMelodyDecoderConfig

    plain = music._config(vocab_size)
    decoder = MusicgenMelodyDecoderConfig(**{k: v for k, v in plain.decoder.to_dict().items() if k in _DECODER_KEYS})
    return MusicgenMelodyConfig(
        text_encoder=plain.text_encoder,
        audio_encoder=plain.audio_encoder,
        decoder=decoder,
        num_chroma=NUM_CHROMA,
        chroma_length=CHROMA_LENGTH,
    )


_DECODER_KEYS = (
    "vocab_size",
    "num_codebooks",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "ffn_dim",
    "pad_token_id",
    "bos_token_id",
    "max_position_embeddings",
)


def build(dest):
    import torch
    from transformers import GenerationConfig, MusicgenMelodyForConditionalGeneration

    tokenizer = music._tokenizer()
    config = _config(len(tokenizer))
    torch.manual_seed(0)
    model = MusicgenMelodyForConditionalGeneration(config).eval()
    music.random_codebooks(model)
    with torch.no_grad():  # through the default 0.02 init text and chroma weigh little; make them audible
        model.enc_to_dec_proj.weight.normal_(0.0, 5.0)
        model.audio_enc_to_dec_proj.weight.normal_(0.0, 5.0)
    model.generation_config = GenerationConfig(
        bos_token_id=music.CODEBOOK_SIZE,
        decoder_start_token_id=music.CODEBOOK_SIZE,
        pad_token_id=music.CODEBOOK_SIZE,
        do_sample=True,
        guidance_scale=3.0,
        max_new_tokens=music.SECONDS * config.audio_encoder.frame_rate,
    )
    model.save_pretrained(dest, safe_serialization=True)
    tokenizer.save_pretrained(dest)
    with open(os.path.join(dest, "preprocessor_config.json"), "w", encoding="utf-8") as f:
        json.dump(FEATURE_EXTRACTOR, f, indent=2, sort_keys=True)
        f.write("\n")
