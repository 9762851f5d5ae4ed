"""Where creative_magics keeps its files: the tiny models and the user's fine-tuned models."""

import os
from pathlib import Path


def home():
    """`CREATIVE_MAGICS_HOME`, else `$XDG_CACHE_HOME/creative_magics`, else `~/.cache/creative_magics`."""
    explicit = os.environ.get("CREATIVE_MAGICS_HOME")
    if explicit:
        return Path(explicit).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "creative_magics"
