"""Model cache: the second `get` of a model against the first (which loads it), for the tiny model
and a GPT-2 small-shaped one, in one process."""

import time

from common import gpt2_small_folder, report


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


def main():
    import creative_magics.loaders  # noqa: F401  (import cost is not a load)
    import transformers  # noqa: F401

    rows = []
    for label, ref in (("tiny-gpt2", "tiny-gpt2"), ("gpt2-small shape", gpt2_small_folder())):
        first_and_second(ref)  # warm the file system cache
        first, second = first_and_second(ref)
        rows += [
            (f"{label}: first get (load)", f"{first * 1000:.1f} ms"),
            (f"{label}: second get (hit)", f"{second * 1e6:.1f} us"),
            (f"{label}: second / first", f"{second / first:.2e}"),
        ]
    report("ModelCache.get: hit vs load", rows)


if __name__ == "__main__":
    main()
