"""A memory-limited kernel, as on Binder (1-2 GB): an IPython kernel moved into a child memory cgroup with a
limit, like a container's; a process over the limit is killed by the kernel's OOM killer (exit -9), just as
on Binder. Needs root and a cgroup memory controller (v1, or v2 with the controller enabled)."""

import os
import time
from pathlib import Path


def own_memory_cgroup():
    """(folder, version) of this process's memory cgroup, or None."""
    from creative_magics import devices

    groups = devices.memory_cgroups()
    for folder, version in groups:
        marker = "memory.limit_in_bytes" if version == 1 else "memory.max"
        if os.path.exists(os.path.join(folder, marker)) or (version == 2 and os.path.exists(os.path.join(folder, "cgroup.procs"))):
            return folder, version
    return None


class LimitedCgroup:
    """A child memory cgroup with `limit` bytes; `add(pid)` moves a process in (its memory with it, on v1)."""

    def __init__(self, limit):
        found = own_memory_cgroup()
        if found is None:
            raise OSError("no memory cgroup to make a child of")
        parent, self.version = found
        self.path = Path(parent) / f"creative-magics-test-{os.getpid()}"
        self.path.mkdir()
        try:
            (self.path / ("memory.limit_in_bytes" if self.version == 1 else "memory.max")).write_text(str(limit))
        except OSError:
            self.path.rmdir()
            raise
        for name, value in (("memory.move_charge_at_immigrate", "3"), ("memory.swap.max", "0")):
            try:  # the memory it holds moves in with a process (v1; newer kernels may not offer it); no swap (v2)
                (self.path / name).write_text(value)
            except OSError:
                pass

    def add(self, pid):
        (self.path / "cgroup.procs").write_text(str(pid))

    def pids(self):
        return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]

    def remove(self):
        """rmdir once the processes are gone (they are killed first by the caller)."""
        for _ in range(100):
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)
        self.path.rmdir()


def sparse_gpt2_folder(folder, n_embd=2048, n_layer=8, vocab=600):
    """A GPT-2 model folder whose model.safetensors holds about n_layer x 12 x n_embd^2 float16 weights
    (zeros, in a sparse file: the header is real, the disk holds next to nothing). In float32 on the CPU
    they take twice the file, converted while loading; with the defaults, about 1.6 GB. Returns (folder,
    the bytes of the weights in float32)."""
    import json
    import math
    import struct

    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from creative_magics import tiny

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = GPT2Config(n_embd=n_embd, n_layer=n_layer, n_head=16, n_positions=256, vocab_size=vocab, bos_token_id=0, eos_token_id=0)
    with torch.device("meta"):
        model = GPT2LMHeadModel(config)
    header, offset = {}, 0
    for name, tensor in model.state_dict().items():
        if name == "lm_head.weight":  # tied to the embeddings
            continue
        size = math.prod(tensor.shape) * 2
        header[name] = {"dtype": "F16", "shape": list(tensor.shape), "data_offsets": [offset, offset + size]}
        offset += size
    header["__metadata__"] = {"format": "pt"}
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    with open(folder / "model.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(blob)) + blob)
        f.truncate(8 + len(blob) + offset)
    config.save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).write_bytes((tiny.ensure("tiny-gpt2") / name).read_bytes())
    return folder, offset * 2
