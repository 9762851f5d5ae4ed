"""Merge parameter layers, first one wins, remembering where each value came from.

The order is: flag (or function argument) > slider panel > `%config` defaults > the model's own
defaults > the house defaults; the task fills the last two once the model is loaded.
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
