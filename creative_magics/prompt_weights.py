"""Prompts as the AUTOMATIC1111 web UI reads them: `(word:1.3)`, `(word)` (x1.1), `[word]` (/1.1), `\\(` for a
literal bracket, and prompts longer than CLIP's 77 tokens. The embeddings are made by compel (its
weighting and its chunking of long prompts, each chunk of 77 with its own start and end tokens); here is
only the reading of A1111's syntax into (text, weight) fragments, which compel's own syntax differs from.

A prompt without weights that fits in 77 tokens goes to the pipeline as text, as before: the pipeline's
own encoding, bit for bit. Nothing is ever cut off silently.
"""

import re

from .errors import CreativeError

ROUND = 1.1  # what (word) multiplies by, as in A1111
SQUARE = 1 / 1.1  # what [word] multiplies by

# One piece of A1111's attention syntax: an escape, an opening bracket, a weight closing a round bracket,
# a closing bracket, plain text, or a lone colon.
_PIECE = re.compile(r"\\[()\[\]\\]|\\|\(|\[|:\s*([+-]?(?:\d+\.?\d*|\.\d+))\s*\)|\)|\]|[^\\()\[\]:]+|:")
# A1111's prompt editing [from:to:when] and alternation [a|b]: features of its sampler, not of the text.
_EDITING = re.compile(r"(?<!\\)\[[^\[\]]*(?<!\\)[:|][^\[\]]*(?<!\\)\]")


def fragments(text):
    """[(text, weight)] of a prompt in A1111's syntax, runs of the same weight merged."""
    if _EDITING.search(text):
        raise CreativeError(
            "A1111's prompt editing [from:to:when] and alternation [a|b] are not supported here; "
            "weights like (word:1.3), (word) and [word] are"
        )
    out = []  # [text, weight] pairs
    rounds, squares = [], []  # where each open bracket's range starts in `out`

    def scale(start, factor):
        for piece in out[start:]:
            piece[1] *= factor

    for match in _PIECE.finditer(text):
        piece, weight = match.group(0), match.group(1)
        if piece.startswith("\\") and len(piece) == 2:
            out.append([piece[1], 1.0])
        elif piece == "(":
            rounds.append(len(out))
        elif piece == "[":
            squares.append(len(out))
        elif weight is not None and rounds:
            scale(rounds.pop(), float(weight))
        elif piece == ")" and rounds:
            scale(rounds.pop(), ROUND)
        elif piece == "]" and squares:
            scale(squares.pop(), SQUARE)
        else:
            out.append([piece, 1.0])
    for start in rounds:  # brackets left open apply to the rest, as in A1111
        scale(start, ROUND)
    for start in squares:
        scale(start, SQUARE)
    merged = []
    for piece, weight in out:
        if merged and merged[-1][1] == weight:
            merged[-1][0] += piece
        else:
            merged.append([piece, weight])
    return [(piece, weight) for piece, weight in merged] or [("", 1.0)]


def plain(text):
    """The prompt's text without its weighting syntax (what the recipe's readers see as words)."""
    return "".join(piece for piece, _ in fragments(text))


def is_weighted(pieces):
    return any(weight != 1.0 for _, weight in pieces)


# -- reading a prompt for a pipeline ------------------------------------------------------------------


def kind_of(pipe):
    """"sdxl" or "sd" for the pipelines compel encodes for (Stable Diffusion's CLIP text encoders: SDXL's two, or
    SD 1.x/2.x's one), else None (another model family, aMUSEd say, reads its prompt its own way)."""
    first = type(getattr(pipe, "text_encoder", None)).__name__
    second = type(getattr(pipe, "text_encoder_2", None)).__name__
    tokenizers = getattr(pipe, "tokenizer", None) is not None
    if first == "CLIPTextModel" and second == "CLIPTextModelWithProjection" and tokenizers and getattr(pipe, "tokenizer_2", None) is not None:
        return "sdxl"
    if first == "CLIPTextModel" and getattr(pipe, "text_encoder_2", None) is None and tokenizers:
        return "sd"
    return None


def token_count(tokenizer, text):
    """How many tokens `text` is, with the start and end tokens."""
    return len(tokenizer(text, truncation=False, add_special_tokens=True).input_ids)


