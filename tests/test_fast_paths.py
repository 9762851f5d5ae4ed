"""W2 9/9 fast paths on the CPU, for wiring (the speed is measured by benchmarks/gpu.py on a GPU):
--compile reaches torch.compile (the "eager" backend, through CREATIVE_MAGICS_COMPILE_BACKEND), the
compiled model is its own cache entry, loaded and compiled once, its outputs stay within a stated
tolerance of the eager path, recipes record the flag and re-run with it; %stylize --precision; and the
combinations that cannot work are one line."""

import numpy as np
import pytest
import torch

import creative_magics
from creative_magics import fast, session
from creative_magics.errors import CreativeError
from helpers import assert_one_line_error

# Tolerances on the tiny models (eager backend; fused QKV and channels_last reorder float sums):
PAINT_TOLERANCE = 2  # at most this many of 255 per pixel channel
AMP_TOLERANCE = 0.25  # %stylize --precision amp (bfloat16 autocast on the CPU): mean absolute difference, of 1


@pytest.fixture()
def compiles(monkeypatch):
    """Every torch.compile call (kwargs), with the eager backend (dynamo traces, nothing is code-generated)."""
    monkeypatch.setenv(fast.BACKEND_ENV, "eager")
    calls = []
    original = torch.compile

    def recording(*args, **kwargs):
        calls.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(torch, "compile", recording)
    yield calls
    torch._dynamo.reset()


def _pixels(result):
    return np.stack([np.asarray(image, dtype=np.int16) for image in result.images])


def _rows():
    return {(row["name"], row["loads"]) for row in session.current().cache.table()}


def test_paint_compile_compiles_the_unet_and_decoder_once_and_paints_as_eager(ip, compiles):
    eager = creative_magics.paint("a fox", model="sd15", steps=2, seed=5)
    notes = []
    fast_result = creative_magics.paint("a fox", model="sd15", steps=2, seed=5, compile=True, on_note=notes.append)
    assert len(compiles) == 2 and all(call["backend"] == "eager" for call in compiles), compiles  # UNet and VAE decoder
    assert len(notes) == 1 and notes[0].startswith("--compile: sd15 loads as its own copy"), notes
    difference = np.abs(_pixels(fast_result) - _pixels(eager)).max()
    assert difference <= PAINT_TOLERANCE, difference
    # its own cache entry: the eager pipeline is not changed
    cache = session.current().cache
    entries = cache.entries()
    assert len(entries) == 2
    compiled = next(e.obj for e in entries if e.spec.fast)
    plain = next(e.obj for e in entries if not e.spec.fast)
    assert compiled.fast_paths == ["channels_last", "fused_qkv", "sdpa", "compiled_denoiser", "compiled_vae_decoder"]
    assert plain.unet._compiled_call_impl is None and compiled.unet._compiled_call_impl is not None
    assert not hasattr(plain, "fast_paths")
    # the recipe records it; running it again compiles nothing and says nothing
    assert fast_result.recipe["params"]["compile"] is True and "compile" not in eager.recipe["params"]
    again = creative_magics.paint(recipe=fast_result.recipe, on_note=notes.append)
    assert len(compiles) == 2 and len(notes) == 1
    assert again.recipe["params"]["compile"] is True
    assert np.array_equal(_pixels(again), _pixels(fast_result))
    # through the PNG's A1111 text too
    assert "Compile: True" in fast_result.image.info["parameters"]
    assert creative_magics.read_recipe(fast_result.image)["params"]["compile"] is True
    assert "Compile" not in eager.image.info["parameters"]
    assert all(row["loads"] == 1 for row in cache.table())


def test_paint_compile_on_amused_compiles_its_transformer_and_vqgan_decoder(ip, compiles):
    eager = creative_magics.paint("a fox", model="amused-256", steps=2, seed=1)
    compiled = creative_magics.paint("a fox", model="amused-256", steps=2, seed=1, compile=True)
    assert len(compiles) == 2
    assert np.abs(_pixels(compiled) - _pixels(eager)).max() <= PAINT_TOLERANCE
    entry = next(e for e in session.current().cache.entries() if e.spec.fast)
    assert entry.obj.fast_paths == ["channels_last", "compiled_denoiser", "compiled_vae_decoder"]  # no fused QKV in aMUSEd


def test_paint_compile_flag_through_the_magic_and_lora_refused(ip, run, compiles):
    ran = run("%%paint -m sd15 --steps 2 --seed 3 --compile -o pic\na fox")
    assert ran.ok, ran.err
    assert "--compile: sd15 loads as its own copy" in ran.out
    assert ip.user_ns["pic"].recipe["params"]["compile"] is True
    ran = run("%%paint -m sd15 --steps 2 --compile --lora lcm-lora-sd15\na fox")
    assert_one_line_error(ran, "--compile fuses the attention projections that a --lora patches")


