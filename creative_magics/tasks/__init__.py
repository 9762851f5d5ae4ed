"""One module per task: plain functions over a cached model, nothing of IPython."""


def check_numbers(values, rules, show=str):
    """Raise CreativeError, one line, for the first value that breaks its rule. `rules` are
    (name, ok(value), message); values not given (None) pass, and a value that is not a finite
    number is refused as such. `show` formats the offending value in the message."""
    import math

    from ..errors import CreativeError

    for name, ok, message in rules:
        value = values.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise CreativeError(f"{name.replace('_', '-')} must be a number, not {value!r}")
        if not ok(value):
            raise CreativeError(f"{message}, not {show(value)}")
