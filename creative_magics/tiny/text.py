"""A GPT-2-shaped causal LM (2 layers, 32 wide) with a byte-level BPE tokenizer trained here on a
small bundled text. `tiny-gpt2` is a base model; `tiny-chat` adds a ChatML template, as instruct models have."""

from importlib import resources

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CONTEXT = 256


def _corpus():
    return resources.files("creative_magics").joinpath("data/tiny_corpus.txt").read_text(encoding="utf-8")


def _tokenizer(chat):
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(_corpus().splitlines(), vocab_size=600, min_frequency=2, special_tokens=SPECIAL_TOKENS, show_progress=False)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<|endoftext|>",
        eos_token="<|im_end|>" if chat else "<|endoftext|>",
        unk_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        model_max_length=CONTEXT,
    )
    if chat:
        tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _unprintable(tokenizer):
    """Byte tokens that alone decode to control characters or broken UTF-8. The tiny model's
    generation_config suppresses them, so its (random) text stays printable."""
    import unicodedata

    out = []
    for index in range(len(tokenizer)):
        text = tokenizer.decode([index])
        if "\ufffd" in text or any(unicodedata.category(ch) == "Cc" and ch != "\n" for ch in text):
            out.append(index)
    return out


def _build(dest, chat):
    import torch
    from transformers import GenerationConfig, GPT2Config, GPT2LMHeadModel

    tokenizer = _tokenizer(chat)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=CONTEXT,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config).eval()
    if chat:
        # Instruct models usually ship sampling defaults; ours do too, so the defaults merge is exercised.
        model.generation_config = GenerationConfig(
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=[tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.convert_tokens_to_ids("<|endoftext|>")],
            pad_token_id=tokenizer.pad_token_id,
            do_sample=True,
            temperature=0.7,
            top_p=0.9,
            suppress_tokens=_unprintable(tokenizer),
        )
    else:
        model.generation_config = GenerationConfig(
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            suppress_tokens=_unprintable(tokenizer),
        )
    model.save_pretrained(dest, safe_serialization=True)
    tokenizer.save_pretrained(dest)


def build_base(dest):
    _build(dest, chat=False)


def build_chat(dest):
    _build(dest, chat=True)
