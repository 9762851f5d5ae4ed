"""Which device and precision a model runs on, and how much memory there is. Imports torch lazily."""

import gc

from .errors import CreativeError

_DTYPES = {"float32": "float32", "float16": "float16", "bfloat16": "bfloat16"}


def resolve_device(setting="auto"):
    """auto -> cuda > mps > cpu; an explicit device is checked to exist."""
    import torch

    if setting == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    if setting.startswith("cuda") and not torch.cuda.is_available():
        raise CreativeError(f"device {setting!r} asked for, but PyTorch sees no CUDA GPU here; use %config CreativeMagics.device = 'cpu'")
    if setting == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise CreativeError("device 'mps' asked for, but this PyTorch has no Apple GPU support here; use 'cpu'")
    return setting


def resolve_dtype(setting, device, preferred_gpu_dtype="float16"):
    """The torch dtype for a model on `device`: float32 on the CPU, the model's preferred half type on a GPU."""
    import torch

    if setting != "auto":
        name = _DTYPES[setting]
    elif device == "cpu":
        name = "float32"
    elif preferred_gpu_dtype == "bfloat16" and device.startswith("cuda") and not torch.cuda.is_bf16_supported():
        name = "float16"
    else:
        name = preferred_gpu_dtype
    return getattr(torch, name)


def is_accelerator(device):
    return device != "cpu"


def total_memory_bytes(device):
    """Total memory of a device; for the CPU, the host's RAM or the container's limit if that is lower."""
    if is_accelerator(device):
        import torch

        if device.startswith("cuda"):
            return torch.cuda.get_device_properties(torch.device(device)).total_memory
        if device == "mps" and hasattr(torch.mps, "recommended_max_memory"):
            return torch.mps.recommended_max_memory()
    try:
        import os

        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        physical = 16 * 2**30
    limit = container_memory_limit()
    return min(physical, limit) if limit else physical


# A container (Binder, a cloud notebook) may hold the kernel to far less memory than the host has.
CGROUP_LIMIT_FILES = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def container_memory_limit():
    """The memory limit of this process's container (cgroup v2 or v1) in bytes; None when there is none."""
    for path in CGROUP_LIMIT_FILES:
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:  # "max" (v2) or a huge number (v1) means no limit
            return int(text)
    return None


def release_memory(device):
    """Give freed memory back after models leave a device (the caching allocators keep it otherwise)."""
    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()
    elif device == "mps":
        import torch

        torch.mps.empty_cache()
