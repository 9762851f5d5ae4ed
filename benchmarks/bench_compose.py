"""A warm `%%compose` call (progress bar on, as people use it) against the plain `model.generate` call
with the same inputs, interleaved in one process. Issue 6/8 asks for an overhead under 2%.

    python benchmarks/bench_compose.py                 # musicgen-small shape, random weights, on the CPU
    python benchmarks/bench_compose.py --shape tiny    # the tiny test model (quick; overhead is a larger share)
    python benchmarks/bench_compose.py --gpu           # also seconds of audio per second on a GPU, if one is here
    python benchmarks/bench_compose.py --quick         # the tiny model, 1 s of audio, 3 runs: checks the plumbing
    python benchmarks/bench_compose.py --long          # a 60 s piece window after window vs one plain 30 s window:
                                                       # seconds of audio per second of work (add --quick: tiny, 45 s)

Timing does not depend on the weights' values, so random weights in the real shapes stand in for the
released checkpoints (which this machine cannot download). The overhead is a ratio of CPU time (the
process's own, with one torch thread), so other work on a shared machine does not skew it; wall-clock
medians are shown beside it.
"""

import argparse
import contextlib
import io
import os
import statistics
import time

import torch

from common import emit_result, report

DESCRIPTION = "lo-fi piano, rainy evening, 80 bpm"


def musicgen_small_folder():
    """A MusicGen-small-shaped model (T5-base text encoder, the 32 kHz EnCodec, a 24-layer 1024-wide decoder
    over 4 codebooks of 2048) with random weights and the tiny tokenizer, saved once in float16."""
    from pathlib import Path

    folder = Path(os.environ["CREATIVE_MAGICS_HOME"]) / "bench" / "musicgen-small-random"
    if (folder / "config.json").exists():
        return str(folder)
    from transformers import (
        AutoProcessor,
        EncodecConfig,
        GenerationConfig,
        MusicgenConfig,
        MusicgenDecoderConfig,
        MusicgenForConditionalGeneration,
        T5Config,
    )

    from creative_magics import tiny
    from creative_magics.tiny.music import random_codebooks

    processor = AutoProcessor.from_pretrained(tiny.ensure("tiny-musicgen"))
    text = T5Config(vocab_size=len(processor.tokenizer), d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_heads=12)
    codec = EncodecConfig(
        sampling_rate=32000,
        upsampling_ratios=[8, 5, 4, 4],
        codebook_size=2048,
        target_bandwidths=[2.2],
        hidden_size=128,
        num_filters=64,
        num_lstm_layers=2,
        use_causal_conv=False,
        use_conv_shortcut=False,
        norm_type="weight_norm",
        normalize=False,
    )
    decoder = MusicgenDecoderConfig(
        vocab_size=2048, num_codebooks=4, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, ffn_dim=4096,
        pad_token_id=2048, bos_token_id=2048,
    )
    torch.manual_seed(0)
    model = MusicgenForConditionalGeneration(MusicgenConfig(text_encoder=text, audio_encoder=codec, decoder=decoder)).eval()
    random_codebooks(model)
    model.generation_config = GenerationConfig(
        bos_token_id=2048, decoder_start_token_id=2048, pad_token_id=2048, do_sample=True, guidance_scale=3.0, max_length=1500
    )
    folder.mkdir(parents=True, exist_ok=True)
    model.half().save_pretrained(folder)
    processor.save_pretrained(folder)
    return str(folder)


def overhead(model_ref, seconds, runs):
    from IPython.testing.globalipapp import start_ipython

    from creative_magics import session
    from creative_magics.tasks import compose as task

    ip = start_ipython()
    ip.run_line_magic("load_ext", "creative_magics")
    line = f"-m {model_ref} --seconds {seconds} --seed 1 -o r"

    def magic():
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            ip.run_cell_magic("compose", line, DESCRIPTION)

    magic()  # load once; the cache keeps it warm
    music_model = session.current().cache.get("compose", model_ref)
    model = music_model.model
    recipe = ip.user_ns["r"].recipe
    per_channel = task.codebooks_per_channel(model)
    frames = task.frames_for(recipe["params"]["seconds"], task.frame_rate(model), per_channel)
    kwargs = task.generate_kwargs(dict(recipe["params"]), frames, per_channel)
    def plain():  # what a person writes by hand: tokenize, seed, generate
        inputs = music_model.tokenizer([DESCRIPTION], padding=True, return_tensors="pt")
        torch.manual_seed(1)
        with torch.inference_mode():
            return model.generate(**inputs, **kwargs)

    assert torch.equal(plain()[0].float(), torch.from_numpy(ip.user_ns["r"].audio))  # the very same work
    times = interleaved_cpu(runs, plain=plain, magic=magic)
    (row,) = session.current().cache.table()
    ratio = min(times["magic"]["cpu"]) / min(times["plain"]["cpu"]) - 1
    magic_own, inner = own_time(model, magic, task)
    plain_own, _ = own_time(model, plain, task)
    times["own"] = (magic_own - plain_own, inner)
    return times, ratio, row


