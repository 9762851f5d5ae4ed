"""Memory before loading: what a model will take is estimated from its files (safetensors headers, GGUF
tensor tables, the hub's headers), compared with what is free (a container's cgroup limit included) and the
memory budget, other models are evicted when that makes room, and a model that cannot fit is refused in
one line; a kernel in a memory-limited cgroup lives on, where loading would have had it OOM-killed."""

import json
import os
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from creative_magics import devices, footprint
from creative_magics.cache import ModelCache
from creative_magics.errors import ModelTooLarge
from creative_magics.models import ModelSpec
from creative_magics.settings import Settings
from helpers import assert_one_line_error

ROOT = Path(__file__).resolve().parent.parent
MB = 2**20


def weights(path, **shapes_and_dtypes):
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({name: torch.zeros(shape, dtype=dtype) for name, (shape, dtype) in shapes_and_dtypes.items()}, str(path))
    return path


# -- estimates ------------------------------------------------------------------------------------


def test_a_safetensors_estimate_counts_elements_in_the_load_precision(tmp_path):
    path = weights(tmp_path / "model.safetensors", a=((1000, 250), torch.float16), steps=((10,), torch.int64))
    in_fp32 = footprint.safetensors_estimate(str(path), 4)
    assert in_fp32.nbytes == 1000 * 250 * 4 + 10 * 8 and in_fp32.converted  # fp16 stored, float32 loaded: twice the file
    in_fp16 = footprint.safetensors_estimate(str(path), 2)
    assert in_fp16.nbytes == 1000 * 250 * 2 + 10 * 8 and not in_fp16.converted
    assert in_fp16.peak < in_fp32.peak


def test_a_pipeline_folder_counts_its_components_once_and_not_its_variants_or_checkpoints(tmp_path):
    (tmp_path / "model_index.json").write_text(json.dumps({
        "_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"], "safety_checker": [None, None], "scheduler": ["diffusers", "EulerDiscreteScheduler"],
    }))
    weights(tmp_path / "unet" / "diffusion_pytorch_model.safetensors", w=((1000, 100), torch.float32))
    weights(tmp_path / "unet" / "diffusion_pytorch_model.fp16.safetensors", w=((1000, 100), torch.float16))
    weights(tmp_path / "vae" / "diffusion_pytorch_model.fp16.safetensors", w=((100, 100), torch.float16))  # only a variant
    weights(tmp_path / "safety_checker" / "model.safetensors", w=((5000, 100), torch.float32))  # not loaded
    weights(tmp_path / "v1-5-pruned.safetensors", w=((9000, 100), torch.float32))  # a single-file checkpoint beside it
    files = sorted(os.path.relpath(p, tmp_path) for p in footprint.weight_files(str(tmp_path)))
    assert files == ["unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.fp16.safetensors"]
    estimate = footprint.estimate(ModelSpec("mine", "diffusion", "local", str(tmp_path)), torch.float32)
    assert estimate.nbytes == (1000 * 100 + 100 * 100) * 4


def test_sharded_and_pickled_weights(tmp_path):
    shards = tmp_path / "sharded"
    weights(shards / "model-00001-of-00002.safetensors", a=((100, 10), torch.bfloat16))
    weights(shards / "model-00002-of-00002.safetensors", b=((100, 10), torch.bfloat16))
    (shards / "model.safetensors.index.json").write_text("{}")
    assert footprint.folder_estimate(str(shards), 4).nbytes == 2 * 100 * 10 * 4
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "pytorch_model.bin").write_bytes(b"x" * 1234)
    assert footprint.folder_estimate(str(pickled), 4) == footprint.Estimate(1234, True)


def test_no_estimate_for_what_cannot_be_read_without_loading(tmp_path):
    assert footprint.estimate(ModelSpec("gpt2", "causal_lm", "tiny", "tiny-gpt2"), torch.float32) is None
    assert footprint.estimate(ModelSpec("x", "causal_lm", "hub", "someone/never-downloaded"), torch.float32) is None  # offline
    broken = tmp_path / "model.safetensors"
    broken.write_bytes(b"\xff" * 64)
    assert footprint.estimate(ModelSpec("x", "causal_lm", "local", str(tmp_path)), torch.float32) is None


