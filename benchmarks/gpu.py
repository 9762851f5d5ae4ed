"""W2 9/9: our calls and their fast paths against the plain library calls, on one CUDA GPU, in one run.

Each row is measured in this one process, the contenders alternated on the same warm weights:
- SD 1.5, 512 px, 50 steps, batch 1, s/image: plain diffusers `pipe(...)` vs ours eager vs ours --compile
- SDXL, 1024 px, 30 steps, batch 1, s/image: the same three
- SD-Turbo shape (SD 2.1 UNet, OpenCLIP-H-sized text encoder), 512 px, 1 step: images/s at batch 1 and 8
- GPT-2 small and SmolLM2-135M shapes, 256 new tokens, batch 1, tokens/s: plain `generate` vs ours eager
  vs ours --compile (static KV cache + torch.compile)
- MusicGen-small shape, seconds of audio per second: plain `generate` vs ours eager vs ours --compile
- Gatys on VGG19, 512 px, iterations/s: a plain PyTorch loop vs %stylize, each in fp32, TF32 and AMP
- AdaIN, 512 px, ms per image: the network called by hand vs %stylize --method adain (fast: --precision amp)

Full-size models with random weights (speed does not depend on the values), float16 (VGG19 and AdaIN
float32, their precision modes being the point), built in memory from the real configs: SD 1.5 and SDXL
from ../shared/model-layouts (or --layouts DIR; SD 1.5 falls back to creative_magics/data/sd15), the
others from transformers' configs of the published models. Tokenizers are the tiny test ones: the texts
are gibberish, the work per token is full size.

    python benchmarks/gpu.py                 # everything, about 8 minutes on an H200 (not yet measured)
    python benchmarks/gpu.py --only sd15,gpt2 --runs 3
    python benchmarks/gpu.py --cpu-smoke     # tiny models on the CPU, under a minute: the plumbing only

Without CUDA (and without --cpu-smoke) it stops at once with one line. --compile uses torch.compile's
inductor backend (CREATIVE_MAGICS_COMPILE_BACKEND / CREATIVE_MAGICS_COMPILE_MODE change it; --cpu-smoke
uses "eager"). No GPU was lent where this was written: README's GPU table is still to be filled by it.
"""

import argparse
import contextlib
import copy
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SECTIONS = ("sd15", "sdxl", "turbo", "gpt2", "smollm2", "musicgen", "gatys", "adain")
PROMPT = "Once upon a time, in a village at the edge of a pine forest,"
PICTURE = "a lighthouse on a cliff at sunset, oil painting"
MUSIC = "calm lo-fi piano with soft drums"

FULL = dict(sd15=(512, 50), sdxl=(1024, 30), turbo=512, tokens=256, audio_seconds=5.0, gatys=(512, 50), adain=512, runs=3)
SMOKE = dict(sd15=(64, 1), sdxl=(64, 1), turbo=64, tokens=4, audio_seconds=0.05, gatys=(32, 1), adain=32, runs=1)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help=f"comma-separated rows among: {', '.join(SECTIONS)}")
    parser.add_argument("--runs", type=int, default=None, help="timed runs of each contender, alternated (default 3)")
    parser.add_argument("--cpu-smoke", "--dry-run", "--quick", dest="smoke", action="store_true",
                        help="tiny models on the CPU: checks the plumbing in under a minute; its figures say nothing")
    parser.add_argument("--layouts", default="", help="the model-layouts folder (SD 1.5 and SDXL configs and tokenizers)")
    args = parser.parse_args(argv)
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()] or list(SECTIONS)
    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown row {', '.join(unknown)}; choose among {', '.join(SECTIONS)}")
    args.sizes = SMOKE if args.smoke else FULL
    args.runs = args.runs or args.sizes["runs"]
    args.device = "cpu" if args.smoke else "cuda"
    return args


