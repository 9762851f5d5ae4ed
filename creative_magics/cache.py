"""The kernel-resident model cache: each model is loaded once, lazily, placed on the device the first
time a call needs it, and evicted least-recently-used first when a memory budget would be exceeded.

`get` loads; `use` also places the model and pins it for the duration of a call, so eviction never
takes a model away from a running call.

Before a model loads (or moves to a GPU), what it will take is estimated and compared with the memory
free there (a container's limit included) and the memory budget: other warm models are evicted when that
makes room, and a model that cannot fit even then is refused in one line, never left to the OOM killer.
"""

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from . import devices, memory
from .errors import CreativeError, ModelInUse, ModelTooLarge
from .models import ModelSpec


SMALLER = (
    "try a smaller model (%creative aliases), a GPU in half precision (%config CreativeMagics.device = 'cuda'), "
    "or a remote endpoint (-m ENDPOINT:MODEL)"
)


def footprint_text(nbytes):
    """'1.4 GB' / '350 MB' for a message."""
    return f"{nbytes / 2**30:.1f} GB" if nbytes >= 2**30 else f"{max(1, round(nbytes / 2**20))} MB"


def _bytes_of(dtype):
    name = str(dtype).replace("torch.", "")
    return {"float32": 4, "float64": 8, "float16": 2, "bfloat16": 2}.get(name, 4)


@dataclass(eq=False)
class Entry:
    spec: object
    task: str
    obj: object = None
    device: str = "cpu"
    dtype: str = "-"
    nbytes: int = 0
    last_used: float = 0.0
    users: int = 0
    load_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def name(self):
        return self.spec.name

    @property
    def loaded(self):
        return self.obj is not None