def test_a_hub_model_not_downloaded_is_estimated_from_its_remote_headers(monkeypatch):
    from creative_magics import hub

    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=2.0: True)
    monkeypatch.setattr(footprint, "hub_file_sizes", lambda repo: {"config.json": 1, "model.safetensors": 724 * MB, "README.md": 5})
    monkeypatch.setattr(footprint, "hub_header_estimate", lambda repo, name, fb: footprint.Estimate(362_000_000 * fb, fb != 2))
    estimate = footprint.estimate(ModelSpec("smollm2", "causal_lm", "hub", "HuggingFaceTB/SmolLM2-360M-Instruct"), torch.float32)
    assert estimate.nbytes == 362_000_000 * 4  # bf16 on the hub, float32 here
    monkeypatch.setattr(footprint, "hub_header_estimate", lambda repo, name, fb: None)  # headers unreadable: the file sizes
    estimate = footprint.estimate(ModelSpec("smollm2", "causal_lm", "hub", "HuggingFaceTB/SmolLM2-360M-Instruct"), torch.float32)
    assert estimate == footprint.Estimate(724 * MB, True, footprint.RUN_ALLOWANCE)


# -- what is free: cgroups v1 and v2 -------------------------------------------------------------------


def fake_proc(monkeypatch, tmp_path, cgroup, mountinfo):
    (tmp_path / "cgroup").write_text(cgroup)
    (tmp_path / "mountinfo").write_text(mountinfo)
    monkeypatch.setattr(devices, "PROC_CGROUP", str(tmp_path / "cgroup"))
    monkeypatch.setattr(devices, "PROC_MOUNTINFO", str(tmp_path / "mountinfo"))


def write_group(folder, **files):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name.replace("__", ".")).write_text(text)


def test_a_v1_limit_anywhere_above_the_process_counts_and_file_cache_is_room(monkeypatch, tmp_path):
    mount = tmp_path / "memory"
    fake_proc(monkeypatch, tmp_path, "4:memory:/binder/user\n1:cpu:/\n",
              f"35 31 0:32 / {mount} rw,relatime - cgroup cgroup rw,memory\n")
    write_group(mount, memory__limit_in_bytes=str(2**63 - 4096), memory__usage_in_bytes="0")
    write_group(mount / "binder", memory__limit_in_bytes=str(2 * 2**30), memory__usage_in_bytes=str(1500 * MB),
                memory__stat=f"total_inactive_file {300 * MB}\ntotal_active_file {200 * MB}\n")
    write_group(mount / "binder" / "user", memory__limit_in_bytes=str(2**63 - 4096), memory__usage_in_bytes=str(900 * MB))
    assert [f for f, _ in devices.memory_cgroups()] == [str(mount / "binder" / "user"), str(mount / "binder"), str(mount)]
    assert devices.cgroup_memory() == (2 * 2**30, 2048 * MB - (1500 - 500) * MB)
    assert devices.container_memory_limit() == 2 * 2**30
    monkeypatch.setattr(devices, "host_available_bytes", lambda: 20 * 2**30)
    assert devices.free_memory("cpu") == (1048 * MB, "the container")


def test_a_v2_limit(monkeypatch, tmp_path):
    mount = tmp_path / "unified"
    fake_proc(monkeypatch, tmp_path, "0::/user.slice/kernel\n", f"41 31 0:38 / {mount} rw,relatime - cgroup2 cgroup2 rw\n")
    write_group(mount / "user.slice" / "kernel", memory__max=str(1024 * MB), memory__current=str(400 * MB),
                memory__stat=f"anon {350 * MB}\nactive_file {30 * MB}\ninactive_file {20 * MB}\n")
    write_group(mount / "user.slice", memory__max="max", memory__current=str(400 * MB))
    assert devices.cgroup_memory() == (1024 * MB, (1024 - 350) * MB)
    monkeypatch.setattr(devices, "host_available_bytes", lambda: 100 * MB)  # the host has even less
    assert devices.free_memory("cpu") == (100 * MB, "this machine")


def test_no_cgroup_means_no_limit(monkeypatch, tmp_path):
    fake_proc(monkeypatch, tmp_path, "0::/\n", "")
    monkeypatch.setattr(devices, "CGROUP_LIMIT_FILES", (str(tmp_path / "none" / "memory.max"),))
    assert devices.cgroup_memory() == (None, None)


# -- the cache: refuse, or evict when that makes room --------------------------------------------------


