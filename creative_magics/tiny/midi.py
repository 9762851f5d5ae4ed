"""An Anticipatory-Music-Transformer-shaped model with random weights: a GPT-2 (2 layers, 32 wide) over
the same 55,028-token event vocabulary and the same 1,024 positions as stanford-crfm/music-small-800k,
whose flag and separator tokens (AUTOREGRESS, ANTICIPATE, SEPARATOR) are the last three ids. The
released models ship no tokenizer (their tokens are event numbers), and neither does this one."""

from ..midi import CONTEXT, VOCAB_SIZE


def build(dest, context=CONTEXT):
    """Save the tiny model in `dest`; `context` positions (tests build a shorter one to see windows turn)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    # bos/eos stay GPT-2's (50256), as a Levanter export leaves them; generation never stops on them,
    # since 50256 is an anticipated-control token that the sampling rules forbid.
    config = GPT2Config(vocab_size=VOCAB_SIZE, n_positions=context, n_embd=32, n_layer=2, n_head=2)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config).eval()
    model.save_pretrained(dest, safe_serialization=True)