def own_time(model, call, task, runs=5):
    """CPU time a call spends outside `model.generate` (plus, for %%compose, in the per-step watcher and
    progress bar that run inside it), measured inside the call, so that what other processes do to the
    machine cancels out. Returns the medians (own s, generate s)."""
    made = task._watcher_class
    spent = {"generate": 0.0, "watcher": 0.0}
    generate = model.generate

    def timed_generate(*args, **kwargs):
        start = time.process_time()
        try:
            return generate(*args, **kwargs)
        finally:
            spent["generate"] += time.process_time() - start

    def timed_watcher_class():
        base = made()

        class Timed(base):
            def __call__(self, *args, **kwargs):
                start = time.process_time()
                try:
                    return super().__call__(*args, **kwargs)
                finally:
                    spent["watcher"] += time.process_time() - start

        return Timed

    own, inner = [], []
    model.generate, task._watcher_class = timed_generate, timed_watcher_class
    try:
        for _ in range(runs):
            spent.update(generate=0.0, watcher=0.0)
            start = time.process_time()
            call()
            total = time.process_time() - start
            own.append(total - spent["generate"] + spent["watcher"])
            inner.append(spent["generate"] - spent["watcher"])
    finally:
        del model.generate
        task._watcher_class = made
    return statistics.median(own), statistics.median(inner)


def interleaved_cpu(runs, **contenders):
    """Time each contender `runs` times, alternating them. Returns their CPU and wall times (s)."""
    times = {name: {"cpu": [], "wall": []} for name in contenders}
    for _ in range(runs):
        for name, fn in contenders.items():
            cpu, wall = time.process_time(), time.perf_counter()
            fn()
            times[name]["cpu"].append(time.process_time() - cpu)
            times[name]["wall"].append(time.perf_counter() - wall)
    return times


def gpu_speed(folder, seconds=10.0, runs=3):
    """Seconds of audio per second of compute on the GPU, float16, batch of one, guidance on."""
    from transformers import AutoProcessor, MusicgenForConditionalGeneration

    processor = AutoProcessor.from_pretrained(folder)
    model = MusicgenForConditionalGeneration.from_pretrained(folder, dtype=torch.float16).to("cuda").eval()
    inputs = processor(text=[DESCRIPTION], padding=True, return_tensors="pt").to("cuda")
    tokens = int(round(seconds * model.config.audio_encoder.frame_rate)) + model.decoder.num_codebooks - 1
    model.generate(**inputs, max_new_tokens=16)  # warm up kernels
    times = []
    for _ in range(runs):
        torch.cuda.synchronize()
        start = time.perf_counter()
        audio = model.generate(**inputs, max_new_tokens=tokens)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    made = audio.shape[-1] / model.config.audio_encoder.sampling_rate
    return made / min(times), torch.cuda.get_device_name()


def long_speed(model_ref, seconds):
    """Seconds of audio per CPU second: a warm `creative_magics.compose` of `seconds`, window after window,
    against one plain `model.generate` of a whole window (what one call can make). Returns the two rows."""
    import creative_magics
    from creative_magics import session
    from creative_magics.tasks import compose as task

    creative_magics.compose(DESCRIPTION, model=model_ref, seconds=0.1, seed=1)  # load once; the cache keeps it warm
    music_model = session.current().cache.get("compose", model_ref)
    model = music_model.model
    per_channel = task.codebooks_per_channel(model)
    window = task.window_frames(model)
    values = dict(task.HOUSE_DEFAULTS, guidance=3.0, n=1)

    def plain():
        inputs = music_model.tokenizer([DESCRIPTION], padding=True, return_tensors="pt")
        torch.manual_seed(1)
        with torch.inference_mode():
            return model.generate(**inputs, **task.generate_kwargs(values, window, per_channel))

    def windowed():
        return creative_magics.compose(DESCRIPTION, model=model_ref, seconds=seconds, seed=1, on_progress=lambda done, total: None)

    rates = {}
    for name, call in (("plain", plain), ("windowed", windowed)):
        cpu, wall = time.process_time(), time.perf_counter()
        out = call()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        made = (out.shape[-1] if name == "plain" else out.audio.shape[-1]) / model.config.audio_encoder.sampling_rate
        rates[name] = (made, cpu, wall)
    return rates, window / task.frame_rate(model)


