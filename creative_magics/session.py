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
        self.results = []
        self._auto_profile = None

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
        return models.resolve(task, ref, aliases=self.settings.aliases, profile=self.effective_profile())

    def panel_defaults(self, task):
        """Values of the slider panel for `task` while one is open (the widgets set `self.panel`)."""
        panel = getattr(self, "panel", None)
        return panel.values(task) if panel is not None else {}

    def remember(self, result):
        """Keep a result for `last` and the gallery."""
        self.results.append(result)
        return result

    def last(self, kind=None):
        """The latest result, optionally the latest with images / text / audio."""
        for result in reversed(self.results):
            if kind is None or getattr(result, "kind", None) == kind:
                return result
        return None


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
