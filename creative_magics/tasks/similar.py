"""%creative similar: images and texts in CLIP's one embedding space, ranked by cosine similarity to a query
(a text or an image). Plain functions over a loaded CLIP (loaders.ClipModel)."""

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")
TEXT_SUFFIXES = (".txt",)


def _features(output):
    """transformers 5 may hand back a model output rather than the bare tensor: take the embeddings."""
    return getattr(output, "pooler_output", None) if not hasattr(output, "norm") else output


def embed_images(clip, images):
    """(N, D) unit vectors of PIL images."""
    import torch

    inputs = clip.processor(images=[image.convert("RGB") for image in images], return_tensors="pt")
    inputs = {name: value.to(clip.model.device) for name, value in inputs.items()}
    with torch.inference_mode():
        vectors = _features(clip.model.get_image_features(**inputs)).float()
    return (vectors / vectors.norm(dim=-1, keepdim=True)).cpu()


def embed_texts(clip, texts):
    """(N, D) unit vectors of texts (cut at CLIP's 77 tokens)."""
    import torch

    tokenizer = clip.processor.tokenizer
    inputs = tokenizer(list(texts), padding=True, truncation=True, max_length=min(77, tokenizer.model_max_length), return_tensors="pt")
    inputs = {name: value.to(clip.model.device) for name, value in inputs.items()}
    with torch.inference_mode():
        vectors = _features(clip.model.get_text_features(**inputs)).float()
    return (vectors / vectors.norm(dim=-1, keepdim=True)).cpu()


def embed(clip, images=(), texts=()):
    """(N, D) unit vectors of an item's images and texts, in that order."""
    import torch

    parts = []
    if images:
        parts.append(embed_images(clip, images))
    if texts:
        parts.append(embed_texts(clip, texts))
    return torch.cat(parts)


def rank(query, candidates, k):
    """[(score, item)] of the `k` best candidates, best first: `candidates` are (item, (N, D) vectors), and an
    item scores as its best vector's cosine similarity to the `query` vector (rounded to 1e-6)."""
    scored = []
    for order, (item, vectors) in enumerate(candidates):
        score = float((vectors @ query.reshape(-1)).max())
        scored.append((round(score, 6), order, item))
    scored.sort(key=lambda row: (-row[0], row[1]))
    return [(score, item) for score, _, item in scored[:k]]
