"""Merge parameter layers, first one wins, remembering where each value came from.

The order is: flag (or function argument) > slider panel > `%config` defaults > the model's own
defaults > the house defaults; the api merges the first layers, the task fills the last two once the
model is loaded.
"""


def merge(*layers):
    """layers: (source, {param: value}) pairs, highest priority first; None values are skipped.

    Returns (values, sources) dicts.
    """
    values, sources = {}, {}
    for source, layer in layers:
        for name, value in (layer or {}).items():
            if value is None or name in values:
                continue
            values[name] = value
            sources[name] = source
    return values, sources


def fill(values, sources, *layers):
    """Copies of (values, sources) with what is still missing (None) taken from lower `layers`, in order."""
    values, sources = dict(values), dict(sources or {})
    for source, layer in layers:
        for name, value in (layer or {}).items():
            if values.get(name) is None and value is not None:
                values[name], sources[name] = value, source
    return values, sources
