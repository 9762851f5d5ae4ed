"""`{name}` in a cell body becomes that variable's value; anything else in braces stays as written."""

import re

# A single-braced identifier; doubled braces ({{name}}) and non-identifiers ({"a": 1}) are left alone.
_FIELD = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)\}(?!\})")


def interpolate(text, namespace):
    def value(match):
        name = match.group(1)
        return str(namespace[name]) if name in namespace else match.group(0)

    return _FIELD.sub(value, text)
