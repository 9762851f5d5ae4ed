"""Run every overhead-ratio benchmark (issues 1/8 to 7/8, and W2's), each in its own Python process so thread
settings and imports do not leak from one to the next, and print their headline figures as one table.

    python benchmarks/run_all.py                     # everything, as README's Performance table was measured
    python benchmarks/run_all.py --quick             # fewer repeats, smaller models: checks the plumbing only
    python benchmarks/run_all.py --only load,cache   # some of them (names below)

Each benchmark prints its own report, then its headline as a last line `RESULT {json}` (see
common.emit_result); that line is what the table is made of. A benchmark that fails gets a row that
says so, and the exit status is 1. Full-size GPU measurements are in benchmarks/gpu.py.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULT_PREFIX = "RESULT "  # as in common.py (not imported: it sets environment defaults on import)

# name -> (script, extra arguments for a full run as README reports it)
BENCHMARKS = {
    "load": ("bench_load.py", []),
    "cache": ("bench_cache.py", []),
    "offline": ("bench_offline.py", []),
    "memory": ("bench_memory.py", []),  # W2 2/9: the estimate before loading vs RSS
    "story": ("bench_story.py", []),
    "paint": ("bench_paint.py", ["--threads", "1"]),
    "paint-canvas": ("bench_paint_canvas.py", ["--threads", "1"]),
    "stylize": ("bench_stylize.py", []),
    "feedforward": ("bench_feedforward.py", ["--gatys-steps", "30"]),  # every L-BFGS iteration does the same work: 30 timed, scaled to 300
    "compose": ("bench_compose.py", []),
    "finetune": ("bench_finetune.py", []),
    "remote": ("bench_remote.py", []),
    "midi": ("bench_midi.py", []),  # W2 6/9: %%compose --midi
    "compose-long": ("bench_compose.py", ["--long"]),  # W2 6/9: longer than the window
    "batch": ("bench_batch.py", []),  # W2 8/9: creative_magics.batch on Ray workers vs one by one
    "show-probs": ("bench_show_probs.py", []),  # W2 7/9: %%story --show-probs
}


def parse_result(stdout):
    """The headline dict from a benchmark's output: its last `RESULT {json}` line, or None."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    return None


def run_one(name, quick, timeout):
    script, extra = BENCHMARKS[name]
    command = [sys.executable, str(HERE / script), *extra, *(["--quick"] if quick else [])]
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=HERE, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"what": name, "figure": f"did not finish within {timeout:.0f} s", "ratio": None, "failed": True}, ""
    elapsed = time.perf_counter() - start
    shown = "\n".join(line for line in done.stdout.splitlines() if not line.startswith(RESULT_PREFIX))
    result = parse_result(done.stdout) if done.returncode == 0 else None
    if result is None:
        last = next((line for line in reversed(done.stderr.splitlines()) if line.strip()), "no RESULT line")
        result = {"what": name, "figure": f"failed (exit {done.returncode}): {last.strip()[:120]}", "ratio": None, "failed": True}
    result["seconds"] = elapsed
    return result, shown


def table(rows):
    """rows: (what, figure, ratio, benchmark) -> a Markdown table, as README's Performance section has."""
    lines = ["| what | figure | ratio | benchmark |", "|---|---|---|---|"]
    for what, figure, ratio, bench in rows:
        shown = "-" if ratio is None else f"{ratio:.4g}"
        lines.append(f"| {what} | {figure} | {shown} | `{bench}` |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and small models: a smoke run, not figures")
    parser.add_argument("--only", default="", help=f"comma-separated names among: {', '.join(BENCHMARKS)}")
    parser.add_argument("--timeout", type=float, default=None, help="seconds one benchmark may take (default: no limit)")
    parser.add_argument("--json", dest="json_path", default=None, help="also write the headlines to this JSON file")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose among {', '.join(BENCHMARKS)}")

    rows, results = [], {}
    for name in names:
        print(f"== {name} ({BENCHMARKS[name][0]}{', --quick' if args.quick else ''})", flush=True)
        result, shown = run_one(name, args.quick, args.timeout)
        if shown.strip():
            print(shown, flush=True)
        print(f"   [{result['seconds']:.0f} s]" if "seconds" in result else "", flush=True)
        results[name] = result
        rows.append((result["what"], result["figure"], result["ratio"], BENCHMARKS[name][0]))

    print(f"\nHeadline figures{' (--quick: plumbing check, the figures mean little)' if args.quick else ''}\n")
    print(table(rows))
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 1 if any(r.get("failed") for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
