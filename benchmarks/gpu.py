"""Full-size measurements on a CUDA GPU: each magic against the plain library call doing the same work
on the same warm model, alternated in one process.

- story:   tokens/s of `%%story` and of `model.generate`, GPT-2 small (124M, 50257-token vocabulary),
           float16, eager; then both again with a static KV cache, for which transformers compiles the
           decoding step with torch.compile.
- paint:   seconds per step (whole call / steps) of `%%paint` and of `pipe(...)`, the full Stable
           Diffusion 1.5 pipeline (UNet 860M, VAE, CLIP text encoder) at 512x512, float16, 20 steps.
- stylize: seconds per 300 L-BFGS iterations at 512 px, full VGG19: `%stylize` (float32, TF32 off and on)
           and the plain PyTorch loop of bench_stylize.py in float32, TF32, TF32 + channels_last and
           bfloat16 autocast (AMP) + channels_last. %stylize has no channels_last or AMP option.
- compose: audio frames (tokens per codebook) per second of `%%compose` and of `model.generate`,
           MusicGen-small shape (T5-base, 24-layer decoder, 32 kHz EnCodec), float16, 10 s of audio.

Random weights in the real shapes stand in for the released checkpoints (speed does not depend on the
values); the configs are the real ones (creative_magics/data/sd15 holds SD 1.5's). The tokenizers are the
tiny test ones, so the texts are gibberish: the models' work per token is full size.

    python benchmarks/gpu.py [--only story,paint,stylize,compose] [--runs 5] [--quick]

Without CUDA it stops at once with one line. `--device cpu` runs the same code on the CPU to check
the plumbing (with --quick); its figures say nothing about a GPU. The models are built once under
$CREATIVE_MAGICS_HOME/bench (about 3 GB). No GPU was available where this was written: README's GPU
figures are still to be measured with this script.
"""

import argparse
import contextlib
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path

SECTIONS = ("story", "paint", "stylize", "compose")
PROMPT = "Once upon a time, in a village at the edge of a pine forest,"
PICTURE = "a lighthouse on a cliff at sunset, oil painting"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help=f"comma-separated sections among: {', '.join(SECTIONS)}")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each contender (alternated)")
    parser.add_argument("--quick", action="store_true", help="shorter calls and 2 runs: a smoke run, not figures")
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"), help="cpu: a plumbing check only")
    args = parser.parse_args(argv)
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()] or list(SECTIONS)
    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section {', '.join(unknown)}; choose among {', '.join(SECTIONS)}")
    if args.quick:
        args.runs = min(args.runs, 2)
    return args


def need_cuda():
    try:
        import torch
    except ImportError:
        sys.exit("gpu.py: PyTorch is not installed; install torch with CUDA support on a machine with an NVIDIA GPU")
    if not torch.cuda.is_available():
        sys.exit(f"gpu.py: no CUDA GPU here (torch {torch.__version__} sees none); run it on a machine with an NVIDIA GPU")


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


def alternated(runs, device, **contenders):
    """Each contender `runs` times, alternating them (and their order each round). Returns median seconds."""
    times = {name: [] for name in contenders}
    order = list(contenders.items())
    for run in range(runs):
        for name, call in order if run % 2 == 0 else order[::-1]:
            times[name].append(seconds(call, device))
    return {name: statistics.median(values) for name, values in times.items()}