def test_story_compile_uses_a_static_cache_and_compiles_once(ip, compiles):
    eager = creative_magics.story("Once upon a time", model="gpt2", greedy=True, max_new_tokens=8, seed=1)
    compiled = creative_magics.story("Once upon a time", model="gpt2", greedy=True, max_new_tokens=8, seed=1, compile=True)
    assert compiled.text == eager.text  # greedy decoding: the same tokens
    assert len(compiles) == 1 and compiles[0]["backend"] == "eager", compiles  # transformers' compiled forward
    entry = next(e for e in session.current().cache.entries() if e.spec.fast)
    config = entry.obj.model.generation_config
    assert config.cache_implementation == "static" and config.compile_config.backend == "eager"
    plain = next(e for e in session.current().cache.entries() if not e.spec.fast)
    assert plain.obj.model.generation_config.cache_implementation is None
    assert compiled.recipe["params"]["compile"] is True and "compile" not in eager.recipe["params"]
    again = creative_magics.story(recipe=compiled.recipe)
    assert len(compiles) == 1 and again.text == compiled.text
    assert all(row["loads"] == 1 for row in session.current().cache.table())


def test_story_compile_on_a_remote_model_is_one_line(run):
    ran = run("%%story -m openai:gpt-4o-mini --compile\nHi")
    assert_one_line_error(ran, "--compile compiles a local model on this machine; openai:gpt-4o-mini runs on a remote server")


def test_compose_compile_uses_a_static_cache_and_records_it(ip, compiles):
    eager = creative_magics.compose("calm piano", seconds=0.2, temperature=0, seed=2)
    compiled = creative_magics.compose("calm piano", seconds=0.2, temperature=0, seed=2, compile=True)
    entry = next(e for e in session.current().cache.entries() if e.spec.fast)
    assert entry.obj.model.generation_config.cache_implementation == "static"
    assert "static_cache" in entry.obj.fast_paths
    assert compiled.recipe["params"]["compile"] is True and "compile" not in eager.recipe["params"]
    assert np.allclose(compiled.audio, eager.audio, atol=1e-4)


@pytest.mark.parametrize("method", ["gatys", "adain"])
def test_stylize_precision(ip, method):
    from PIL import Image

    rng = np.random.default_rng(0)
    content = Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8))
    style = Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8))
    common = dict(method=method, size=48, **({"steps": 3, "seed": 1} if method == "gatys" else {}))
    plain = creative_magics.stylize(content, style, **common)
    results = {mode: creative_magics.stylize(content, style, precision=mode, **common) for mode in fast.PRECISIONS}

    def array(result):
        return np.asarray(result.image, dtype=np.float32) / 255

    assert np.abs(array(results["fp32"]) - array(plain)).max() <= 1 / 255  # on a CPU, TF32 changes nothing
    assert np.abs(array(results["tf32"]) - array(plain)).max() <= 1 / 255  # channels_last only
    assert np.abs(array(results["amp"]) - array(plain)).mean() <= AMP_TOLERANCE
    for mode, result in results.items():
        assert result.recipe["params"]["precision"] == mode
    assert "precision" not in plain.recipe["params"]
    net = session.current().cache.entries()[0].obj
    assert all(p.is_contiguous() for p in net.parameters())  # the cached net is back in its own layout
    again = creative_magics.stylize(content, style, recipe=results["amp"].recipe)
    assert again.recipe["params"]["precision"] == "amp"


def test_precision_restores_torch_settings():
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    with fast.precision("tf32", torch.device("cpu")):
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    with fast.precision("amp", torch.device("cpu")):
        assert torch.is_autocast_enabled("cpu")
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before


def test_compiled_spec_has_its_own_key(monkeypatch):
    from creative_magics.models import ModelSpec

    monkeypatch.setenv(fast.BACKEND_ENV, "eager")
    spec = ModelSpec("sd15", "diffusion", "tiny", "tiny-sd")
    assert fast.compiled_spec(spec, {}) is spec
    compiled = fast.compiled_spec(spec, {"compile": True})
    assert compiled.key != spec.key and compiled.key[:2] == spec.key
    assert fast.options_of(compiled) == {"compile": ("eager", fast.DEFAULT_MODES["diffusion"])}
    vgg = ModelSpec("vgg19", "vgg", "tiny", "tiny-vgg19")
    assert fast.compiled_spec(vgg, {"compile": True}) is vgg


def test_compile_with_cpu_offload_is_one_line():
    from creative_magics.models import ModelSpec

    spec = ModelSpec("sd15", "diffusion", "tiny", "tiny-sd")
    with pytest.raises(CreativeError, match="--compile and %config CreativeMagics.cpu_offload = True do not go together"):
        fast.check(spec, {"compile": True}, {"compile": "flag"}, offload=True)
    # not the caller's (%config, the panel, a recipe): no error, the model runs eager
    assert fast.check(spec, {"compile": True}, {"compile": "config"}, offload=True) is False
    assert fast.check(spec, {"compile": True}, {"compile": "config"}) is True
