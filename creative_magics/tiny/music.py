"""A MusicGen-shaped text-to-music model with random weights: a tiny T5 text encoder, a tiny EnCodec
codec at 32 kHz (50 frames a second, 4 codebooks, as musicgen-small) and a tiny decoder, plus the
usual processor (EnCodec feature extractor + T5 tokenizer trained here on a small bundled text)."""

from importlib import resources

SPECIAL_TOKENS = ["<pad>", "</s>", "<unk>"]  # T5's order: pad 0, eos 1, unk 2
SAMPLING_RATE = 32000
CODEBOOK_SIZE = 64
NUM_CODEBOOKS = 4
SECONDS = 30  # default length of a piece, as musicgen-small's generation config


def _corpus():
    return resources.files("creative_magics").joinpath("data/tiny_corpus.txt").read_text(encoding="utf-8")


def _tokenizer():
    """A T5 (Unigram) tokenizer. tokenizers' Unigram trainer is not deterministic across processes, so the
    pieces come from its BPE trainer (which is) and each piece scores the log of its frequency."""
    import math
    from collections import Counter

    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import T5Tokenizer

    lines = _corpus().splitlines()
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)]
    )
    # All printable ASCII in the alphabet, so that "lo-fi" has no unknown piece.
    alphabet = [chr(c) for c in range(33, 127)]
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIAL_TOKENS, initial_alphabet=alphabet, show_progress=False)
    bpe.train_from_iterator(lines, trainer)
    counts = Counter(token for encoding in bpe.encode_batch(lines) for token in encoding.tokens)
    total = sum(counts.values()) + bpe.get_vocab_size()
    pieces = sorted(bpe.get_vocab().items(), key=lambda item: item[1])
    vocab = [(token, 0.0) for token in SPECIAL_TOKENS]
    vocab += [(token, round(math.log((counts[token] + 1) / total), 6)) for token, _ in pieces if token not in SPECIAL_TOKENS]
    return T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=512)


def _config(vocab_size):
    from transformers import EncodecConfig, MusicgenConfig, MusicgenDecoderConfig, T5Config

    text_encoder = T5Config(vocab_size=vocab_size, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4)
    audio_encoder = EncodecConfig(
        sampling_rate=SAMPLING_RATE,
        upsampling_ratios=[8, 5, 4, 4],  # 640 samples a frame: 50 frames a second
        codebook_size=CODEBOOK_SIZE,
        target_bandwidths=[1.2],  # 1200 bit/s // (50 frames * 6 bits) = 4 quantizers, one per codebook
        hidden_size=16,
        num_filters=4,
        num_lstm_layers=1,
        use_causal_conv=False,
        use_conv_shortcut=False,
    )
    decoder = MusicgenDecoderConfig(
        vocab_size=CODEBOOK_SIZE,
        num_codebooks=NUM_CODEBOOKS,
        hidden_size=64,  # wider than the text encoder, so the encoder-to-decoder projection exists, as in the real ones
        num_hidden_layers=2,
        num_attention_heads=4,
        ffn_dim=128,
        pad_token_id=CODEBOOK_SIZE,
        bos_token_id=CODEBOOK_SIZE,
    )
    return MusicgenConfig(text_encoder=text_encoder, audio_encoder=audio_encoder, decoder=decoder)


def random_codebooks(model):
    """EnCodec's codebooks are buffers that random initialisation leaves at zero, so every code would
    decode to the same sound; random vectors make the audio depend on the codes that were generated."""
    import torch

    with torch.no_grad():
        for layer in model.audio_encoder.quantizer.layers:
            layer.codebook.embed.normal_()
            layer.codebook.embed_avg.copy_(layer.codebook.embed)


def build(dest):
    import torch
    from transformers import EncodecFeatureExtractor, GenerationConfig, MusicgenForConditionalGeneration, MusicgenProcessor

    tokenizer = _tokenizer()
    config = _config(len(tokenizer))
    torch.manual_seed(0)
    model = MusicgenForConditionalGeneration(config).eval()
    random_codebooks(model)
    with torch.no_grad():  # through the default 0.02 init the text weighs little; make the description audible
        model.enc_to_dec_proj.weight.normal_(0.0, 5.0)
    model.generation_config = GenerationConfig(
        bos_token_id=CODEBOOK_SIZE,
        decoder_start_token_id=CODEBOOK_SIZE,
        pad_token_id=CODEBOOK_SIZE,
        do_sample=True,
        guidance_scale=3.0,
        max_new_tokens=SECONDS * config.audio_encoder.frame_rate,
    )
    model.save_pretrained(dest, safe_serialization=True)
    feature_extractor = EncodecFeatureExtractor(feature_size=1, sampling_rate=SAMPLING_RATE, padding_side="left")
    MusicgenProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer).save_pretrained(dest)
