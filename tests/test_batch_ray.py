"""creative_magics.batch on Ray: a local Ray (`ray.init(num_cpus=2)`) with two workers and the tiny models.
Results equal the same calls one by one, bit for bit, in order; a second batch loads nothing; a worker
killed by its PID mid-batch loses nothing and duplicates nothing; a bad item fails alone; Ctrl-C keeps
the finished items. Every Ray process started here is stopped at the end (checked by PID)."""

import os
import signal

import numpy as np
import pytest
import ray

import creative_magics
from creative_magics import ray_pool, session
from creative_magics.batches import FailedItem

SMALL = {"steps": 2, "width": 64, "height": 64}


def alive(pid):
    """A process that exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray for this file, stopped at the end: its raylet, GCS and every worker process gone."""
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    node = ray._private.worker._global_node
    started = [info.process.pid for infos in node.all_processes.values() for info in infos]
    workers = []
    yield workers  # tests add the PIDs of the workers they met
    ray_pool.shutdown()  # kills the workers and waits until their processes are gone
    ray.shutdown()
    left = sorted({pid for pid in started + workers if alive(pid)})
    assert not left, f"Ray processes still running: {left}"
    assert not ray.is_initialized()


@pytest.fixture()
def pool(local_ray, ip):
    """The two-worker pool of this session (kept between tests, as in a notebook: its models stay warm)."""
    found = ray_pool.pool(None, 2, session.current())
    local_ray.extend(found.pids())
    return found


