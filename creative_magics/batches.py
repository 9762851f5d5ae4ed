"""creative_magics.batch: many calls of one task, here one after another or spread over Ray workers.

Each item is a dict of the task's Python API parameters (a bare string is its prompt, or its description
for %%compose), with `defaults` below it (a magic's flags). The results come back in item order, each
with its recipe, and join the gallery as they arrive. A bad item gets its one line in its slot (a
FailedItem) and the others finish; Ctrl-C cancels the items not yet done and keeps the finished ones.
The Ray backend (ray_pool.py) keeps its workers, and their warm models, for the next batch.
"""

import time
from dataclasses import dataclass, field

from . import refs
from .errors import CreativeError, first_line
from .session import Call, current

BACKENDS = ("local", "ray")
TEXT_INPUT = {"story": "prompt", "paint": "prompt", "compose": "description", "stylize": "content"}
CANCELLED = "cancelled (Ctrl-C) before it finished"
# The image inputs a notebook name (a variable, `last`, `canvas`) may give: a Ray worker cannot see the notebook,
# so those names are resolved here and the image travels with the item. Paths and URLs are left to the workers.
NAMED_IMAGES = {"paint": ("init", "mask", "control"), "stylize": ("content", "style")}


@dataclass
class FailedItem:
    """The slot of an item that gave no result: its one-line error (or that it was cancelled)."""

    task: str
    index: int
    item: dict
    error: str
    cancelled: bool = False
    kind: str = field(default="failed", init=False)
    ok = False

    @property
    def recipe(self):
        return {"task": self.task, "failed": True, "cancelled": self.cancelled, "item": self.index, "error": self.error,
                "params": dict(self.item)}

    def __repr__(self):
        return f"FailedItem(item {self.index}: {self.error})"


class BatchResult(list):
    """The batch's slots in item order: each a task result (`.recipe`) or a FailedItem. `.recipe` says the
    task, how many items, which failed (and why) and which were cancelled."""

    def __init__(self, task, slots, backend, workers=None, seconds=0.0, interrupted=False):
        super().__init__(slots)
        self.task, self.backend, self.workers = task, backend, workers
        self.seconds, self.interrupted = seconds, interrupted

    @property
    def done(self):
        return [slot for slot in self if not isinstance(slot, FailedItem)]

    @property
    def failures(self):
        return [slot for slot in self if isinstance(slot, FailedItem) and not slot.cancelled]

    @property
    def cancelled(self):
        return [slot for slot in self if isinstance(slot, FailedItem) and slot.cancelled]

    @property
    def recipes(self):
        return [slot.recipe for slot in self]

    @property
    def images(self):
        return [image for slot in self.done for image in (getattr(slot, "images", None) or [])]

    @property
    def texts(self):
        return [getattr(slot, "text", None) for slot in self]

    @property
    def recipe(self):
        return {
            "task": "batch", "of": self.task, "items": len(self), "done": len(self.done), "backend": self.backend,
            "workers": self.workers, "failed": [{"item": f.index, "error": f.error} for f in self.failures],
            "cancelled": [f.index for f in self.cancelled], "interrupted": self.interrupted,
        }

    def summary(self, timing=False):
        """One line: how many items, where, done / failed / cancelled (with `timing`, seconds and throughput too)."""
        where = f"on Ray ({self.workers} workers)" if self.backend == "ray" else "here"
        parts = [f"{len(self.done)} done"]
        if self.failures:
            parts.append(f"{len(self.failures)} failed (" + "; ".join(f"item {f.index}: {f.error}" for f in self.failures[:3])
                         + ("; ..." if len(self.failures) > 3 else "") + ")")
        if self.cancelled:
            parts.append(f"{len(self.cancelled)} cancelled")
        text = f"batch of {len(self)} {self.task} items {where}: {', '.join(parts)}"
        if timing and self.seconds > 0:
            text += f" in {self.seconds:.1f} s" + (f", {len(self.done) / self.seconds:.2f} items/s" if self.done else "")
        return text

    def __repr__(self):
        return self.summary()

    def grid(self):
        from .media import grid

        return grid(self.images)

    def _repr_png_(self):
        sheet = self.grid() if self.images else None
        if sheet is None:
            return None
        from .recipes import png_bytes

        return png_bytes(sheet)