def needs_embeddings(pipe, prompt, negative):
    """(prompt pieces, negative pieces) when the prompts need compel (weights, or more than the tokenizer
    reads at once); None when plain text does. One line for what no reader of this pipeline can take."""
    pieces = fragments(prompt)
    negative_pieces = fragments(negative or "")
    kind = kind_of(pipe)
    tokenizer = getattr(pipe, "tokenizer", None)
    limit = getattr(tokenizer, "model_max_length", None) or 77
    plain_texts = ["".join(p for p, _ in pieces), "".join(p for p, _ in negative_pieces)]
    too_long = tokenizer is not None and limit < 10**6 and any(token_count(tokenizer, t) > limit for t in plain_texts)
    weighted = is_weighted(pieces) or is_weighted(negative_pieces)
    if kind is None:
        if weighted:
            raise CreativeError("this model reads no prompt weights: write the prompt without (word:1.3), (word) or [word]")
        if too_long:
            raise CreativeError(f"the prompt is longer than the {limit} tokens this model reads: shorten it")
        return None
    escaped = plain_texts[0] != prompt or plain_texts[1] != (negative or "")
    if not (weighted or too_long or escaped):
        return None
    return pieces, negative_pieces


def embeddings(pipe, pieces, negative_pieces, kind=None):
    """The pipeline keyword arguments (prompt_embeds, negative_prompt_embeds, and SDXL's pooled ones) that
    compel makes for weighted pieces; positive and negative are padded to the same length."""
    import torch

    from compel import Compel, ReturnedEmbeddingsType

    kind = kind or kind_of(pipe)
    texts, weights = [p for p, _ in pieces], [w for _, w in pieces]
    negative_texts, negative_weights = [p for p, _ in negative_pieces], [w for _, w in negative_pieces]

    def encode(compel):
        provider = compel.conditioning_provider
        positive = provider.get_embeddings_for_weighted_prompt_fragments([texts], [weights], device=compel.device)
        negative = provider.get_embeddings_for_weighted_prompt_fragments([negative_texts], [negative_weights], device=compel.device)
        return positive, negative

    with torch.no_grad():
        if kind == "sd":
            compel = Compel(tokenizer=pipe.tokenizer, text_encoder=pipe.text_encoder, truncate_long_prompts=False)
            positive, negative = compel.pad_conditioning_tensors_to_same_length(list(encode(compel)))
            return {"prompt_embeds": positive, "negative_prompt_embeds": negative}
        # SDXL: both encoders' penultimate hidden states side by side, and the second one's pooled output
        common = dict(truncate_long_prompts=False, returned_embeddings_type=ReturnedEmbeddingsType.PENULTIMATE_HIDDEN_STATES_NON_NORMALIZED)
        first = Compel(tokenizer=pipe.tokenizer, text_encoder=pipe.text_encoder, **common)
        second = Compel(tokenizer=pipe.tokenizer_2, text_encoder=pipe.text_encoder_2, requires_pooled=True, **common)
        encoded = [*encode(first), *encode(second)]
        length = max(t.shape[1] for t in encoded)
        encoded = [_padded(compel, t, length) for compel, t in zip((first, first, second, second), encoded)]
        positive = torch.cat([encoded[0], encoded[2]], dim=-1)
        negative = torch.cat([encoded[1], encoded[3]], dim=-1)
        provider = second.conditioning_provider
        pooled = provider.get_pooled_embeddings(["".join(texts)], device=second.device)
        negative_pooled = provider.get_pooled_embeddings(["".join(negative_texts)], device=second.device)
        if not "".join(negative_texts).strip() and getattr(pipe.config, "force_zeros_for_empty_prompt", False):
            negative, negative_pooled = torch.zeros_like(negative), torch.zeros_like(negative_pooled)  # as the pipeline does
        return {
            "prompt_embeds": positive,
            "negative_prompt_embeds": negative,
            "pooled_prompt_embeds": pooled,
            "negative_pooled_prompt_embeds": negative_pooled,
        }


def _padded(compel, tensor, length):
    """`tensor` padded to `length` tokens with the encoder's empty-prompt chunks (compel's own padding)."""
    import torch

    empty = compel.conditioning_provider.empty_z.to(tensor.device, tensor.dtype)
    while tensor.shape[1] < length:
        tensor = torch.cat([tensor, empty.expand(tensor.shape[0], -1, -1)], dim=1)
    return tensor
