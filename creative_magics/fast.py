"""Opt-in fast paths for a GPU (W2 9/9): what `--compile` does to a model when it loads, and `%stylize
--precision`.

- %%paint --compile: the UNet and the VAE decoder compiled with torch.compile, both in channels_last,
  the attention's q/k/v projections fused where diffusers offers it (`fuse_qkv_projections`), and the
  attention on PyTorch's scaled-dot-product kernel (diffusers' AttnProcessor2_0 / FusedAttnProcessor2_0).
- %%story --compile and %%compose --compile: a static KV cache (generation_config.cache_implementation =
  "static") with transformers' own compilation of the forward in `generate` (its CompileConfig), as
  transformers documents; `generate` compiles where transformers can (MusicGen: the static cache only).
- %stylize --precision fp32|tf32|amp: TensorFloat-32 matmuls and convolutions, or autocast (bfloat16
  where the device has it, else float16), with the network and images in channels_last.

A compiled model is another cache entry than the eager one (ModelSpec.fast is part of its key), so the
eager model is never changed, and the compile cost is paid once per kernel, then reused.

For tests and for the benchmarks, CREATIVE_MAGICS_COMPILE_BACKEND picks torch.compile's backend
("inductor" by default; "eager" traces with dynamo and runs the graph as it is, fast on a CPU).
"""

import contextlib
import os
from dataclasses import replace

from .errors import CreativeError

BACKEND_ENV = "CREATIVE_MAGICS_COMPILE_BACKEND"
MODE_ENV = "CREATIVE_MAGICS_COMPILE_MODE"
DEFAULT_BACKEND = "inductor"
# torch.compile's mode: "default" for the UNet (max-autotune, as PyTorch's published SD figures use, compiles for
# minutes; CREATIVE_MAGICS_COMPILE_MODE picks it), reduce-overhead (CUDA graphs) for decoding, as transformers does.
DEFAULT_MODES = {"diffusion": "default", "causal_lm": "reduce-overhead", "musicgen": "reduce-overhead"}
COMPILED_FAMILIES = tuple(DEFAULT_MODES)
PRECISIONS = ("fp32", "tf32", "amp")


def compile_options(family):
    """(backend, mode) of torch.compile for a model of `family`: the environment's, else the defaults."""
    backend = os.environ.get(BACKEND_ENV, "").strip() or DEFAULT_BACKEND
    mode = os.environ.get(MODE_ENV, "").strip() or DEFAULT_MODES.get(family, "default")
    return backend, mode


def compiled_spec(spec, values):
    """The ModelSpec to load: `spec` itself, or with --compile its compiled twin (another cache key, so the
    eager model stays as it is)."""
    if not values.get("compile") or spec.family not in COMPILED_FAMILIES or spec.kind == "remote":
        return spec
    backend, mode = compile_options(spec.family)
    return replace(spec, fast=(("compile", backend, mode),))


def options_of(spec):
    """{"compile": (backend, mode)} of a spec's fast paths ({} for an eager one)."""
    return {item[0]: tuple(item[1:]) for item in getattr(spec, "fast", ()) or ()}


def check(spec, values, sources, *, offload=False, loras=False):
    """Whether --compile applies to this call. When it cannot (a remote model, %%paint's CPU offload, LoRAs,
    whose patched projections fused attention would leave out), the caller's own --compile is one line;
    one from %config, the panel or a recipe is left out (the model runs eager)."""
    if not values.get("compile"):
        return False
    if (sources or {}).get("compile") not in ("flag", "argument"):
        return spec.kind != "remote" and not offload and not loras
    if spec.kind == "remote":
        raise CreativeError(
            f"--compile compiles a local model on this machine; {spec.source} runs on a remote server: drop --compile"
        )
    if offload:
        raise CreativeError(
            "--compile and %config CreativeMagics.cpu_offload = True do not go together (offloading moves the weights "
            "each step): drop --compile, or set cpu_offload = False"
        )
    if loras:
        raise CreativeError("--compile fuses the attention projections that a --lora patches: drop --compile or --lora")
    return True


def compile_note(spec, loaded):
    """The one progress line said before a compiled model is first used (None when it is warm already)."""
    if loaded or not options_of(spec).get("compile"):
        return None
    backend, _ = options_of(spec)["compile"]
    what = {
        "diffusion": f"torch.compile ({backend}) compiles its UNet (aMUSEd: its transformer) and VAE decoder on the first call",
        "causal_lm": f"a static KV cache, and torch.compile ({backend}) compiles its forward on the first call",
        "musicgen": "a static KV cache; transformers compiles MusicGen's decoding only where it supports it",
    }[spec.family]
    return (
        f"--compile: {spec.name} loads as its own copy with {what}; the first call takes longer, the next ones reuse "
        "the compiled kernels (%creative evict frees the copy)."
    )