def single(items):
    """The same items as plain calls, one by one, here: with one thread each, as each Ray worker has (the
    floating-point sums of a matrix product depend on how many threads split it)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return [creative_magics.paint(**item) for item in items]
    finally:
        torch.set_num_threads(threads)


def same_pictures(a, b):
    return len(a.images) == len(b.images) and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a.images, b.images))


def loads(pool):
    return sum(row["loads"] for row in pool.table())


def test_a_ray_batch_equals_the_calls_one_by_one_bit_for_bit_in_order_and_a_second_batch_loads_nothing(pool, run):
    items = [{"prompt": f"a windmill {i}", "seed": 20 + i, **SMALL} for i in range(6)]
    before = len(session.current().results)
    done = creative_magics.batch("paint", items, backend="ray", workers=2, progress=False)
    assert len(done) == 6 and not done.failures and done.backend == "ray" and done.workers == 2
    assert len(session.current().results) == before + 6  # in the gallery, each once
    for batched, alone in zip(done, single(items)):
        assert same_pictures(batched, alone)
        assert batched.recipe["prompt"] == alone.recipe["prompt"] and batched.recipe["seed"] == alone.recipe["seed"]
        assert batched.recipe["params"] == alone.recipe["params"]
    rows = pool.table()
    assert len(rows) == 2 and all(row["warm"] == ["sd-turbo"] for row in rows)
    loaded = loads(pool)
    assert loaded <= 2  # once per worker that ran an item, never per item
    again = creative_magics.batch("paint", items, backend="ray", workers=2, progress=False)
    assert loads(pool) == loaded  # the second batch loaded nothing
    assert all(same_pictures(a, b) for a, b in zip(again, done))
    shown = run("%creative workers")
    assert shown.ok and "sd-turbo" in shown.out and "items done" in shown.out and str(rows[0]["pid"]) in shown.out


def test_a_bad_item_fails_alone_on_ray(pool):
    items = [{"prompt": "a moth", "seed": 1, **SMALL}, {"prompt": "a moth", "steps": 0}, {"prompt": "a moth", "model": "no-such/model-here"},
             {"prompt": "a moth", "seed": 2, **SMALL}]
    done = creative_magics.batch("paint", items, backend="ray", workers=2, progress=False)
    assert [isinstance(slot, FailedItem) for slot in done] == [False, True, True, False]
    assert "--steps" in done[1].error and all("\n" not in slot.error for slot in done.failures)
    assert [f["item"] for f in done.recipe["failed"]] == [1, 2]
    assert same_pictures(done[3], single([items[3]])[0])


def test_ctrl_c_on_a_ray_batch_keeps_the_finished_items(pool):
    items = [{"prompt": f"a bell {i}", "seed": i, **SMALL} for i in range(8)]
    finished = []

    def stop_after_two(index, slot):
        finished.append(index)
        if len(finished) == 2:
            raise KeyboardInterrupt

    before = len(session.current().results)
    done = creative_magics.batch("paint", items, backend="ray", workers=2, on_result=stop_after_two, progress=False)
    assert done.interrupted and len(done) == 8
    kept = [i for i, slot in enumerate(done) if not isinstance(slot, FailedItem)]
    assert kept == sorted(finished) and len(kept) == 2
    assert all(done[i].cancelled for i in range(8) if i not in kept) and len(done.cancelled) == 6
    assert len(session.current().results) == before + 2
    reference = single([items[i] for i in kept])
    assert all(same_pictures(done[i], r) for i, r in zip(kept, reference))
    # the workers are usable afterwards
    assert not creative_magics.batch("paint", items[:2], backend="ray", workers=2, progress=False).failures


def test_a_worker_killed_by_pid_mid_batch_loses_nothing_and_duplicates_nothing(pool, local_ray):
    items = [{"prompt": f"a comet {i}", "seed": 40 + i, "steps": 4, "width": 64, "height": 64} for i in range(10)]
    victim = pool.pids()[1]
    killed = []

    def kill_one(index, slot):
        if not killed:
            os.kill(victim, signal.SIGKILL)
            killed.append(index)

    before = len(session.current().results)
    dead_before = pool.dead
    done = creative_magics.batch("paint", items, backend="ray", workers=2, on_result=kill_one, progress=False)
    assert killed and not alive(victim)
    assert not done.failures and not done.cancelled and len(done) == 10
    assert pool.dead == dead_before + 1
    assert len(session.current().results) == before + 10  # nothing twice in the gallery
    assert [slot.recipe["seed"] for slot in done] == [item["seed"] for item in items]
    for batched, alone in zip(done, single(items)):
        assert same_pictures(batched, alone)
    # the next batch replaces the dead worker
    again = creative_magics.batch("paint", items[:2], backend="ray", workers=2, progress=False)
    assert not again.failures and pool.size == 2
    local_ray.extend(pool.pids())


def test_paint_batch_magic_on_ray_with_the_line_flags_as_defaults(pool, ip, run):
    ip.user_ns["prompts"] = ["a lantern", {"prompt": "a kettle", "seed": 12}]
    ran = run("%paint --batch prompts --seed 3 --steps 2 --width 64 --height 64 -o made --ray --workers 2")
    assert ran.ok, ran.err
    made = ip.user_ns["made"]
    assert "on Ray (2 workers): 2 done" in ran.out
    assert [s.recipe["seed"] for s in made] == [3, 12]
    assert same_pictures(made[0], single([{"prompt": "a lantern", "seed": 3, **SMALL}])[0])


def test_an_init_image_named_in_the_notebook_travels_with_the_items(pool, ip, run):
    from PIL import Image

    ip.user_ns["photo"] = Image.new("RGB", (64, 64), (200, 40, 40))
    ip.user_ns["prompts"] = ["a red barn", "a red kite"]
    ran = run("%paint --batch prompts --init photo --strength 0.5 --seed 2 --steps 2 -o redone --ray")
    assert ran.ok, ran.err
    redone = ip.user_ns["redone"]
    assert not redone.failures, redone.recipe["failed"]
    alone = single([{"prompt": p, "init": ip.user_ns["photo"], "strength": 0.5, "seed": 2, "steps": 2} for p in ip.user_ns["prompts"]])
    assert all(same_pictures(a, b) for a, b in zip(redone, alone))
