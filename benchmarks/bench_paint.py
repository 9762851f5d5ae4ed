"""%%paint's overhead: a warm `%%paint` cell against the plain diffusers call with the same inputs, in
one process; and image-to-image after text-to-image loads nothing.

    python benchmarks/bench_paint.py [--runs 30] [--profile tiny] [--threads N] [--quick]

Two figures per case:
- A/B: the %%paint cell and the plain `pipe(...)` call, interleaved; the ratio of their fastest runs
  (min of N, the estimate least moved by other processes) and of their medians.
- glue: inside the same %%paint runs, the time outside the diffusers pipeline's own work (flag parsing,
  defaults, cache, recipe, display) plus our step callback (progress, previews), over the pipeline's
  work. Other processes slow both parts alike, so this ratio holds on a busy machine.
The issue asks for under 2%. The tiny profile (default) runs anywhere; `--profile default` uses the
real models (a GPU is advised). No GPU was available when this was written: the GPU and
`--compile` figures of the issue are not measured here.
"""

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time

PROMPT = "a lighthouse on a cliff at sunset, oil painting"


@contextlib.contextmanager
def silenced():
    """%%paint draws a progress bar on stderr and prints its result: send them nowhere."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        yield


class Stopwatch:
    """Time spent inside a wrapped callable while armed (the pipeline call, our step callback)."""

    def __init__(self):
        self.armed = False
        self.spent = 0.0

    def wrap(self, func):
        def timed(*args, **kwargs):
            if not self.armed:
                return func(*args, **kwargs)
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                self.spent += time.perf_counter() - start

        timed.__wrapped__ = func
        return timed


def run_case(ip, pipe, case, runs, pipeline_clock, callback_clock):
    import torch

    line = f"-m {case['model']} --steps {case['steps']} --guidance {case['guidance']} --seed 1"
    if case.get("scheduler"):
        line += f" --scheduler {case['scheduler']}"

    def magic():
        pipeline_clock.spent = callback_clock.spent = 0.0
        pipeline_clock.armed = callback_clock.armed = True
        start = time.perf_counter()
        ip.run_cell_magic("paint", line, PROMPT)
        total = time.perf_counter() - start
        pipeline_clock.armed = callback_clock.armed = False
        return total, pipeline_clock.spent, callback_clock.spent

    def plain():
        start = time.perf_counter()
        pipe(
            PROMPT,
            num_inference_steps=case["steps"],
            guidance_scale=case["guidance"],
            width=case["size"],
            height=case["size"],
            generator=torch.Generator("cpu").manual_seed(1),
        )
        return time.perf_counter() - start

    with silenced():
        for _ in range(3):  # warm both
            magic()
            plain()
        ours, theirs, glue, glue_s = [], [], [], []
        for index in range(runs):
            if index % 2:
                theirs.append(plain())
                total, inside, callback = magic()
            else:
                total, inside, callback = magic()
                theirs.append(plain())
            ours.append(total)
            glue_s.append((total - inside) + callback)
            glue.append(glue_s[-1] / (inside - callback))
    return {
        "ours_min": min(ours),
        "theirs_min": min(theirs),
        "ours_median": statistics.median(ours),
        "theirs_median": statistics.median(theirs),
        "glue": statistics.median(glue),
        "glue_s": statistics.median(glue_s),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--profile", default="tiny", choices=("tiny", "default"))
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default); 1 is steadier on a busy machine")
    parser.add_argument("--quick", action="store_true", help="3 runs, the first case only: checks the plumbing")
    args = parser.parse_args()
    if args.quick:
        args.runs = 3
    os.environ.setdefault("HF_HUB_OFFLINE", "1" if args.profile == "tiny" else "0")
    os.environ["CREATIVE_MAGICS_PROFILE"] = args.profile
    os.environ.setdefault("CREATIVE_MAGICS_HOME", os.path.join(tempfile.gettempdir(), "creative_magics_test_home"))
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

    import torch
    from IPython.testing.globalipapp import start_ipython

    from creative_magics import session, views
    from creative_magics.tasks import paint as paint_task

    if args.threads:
        torch.set_num_threads(args.threads)
    ip = start_ipython()
    ip.run_line_magic("load_ext", "creative_magics")
    cache = session.current().cache
    with silenced():
        ip.run_cell_magic("paint", "-m sd15 --steps 1 --seed 1", "warm up")
    (entry,) = [e for e in cache.entries() if e.task == "paint"]
    pipe = entry.obj  # the warm pipeline: the plain side uses exactly these weights
    size = paint_task.native_size(pipe) if args.profile == "tiny" else 512

    import diffusers

    pipeline_clock, callback_clock = Stopwatch(), Stopwatch()
    pipeline_class = type(pipe)
    pipeline_class.__call__ = pipeline_clock.wrap(pipeline_class.__call__)
    paint_task._Steps.__call__ = callback_clock.wrap(paint_task._Steps.__call__)

    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {entry.device}, profile {args.profile}, "
        f"{size}x{size}, {args.runs} runs each, interleaved; plain side without diffusers' progress bar, %%paint with its own"
    )
    cases = [
        {"name": "SD 1.5 style: 20 steps, guidance 7.5", "model": "sd15", "steps": 20, "guidance": 7.5},
        {"name": "  same, scheduler swapped to dpm++", "model": "sd15", "steps": 20, "guidance": 7.5, "scheduler": "dpm++"},
        {"name": "  same, notebook view (previews, live display)", "model": "sd15", "steps": 20, "guidance": 7.5, "notebook": True},
        {"name": "SD-Turbo style: 1 step, guidance 0", "model": "sd-turbo", "steps": 1, "guidance": 0.0},
    ]
    headline = None
    for case in cases[:1] if args.quick else cases:
        case["size"] = size
        scheduler = pipe.scheduler
        if case.get("scheduler"):  # swapped by hand on the plain side, as the diffusers docs show
            scheduler = diffusers.DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
        plain_pipe = diffusers.AutoPipelineForText2Image.from_pipe(pipe, scheduler=scheduler)
        plain_pipe.set_progress_bar_config(disable=True)
        rich = views.rich_frontend
        if case.get("notebook"):
            views.rich_frontend = lambda: True  # displays go to the terminal's stdout (silenced) instead of a kernel
        try:
            figures = run_case(ip, plain_pipe, case, args.runs, pipeline_clock, callback_clock)
        finally:
            views.rich_frontend = rich
        best = figures["ours_min"] / figures["theirs_min"] - 1
        typical = figures["ours_median"] / figures["theirs_median"] - 1
        print(
            f"{case['name']:<47} %%paint {figures['ours_min'] * 1000:7.1f} ms  plain {figures['theirs_min'] * 1000:7.1f} ms (fastest)  "
            f"A/B {best * 100:+5.1f}% (medians {typical * 100:+5.1f}%)  glue {figures['glue'] * 100:.2f}% ({figures['glue_s'] * 1000:.1f} ms)  "
            f"{'ok' if figures['glue'] < 0.02 else 'OVER 2%'}"
        )
        if headline is None:  # the first case, SD 1.5 style, is the one README quotes
            headline = (case["name"], figures, best)

    # Image-to-image after text-to-image: a view of the same weights, nothing loaded.
    from PIL import Image

    def loads():
        return [r["loads"] for r in cache.table() if r["task"] == "paint"]

    before = loads()
    folder = tempfile.mkdtemp()
    Image.new("RGB", (size, size), (120, 80, 40)).save(os.path.join(folder, "init.png"))
    line = f"-m sd15 --init {folder}/init.png --strength 0.5 --steps 4 --seed 1"
    with silenced():
        start = time.perf_counter()
        ip.run_cell_magic("paint", line, "a watercolor")
        first = time.perf_counter() - start
    view = paint_task.view(pipe, "img2img")
    print(
        f"image-to-image after text-to-image: loads {before} -> {loads()}, weights shared with the warm pipeline: "
        f"{paint_task.shares_weights(pipe, view)}, first image-to-image cell {first * 1000:.0f} ms"
    )
    from common import emit_result  # after the environment above is set (common sets defaults of its own)

    name, figures, best = headline
    emit_result(
        f"warm `%%paint` / plain `pipe(...)`, {name}",
        f"glue {figures['glue'] * 100:+.2f}% ({figures['glue_s'] * 1000:.1f} ms outside the pipeline's work); A/B {best * 100:+.1f}% (fastest runs)",
        figures["ours_min"] / figures["theirs_min"],
        glue=figures["glue"],
        profile=args.profile,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
