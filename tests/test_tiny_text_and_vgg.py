"""The tiny GPT-2 (base and chat) and the narrow VGG19: real layouts, deterministic builds."""

from pathlib import Path

import torch

from creative_magics.tiny import text, vgg


def _files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in Path(folder).rglob("*") if p.is_file()}


def test_tiny_text_builds_are_byte_identical(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    text.build_chat(str(tmp_path / "a"))
    text.build_chat(str(tmp_path / "b"))
    assert _files(tmp_path / "a") == _files(tmp_path / "b")


def test_tiny_chat_has_a_chat_template_and_base_has_none(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    (tmp_path / "chat").mkdir()
    (tmp_path / "base").mkdir()
    text.build_chat(str(tmp_path / "chat"))
    text.build_base(str(tmp_path / "base"))
    chat = AutoTokenizer.from_pretrained(tmp_path / "chat", local_files_only=True)
    base = AutoTokenizer.from_pretrained(tmp_path / "base", local_files_only=True)
    assert chat.chat_template and not getattr(base, "chat_template", None)
    rendered = chat.apply_chat_template([{"role": "user", "content": "a haiku"}], add_generation_prompt=True, tokenize=False)
    assert rendered == "<|im_start|>user\na haiku<|im_end|>\n<|im_start|>assistant\n"
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "base", local_files_only=True)
    assert model.config.model_type == "gpt2" and model.config.n_layer == 2 and model.config.n_embd == 32


def test_tiny_vgg_uses_torchvision_names_and_loads_back(tmp_path):
    from creative_magics.loaders import load_vgg
    from creative_magics.nets.vgg import LAYER_INDEX

    vgg.build(str(tmp_path))
    net = load_vgg(str(tmp_path), torch.float32, None)
    assert LAYER_INDEX["conv4_2"] == 21 and LAYER_INDEX["conv5_1"] == 28
    keys = set(net.features.state_dict())
    assert "0.weight" in keys and "34.weight" in keys and len(keys) == 32  # 16 convs
    out = net(torch.rand(1, 3, 32, 32), ["conv1_1", "conv4_2"])
    assert out["conv1_1"].shape == (1, 4, 32, 32) and out["conv4_2"].shape == (1, 16, 4, 4)
