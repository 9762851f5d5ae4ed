"""Seeds: drawn when not given, and always recorded, so every output can be made again."""

import secrets

from .errors import CreativeError

MAX_SEED = 2**32 - 1


def choose(seed):
    if seed is None:
        return secrets.randbelow(MAX_SEED + 1)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise CreativeError(f"seed must be a whole number from 0 to {MAX_SEED}, not {seed!r}")
    return seed
