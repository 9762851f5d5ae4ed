"""A warm `%%story -m local:MODEL` on a real OpenAI-compatible server (`transformers serve` on 127.0.0.1)
against the plain `openai` client's streamed call of the same request on the same server, interleaved in
one process. Issue W2 3/9 asks for an overhead under 2% and a time to first token within 10 ms of the
plain client's.

    python benchmarks/bench_remote.py [--runs 20] [--quick]   (--quick: the tiny chat model, 5 runs)

The server is started here and stopped by its PID (tests/servers.py). Both contenders send the same
fields with the same seed, so the server writes the same tokens for both.
"""

import argparse
import contextlib
import io
import statistics
import sys
import time
from pathlib import Path

from common import emit_result, gpt2_small_folder, report

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from servers import TransformersServe  # noqa: E402  (the tests' server starter, not a copy of it)

PROMPT = "Once upon a time, in a village at the edge of a pine forest,"


def main(runs=20, quick=False):
    import openai
    from IPython.testing.globalipapp import start_ipython

    from creative_magics import tiny, views

    if quick:
        folder, api, tokens = str(tiny.ensure("tiny-chat")), "chat", 16
    else:
        folder, api, tokens = gpt2_small_folder(), "completions", 64
    server = TransformersServe().start()
    try:
        ip = start_ipython()
        ip.run_line_magic("load_ext", "creative_magics")
        ip.run_line_magic("config", f"CreativeMagics.endpoints = {{'local': {{'base_url': '{server.url}'}}}}")
        line = f"-m local:{folder} --api {api} --seed 1 --max-new-tokens {tokens} -o r"

        first_text = {}
        update = views.StoryView.update

        def timed_update(self, result):  # the view's first update is the first token a person sees
            first_text.setdefault("at", time.perf_counter())
            return update(self, result)

        views.StoryView.update = timed_update

        def magic():
            with contextlib.redirect_stdout(io.StringIO()):
                ip.run_cell_magic("story", line, PROMPT)

        magic()  # the server loads the model once; both contenders find it warm
        recipe = ip.user_ns["r"].recipe
        used = recipe["params"]
        fields = {"temperature": used["temperature"], "top_p": used["top_p"], "max_tokens": used["max_new_tokens"], "seed": recipe["seed"]}
        client = openai.OpenAI(base_url=server.url, api_key="no-key", max_retries=0)

        def plain():
            """The plain client's streamed call; returns the time of its first piece of text."""
            first = None
            if api == "chat":
                stream = client.chat.completions.create(
                    model=folder, messages=[{"role": "user", "content": PROMPT}], stream=True, **fields
                )
                for chunk in stream:
                    if first is None and chunk.choices and chunk.choices[0].delta.content:
                        first = time.perf_counter()
            else:
                stream = client.completions.create(model=folder, prompt=PROMPT, stream=True, **fields)
                for chunk in stream:
                    if first is None and chunk.choices and chunk.choices[0].text:
                        first = time.perf_counter()
            return first

        def timed_magic():
            first_text.clear()
            magic()
            return first_text.get("at")

        plain()
        totals = {"plain": [], "magic": []}
        firsts = {"plain": [], "magic": []}
        order = [("plain", plain), ("magic", timed_magic)]
        for run in range(runs):
            for name, fn in order if run % 2 == 0 else order[::-1]:
                start = time.perf_counter()
                first = fn()
                totals[name].append(time.perf_counter() - start)
                firsts[name].append((first or time.perf_counter()) - start)
        glue = glue_share(magic, runs)
        views.StoryView.update = update
    finally:
        server.stop()
    median = {name: statistics.median(values) for name, values in totals.items()}
    ttft = {name: statistics.median(values) for name, values in firsts.items()}
    overhead = median["magic"] / median["plain"] - 1
    ttft_diff_ms = (ttft["magic"] - ttft["plain"]) * 1000
    what = "tiny chat model" if quick else "GPT-2 small shape"
    report(
        f"%%story -m local:MODEL vs the plain openai client, transformers serve on 127.0.0.1, {what}, {api}, {tokens} tokens, median of {runs}",
        [
            ("plain client, whole call", f"{median['plain'] * 1000:.1f} ms"),
            ("%%story, whole call", f"{median['magic'] * 1000:.1f} ms"),
            ("overhead", f"{overhead * 100:+.2f} %"),
            ("plain client, first token", f"{ttft['plain'] * 1000:.1f} ms"),
            ("%%story, first token shown", f"{ttft['magic'] * 1000:.1f} ms"),
            ("first token, difference", f"{ttft_diff_ms:+.1f} ms"),
            ("our code / the client's and server's work, inside the same calls", f"{glue * 100:.2f} %"),
        ],
    )
    emit_result(
        "warm `%%story -m local:MODEL` / plain `openai` client (streamed, same server)",
        f"our code {glue * 100:.2f}% of the client's and server's work inside the same calls; A/B {overhead * 100:+.1f}%; "
        f"first token {ttft_diff_ms:+.1f} ms",
        median["magic"] / median["plain"],
        glue=glue,
        ttft_difference_ms=ttft_diff_ms,
    )
    return overhead, ttft_diff_ms


def glue_share(magic, runs):
    """Inside %%story calls: the time in our code (the magic, the api, the task, the view) over the time in
    the openai client's own calls (the request and each streamed chunk: the client, the network and the
    server). A/B timings against a server swing with everything else on the machine; this share does not."""
    from creative_magics import remote

    spent = {"client": 0.0, "total": 0.0}
    request = remote.Connection.request

    class TimedStream:
        def __init__(self, stream):
            self.stream = stream

        def __iter__(self):
            iterator = iter(self.stream)
            while True:
                start = time.perf_counter()
                try:
                    item = next(iterator)
                except StopIteration:
                    spent["client"] += time.perf_counter() - start
                    return
                spent["client"] += time.perf_counter() - start
                yield item

        def close(self):
            self.stream.close()

    def timed_request(self, what, send, route=None):
        def timed_send(client, auth):
            start = time.perf_counter()
            try:
                return TimedStream(send(client, auth))
            finally:
                spent["client"] += time.perf_counter() - start

        return request(self, what, timed_send, route)

    remote.Connection.request = timed_request
    try:
        for _ in range(runs):
            start = time.perf_counter()
            magic()
            spent["total"] += time.perf_counter() - start
    finally:
        remote.Connection.request = request
    return (spent["total"] - spent["client"]) / spent["client"]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="the tiny chat model, 5 runs: checks the plumbing")
    args = parser.parse_args()
    main(5 if args.quick else args.runs, quick=args.quick)
