"""The model cache: one load per model, thread-safe, LRU eviction within a memory budget that never
takes a model from a running call, and GPU memory given back when models leave the GPU."""

import threading
import time
from dataclasses import dataclass, field

import pytest
import torch

from creative_magics import devices
from creative_magics.cache import ModelCache
from creative_magics.errors import CreativeError, ModelInUse
from creative_magics.models import ModelSpec
from creative_magics.settings import Settings

MB = 2**20


@dataclass(eq=False)
class FakeModel:
    """A model of a known size whose `.to` only records where it was sent (no GPU needed)."""

    weights: torch.nn.Module
    moves: list = field(default_factory=list)

    def to(self, device=None, dtype=None):
        self.moves.append(device)
        return self


def sized(megabytes):
    return FakeModel(torch.nn.Linear(megabytes * MB // 4, 1, bias=False))  # float32: 4 bytes a weight


class Loader:
    def __init__(self, sizes=None, delay=0.0):
        self.sizes = sizes or {}
        self.delay = delay
        self.calls = []
        self.lock = threading.Lock()

    def __call__(self, spec, dtype):
        with self.lock:
            self.calls.append(spec.source)
        time.sleep(self.delay)
        return sized(self.sizes.get(spec.source, 1))


def resolver(task, ref):
    return ModelSpec(name=ref, family="causal_lm", kind="local", source=ref)


def make_cache(loader, budget_gb=0.0, device="cpu"):
    settings = Settings(device=device, memory_budget_gb=budget_gb)
    return ModelCache(settings, resolver, loader)


def test_second_get_is_a_hit_and_loads_nothing():
    loader = Loader()
    cache = make_cache(loader)
    first = cache.get("story", "a")
    second = cache.get("story", "a")
    assert first is second
    assert loader.calls == ["a"]
    (row,) = cache.table()
    assert (row["name"], row["loads"], row["hits"]) == ("a", 1, 1)
    assert row["size_mb"] == pytest.approx(1.0)


def test_two_threads_getting_one_model_load_it_once():
    loader = Loader(delay=0.3)
    cache = make_cache(loader)
    start = threading.Barrier(4)
    got = []

    def worker():
        start.wait()
        got.append(cache.get("story", "shared"))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert loader.calls == ["shared"]
    assert len(got) == 4 and all(g is got[0] for g in got)
    assert cache.table()[0]["hits"] == 3


def test_a_failed_load_leaves_no_entry_and_can_be_retried():
    attempts = []

    def flaky(spec, dtype):
        attempts.append(1)
        if len(attempts) == 1:
            raise KeyboardInterrupt  # Ctrl-C in the middle of a load
        return sized(1)

    cache = make_cache(flaky)
    with pytest.raises(KeyboardInterrupt):
        cache.get("story", "m")
    assert cache.table() == []
    assert cache.get("story", "m") is not None
    assert len(attempts) == 2


def test_host_budget_drops_the_least_recently_used_model():
    loader = Loader(sizes={"a": 40, "b": 40, "c": 40})
    cache = make_cache(loader, budget_gb=100 / 1024)  # 100 MB: two of three fit
    cache.get("story", "a")
    cache.get("story", "b")
    cache.get("story", "a")  # a is now more recent than b
    cache.get("story", "c")
    assert sorted(r["name"] for r in cache.table()) == ["a", "c"]
    cache.get("story", "b")  # comes back with a second load
    assert loader.calls == ["a", "b", "c", "b"]


def test_eviction_never_takes_a_model_in_use():
    loader = Loader(sizes={"a": 60, "b": 60})
    cache = make_cache(loader, budget_gb=100 / 1024)
    with cache.use("story", "a"):
        cache.get("story", "b")  # over budget, but a is pinned by the running call
        assert sorted(r["name"] for r in cache.table()) == ["a", "b"]
        with pytest.raises(ModelInUse):
            cache.evict("a")
        assert cache.evict("all") == ["b"]
    assert [r["name"] for r in cache.table()] == ["a"]


def test_gpu_budget_moves_lru_models_to_the_cpu_and_empties_the_gpu_cache(monkeypatch):
    """Simulated CUDA device: placement is recorded, eviction offloads to the CPU and calls empty_cache."""
    monkeypatch.setattr(devices, "resolve_device", lambda setting="auto": "cuda")
    monkeypatch.setattr(devices, "resolve_dtype", lambda setting, device, preferred="float16": torch.float32)
    emptied = []
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(True))
    loader = Loader(sizes={"a": 60, "b": 60})
    cache = make_cache(loader, budget_gb=100 / 1024)
    with cache.use("story", "a") as a:
        assert a.moves == ["cuda"]  # placed lazily, when a call needs it
    with cache.use("story", "b") as b:
        assert b.moves == ["cuda"]
    assert a.moves == ["cuda", "cpu"]  # a was the least recently used: moved off the GPU, still warm
    rows = {r["name"]: r for r in cache.table()}
    assert rows["a"]["device"] == "cpu" and rows["b"]["device"] == "cuda"
    assert emptied, "GPU memory must be given back with torch.cuda.empty_cache()"
    with cache.use("story", "a"):  # back to the GPU without a reload; b makes room
        pass
    assert loader.calls == ["a", "b"]
    assert b.moves[-1] == "cpu"


def test_get_does_not_place_use_does(monkeypatch):
    monkeypatch.setattr(devices, "resolve_device", lambda setting="auto": "cuda")
    monkeypatch.setattr(devices, "resolve_dtype", lambda setting, device, preferred="float16": torch.float32)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    cache = make_cache(Loader(), budget_gb=10)
    model = cache.get("story", "a")
    assert model.moves == []
    with cache.use("story", "a"):
        assert model.moves == ["cuda"]


def test_evict_by_name_and_all_and_unknown():
    cache = make_cache(Loader())
    cache.get("story", "a")
    cache.get("story", "b")
    assert cache.evict("a") == ["a"]
    assert [r["name"] for r in cache.table()] == ["b"]
    with pytest.raises(CreativeError, match="no warm model named 'zzz'"):
        cache.evict("zzz")
    assert cache.evict("all") == ["b"]
    assert cache.table() == []


def test_move_all_moves_the_warm_models(monkeypatch):
    cache = make_cache(Loader(), budget_gb=10)
    model = cache.get("story", "a")
    monkeypatch.setattr(devices, "resolve_device", lambda setting="auto": "cuda")
    monkeypatch.setattr(devices, "resolve_dtype", lambda setting, device, preferred="float16": torch.float16)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    assert cache.move_all("cuda") == "cuda"
    assert model.moves == ["cuda"]
    assert cache.table()[0]["device"] == "cuda"


def test_real_tiny_model_loads_once_and_second_use_is_warm():
    from creative_magics import session

    session.reset()
    current = session.current()
    current.settings.profile = "tiny"
    first = current.cache.get("story", "gpt2")
    second = current.cache.get("story", "tiny-gpt2")
    assert first is second  # the alias and the tiny name are one model under the tiny profile
    (row,) = current.cache.table()
    assert (row["loads"], row["hits"], row["device"], row["dtype"]) == (1, 1, "cpu", "float32")
    session.reset()
