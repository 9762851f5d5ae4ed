"""Errors a person can cause. The magics show them as one line, never a traceback."""


class CreativeError(Exception):
    """Something the user can fix: a bad flag value, an unknown model, a missing image."""


class ModelNotAvailable(CreativeError):
    """The model cannot be loaded here (not cached and the hub is unreachable, or no such model)."""


class ModelTooLarge(ModelNotAvailable):
    """The model would not fit in the memory free here (checked before it loads, so the kernel lives)."""


class ModelInUse(CreativeError):
    """A model cannot be evicted while a running call is using it."""


def first_line(err):
    """The first line of an exception's message (or its type's name): what a one-line error quotes."""
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
