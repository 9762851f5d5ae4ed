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


# A container (Binder, a cloud notebook) may hold the kernel to far less memory than the host has: the memory
# cgroup of this process (v1 or v2), or any cgroup above it, may set a limit.
PROC_CGROUP = "/proc/self/cgroup"
PROC_MOUNTINFO = "/proc/self/mountinfo"
PROC_MEMINFO = "/proc/meminfo"
CGROUP_LIMIT_FILES = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")  # when /proc says nothing
_NO_LIMIT = 2**60  # "max" (v2) or a huge number (v1) means none


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def memory_cgroups():
    """[(folder, version)] of the memory cgroups over this process, its own first, then each one above it up
    to the mount point of the hierarchy; [] when there is no cgroup file system to read."""
    import os

    mounts = {}  # version -> (root inside the hierarchy, mount point)
    for line in (_read(PROC_MOUNTINFO) or "").splitlines():
        fields = line.split()
        if "-" not in fields:
            continue
        dash = fields.index("-")
        fstype, options = fields[dash + 1], fields[-1].split(",")
        if fstype == "cgroup2":
            mounts.setdefault(2, (fields[3], fields[4]))
        elif fstype == "cgroup" and "memory" in options:
            mounts.setdefault(1, (fields[3], fields[4]))
    found = []
    for line in (_read(PROC_CGROUP) or "").splitlines():
        number, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        version = 2 if number == "0" and controllers == "" else 1 if "memory" in controllers.split(",") else None
        if version is None or version not in mounts:
            continue
        root, point = mounts[version]
        inside = path[len(root):] if root != "/" and path.startswith(root) else path
        folder = os.path.normpath(point + "/" + inside.lstrip("/"))
        while True:
            found.append((folder, version))
            if folder == os.path.normpath(point) or len(folder) <= len(point):
                break
            folder = os.path.dirname(folder)
    return found


def _cgroup_number(folder, version):
    text = (_read(f"{folder}/{'memory.max' if version == 2 else 'memory.limit_in_bytes'}") or "").strip()
    return int(text) if text.isdigit() and int(text) < _NO_LIMIT else None


def _cgroup_in_use(folder, version):
    """Bytes a cgroup holds that cannot be given back: its usage less the file cache (which the kernel reclaims)."""
    used = (_read(f"{folder}/{'memory.current' if version == 2 else 'memory.usage_in_bytes'}") or "").strip()
    if not used.isdigit():
        return None
    stat = {}
    for line in (_read(f"{folder}/memory.stat") or "").splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            stat[key] = int(value)
    prefix = "" if version == 2 else "total_"
    cache = stat.get(prefix + "active_file", 0) + stat.get(prefix + "inactive_file", 0)
    return max(0, int(used) - cache)


def cgroup_memory():
    """(limit, room) of the tightest memory cgroup limit over this process, in bytes; (None, None) when none."""
    best = (None, None)
    groups = memory_cgroups()
    if not groups:  # no /proc to read: the limit files at the usual places
        groups = [(path.rsplit("/", 1)[0], 2 if path.endswith("memory.max") else 1) for path in CGROUP_LIMIT_FILES]
    for folder, version in groups:
        limit = _cgroup_number(folder, version)
        if limit is None:
            continue
        in_use = _cgroup_in_use(folder, version)
        room = max(0, limit - in_use) if in_use is not None else limit
        if best[1] is None or room < best[1]:
            best = (limit, room)
    return best


def container_memory_limit():
    """The memory limit of this process's container (cgroup v2 or v1) in bytes; None when there is none."""
    return cgroup_memory()[0]


def host_available_bytes():
    """Memory the host can give without swapping: MemAvailable, else the free pages."""
    for line in (_read(PROC_MEMINFO) or "").splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def free_memory(device="cpu"):
    """(bytes free on `device`, what limits it: 'the GPU', 'the container' or 'this machine'); bytes None when unknown."""
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            return None, "the GPU"
        return torch.cuda.mem_get_info(torch.device(device))[0], "the GPU"
    if device == "mps":
        import torch

        if not torch.backends.mps.is_available():
            return None, "the GPU"
        total = torch.mps.recommended_max_memory() if hasattr(torch.mps, "recommended_max_memory") else None
        return (max(0, total - torch.mps.driver_allocated_memory()) if total else None), "the GPU"
    host = host_available_bytes()
    _, room = cgroup_memory()
    if room is not None and (host is None or room < host):
        return room, "the container"
    return host, "this machine"


def release_memory(device):
    """Give freed memory back after models leave a device (the caching allocators keep it otherwise)."""
    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()
    elif device == "mps":
        import torch

        torch.mps.empty_cache()
