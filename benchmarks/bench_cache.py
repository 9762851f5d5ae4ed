"""Model cache: the second `get` of a model against the first (which loads it), for the tiny model
and a GPT-2 small-shaped one, in one process.

    python benchmarks/bench_cache.py [--quick]   (--quick: the tiny model only)
"""

import argparse
import time

from common import emit_result, gpt2_small_folder, report


def first_and_second(ref):
    from creative_magics import session

    session.reset()
    cache = session.current().cache
    t = time.perf_counter()
    cache.get("story", ref)
    first = time.perf_counter() - t
    t = time.perf_counter()
    cache.get("story", ref)
    second = time.perf_counter() - t
    return first, second


def main(quick=False):
    import creative_magics.loaders  # noqa: F401  (import cost is not a load)
    import transformers  # noqa: F401

    rows = []
    models = [("tiny-gpt2", "tiny-gpt2")] if quick else [("tiny-gpt2", "tiny-gpt2"), ("gpt2-small shape", gpt2_small_folder())]
    for label, ref in models:
        first_and_second(ref)  # warm the file system cache
        first, second = first_and_second(ref)
        rows += [
            (f"{label}: first get (load)", f"{first * 1000:.1f} ms"),
            (f"{label}: second get (hit)", f"{second * 1e6:.1f} us"),
            (f"{label}: second / first", f"{second / first:.2e}"),
        ]
    report("ModelCache.get: hit vs load", rows)
    emit_result(  # the last model measured: GPT-2 small shape (the tiny one with --quick)
        "second `get` of a model / first (load)",
        f"{second / first:.0e} ({second * 1e6:.0f} us vs {first * 1000:.0f} ms, {label})",
        second / first,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the tiny model only")
    main(parser.parse_args().quick)
