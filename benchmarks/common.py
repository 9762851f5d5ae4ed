"""Shared helpers for the benchmarks: offline tiny setup, interleaved timing, a table, the RESULT line."""

import json
import os
import statistics
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("CREATIVE_MAGICS_PROFILE", "tiny")
os.environ.setdefault("CREATIVE_MAGICS_HOME", os.path.join(tempfile.gettempdir(), "creative_magics_bench_home"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def interleaved(runs, **contenders):
    """Time each contender `runs` times, alternating them (and their order, so neither always runs
    second on warm caches) so drift hits all alike. Returns medians (s)."""
    times = {name: [] for name in contenders}
    order = list(contenders.items())
    for run in range(runs):
        for name, fn in order if run % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def report(title, rows):
    """rows: (label, value) pairs, printed as an aligned table."""
    print(f"\n{title}")
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")


RESULT_PREFIX = "RESULT "


def emit_result(what, figure, ratio, **details):
    """Print the headline figure as the last line, `RESULT {json}`, for benchmarks/run_all.py:
    `what` is measured, `figure` says it for people, `ratio` is the number it comes down to."""
    record = {"what": what, "figure": figure, "ratio": ratio, **details}
    print(RESULT_PREFIX + json.dumps(record, default=str), flush=True)
    return record


def gpt2_small_folder():
    """A GPT-2 small-shaped model (12 layers, 768 wide) with random weights and the tiny tokenizer,
    saved once as a normal Hugging Face folder; timing does not depend on the weights' values."""
    from pathlib import Path

    folder = Path(os.environ["CREATIVE_MAGICS_HOME"]) / "bench" / "gpt2-small-random"
    if (folder / "config.json").exists():
        return str(folder)
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    from creative_magics import tiny

    tokenizer = AutoTokenizer.from_pretrained(tiny.ensure("tiny-gpt2"))
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), bos_token_id=0, eos_token_id=0))
    model.generation_config.suppress_tokens = None
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)