class ModelCache:
    """One per kernel (see `session.current()`).

    resolver(task, ref) -> ModelSpec; loader(spec, dtype) -> model object (on the CPU); estimator(spec,
    dtype) -> a footprint.Estimate (`.peak`: the bytes its load needs), or None when that is unknown;
    settings gives device, dtype and memory_budget_gb. Wherever a `ref` is taken, a ModelSpec the
    caller resolved already is taken too (and not resolved again).
    """

    def __init__(self, settings, resolver, loader, estimator=None):
        self.settings = settings
        self.resolver = resolver
        self.loader = loader
        self.estimator = estimator
        self._entries = {}  # spec.key -> Entry
        self._stats = {}  # spec.key -> {"loads": n, "hits": n}, kept across evictions
        self._lock = threading.RLock()

    # -- lookup and loading -------------------------------------------------------------

    def resolve(self, task, ref):
        return ref if isinstance(ref, ModelSpec) else self.resolver(task, ref)

    def get(self, task, ref):
        """The model for (task, ref), loaded once; later calls are hits and load nothing."""
        return self._entry(task, ref).obj

    def _entry(self, task, ref):
        spec = self.resolve(task, ref)
        with self._lock:
            entry = self._entries.get(spec.key)
            if entry is None:
                entry = self._entries[spec.key] = Entry(spec=spec, task=task)
            stats = self._stats.setdefault(spec.key, {"loads": 0, "hits": 0, "spec": spec})
        with entry.load_lock:
            if entry.loaded:
                with self._lock:
                    stats["hits"] += 1
                    entry.last_used = time.monotonic()
                return entry
            device = devices.resolve_device(self.settings.device)
            dtype = devices.resolve_dtype(self.settings.dtype, device, self._preferred_dtype(spec))
            try:
                self._check_room(spec, dtype, keep=entry)
                obj = self.loader(spec, dtype)
            except BaseException:
                with self._lock:  # a failed or interrupted load leaves no trace behind
                    if self._entries.get(spec.key) is entry and not entry.loaded:
                        del self._entries[spec.key]
                raise
            size = memory.nbytes(obj)
            with self._lock:
                self._make_room("cpu", size, keep=entry)
                entry.obj = obj
                entry.device, entry.dtype = memory.placement(obj)
                entry.device = "cpu" if entry.device.startswith("cpu") else entry.device
                entry.nbytes = size
                entry.last_used = time.monotonic()
                stats["loads"] += 1
                if self._entries.get(spec.key) is not entry:  # evicted with "all" while loading
                    self._entries[spec.key] = entry
            return entry

    @staticmethod
    def _preferred_dtype(spec):
        return {"causal_lm": "bfloat16", "midi": "bfloat16", "vgg": "float32", "adain": "float32", "cyclegan": "float32"}.get(spec.family, "float16")

    # -- placement -----------------------------------------------------------------------

    @contextmanager
    def use(self, task, ref):
        """Yield the model placed on the configured device, pinned against eviction until the block ends."""
        entry = self._entry(task, ref)
        with self._lock:
            entry.users += 1
        try:
            device = devices.resolve_device(self.settings.device)
            dtype = devices.resolve_dtype(self.settings.dtype, device, self._preferred_dtype(entry.spec))
            with self._lock:
                self._place(entry, device, dtype)
                entry.last_used = time.monotonic()
            yield entry.obj
        finally:
            with self._lock:
                entry.users -= 1
                entry.last_used = time.monotonic()

    def _place(self, entry, device, dtype):
        dtype_name = str(dtype).replace("torch.", "")
        if entry.device == device and entry.dtype == dtype_name:
            return
        before = entry.device
        if devices.is_accelerator(device):
            self._make_room(device, entry.nbytes, keep=entry)
            self._check_device_room(entry, device, dtype)
        entry.obj = entry.obj.to(device=device, dtype=dtype)
        entry.device, entry.dtype = device, dtype_name
        entry.nbytes = memory.nbytes(entry.obj)
        if devices.is_accelerator(before) and before != device:
            devices.release_memory(before)

    # -- memory: refusing what cannot fit, before it loads ------------------------------------------

    def _check_room(self, spec, dtype, keep):
        """Make room in host memory for `spec` (loaded in `dtype`) by evicting warm models, least recently
        used first, when that is enough; else refuse in one line. Nothing is evicted for a model that
        would not fit anyway."""
        estimate = self.estimator(spec, dtype) if self.estimator is not None else None
        if estimate is None or not estimate.nbytes:
            return
        need = estimate.peak
        what = f"{spec.name} needs about {footprint_text(need)} of memory in {str(dtype).replace('torch.', '')}"
        gb = self.settings.memory_budget_gb
        if gb and need > gb * 2**30:
            raise ModelTooLarge(
                f"{what}, more than memory_budget_gb = {gb:g} allows: raise it (%config CreativeMagics.memory_budget_gb), "
                f"or {SMALLER}"
            )
        free, where = devices.free_memory("cpu")
        if free is None or need <= free:
            return
        with self._lock:
            victims = sorted(
                (e for e in self._entries.values() if e.loaded and e.device == "cpu" and e is not keep and not e.users),
                key=lambda e: e.last_used,
            )
            if need > free + sum(v.nbytes for v in victims):
                others = " even with the other models evicted" if victims else ""
                raise ModelTooLarge(f"{what}, but {where} has {footprint_text(free)} free{others}: {SMALLER}")
            for victim in victims:
                self._drop(victim)
                free += victim.nbytes
                if need <= free:
                    break
        devices.release_memory("cpu")

    def _check_device_room(self, entry, device, dtype):
        """Before a model moves to a GPU: evict the others from it when that makes room, else refuse in one line."""
        need = int(entry.nbytes * _bytes_of(dtype) / max(1, _bytes_of(entry.dtype)))
        free, where = devices.free_memory(device)
        if free is None or need <= free:
            return
        victims = sorted(
            (e for e in self._entries.values() if e.loaded and e.device == device and e is not entry and not e.users),
            key=lambda e: e.last_used,
        )
        if need > free + sum(v.nbytes for v in victims):
            raise ModelTooLarge(
                f"{entry.name} needs about {footprint_text(need)} on {device}, but {where} has {footprint_text(free)} free: "
                "use a smaller model, %config CreativeMagics.cpu_offload = True (%%paint), or %creative device cpu"
            )
        for victim in victims:
            self._evict(victim)
            free += victim.nbytes
            if need <= free:
                break
        devices.release_memory(device)

    def budget_bytes(self, device):
        gb = self.settings.memory_budget_gb
        if gb:
            return int(gb * 2**30)
        share = 0.9 if devices.is_accelerator(device) else 0.5
        return int(devices.total_memory_bytes(device) * share)

    def _make_room(self, device, needed, keep):
        """Evict least recently used models from `device` until `needed` more bytes fit its budget.

        From a GPU they move to the CPU (still warm); from the CPU they are dropped. Pinned models stay.
        """
        budget = self.budget_bytes(device)
        resident = [e for e in self._entries.values() if e.loaded and e.device == device and e is not keep]
        used = sum(e.nbytes for e in resident)
        if used + needed <= budget:
            return
        freed = False
        for victim in sorted(resident, key=lambda e: e.last_used):
            if victim.users:
                continue
            self._evict(victim)
            used -= victim.nbytes
            freed = True
            if used + needed <= budget:
                break
        if freed:
            devices.release_memory(device)

    def _evict(self, victim):
        """Off a GPU a model moves to the CPU (still warm); off the CPU it is dropped."""
        if devices.is_accelerator(victim.device):
            self._make_room("cpu", victim.nbytes, keep=victim)
            victim.obj = victim.obj.to(device="cpu")
            victim.device = "cpu"
        else:
            self._drop(victim)

    def _drop(self, entry):
        entry.obj = None
        if self._entries.get(entry.spec.key) is entry:
            del self._entries[entry.spec.key]

    # -- %%paint: CPU offload, and freeing a device for one model ----------------------------

    @contextmanager
    def use_offloaded(self, task, ref, device):
        """Like `use`, but the model stays in host memory, in `device`'s precision, for a caller that runs
        it with accelerate's offloading (each part moves to `device` only while it runs)."""
        entry = self._entry(task, ref)
        with self._lock:
            entry.users += 1
        try:
            dtype = devices.resolve_dtype(self.settings.dtype, device, self._preferred_dtype(entry.spec))
            with self._lock:
                self._place(entry, "cpu", dtype)
                entry.last_used = time.monotonic()
            yield entry.obj
        finally:
            with self._lock:
                entry.users -= 1
                entry.last_used = time.monotonic()

    def evict_others(self, task, ref, device):
        """Free `device` of every warm model but (task, ref) that no call is using: from a GPU they move
        to the CPU (still warm), from the CPU they are dropped. Returns their names."""
        keep = self.resolve(task, ref).key
        with self._lock:
            victims = [e for e in self._entries.values() if e.loaded and e.device == device and e.spec.key != keep and not e.users]
            for victim in victims:
                self._evict(victim)
        devices.release_memory(device)
        return [victim.name for victim in victims]

    def loaded(self, spec):
        """The loaded object of `spec` wherever it is, or None (nothing is loaded or pinned)."""
        with self._lock:
            entry = self._entries.get(spec.key)
            return entry.obj if entry is not None and entry.loaded else None

    def warm(self, spec):
        """The loaded object of `spec` when it is warm on the CPU and no call is using it, else None."""
        with self._lock:
            entry = self._entries.get(spec.key)
            if entry is not None and entry.loaded and entry.device == "cpu" and not entry.users:
                return entry.obj
        return None

    # -- user commands -------------------------------------------------------------------

    def entries(self):
        with self._lock:
            return [e for e in self._entries.values() if e.loaded]

    def find(self, name):
        """Entries whose alias, hub id or folder is `name`."""
        return [e for e in self.entries() if name in (e.spec.name, e.spec.source)]

    def evict(self, name="all"):
        """Drop warm models by name (or all of them) and give their memory back. Returns the names dropped."""
        with self._lock:
            victims = self.entries() if name == "all" else self.find(name)
            if not victims:
                raise CreativeError(f"no warm model named {name!r}; %creative models lists them")
            busy = [e.name for e in victims if e.users]
            if busy and name != "all":
                raise ModelInUse(f"{busy[0]!r} is in use by a running call; evict it when the call ends")
            dropped = []
            touched = set()
            for entry in victims:
                if entry.users:
                    continue
                touched.add(entry.device)
                self._drop(entry)
                dropped.append(entry.name)
        for device in touched:
            devices.release_memory(device)
        return dropped

    def move_all(self, device):
        """Move every warm model that no call is using to `device` (in that device's precision)."""
        device = devices.resolve_device(device)
        with self._lock:
            for entry in self.entries():
                if entry.users:
                    continue
                dtype = devices.resolve_dtype(self.settings.dtype, device, self._preferred_dtype(entry.spec))
                self._place(entry, device, dtype)
        return device

    def uses(self):
        """[(spec, loads + hits)] of every model asked for in this session, evicted ones too."""
        with self._lock:
            return [(stats["spec"], stats["loads"] + stats["hits"]) for stats in self._stats.values()]

    def table(self):
        """Rows for `%creative models`: name, task, device, dtype, size MB, loads, hits, last used (s ago)."""
        now = time.monotonic()
        rows = []
        with self._lock:
            for entry in sorted(self.entries(), key=lambda e: -e.last_used):
                stats = self._stats.get(entry.spec.key, {"loads": 0, "hits": 0})
                rows.append(
                    {
                        "name": entry.name,
                        "task": entry.task,
                        "device": entry.device,
                        "dtype": entry.dtype,
                        "size_mb": round(entry.nbytes / 2**20, 1),
                        "loads": stats["loads"],
                        "hits": stats["hits"],
                        "last_used_s": round(now - entry.last_used, 1),
                        "in_use": entry.users > 0,
                        "source": entry.spec.source,  # %%finetune: tells a fine-tuned model's folder
                    }
                )
        return rows