def main_long(args):
    small = args.shape == "small"
    seconds = args.seconds or (60.0 if small else 45.0)
    folder = musicgen_small_folder() if small else None
    rates, window = long_speed(folder if small else "musicgen-small", seconds)
    shape = "MusicGen-small shape (random weights)" if small else "the tiny MusicGen"
    (plain_s, plain_cpu, plain_wall), (long_s, long_cpu, long_wall) = rates["plain"], rates["windowed"]
    plain_rate, long_rate = plain_s / plain_cpu, long_s / long_cpu
    ratio = long_rate / plain_rate
    report(
        f"long MusicGen, {shape} on the CPU ({args.threads} thread): audio seconds per CPU second",
        [
            (f"plain generate, one {window:g} s window", f"{plain_s:.1f} s of audio in {plain_cpu:.1f} s CPU ({plain_wall:.1f} s wall): {plain_rate:.3f}"),
            (f"%%compose --seconds {seconds:g}, window after window", f"{long_s:.1f} s of audio in {long_cpu:.1f} s CPU ({long_wall:.1f} s wall): {long_rate:.3f}"),
            ("windowed / plain", f"{ratio:.3f}  (each next window re-reads its {10:g} s of overlap and decodes once more)"),
        ],
    )
    emit_result(
        "windowed long MusicGen / plain `generate` in one window, audio seconds per CPU second",
        f"{long_rate:.3g} vs {plain_rate:.3g} s of audio per CPU s ({ratio * 100:.0f}%), {seconds:g} s piece, {shape}",
        ratio,
        audio_per_cpu_s=long_rate,
        plain_audio_per_cpu_s=plain_rate,
    )
    return ratio


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=["small", "tiny"], default="small")
    parser.add_argument("--seconds", type=float, default=None, help="seconds of audio a call makes (default: 1 small, 4 tiny)")
    parser.add_argument("--runs", type=int, default=None, help="timed runs of each (default: 7 small, 21 tiny)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: CPU time then measures the work alone)")
    parser.add_argument("--gpu", action="store_true", help="also measure seconds of audio per second on a GPU")
    parser.add_argument("--quick", action="store_true", help="the tiny model, 1 s of audio, 3 runs")
    parser.add_argument("--long", action="store_true", help="a piece longer than the window vs one plain window (audio s per s)")
    args = parser.parse_args(argv)
    if args.long:
        if args.quick:
            args.shape = "tiny"
        torch.set_num_threads(args.threads)
        return main_long(args)
    if args.quick:
        args.shape, args.seconds, args.runs = "tiny", args.seconds or 1.0, args.runs or 3
    torch.set_num_threads(args.threads)
    small = args.shape == "small"
    seconds = args.seconds or (1.0 if small else 4.0)
    runs = args.runs or (7 if small else 21)
    folder = musicgen_small_folder() if small or args.gpu else None
    model_ref = folder if small else "musicgen-small"  # the tiny profile makes the alias the tiny model
    times, ratio, row = overhead(model_ref, seconds, runs)
    shape = "MusicGen-small shape (random weights)" if small else "the tiny MusicGen"

    def cell(name):
        cpu, wall = times[name]["cpu"], times[name]["wall"]
        return f"{min(cpu) * 1000:.1f} ms CPU, best (median {statistics.median(cpu) * 1000:.1f}; wall median {statistics.median(wall) * 1000:.1f})"

    own, inner = times["own"]
    median_ratio = statistics.median(times["magic"]["cpu"]) / statistics.median(times["plain"]["cpu"]) - 1
    rows = [
        ("plain generate", cell("plain")),
        ("%%compose (progress bar on)", cell("magic")),
        ("overhead (best CPU time)", f"{ratio * 100:+.2f} %  (of the medians: {median_ratio * 100:+.2f} %)"),
        ("added code, measured inside", f"{own * 1000:.2f} ms a call = {own / inner * 100:.2f} % of generate's {inner * 1000:.0f} ms"),
        ("loads / hits", f"{row['loads']} / {row['hits']}"),
    ]
    title = f"%%compose vs model.generate, {shape} on the CPU ({args.threads} thread), {seconds:g} s of audio, {runs} runs each"
    report(title, rows)
    emit_result(
        "warm `%%compose` / plain `model.generate`, best CPU time",
        f"overhead {ratio * 100:+.1f}% (our code {own / inner * 100:.2f}% of generate's work), {shape}",
        ratio + 1,
        own_share=own / inner,
    )
    if args.gpu:
        if torch.cuda.is_available():
            speed, name = gpu_speed(folder)
            report("MusicGen-small shape on the GPU, float16, 10 s of audio", [("device", name), ("audio s per compute s", f"{speed:.2f}")])
        else:
            print("\nNo GPU here: the seconds-of-audio-per-second measurement was skipped.")
    return ratio


if __name__ == "__main__":
    main()