# -- applied once, when the compiled copy loads -----------------------------------------------


def apply(obj, spec):
    """Make the freshly loaded `obj` of `spec` fast as its `fast` options say; returns it (changed in place)."""
    options = options_of(spec)
    if "compile" not in options:
        return obj
    backend, mode = options["compile"]
    if spec.family == "diffusion":
        applied = compile_pipeline(obj, backend, mode)
    else:  # causal_lm (a TextModel) and musicgen (a MusicModel): the transformers model inside
        applied = compile_generation(obj.model, backend, mode)
    obj.fast_paths = applied
    return obj


def compile_pipeline(pipe, backend, mode):
    """%%paint --compile on a diffusers pipeline: channels_last, fused QKV, SDPA, then torch.compile of the
    UNet (or transformer) and the VAE decoder. Returns the list of what was applied (for the recipe)."""
    import torch

    applied = []
    denoiser = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)
    vae = getattr(pipe, "vae", None) or getattr(pipe, "vqvae", None)
    for module in (denoiser, vae):
        if module is not None:
            module.to(memory_format=torch.channels_last)
    applied.append("channels_last")
    if hasattr(pipe, "fuse_qkv_projections") and denoiser is not None and hasattr(denoiser, "fuse_qkv_projections"):
        try:
            pipe.fuse_qkv_projections()
            applied += ["fused_qkv", "sdpa"]  # diffusers' fused processor runs scaled_dot_product_attention
        except (AttributeError, ValueError, NotImplementedError):  # a pipeline whose attention cannot be fused stays unfused
            pass
    if "fused_qkv" not in applied and getattr(pipe, "unet", None) is not None and hasattr(denoiser, "set_attn_processor"):
        from diffusers.models.attention_processor import AttnProcessor2_0

        processors = getattr(denoiser, "attn_processors", {})
        if processors and not all(type(p).__name__.endswith("2_0") for p in processors.values()):
            denoiser.set_attn_processor(AttnProcessor2_0())
        applied.append("sdpa")
    kwargs = {"backend": backend, "mode": None if backend == "eager" else mode}
    if denoiser is not None:
        denoiser.compile(**kwargs)
        applied.append("compiled_denoiser")
    decoder = getattr(vae, "decoder", None)
    if decoder is not None:
        decoder.compile(**kwargs)
        applied.append("compiled_vae_decoder")
    return applied


def compile_generation(model, backend, mode):
    """%%story / %%compose --compile on a transformers model: a static KV cache, and transformers'
    CompileConfig so `generate` compiles the forward of each decoding step (on any device: the person
    asked for it). Returns what was applied."""
    from transformers import CompileConfig

    config = model.generation_config
    config.cache_implementation = "static"
    compile_config = CompileConfig(backend=backend, mode=mode, fullgraph=False)
    compile_config._compile_all_devices = True  # transformers' flag to compile off CUDA too
    config.compile_config = compile_config
    applied = ["static_cache"]
    if getattr(model, "_can_compile_fullgraph", False):
        applied.append("compiled_forward")
    return applied


# -- %stylize --precision --------------------------------------------------------------------


def amp_dtype(device):
    """autocast's half type on `device`: bfloat16 where the device has it (no overflow in the Gram matrices), else float16."""
    import torch

    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


@contextlib.contextmanager
def precision(mode, device):
    """Run the block in `mode` on `device`: None leaves PyTorch's settings as they are; fp32 turns
    TensorFloat-32 off, tf32 on (matmuls and cuDNN convolutions); amp autocasts to a half type."""
    import torch

    if mode is None:
        yield
        return
    if mode not in PRECISIONS:
        raise CreativeError(f"--precision must be {', '.join(PRECISIONS[:-1])} or {PRECISIONS[-1]}, not {mode!r}")
    cuda = torch.backends.cuda.matmul, torch.backends.cudnn
    before = (cuda[0].allow_tf32, cuda[1].allow_tf32)
    cuda[0].allow_tf32 = cuda[1].allow_tf32 = mode in ("tf32", "amp")
    try:
        if mode == "amp":
            with torch.autocast(device_type=device.type, dtype=amp_dtype(device)):
                yield
        else:
            yield
    finally:
        cuda[0].allow_tf32, cuda[1].allow_tf32 = before


def memory_format(mode):
    """The memory format of images and networks under `mode`: channels_last for tf32 and amp."""
    import torch

    return torch.channels_last if mode in ("tf32", "amp") else torch.contiguous_format