@contextlib.contextmanager
def silenced():
    """The magics' progress bars and printed results go nowhere."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        yield


def bench_home():
    folder = Path(os.environ["CREATIVE_MAGICS_HOME"]) / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def half(device):
    return "float16" if device == "cuda" else "float32"


def row(what, figure, ratio, **details):
    from common import emit_result

    emit_result(what, figure, ratio, **details)
    return (what, figure, ratio, "gpu.py")


# -- story ----------------------------------------------------------------------------------------------


def gpt2_full_folder():
    """GPT-2 small in full (12 layers, 768 wide, 50257 tokens) with random weights and the tiny tokenizer;
    ids the tiny tokenizer lacks decode to nothing, so the text is short and the work is full size."""
    folder = bench_home() / "gpt2-full-random"
    if (folder / "config.json").exists():
        return str(folder)
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from creative_magics import tiny

    tokenizer = AutoTokenizer.from_pretrained(tiny.ensure("tiny-gpt2"), trust_remote_code=False)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id))
    model.generation_config.suppress_tokens = None
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return str(folder)


def story(ip, args):
    import torch

    from creative_magics import session
    from creative_magics.tasks import story as task

    tokens = 32 if args.quick else 256
    folder = gpt2_full_folder()
    ip.run_line_magic("config", f"CreativeMagics.dtype = '{half(args.device)}'")
    line = f"-m {folder} --seed 1 --max-new-tokens {tokens} --min-new-tokens {tokens} -o story_result"

    def magic():
        with silenced():
            ip.run_cell_magic("story", line, PROMPT)

    magic()  # loads once; the cache keeps it warm on the device
    text_model = session.current().cache.get("story", folder)
    model = text_model.model
    inputs = text_model.tokenizer(PROMPT, return_tensors="pt").to(model.device)
    kwargs = task.generate_kwargs(dict(ip.user_ns["story_result"].recipe["params"]), text_model.tokenizer)

    def plain():
        torch.manual_seed(1)
        with torch.inference_mode():
            model.generate(**inputs, **kwargs)

    rows = []
    for label, static in (("eager", False), ("static KV cache + torch.compile", True)):
        if static:  # transformers compiles the decoding step itself when the cache is static (on a GPU)
            model.generation_config.cache_implementation = "static"
        for _ in range(3 if static else 1):  # warm-up; compilation happens here
            magic()
            plain()
        medians = alternated(args.runs, args.device, plain=plain, magic=magic)
        plain_rate, magic_rate = tokens / medians["plain"], tokens / medians["magic"]
        print(
            f"story, GPT-2 small {half(args.device)} {label}: plain generate {plain_rate:.1f} tokens/s, "
            f"%%story {magic_rate:.1f} tokens/s ({tokens} tokens, median of {args.runs})",
            flush=True,
        )
        rows.append(
            row(
                f"`%%story` / `model.generate` tokens/s, GPT-2 small, {label}",
                f"{magic_rate:.1f} vs {plain_rate:.1f} tokens/s",
                magic_rate / plain_rate,
            )
        )
    model.generation_config.cache_implementation = None
    return rows


# -- paint ----------------------------------------------------------------------------------------------


def sd15_folder(device):
    """The Stable Diffusion 1.5 pipeline in full with random weights, from its real configs and CLIP
    tokenizer (bundled in creative_magics/data/sd15), saved once in float16 as safetensors."""
    folder = bench_home() / "sd15-random"
    if (folder / "model_index.json").exists():
        return str(folder)
    from importlib import resources

    import diffusers
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    data = resources.files("creative_magics").joinpath("data/sd15")

    def config(name):
        return {k: v for k, v in json.loads(data.joinpath(name).read_text(encoding="utf-8")).items() if not k.startswith("_")}

    scheduler_config = json.loads(data.joinpath("scheduler/scheduler_config.json").read_text(encoding="utf-8"))
    scheduler = getattr(diffusers, scheduler_config["_class_name"]).from_config(scheduler_config)
    text_config = config("text_encoder/config.json")
    for key in ("architectures", "torch_dtype", "transformers_version"):
        text_config.pop(key, None)
    with resources.as_file(data.joinpath("tokenizer")) as path:
        tokenizer = CLIPTokenizer.from_pretrained(path)
    torch.manual_seed(0)
    with torch.device(device):  # random initialisation on the GPU takes seconds, on the CPU a minute
        unet = diffusers.UNet2DConditionModel(**config("unet/config.json"))
        vae = diffusers.AutoencoderKL(**config("vae/config.json"))
        text_encoder = CLIPTextModel(CLIPTextConfig(**text_config))
    pipe = diffusers.StableDiffusionPipeline(
        vae=vae.eval().half(),
        text_encoder=text_encoder.eval().half(),
        tokenizer=tokenizer,
        unet=unet.eval().half(),
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    with silenced():  # diffusers' "writing shards" bars
        pipe.save_pretrained(folder, safe_serialization=True)
    del pipe, unet, vae, text_encoder
    gc.collect()
    return str(folder)


def paint(ip, args):
    import diffusers
    import torch

    from creative_magics import session

    steps, size = (2, 256) if args.quick else (20, 512)
    folder = sd15_folder(args.device)
    ip.run_line_magic("config", f"CreativeMagics.dtype = '{half(args.device)}'")
    line = f"-m {folder} --steps {steps} --guidance 7.5 --width {size} --height {size} --seed 1"

    def magic():
        with silenced():
            ip.run_cell_magic("paint", line, PICTURE)

    magic()  # loads once; the cache keeps it warm on the device
    pipe = diffusers.AutoPipelineForText2Image.from_pipe(session.current().cache.get("paint", folder))
    pipe.set_progress_bar_config(disable=True)

    def plain():
        with silenced():  # random fp16 weights can overflow: numpy's cast warnings are not the point here
            pipe(
                PICTURE,
                num_inference_steps=steps,
                guidance_scale=7.5,
                width=size,
                height=size,
                generator=torch.Generator(args.device).manual_seed(1),
            )

    plain()
    magic()
    medians = alternated(args.runs, args.device, plain=plain, magic=magic)
    plain_step, magic_step = medians["plain"] / steps, medians["magic"] / steps
    print(
        f"paint, SD 1.5 {half(args.device)} {size}x{size}, {steps} steps: plain pipe {plain_step:.3f} s/step, "
        f"%%paint {magic_step:.3f} s/step (median of {args.runs})",
        flush=True,
    )
    return [
        row(
            f"`%%paint` / `pipe(...)` s/step, SD 1.5 at {size} px, {steps} steps",
            f"{magic_step:.3f} vs {plain_step:.3f} s/step",
            magic_step / plain_step,
        )
    ]


# -- stylize --------------------------------------------------------------------------------------------


def set_tf32(enabled):
    import torch

    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


def stylize(ip, args):
    import numpy as np
    import torch
    from PIL import Image
    from safetensors.torch import save_file

    from bench_stylize import plain_loop
    from creative_magics.nets.vgg import LAYER_INDEX, VGG19Features
    from creative_magics.tasks import stylize as task

    size, iterations = (64, 3) if args.quick else (512, 300)
    torch.manual_seed(0)
    net = VGG19Features().eval()  # full width, random weights
    folder = bench_home() / "vgg19-random"
    if not (folder / "model.safetensors").exists():
        folder.mkdir(parents=True, exist_ok=True)
        save_file({f"features.{k}": v.contiguous() for k, v in net.features.state_dict().items()}, str(folder / "model.safetensors"))
    rng = np.random.default_rng(0)
    content_image = Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    style_image = Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    ip.user_ns.update(gpu_content=content_image, gpu_style=style_image)
    line = f"--content gpu_content --style gpu_style -m {folder} --size {size} --steps {iterations} --seed 0"

    def ours():
        with silenced():
            ip.run_line_magic("stylize", line)

    features = net.features.to(args.device)
    style_indices = [LAYER_INDEX[name] + 1 for name in task.STYLE_LAYERS]  # after the ReLU
    content_index = LAYER_INDEX[task.CONTENT_LAYER] + 1
    variants = [  # (label, TF32, channels_last, AMP, %stylize runs too)
        ("float32, TF32 off", False, False, False, True),
        ("TF32", True, False, False, True),
        ("TF32 + channels_last", True, True, False, False),
        ("bf16 autocast (AMP) + channels_last", True, True, True, False),
    ]
    tf32_before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    rows = []
    try:
        for label, tf32, channels_last, amp, with_ours in variants:
            set_tf32(tf32)
            features.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
            content = task.to_tensor(content_image, args.device)
            style = task.to_tensor(style_image, args.device)

            def plain():
                plain_loop(features, content, style, iterations, style_indices, content_index, amp=amp, channels_last=channels_last)

            contenders = {"plain": plain, "ours": ours} if with_ours else {"plain": plain}
            for call in contenders.values():  # warm-up (cuDNN picks its algorithms)
                call()
            medians = alternated(args.runs, args.device, **contenders)
            shown = f"plain loop {medians['plain']:.2f} s"
            if with_ours:
                shown = f"%stylize {medians['ours']:.2f} s, " + shown
            print(f"stylize, VGG19 {size} px, {iterations} iterations, {label}: {shown} (median of {args.runs})", flush=True)
            if with_ours:
                rows.append(
                    row(
                        f"`%stylize` / plain loop, s per {iterations} iterations at {size} px, {label}",
                        f"{medians['ours']:.2f} vs {medians['plain']:.2f} s",
                        medians["ours"] / medians["plain"],
                    )
                )
            else:
                rows.append(row(f"plain loop, s per {iterations} iterations at {size} px, {label}", f"{medians['plain']:.2f} s", None))
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32_before
        features.to(memory_format=torch.contiguous_format)
    return rows


# -- compose --------------------------------------------------------------------------------------------


def compose(ip, args):
    import torch

    from bench_compose import DESCRIPTION, musicgen_small_folder
    from creative_magics import session
    from creative_magics.tasks import compose as task

    audio_seconds = 1.0 if args.quick else 10.0
    folder = musicgen_small_folder()
    ip.run_line_magic("config", f"CreativeMagics.dtype = '{half(args.device)}'")
    line = f"-m {folder} --seconds {audio_seconds} --seed 1 -o compose_result"

    def magic():
        with silenced():
            ip.run_cell_magic("compose", line, DESCRIPTION)

    magic()  # loads once; the cache keeps it warm on the device
    music_model = session.current().cache.get("compose", folder)
    model = music_model.model
    params = dict(ip.user_ns["compose_result"].recipe["params"])
    per_channel = task.codebooks_per_channel(model)
    frames = task.frames_for(params["seconds"], task.frame_rate(model), per_channel)
    kwargs = task.generate_kwargs(params, frames, per_channel)

    def plain():  # what a person writes by hand: tokenize, seed, generate
        inputs = music_model.tokenizer([DESCRIPTION], padding=True, return_tensors="pt").to(model.device)
        torch.manual_seed(1)
        with torch.inference_mode():
            model.generate(**inputs, **kwargs)

    plain()
    medians = alternated(args.runs, args.device, plain=plain, magic=magic)
    plain_rate, magic_rate = frames / medians["plain"], frames / medians["magic"]
    print(
        f"compose, MusicGen-small shape {half(args.device)}, {audio_seconds:g} s of audio ({frames} frames): "
        f"plain generate {plain_rate:.1f} frames/s, %%compose {magic_rate:.1f} frames/s (median of {args.runs})",
        flush=True,
    )
    return [
        row(
            f"`%%compose` / `model.generate` tokens/s, MusicGen-small shape, {audio_seconds:g} s of audio",
            f"{magic_rate:.1f} vs {plain_rate:.1f} frames/s",
            magic_rate / plain_rate,
        )
    ]


def main(argv=None):
    args = parse_args(argv)
    if args.device == "cuda":
        need_cuda()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import common  # noqa: F401  (offline, tiny profile and the bench home, as the other benchmarks)
    import torch
    from IPython.testing.globalipapp import start_ipython

    from run_all import table

    ip = start_ipython()
    ip.run_line_magic("load_ext", "creative_magics")
    ip.run_line_magic("config", f"CreativeMagics.device = '{args.device}'")
    where = torch.cuda.get_device_name() if args.device == "cuda" else "the CPU (plumbing check: these figures say nothing about a GPU)"
    print(f"torch {torch.__version__} on {where}; {args.runs} runs each, alternated{'; --quick' if args.quick else ''}", flush=True)
    sections = {"story": story, "paint": paint, "stylize": stylize, "compose": compose}
    rows = []
    for name in args.sections:
        rows += sections[name](ip, args)
        with silenced():
            ip.run_line_magic("creative", "evict all")  # the next section gets the whole GPU
        gc.collect()
        if args.device == "cuda":
            torch.cuda.empty_cache()
    print()
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
