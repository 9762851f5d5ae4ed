"""Is the Hugging Face hub (or another download host) reachable? Answered within a deadline,
never after a long DNS wait, and remembered for a minute."""

import os
import socket
import threading
import time
from urllib.parse import urlparse

PROBE_SECONDS = 2.0
_REMEMBER_SECONDS = 60.0
_answers = {}  # (host, port) -> (when, reachable)
_lock = threading.Lock()


def offline_by_env():
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _host_port(url):
    parsed = urlparse(url)
    return parsed.hostname or "", parsed.port or (80 if parsed.scheme == "http" else 443)


def _connect(address, result):
    try:
        with socket.create_connection(address, timeout=PROBE_SECONDS):
            result.append(True)
    except OSError:
        result.append(False)


def reachable_url(url, timeout=PROBE_SECONDS):
    """True when a TCP connection to the URL's host opens within `timeout` seconds.

    The probe runs in a daemon thread because name resolution ignores socket timeouts.
    """
    address = _host_port(url)
    with _lock:
        when, ok = _answers.get(address, (0.0, None))
        if ok is not None and time.monotonic() - when < _REMEMBER_SECONDS:
            return ok
    result = []
    probe = threading.Thread(target=_connect, args=(address, result), daemon=True)
    probe.start()
    probe.join(timeout)
    ok = bool(result and result[0])
    with _lock:
        _answers[address] = (time.monotonic(), ok)
    return ok


def hub_reachable(timeout=PROBE_SECONDS):
    if offline_by_env():
        return False
    return reachable_url(os.environ.get("HF_ENDPOINT", "https://huggingface.co"), timeout)


def forget():
    """Forget remembered answers (tests, or after the network comes back)."""
    with _lock:
        _answers.clear()