class Sized:
    def __init__(self, megabytes):
        self.weights = torch.nn.Linear(megabytes * MB // 4, 1, bias=False)

    def to(self, device=None, dtype=None):
        return self


def sized_cache(monkeypatch, free_mb, estimates, budget_gb=0.0):
    """A cache over fake models of known sizes in a container with `free_mb` free before any loads."""
    from creative_magics import memory

    monkeypatch.setattr(memory, "torch_modules", lambda obj: [obj.weights])
    loads = []

    def loader(spec, dtype):
        loads.append(spec.name)
        return Sized(estimates[spec.name])

    def estimator(spec, dtype):
        return footprint.Estimate(estimates[spec.name] * MB, False)

    def resolver(task, ref):
        return ModelSpec(ref, "causal_lm", "local", "/models/" + ref)

    cache = ModelCache(Settings(memory_budget_gb=budget_gb), resolver, loader, estimator)
    held = lambda: sum(e.nbytes for e in cache.entries())
    monkeypatch.setattr(devices, "free_memory", lambda device="cpu": (free_mb * MB - held(), "the container"))
    return cache, loads


def test_a_model_that_cannot_fit_even_with_the_others_evicted_is_refused_and_nothing_is_evicted(monkeypatch):
    cache, loads = sized_cache(monkeypatch, free_mb=400, estimates={"small": 100, "huge": 800})
    cache.get("story", "small")
    with pytest.raises(ModelTooLarge) as refused:
        cache.get("story", "huge")
    message = str(refused.value)
    assert "huge needs about 920 MB" in message and "the container has 300 MB free even with the other models evicted" in message
    assert "smaller model" in message and "GPU" in message and "remote endpoint" in message and "\n" not in message
    assert loads == ["small"] and [e.name for e in cache.entries()] == ["small"]  # still warm
    assert cache.get("story", "small") is not None and loads == ["small"]


def test_others_are_evicted_least_recently_used_first_when_that_makes_room(monkeypatch):
    cache, loads = sized_cache(monkeypatch, free_mb=600, estimates={"old": 200, "recent": 200, "new": 250})
    cache.get("story", "old")
    cache.get("story", "recent")
    cache.get("story", "new")  # needs 288 MB: the 200 left + the 200 of `old` is enough
    assert sorted(e.name for e in cache.entries()) == ["new", "recent"]


def test_a_model_in_use_is_never_evicted_for_room(monkeypatch):
    cache, loads = sized_cache(monkeypatch, free_mb=500, estimates={"busy": 400, "new": 250})
    with cache.use("story", "busy"):
        with pytest.raises(ModelTooLarge, match="has 100 MB free: "):
            cache.get("story", "new")
    assert [e.name for e in cache.entries()] == ["busy"]


def test_the_memory_budget_is_a_limit_too(monkeypatch):
    cache, loads = sized_cache(monkeypatch, free_mb=10_000, estimates={"big": 2000}, budget_gb=1.0)
    with pytest.raises(ModelTooLarge, match=r"big needs about 2\.2 GB .* more than memory_budget_gb = 1 allows: raise it"):
        cache.get("story", "big")
    assert loads == []


def test_before_a_model_moves_to_a_gpu_others_make_room_or_it_is_refused(monkeypatch):
    """Simulated CUDA device of 300 MB: the least recently used model moves to the CPU when that makes room;
    a model larger than the GPU can hold is refused in one line and stays warm on the CPU."""
    cache, loads = sized_cache(monkeypatch, free_mb=10_000, estimates={"a": 200, "b": 250, "c": 400}, budget_gb=10)
    monkeypatch.setattr(devices, "resolve_device", lambda setting="auto": "cuda")
    monkeypatch.setattr(devices, "resolve_dtype", lambda setting, device, preferred="float16": torch.float32)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    on_gpu = lambda: sum(e.nbytes for e in cache.entries() if e.device == "cuda")
    monkeypatch.setattr(devices, "free_memory", lambda device="cpu": ((300 * MB - on_gpu(), "the GPU") if device == "cuda" else (10_000 * MB, "this machine")))
    with cache.use("story", "a"):
        pass
    with cache.use("story", "b"):  # 250 MB: a moves off the GPU (still warm) to make room
        pass
    assert {e.name: e.device for e in cache.entries()} == {"a": "cpu", "b": "cuda"}
    with pytest.raises(ModelTooLarge, match=r"c needs about 400 MB on cuda, but the GPU has 50 MB free: use a smaller model"):
        with cache.use("story", "c"):
            pass
    assert {e.name: e.device for e in cache.entries()} == {"a": "cpu", "b": "cuda", "c": "cpu"}
    assert loads == ["a", "b", "c"]


def test_a_folder_too_large_for_the_memory_here_is_one_line_and_the_next_call_works(run, monkeypatch, tmp_path):
    from memory_limit import sparse_gpt2_folder

    folder, nbytes = sparse_gpt2_folder(tmp_path / "big", n_embd=1024, n_layer=4)
    monkeypatch.setattr(devices, "free_memory", lambda device="cpu": (nbytes // 2, "the container"))
    ran = run(f"%%story -m {folder}\nHello")
    assert_one_line_error(ran, f"{folder} needs about", "of memory in float32, but the container has", "smaller model")
    assert run("%%story -m gpt2 --max-new-tokens 3\nHello").ok


# -- a real memory-limited kernel ------------------------------------------------------------------------


def kernel_in(group, env):
    from jupyter_client import KernelManager

    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(env=env)
    group.add(manager.provisioner.process.pid)
    client = manager.client()
    client.start_channels()
    client.wait_for_ready(timeout=300)  # a guard against a kernel that never starts, not a speed check
    return manager, client


def execute(client, code):
    """(status, what it printed) of one cell."""
    out = []

    def hook(msg):
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "display_data":
            out.append(msg["content"]["data"].get("text/plain", ""))
        elif msg["msg_type"] == "error":
            out.append(f"{msg['content']['ename']}: {msg['content']['evalue']}")

    reply = client.execute_interactive(code, timeout=900, output_hook=hook)
    return reply["content"]["status"], "".join(out)


@pytest.mark.skipif(sys.platform != "linux" or os.geteuid() != 0, reason="needs root on Linux to make a memory cgroup")
def test_a_kernel_in_a_memory_limited_cgroup_refuses_a_model_too_large_and_lives(tmp_path):
    """A 1 GB cgroup, as on Binder: a model folder that needs more gives the one line, the kernel lives and
    the next call works. The same load without the check has the kernel killed (exit -9), so the check is
    what keeps it alive."""
    from memory_limit import LimitedCgroup, own_memory_cgroup, sparse_gpt2_folder

    if own_memory_cgroup() is None:
        pytest.skip("no cgroup memory controller is mounted here")
    folder, nbytes = sparse_gpt2_folder(tmp_path / "big")  # 1.5 GB in float32 (0.75 GB of fp16 zeros, sparse)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
               CREATIVE_MAGICS_PROFILE="tiny", HF_HUB_OFFLINE="1")
    group = LimitedCgroup(2**30)
    manager = client = None
    try:
        manager, client = kernel_in(group, env)
        status, out = execute(client, "%load_ext creative_magics\nfrom creative_magics import devices\nprint(devices.free_memory()[1])")
        assert (status, out.strip()) == ("ok", "the container")
        assert execute(client, "%%story -m gpt2 --max-new-tokens 3 --seed 1\nHello")[0] == "ok"
        status, out = execute(client, f"%%story -m {folder} --max-new-tokens 3\nHello")
        lines = [line for line in out.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("UsageError: "), out
        assert "needs about 2.6 GB of memory in float32, but the container has" in lines[0] and "MB free" in lines[0]
        assert manager.is_alive()
        status, out = execute(client, "%%story -m gpt2 --max-new-tokens 3 --seed 2\nAnd then")
        assert status == "ok" and out.startswith("And then"), out
        # the control: without the estimate, loading the same folder goes over the limit and the kernel is killed
        client.execute(f"from creative_magics import session\nsession.current().cache.estimator = None\n"
                       f"get_ipython().run_cell_magic('story', '-m {folder} --max-new-tokens 3', 'Hello')")
        for _ in range(1200):
            if not manager.is_alive():
                break
            time.sleep(0.5)
        assert not manager.is_alive() and manager.provisioner.process.returncode == -9
    finally:
        if client is not None:
            client.stop_channels()
        if manager is not None:
            manager.shutdown_kernel(now=True)
        group.remove()
    assert not group.path.exists()