# -- items ---------------------------------------------------------------------------------------


def items_of(task, items, names=None):
    """The items as dicts: a list of dicts or strings, a variable naming one, or a text file (one item per
    non-empty line). Refused in one line when it is none of these."""
    import os

    if isinstance(items, str):
        if names is not None and items.isidentifier() and items in names:
            items = names[items]
        elif os.path.isfile(items):
            with open(items, encoding="utf-8") as handle:
                items = [line.strip() for line in handle if line.strip()]
        else:
            raise CreativeError(f"--batch {items}: no such variable or text file (one prompt per line, or a list of strings/dicts)")
    if isinstance(items, dict) or not hasattr(items, "__iter__"):
        raise CreativeError("a batch takes a list of items: strings (prompts) or dicts of the task's parameters")
    out = []
    for item in items:
        if isinstance(item, str):
            out.append({TEXT_INPUT[task]: item})
        elif isinstance(item, dict):
            out.append(dict(item))
        else:
            out.append(item)  # fails alone in its slot
    if not out:
        raise CreativeError("the batch is empty: give at least one item")
    return out


def _check(task, backend, workers):
    if task not in TEXT_INPUT:
        raise CreativeError(f"a batch runs story, paint, stylize or compose, not {task!r}")
    if backend not in BACKENDS:
        raise CreativeError(f"backend={backend!r}: choose local or ray")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise CreativeError(f"workers={workers!r}: give a whole number of at least 1")


def call_item(task, item, defaults=None, given_as="argument", namespace=None):
    """One item as a call of the task's Python API (here, or in a Ray worker): its values over `defaults`."""
    from . import api

    if not isinstance(item, dict):
        raise CreativeError(f"an item is a dict of {task} parameters or a string, not {type(item).__name__}")
    values = {**(defaults or {}), **item}
    return api.TASKS[task](**values, _given_as=given_as, _namespace=namespace)


def _call_of(task, item, defaults, given_as, namespace):
    """The Call a result of the batch is remembered with, so "Run again" makes that item again here."""
    values = {**(defaults or {}), **(item if isinstance(item, dict) else {})}
    text_name = TEXT_INPUT[task]
    inputs = {name: values.pop(name) for name in ("prompt", "description", "content", "style", "recipe") if name in values}
    inputs.setdefault(text_name, None)
    given = {name: value for name, value in values.items() if value is not None}
    return Call(task, inputs, given, given_as, namespace)


def _notebook_name(value, namespace):
    """Whether `value` names something only this notebook has: `last`, a registered source (`canvas`), a variable."""
    import os

    if not isinstance(value, str):
        return False
    text = value.strip()
    session = current()
    if text == "last" or session.image_source(text) is not None or session.mask_source(text) is not None:
        return True
    return text.isidentifier() and not os.path.exists(text) and text in refs.namespace(namespace)


def for_workers(task, items, defaults, namespace):
    """({index: the item's values over `defaults`, with notebook names resolved to images}, [(index, one line)]
    for the items that cannot be sent: not a dict, or a name that gives no image)."""
    ready, refused = {}, []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            refused.append((index, f"an item is a dict of {task} parameters or a string, not {type(item).__name__}"))
            continue
        values = {**(defaults or {}), **item}
        try:
            for name in NAMED_IMAGES.get(task, ()):
                value = values.get(name)
                resolve = refs.mask if name == "mask" else refs.image
                if isinstance(value, (list, tuple)):
                    values[name] = [resolve(v, namespace)[0] if _notebook_name(v, namespace) else v for v in value]
                elif _notebook_name(value, namespace):
                    values[name] = resolve(value, namespace)[0]
        except CreativeError as err:
            refused.append((index, first_line(err)))
            continue
        ready[index] = values
    return ready, refused


