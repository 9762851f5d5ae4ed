"""creative_magics.batch on Ray: N tiny paints on 2 Ray workers (a local Ray, num_cpus=2) against the same
N one by one in this process, side by side in one run; and the per-item overhead of the Ray path (one
worker, one thread, against one-by-one calls here with one thread: the same work, so the difference is
what Ray adds per item: sending the item, pickling the result back, the gallery).

    python benchmarks/bench_batch.py [--quick] [--items N] [--steps S]

The workers are started and their models warmed by a first batch that is not timed (in a notebook the
second batch is the one that finds them warm). The tiny model's item takes a few tens of ms, so the
overhead measured here is compared with a real-size item's time, estimated in the report.
"""

import argparse
import time

from common import emit_result, report

# A real item, for the overhead's share: SD 1.5 at 512 px, 25 steps with CFG. On a T4 (fp16) about 3 s
# (estimated from public diffusers figures, not measured here); on this 2-core CPU 25 x 2 x 8.1 s (FACTS.md: one
# 512 px UNet step, batch 1, takes 8.1 s; CFG doubles it).
REAL_ITEM_S = {"T4 (estimated)": 3.0, "this CPU (from the measured UNet step)": 25 * 2 * 8.1}


def items(n, steps):
    return [{"prompt": f"a harbour at dawn, study {i}", "seed": 100 + i, "steps": steps, "width": 64, "height": 64} for i in range(n)]


def one_by_one(batch_items, threads=None):
    import torch

    import creative_magics

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        started = time.perf_counter()
        for item in batch_items:
            creative_magics.paint(**item)
        return time.perf_counter() - started
    finally:
        torch.set_num_threads(before)


def on_ray(batch_items, workers):
    import creative_magics

    started = time.perf_counter()
    done = creative_magics.batch("paint", batch_items, backend="ray", workers=workers, progress=False)
    elapsed = time.perf_counter() - started
    assert not done.failures, done.recipe["failed"]
    return elapsed


def main(quick=False, n=None, steps=2):
    import ray

    from creative_magics import ray_pool

    n = n or (8 if quick else 40)
    work = items(n, steps)
    one_by_one(work[:2])  # this process's model, warm
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        rounds = 1 if quick else 3
        times = {"here, one by one": [], "Ray, 2 workers": [], "here, one by one, 1 thread": [], "Ray, 1 worker": []}
        loads = {}
        # One pool per Ray at a time (two would wait on the same 2 CPUs): 2 workers, then 1. Each is started
        # and its models loaded by a first batch that is not timed; the timed runs alternate with the plain ones.
        for workers, plain, threads in ((2, "here, one by one", None), (1, "here, one by one, 1 thread", 1)):
            on_ray(work[:4], workers)
            for _ in range(rounds):
                times[plain].append(one_by_one(work, threads=threads))
                times[f"Ray, {workers} worker{'s' if workers > 1 else ''}"].append(on_ray(work, workers))
            loads[workers] = sum(row["loads"] for row in ray_pool.pool(None, workers).table())
        best = {name: min(ts) for name, ts in times.items()}
    finally:
        ray_pool.shutdown()
        ray.shutdown()
    per_item = {name: t / n for name, t in best.items()}
    throughput = {name: n / t for name, t in best.items()}
    overhead = per_item["Ray, 1 worker"] - per_item["here, one by one, 1 thread"]
    # Against the faster of the two one-by-one runs here (on a busy 2-core machine two torch threads can be
    # much slower than one), so the ratio is never flattered by a slow reference.
    here_best = max(throughput["here, one by one"], throughput["here, one by one, 1 thread"])
    speedup = throughput["Ray, 2 workers"] / here_best
    rows = [(f"{name}: {n} items", f"{best[name]:.2f} s, {per_item[name] * 1000:.1f} ms/item, {throughput[name]:.1f} items/s") for name in best]
    rows += [
        ("Ray 2 workers / here one by one, the faster of the two (throughput)", f"{speedup:.2f}x"),
        ("Ray 2 workers / Ray 1 worker (throughput)", f"{throughput['Ray, 2 workers'] / throughput['Ray, 1 worker']:.2f}x"),
        ("Ray per-item overhead (1 worker vs here, 1 thread each)", f"{overhead * 1000:.1f} ms"),
        ("model loads on the workers, all timed batches", f"{loads} (pool size: loads; once per worker)"),
    ]
    rows += [(f"overhead / a real item on {where} ({seconds:g} s)", f"{overhead / seconds:.2%}") for where, seconds in REAL_ITEM_S.items()]
    report(f"creative_magics.batch: {n} tiny paints ({steps} steps, 64 px), best of {rounds}", rows)
    share = overhead / REAL_ITEM_S["T4 (estimated)"]
    emit_result(
        "batch on Ray: 2 workers' throughput / one by one here (tiny paints); per-item overhead",
        f"{speedup:.2f}x; {overhead * 1000:.0f} ms/item = {share:.1%} of a T4 SD 1.5 item (est. 3 s)",
        speedup, overhead_ms=overhead * 1000, overhead_share_t4=share,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 items, one round")
    parser.add_argument("--items", type=int, default=None, help="items per batch (default 40; 8 with --quick)")
    parser.add_argument("--steps", type=int, default=2, help="steps per tiny paint")
    args = parser.parse_args()
    main(args.quick, args.items, args.steps)
