"""The kernel-wide state: settings, the one model cache, and the results made so far."""

import sys
import threading

from . import hub, models
from .cache import ModelCache
from .settings import Settings


class Session:
    def __init__(self, settings=None):
        from .loaders import load_model

        self.settings = settings if settings is not None else Settings()
        self.cache = ModelCache(self.settings, self.resolve, lambda spec, dtype: load_model(spec, dtype, self.settings))
        self.results = []  # the latest `settings.keep_results` results, oldest first
        self.let_go = 0  # how many older results were dropped from `results`
        self._auto_profile = None
        self.panel = None  # the slider panel, once opened (widgets/panel.py)
        self.canvas = None  # the style canvas, once opened (widgets/canvas.py)
        self.gallery = None  # the gallery, once opened (widgets/gallery.py)
        self.chosen_last = None  # a result the gallery made `last`, until the next result
        self.last_magic = None  # (name, line, cell) of the last magic that ran, for "Run again"
        self._listeners = []  # callbacks told of each new result (the gallery)
        self.generation_lock = threading.RLock()  # one generation at a time (api.one_at_a_time)

    def attach(self, settings):
        """Make `settings` (the CreativeMagics instance, once the extension loads) the live options."""
        self.settings = settings
        self.cache.settings = settings

    def effective_profile(self):
        """`default` or `tiny`; `auto` is decided once per session and said in one line."""
        profile = self.settings.profile
        if profile != "auto":
            return profile
        if self._auto_profile is None:
            self._auto_profile = "default" if hub.hub_reachable() else "tiny"
            if self._auto_profile == "tiny":
                print(
                    "creative_magics: the Hugging Face hub is not reachable, so the tiny offline models stand in "
                    "for the real ones (profile 'auto').",
                    file=sys.stdout,
                )
        return self._auto_profile

    def resolve(self, task, ref=None):
        ref = ref or models.DEFAULT_MODELS[task if task != "finetune" else "story"]
        return models.resolve(task, ref, aliases=self._aliases(task), profile=self.effective_profile())

    # -- %%finetune: fine-tuned models are aliases too ----------------------------------------
    def _aliases(self, task):
        """%config aliases, plus (for the text tasks) the fine-tuned models in the models folder; a
        fine-tuned name wins, since taking a name that was in use needed --overwrite."""
        aliases = self.settings.aliases
        if models.family_of(task) != "causal_lm":
            return aliases
        from . import adapters

        finetuned = adapters.aliases()
        return {**aliases, **finetuned} if finetuned else aliases

    def panel_defaults(self, task):
        """Values of the slider panel for `task` while one is open (the widgets set `self.panel`)."""
        return self.panel.values(task) if self.panel is not None else {}

    def remember(self, result):
        """Keep a result for `last` and the gallery; beyond `keep_results`, the oldest is let go (its
        images or audio are freed unless a variable still holds it)."""
        self.results.append(result)
        excess = len(self.results) - max(1, int(getattr(self.settings, "keep_results", 100)))
        if excess > 0:
            del self.results[:excess]
            self.let_go += excess
        self.chosen_last = None  # a new result is `last` again
        self._tell_listeners(result)
        return result

    def last(self, kind=None):
        """The latest result, optionally the latest with images / text / audio."""
        chosen = self.chosen_last  # the gallery's "use as last"
        if chosen is not None and (kind is None or getattr(chosen, "kind", None) == kind):
            return chosen
        for result in reversed(self.results):
            if kind is None or getattr(result, "kind", None) == kind:
                return result
        return None

    # -- widgets (issue 6): the last magic for "Run again", `last` by choice, the style canvas --------

    RERUNNABLE = ("story", "paint", "stylize", "compose")

    def note_magic(self, name, line, cell):
        """Remember a magic that ran to the end, so the panel's "Run again" can run it again."""
        if name in self.RERUNNABLE:
            self.last_magic = (name, line, cell)

    def number_of(self, result):
        """The result's place in the session, 0 for the first ever made; None once it was let go."""
        for i, kept in enumerate(self.results):
            if kept is result:
                return self.let_go + i
        return None

    def use_as_last(self, result):
        """Make an earlier result what `last` gives (the gallery), until the next result is made."""
        if result is not None and result not in self.results:
            raise ValueError("use_as_last takes a result of this session")
        self.chosen_last = result

    def canvas_image(self):
        """The style canvas as a PIL image: what `canvas` means as an IMAGE (`--init canvas`, `--style canvas`)."""
        from .errors import CreativeError

        if self.canvas is None:
            raise CreativeError("no style canvas yet: %creative canvas opens one")
        return self.canvas.to_image()

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