# -- the batch -----------------------------------------------------------------------------------


class _Progress:
    """One progress line over the batch (items done, throughput, ETA): `on_progress(done, total, elapsed)`
    when given (a view), else a tqdm bar on stderr."""

    def __init__(self, total, label, on_progress=None, show=True):
        self.total, self.on_progress, self.started = total, on_progress, time.perf_counter()
        self.bar = None
        self.done = 0
        if on_progress is None and show:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=label, unit="item", leave=False)

    def step(self):
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
        if self.on_progress is not None:
            self.on_progress(self.done, self.total, time.perf_counter() - self.started)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def batch(task, items, backend="local", address=None, workers=None, *, defaults=None, on_progress=None, on_result=None, progress=True,
          _given_as="argument", _namespace=None):
    """Run `task` once per item; returns a BatchResult: the results in item order, each with its recipe.

    items: dicts of the task's parameters (the Python API's names; a string is the prompt), a variable's
    name or a text file (one prompt per line). `defaults` are the values every item has unless it gives
    its own. backend="local" runs them here one by one; "ray" spreads them over Ray workers (one per GPU,
    or `workers` of them on CPUs), each keeping its models warm for the next batch: address=None starts a
    local Ray, "auto" or "ray://HOST:10001" joins a cluster. on_result(index, result) is told of each
    slot as it is filled; on_progress(done, total, seconds) follows the batch (else a tqdm bar).
    """
    _check(task, backend, workers)
    items = items_of(task, items, _namespace)
    session = current()
    slots = [None] * len(items)
    bar = _Progress(len(items), f"{task} batch", on_progress, progress)
    started = time.perf_counter()

    def deliver(index, outcome):
        """Fill slot `index` with a result (remembered for the gallery) or a FailedItem."""
        if isinstance(outcome, FailedItem):
            slots[index] = outcome
        else:
            slots[index] = outcome
            if backend == "ray":  # a local call remembered its result already
                session.remember(outcome, _call_of(task, items[index], defaults, _given_as, _namespace))
        bar.step()
        if on_result is not None:
            on_result(index, slots[index])

    def failed(index, error, cancelled=False):
        item = items[index] if isinstance(items[index], dict) else {"item": repr(items[index])}
        return FailedItem(task, index, item, error, cancelled)

    interrupted, used = False, None
    try:
        if backend == "local":
            interrupted = _run_here(task, items, defaults, _given_as, _namespace, deliver, failed)
        else:
            from . import ray_pool

            ready, refused = for_workers(task, items, defaults, _namespace)
            for index, error in refused:
                deliver(index, failed(index, error))
            pool = ray_pool.pool(address, workers, session)
            used = pool.size
            interrupted = pool.run(task, ready, _given_as, deliver, failed)
    finally:
        bar.close()
    for index, slot in enumerate(slots):
        if slot is None:
            slots[index] = failed(index, CANCELLED, cancelled=True)
    return BatchResult(task, slots, backend, used, time.perf_counter() - started, interrupted)


def _run_here(task, items, defaults, given_as, namespace, deliver, failed):
    """The local backend: one item after another in this process; True when Ctrl-C stopped it."""
    for index, item in enumerate(items):
        try:
            result = call_item(task, item, defaults, given_as, namespace)
        except KeyboardInterrupt:
            return True
        except Exception as err:  # a bad item fails alone
            deliver(index, failed(index, first_line(err)))
            continue
        if getattr(result, "interrupted", False):  # stopped within this item: the items done are kept, not its partial
            return True
        try:
            deliver(index, result)
        except KeyboardInterrupt:
            return True
    return False
