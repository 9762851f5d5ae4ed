"""A tiny Llama model as a GGUF file, written with the gguf package's writer (random weights, the tiny chat
model's tokenizer): what `-m FILE.gguf` reads, in well under a second. F32 and Q8_0 tensors both, so the
file is quantized like the GGUF files people bring from LM Studio and Ollama."""

import json

WIDTH, FFN, HEADS, KV_HEADS, CONTEXT = 32, 64, 2, 1, 256


def write_tiny_gguf(path, seed=0):
    import gguf
    import numpy as np

    from creative_magics import tiny
    from creative_magics.tiny.text import CHAT_TEMPLATE

    folder = tiny.ensure("tiny-chat")
    spec = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = spec["model"]["vocab"]
    for added in spec.get("added_tokens", []):
        vocab.setdefault(added["content"], added["id"])
    tokens = [token for token, _ in sorted(vocab.items(), key=lambda item: item[1])]
    special = {added["content"] for added in spec.get("added_tokens", [])}
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-llama")
    writer.add_block_count(1)
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(WIDTH)
    writer.add_feed_forward_length(FFN)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_freq_base(10000.0)
    writer.add_vocab_size(len(tokens))
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types([gguf.TokenType.CONTROL if t in special else gguf.TokenType.NORMAL for t in tokens])
    writer.add_token_merges(merges)
    writer.add_bos_token_id(vocab["<|endoftext|>"])
    writer.add_eos_token_id(vocab["<|im_end|>"])
    writer.add_pad_token_id(vocab["<|endoftext|>"])
    writer.add_chat_template(CHAT_TEMPLATE)

    rng = np.random.default_rng(seed)
    head = WIDTH // HEADS

    def weight(*shape):
        return (rng.standard_normal(shape) * 0.1).astype(np.float32)

    def q8(array):  # quantized as GGUF files usually are
        return gguf.quants.quantize(array, gguf.GGMLQuantizationType.Q8_0), gguf.GGMLQuantizationType.Q8_0

    tensors = {
        "token_embd.weight": (weight(len(tokens), WIDTH), None),
        "output_norm.weight": (np.ones(WIDTH, np.float32), None),
        "blk.0.attn_norm.weight": (np.ones(WIDTH, np.float32), None),
        "blk.0.attn_q.weight": q8(weight(WIDTH, WIDTH)),
        "blk.0.attn_k.weight": q8(weight(KV_HEADS * head, WIDTH)),
        "blk.0.attn_v.weight": q8(weight(KV_HEADS * head, WIDTH)),
        "blk.0.attn_output.weight": q8(weight(WIDTH, WIDTH)),
        "blk.0.ffn_norm.weight": (np.ones(WIDTH, np.float32), None),
        "blk.0.ffn_gate.weight": q8(weight(FFN, WIDTH)),
        "blk.0.ffn_up.weight": q8(weight(FFN, WIDTH)),
        "blk.0.ffn_down.weight": q8(weight(WIDTH, FFN)),
    }
    for name, (data, qtype) in tensors.items():
        if qtype is None:
            writer.add_tensor(name, data)
        else:
            writer.add_tensor(name, data, raw_shape=data.shape, raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