def need_cuda():
    try:
        import torch
    except ImportError:
        sys.exit("gpu.py: PyTorch is not installed; install torch with CUDA support on a machine with an NVIDIA GPU")
    if not torch.cuda.is_available():
        sys.exit(f"gpu.py: no CUDA GPU here (torch {torch.__version__} sees none); run it on a machine with an NVIDIA GPU, or try --cpu-smoke")


def layouts_folder(given):
    for candidate in (given, os.environ.get("CREATIVE_MAGICS_LAYOUTS", ""), HERE.parent.parent / "shared" / "model-layouts",
                      HERE.parent / "shared" / "model-layouts", "/work/shared/model-layouts"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


# -- timing ---------------------------------------------------------------------------------------------


def seconds(call, device):
    """Wall time of `call`, with the GPU's queued work finished before and after."""
    import torch

    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    call()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def alternated(args, **contenders):
    """Each contender once to warm up (compilation happens there; not in a --cpu-smoke run), then `runs` times
    alternated (the order reversed each round). Returns median seconds."""
    for call in contenders.values() if not args.smoke else ():
        call()
    times = {name: [] for name in contenders}
    order = list(contenders.items())
    for run in range(args.runs):
        for name, call in order if run % 2 == 0 else order[::-1]:
            times[name].append(seconds(call, args.device))
    return {name: statistics.median(values) for name, values in times.items()}


@contextlib.contextmanager
def silenced():
    """Progress bars, printed results and fp16-overflow warnings of random weights go nowhere."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        yield


def bench_home():
    folder = Path(os.environ["CREATIVE_MAGICS_HOME"]) / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# -- models: built in memory, served to our calls through the model cache --------------------------------

BUILT = {}  # folder given with -m -> the eager object; a --compile copy is a deep copy made fast by fast.apply


def serve(name, obj):
    """A folder name for `-m` whose model is `obj` (already on the device): our cache loads it from here."""
    folder = bench_home() / f"served-{name}"
    folder.mkdir(parents=True, exist_ok=True)
    BUILT[str(folder.resolve())] = obj
    return str(folder.resolve())


def install_loader():
    from creative_magics import fast, session

    cache = session.current().cache
    load = cache.loader

    def loader(spec, dtype):
        if spec.source not in BUILT:
            return load(spec, dtype)
        if spec.fast:  # the compiled copy: its own weights, so the eager one stays as it is
            return fast.apply(copy.deepcopy(BUILT[spec.source]), spec)
        return BUILT[spec.source]

    cache.loader = loader


def tiny(name, dtype):
    """A tiny model loaded by our own loaders (--cpu-smoke)."""
    from creative_magics import loaders, models

    family = models.TINY_FAMILY[name]
    with silenced():
        return loaders.load_model(models.ModelSpec(name, family, "tiny", name), dtype)


def _json(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def diffusion_pipeline(folder, device, dtype, unet_changes=None, text_changes=None):
    """A diffusers pipeline in full with random weights, from a layout folder (model_index.json and each part's
    config; tokenizers read as they are; no weights)."""
    import diffusers
    import torch
    import transformers

    folder = Path(folder)
    index = _json(folder / "model_index.json") if (folder / "model_index.json").exists() else {
        "_class_name": "StableDiffusionPipeline", "scheduler": ["diffusers", "PNDMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
    }
    parts = {}
    torch.manual_seed(0)
    for name, spec in index.items():
        if name.startswith("_") or not isinstance(spec, list):
            continue
        library, class_name = spec
        if class_name is None or name in ("safety_checker", "feature_extractor", "image_encoder"):
            parts[name] = None
            continue
        if name.startswith("scheduler"):
            config = _json(folder / name / "scheduler_config.json")
            parts[name] = getattr(diffusers, config["_class_name"]).from_config(config)
        elif name.startswith("tokenizer"):
            parts[name] = getattr(transformers, class_name).from_pretrained(folder / name)
        else:
            config = {k: v for k, v in _json(folder / name / "config.json").items() if k not in ("torch_dtype", "dtype", "transformers_version")}
            changes = unet_changes if name == "unet" else text_changes if name.startswith("text_encoder") else None
            config.update(changes or {})
            with torch.device(device):  # random initialisation on the GPU takes seconds
                if library == "diffusers":
                    module = getattr(diffusers, class_name).from_config(config)
                else:
                    model_class = getattr(transformers, class_name)
                    module = model_class(model_class.config_class.from_dict(config))
            parts[name] = module.eval().to(dtype)
    pipeline_class = getattr(diffusers, index["_class_name"])
    accepted = set(pipeline_class.__init__.__code__.co_varnames)
    if "requires_safety_checker" in accepted:
        parts["requires_safety_checker"] = False
    pipe = pipeline_class(**{k: v for k, v in parts.items() if k in accepted})
    pipe.set_progress_bar_config(disable=True)
    return pipe


def sd_layout(args, name):
    layouts = layouts_folder(args.layouts)
    folder = {"sd15": "stable-diffusion-v1-5", "sdxl": "stable-diffusion-xl-base-1.0"}[name]
    if layouts is not None and (layouts / folder).is_dir():
        return layouts / folder
    if name == "sd15":
        return HERE.parent / "creative_magics" / "data" / "sd15"
    return None


# SD-Turbo is an SD 2.1 model: its UNet's cross-attention is 1024 wide with linear projections, its text
# encoder OpenCLIP ViT-H's (1024 wide, 23 layers); scheduled with Euler, trailing timesteps.
TURBO_UNET = {"cross_attention_dim": 1024, "attention_head_dim": [5, 10, 20, 20], "use_linear_projection": True}
TURBO_TEXT = {"hidden_size": 1024, "intermediate_size": 4096, "num_attention_heads": 16, "num_hidden_layers": 23, "projection_dim": 1024,
              "hidden_act": "gelu"}


def build_pipeline(args, name):
    import torch

    if args.smoke:
        return tiny({"sd15": "tiny-sd", "turbo": "tiny-sd", "sdxl": "tiny-sdxl"}[name], torch.float32)
    layout = sd_layout(args, "sd15" if name == "turbo" else name)
    if layout is None:
        return None
    if name == "turbo":
        from diffusers import EulerDiscreteScheduler

        pipe = diffusion_pipeline(layout, "cuda", torch.float16, TURBO_UNET, TURBO_TEXT)
        pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config, timestep_spacing="trailing")
        return pipe
    return diffusion_pipeline(layout, "cuda", torch.float16)


# -- rows -----------------------------------------------------------------------------------------------


def row(what, unit, plain, eager, fast_value, higher_is_better, note=""):
    """One table row; `fast / plain` is the speed-up of our fast path over the plain library call."""
    speedup = None
    if plain and fast_value:
        speedup = fast_value / plain if higher_is_better else plain / fast_value
    return {"what": what, "unit": unit, "plain": plain, "eager": eager, "fast": fast_value, "speedup": speedup, "note": note}


def paint_rows(api, args, name):
    import torch
    from diffusers import AutoPipelineForText2Image

    pipe = build_pipeline(args, name)
    label = {"sd15": "SD 1.5", "sdxl": "SDXL", "turbo": "SD-Turbo shape"}[name]
    if pipe is None:
        return [row(f"{label}: not run, no layout folder (--layouts)", "", None, None, None, False)]
    folder = serve(name, pipe)
    plain_pipe = AutoPipelineForText2Image.from_pipe(pipe)
    plain_pipe.set_progress_bar_config(disable=True)
    if name == "turbo":
        size, steps, guidance, batches = args.sizes["turbo"], 1, 0.0, (1, 2 if args.smoke else 8)
    else:
        (size, steps), guidance, batches = args.sizes[name], 7.5, (1,)
    rows = []
    for batch in batches:
        common = dict(model=folder, steps=steps, guidance=guidance, width=size, height=size, seed=1, n=batch)

        def plain():
            with silenced():
                plain_pipe(PICTURE, num_inference_steps=steps, guidance_scale=guidance, width=size, height=size, num_images_per_prompt=batch,
                           generator=torch.Generator(args.device).manual_seed(1))

        def eager():
            with silenced():
                api.paint(PICTURE, **common)

        def compiled():
            with silenced():
                api.paint(PICTURE, compile=True, **common)

        medians = alternated(args, plain=plain, eager=eager, compiled=compiled)
        if name == "turbo":
            rates = {k: batch / v for k, v in medians.items()}
            rows.append(row(f"{label} {size}², 1 step, batch {batch}", "images/s", rates["plain"], rates["eager"], rates["compiled"], True))
        else:
            rows.append(row(f"{label} {size}², {steps} steps, batch 1", "s/image", medians["plain"], medians["eager"], medians["compiled"], False))
        print_row(rows[-1])
    return rows


SMOLLM2_135M = dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                    max_position_embeddings=8192, rms_norm_eps=1e-5, rope_theta=100000.0, tie_word_embeddings=True, vocab_size=49152)


def build_text_model(args, name):
    import torch

    from creative_magics.loaders import TextModel, finish_tokenizer

    if args.smoke:
        return tiny({"gpt2": "tiny-gpt2", "smollm2": "tiny-chat"}[name], torch.float32)
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    from creative_magics import tiny as tiny_models

    tokenizer = finish_tokenizer(AutoTokenizer.from_pretrained(tiny_models.ensure("tiny-gpt2")))
    torch.manual_seed(0)
    with torch.device("cuda"):
        if name == "gpt2":  # GPT-2 small: 12 layers, 768 wide, 50257 tokens
            model = GPT2LMHeadModel(GPT2Config(bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id))
        else:
            model = LlamaForCausalLM(LlamaConfig(**SMOLLM2_135M, bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id))
    model.generation_config.suppress_tokens = None
    return TextModel(model.eval().to(torch.float16), tokenizer, chat=False)


def story_rows(api, args, name):
    import torch

    from creative_magics.tasks import story as task

    text_model = build_text_model(args, name)
    folder = serve(name, text_model)
    tokens = args.sizes["tokens"]
    common = dict(model=folder, seed=1, max_new_tokens=tokens, min_new_tokens=tokens, stream=False)
    with silenced():
        made = api.story(PROMPT, **common)
    model = text_model.model
    inputs = text_model.tokenizer(PROMPT, return_tensors="pt").to(model.device)
    kwargs = task.generate_kwargs(dict(made.recipe["params"]), text_model.tokenizer)

    def plain():
        torch.manual_seed(1)
        with torch.inference_mode():
            model.generate(**inputs, **kwargs)

    def eager():
        with silenced():
            api.story(PROMPT, **common)

    def compiled():
        with silenced():
            api.story(PROMPT, compile=True, **common)

    medians = alternated(args, plain=plain, eager=eager, compiled=compiled)
    rates = {k: tokens / v for k, v in medians.items()}
    label = {"gpt2": "GPT-2 small", "smollm2": "SmolLM2-135M shape"}[name]
    result = row(f"{label}, {tokens} new tokens, batch 1", "tokens/s", rates["plain"], rates["eager"], rates["compiled"], True)
    print_row(result)
    return [result]


def music_rows(api, args):
    import torch

    from creative_magics.tasks import compose as task

    if args.smoke:
        music_model = tiny("tiny-musicgen", torch.float32)
    else:
        sys.path.insert(0, str(HERE))
        from bench_compose import musicgen_small_folder
        from creative_magics.loaders import load_musicgen

        with silenced():
            music_model = load_musicgen(musicgen_small_folder(), torch.float16, None, local_files_only=True).to(device="cuda")
    folder = serve("musicgen", music_model)
    audio_seconds = args.sizes["audio_seconds"]
    common = dict(model=folder, seconds=audio_seconds, seed=1)
    with silenced():
        made = api.compose(MUSIC, **common)
    model = music_model.model
    params = dict(made.recipe["params"])
    per_channel = task.codebooks_per_channel(model)
    frames = task.frames_for(params["seconds"], task.frame_rate(model), per_channel)
    kwargs = task.generate_kwargs(params, frames, per_channel)

    def plain():
        inputs = music_model.tokenizer([MUSIC], padding=True, return_tensors="pt").to(model.device)
        torch.manual_seed(1)
        with torch.inference_mode():
            model.generate(**inputs, **kwargs)

    def eager():
        with silenced():
            api.compose(MUSIC, **common)

    def compiled():
        with silenced():
            api.compose(MUSIC, compile=True, **common)

    medians = alternated(args, plain=plain, eager=eager, compiled=compiled)
    rates = {k: audio_seconds / v for k, v in medians.items()}
    result = row(f"MusicGen-small shape, {audio_seconds:g} s of audio", "audio s/s", rates["plain"], rates["eager"], rates["compiled"], True,
                 note="--compile: static KV cache; transformers compiles MusicGen's decoding only where it can")
    print_row(result)
    return [result]


def images(size):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(2)]


def gatys_rows(api, args):
    import torch
    from safetensors.torch import save_file

    sys.path.insert(0, str(HERE))
    from bench_stylize import plain_loop
    from creative_magics.nets.vgg import LAYER_INDEX, VGG19Features
    from creative_magics.tasks import stylize as task

    size, iterations = args.sizes["gatys"]
    torch.manual_seed(0)
    net = VGG19Features(*([(8, 16, 16, 16, 16)] if args.smoke else [])).eval()  # full width on the GPU
    folder = bench_home() / ("vgg19-narrow-random" if args.smoke else "vgg19-random")
    if not (folder / "model.safetensors").exists():
        folder.mkdir(parents=True, exist_ok=True)
        save_file({f"features.{k}": v.contiguous() for k, v in net.features.state_dict().items()}, str(folder / "model.safetensors"))
    content_image, style_image = images(size)
    features = net.features.to(args.device)
    style_indices = [LAYER_INDEX[name] + 1 for name in task.HOUSE_DEFAULTS["style_layers"]]  # after the ReLU
    content_index = LAYER_INDEX[task.HOUSE_DEFAULTS["content_layer"]] + 1
    common = dict(model=str(folder), size=size, steps=iterations, seed=0)
    rows = []
    for mode in ("fp32", "tf32", "amp"):
        tf32, channels_last, amp = mode != "fp32", mode != "fp32", mode == "amp"

        def plain():
            before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
            features.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
            try:
                content = task.to_tensor(content_image, args.device)
                style = task.to_tensor(style_image, args.device)
                plain_loop(features, content, style, iterations, style_indices, content_index, amp=amp, channels_last=channels_last)
            finally:
                torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before
                features.to(memory_format=torch.contiguous_format)

        def ours():
            with silenced():
                api.stylize(content_image, style_image, precision=mode, **common)

        medians = alternated(args, plain=plain, ours=ours)
        rates = {k: iterations / v for k, v in medians.items()}
        rows.append(row(f"Gatys VGG19 {size}², {mode}", "iterations/s", rates["plain"], rates["ours"], None, True,
                        note="ours: %stylize --precision " + mode))
        print_row(rows[-1])
    return rows


def adain_rows(api, args):
    import torch
    from safetensors.torch import save_file

    from creative_magics.nets import adain
    from creative_magics.tasks import stylize as task

    size = args.sizes["adain"]
    torch.manual_seed(0)
    net = adain.AdaIN(*([(8, 16, 16, 16)] if args.smoke else [])).eval()  # the authors' widths on the GPU, random weights
    folder = bench_home() / ("adain-narrow-random" if args.smoke else "adain-random")
    if not (folder / "decoder.safetensors").exists():
        folder.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in net.encoder.state_dict().items()}, str(folder / "vgg_normalised.safetensors"))
        save_file({k: v.contiguous() for k, v in net.decoder.state_dict().items()}, str(folder / "decoder.safetensors"))
    net = net.to(args.device)
    content_image, style_image = images(size)
    content, style = task.to_tensor(content_image, args.device), task.to_tensor(style_image, args.device)
    common = dict(method="adain", model=str(folder), size=size)

    def plain():
        with torch.no_grad():
            task.to_image(net.stylize(content, [style]))

    def eager():
        with silenced():
            api.stylize(content_image, style_image, **common)

    def amp():
        with silenced():
            api.stylize(content_image, style_image, precision="amp", **common)

    medians = alternated(args, plain=plain, eager=eager, amp=amp)
    result = row(f"AdaIN {size}², 1 image", "ms/image", medians["plain"] * 1000, medians["eager"] * 1000, medians["amp"] * 1000, False,
                 note="fast: --precision amp")
    print_row(result)
    return [result]


# -- the table ------------------------------------------------------------------------------------------


def shown(value):
    if value is None:
        return "-"
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def print_row(item):
    print(f"  {item['what']}: plain {shown(item['plain'])}, ours {shown(item['eager'])}, fast {shown(item['fast'])} {item['unit']}", flush=True)


def table(rows, device_name):
    lines = [
        f"| figure ({device_name}) | unit | plain library call | ours | ours, fast path | fast path vs plain |",
        "|---|---|---|---|---|---|",
    ]
    for item in rows:
        speedup = f"{item['speedup']:.2f}x" if item["speedup"] else "-"
        what = item["what"] + (f" ({item['note']})" if item["note"] else "")
        lines.append(f"| {what} | {item['unit']} | {shown(item['plain'])} | {shown(item['eager'])} | {shown(item['fast'])} | {speedup} |")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    if not args.smoke:
        need_cuda()
    else:
        os.environ.setdefault("CREATIVE_MAGICS_COMPILE_BACKEND", "eager")  # dynamo traces, nothing is code-generated
    sys.path.insert(0, str(HERE))
    import common  # noqa: F401  (offline, tiny profile and the bench home, as the other benchmarks)
    import torch
    from IPython.testing.globalipapp import start_ipython

    import creative_magics as api

    started = time.perf_counter()
    ip = start_ipython()
    ip.run_line_magic("load_ext", "creative_magics")
    ip.run_line_magic("config", f"CreativeMagics.device = '{args.device}'")
    install_loader()
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU smoke run, tiny models: not figures"
    print(f"gpu.py: torch {torch.__version__} on {device_name}; {args.runs} runs each, alternated, after one warm-up", flush=True)
    rows = []
    for name in args.sections:
        dtype = "float32" if name in ("gatys", "adain") or args.smoke else "float16"
        ip.run_line_magic("config", f"CreativeMagics.dtype = '{dtype}'")
        section_start = time.perf_counter()
        if name in ("sd15", "sdxl", "turbo"):
            rows += paint_rows(api, args, name)
        elif name in ("gpt2", "smollm2"):
            rows += story_rows(api, args, name)
        elif name == "musicgen":
            rows += music_rows(api, args)
        elif name == "gatys":
            rows += gatys_rows(api, args)
        else:
            rows += adain_rows(api, args)
        print(f"  ({name}: {time.perf_counter() - section_start:.0f} s)", flush=True)
        with silenced():
            ip.run_line_magic("creative", "evict all")  # the next row gets the whole GPU
        BUILT.clear()
        gc.collect()
        if args.device == "cuda":
            torch.cuda.empty_cache()
        torch._dynamo.reset()
    print()
    print(table(rows, device_name))
    print(f"\n{len(rows)} rows in {time.perf_counter() - started:.0f} s")
    from common import emit_result

    first = next((r for r in rows if r["speedup"]), None)
    emit_result("GPU fast paths vs the plain library calls", first["what"] if first else "-", first["speedup"] if first else None,
                rows=len(rows), smoke=args.smoke)
    return 0


if __name__ == "__main__":
    sys.exit(main())
