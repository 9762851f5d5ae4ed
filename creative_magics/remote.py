"""Remote models on OpenAI-compatible servers (OpenAI, Ollama, vLLM, llama.cpp's server, LM Studio,
`transformers serve`), through the official `openai` client, imported on first use only.

An endpoint is a name, a base URL and the name of the environment variable that holds its key: the key
itself is read at call time and lives only as long as the call, so it never reaches a recipe, a PNG, a
repr or a message (server texts are scrubbed of it too). Every failure becomes one line that says what
to do: refused, unknown host, timeout, 401/403, 404 (with the models the server lists), 429 (retried with
backoff first), 5xx, or an answer that is not an OpenAI-style response.
"""

import ipaddress
import os
import re
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from . import params as declared
from .errors import CreativeError, first_line

BUILTIN = {"openai": {"base_url": "https://api.openai.com/v1", "api_key_env": "OPENAI_API_KEY"}}
APIS = ("chat", "completions")
ENDPOINT_KEYS = ("base_url", "api_key_env", "api", "timeout", "extra_params")
NO_KEY = "no-key"  # what servers that need no key get: the client insists on sending one
RATE_LIMIT_TRIES = 4  # one call and three retries after a 429
BACKOFF_S = (1.0, 2.0, 4.0)  # the waits between them, unless the server says how long (Retry-After)
MAX_RETRY_AFTER_S = 30.0
PROBE_S = 5.0  # %creative endpoints: how long each endpoint has to answer
MODELS_LISTED = 12  # a 404 names at most this many of the server's models
SERVER_TEXT = 200  # characters of a server's own message quoted in a line
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENDPOINT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]*$")
_KEY_LIKE = re.compile(r"\b(sk|pk|key|hf)-[A-Za-z0-9_\-]{8,}")


class RemoteError(CreativeError):
    """A remote server could not do the call: one line that says why and what to do."""


# -- endpoints ---------------------------------------------------------------------------------


def extra_param_names():
    """What an endpoint's `extra_params` may list: the parameters declared with a `remote_extra` field."""
    return sorted({p.name for task in (declared.STORY, declared.PAINT) for p in task.params if p.remote_extra})


def check_endpoints(value):
    """Refuse, in one line that never repeats a value (it could be a key), an endpoints table no call could use."""
    if not isinstance(value, dict):
        raise CreativeError("give a dict {name: {'base_url': ..., 'api_key_env': ...}}")
    for name, entry in value.items():
        if not isinstance(name, str) or not _ENDPOINT_NAME.match(name):
            raise CreativeError("an endpoint's name is a word (letters, digits, _ . -, no colon), as in -m NAME:MODEL")
        if not isinstance(entry, dict):
            raise CreativeError(f"{name!r} needs a dict with at least 'base_url'")
        if "api_key" in entry or "key" in entry:
            raise CreativeError(
                f"{name!r}: never put the key itself here; set an environment variable and name it with 'api_key_env'"
            )
        unknown = sorted(set(map(str, entry)) - set(ENDPOINT_KEYS))
        if unknown:
            raise CreativeError(f"{name!r} takes {', '.join(ENDPOINT_KEYS)}; not {', '.join(unknown)}")
        base_url = entry.get("base_url", BUILTIN.get(name, {}).get("base_url"))
        parts = urlsplit(base_url) if isinstance(base_url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise CreativeError(f"{name!r} needs a 'base_url' starting with http:// or https://, e.g. http://127.0.0.1:8000/v1")
        env = entry.get("api_key_env")
        if env is not None and (not isinstance(env, str) or not _ENV_NAME.match(env)):
            raise CreativeError(f"{name!r}: 'api_key_env' is the NAME of an environment variable (like MY_KEY), not the key")
        if entry.get("api", "chat") not in APIS:
            raise CreativeError(f"{name!r}: 'api' is chat or completions")
        timeout = entry.get("timeout")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0):
            raise CreativeError(f"{name!r}: 'timeout' is a number of seconds > 0")
        extras = entry.get("extra_params", [])
        allowed = extra_param_names()
        if not isinstance(extras, (list, tuple)) or any(item not in allowed for item in extras):
            raise CreativeError(f"{name!r}: 'extra_params' lists some of {', '.join(allowed)}")


@dataclass(frozen=True)
class Endpoint:
    name: str
    base_url: str
    api_key_env: str = None
    api: str = "chat"
    timeout: float = None
    extra_params: tuple = ()

    @property
    def shown_url(self):
        """The base URL as messages and tables show it: no user:password@, no query."""
        return shown_url(self.base_url)

    @property
    def host(self):
        return urlsplit(self.base_url).hostname or ""

    def key(self):
        """The key, read from the environment now; NO_KEY for a server that needs none."""
        if not self.api_key_env:
            return NO_KEY
        key = os.environ.get(self.api_key_env, "").strip()
        if not key:
            raise RemoteError(
                f"{self.api_key_env} is not set: put the key for endpoint {self.name!r} there "
                f"(os.environ[{self.api_key_env!r}] = ... or in the shell before starting Jupyter)"
            )
        return key

    def key_is_set(self):
        return not self.api_key_env or bool(os.environ.get(self.api_key_env, "").strip())

    def key_state(self):
        if not self.api_key_env:
            return "none needed"
        return f"{self.api_key_env} ({'set' if os.environ.get(self.api_key_env, '').strip() else 'not set'})"


def shown_url(url):
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def endpoints(configured=None):
    """{name: Endpoint}: the built-in `openai`, then %config CreativeMagics.endpoints (which may redefine it)."""
    table = {name: dict(entry) for name, entry in BUILTIN.items()}
    for name, entry in (configured or {}).items():
        table[name] = {**table.get(name, {}), **entry}
    return {
        name: Endpoint(
            name=name,
            base_url=entry["base_url"].rstrip("/"),
            api_key_env=entry.get("api_key_env"),
            api=entry.get("api", "chat"),
            timeout=entry.get("timeout"),
            extra_params=tuple(entry.get("extra_params", ())),
        )
        for name, entry in table.items()
    }


def endpoint(name, configured=None):
    table = endpoints(configured)
    if name not in table:
        raise RemoteError(f"no endpoint named {name!r}; endpoints: {', '.join(sorted(table))}")
    return table[name]


def is_loopback(host):
    if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def plain_http_warning(point):
    """One line when the prompts (and the key) would travel unencrypted to another machine, else None."""
    if urlsplit(point.base_url).scheme != "http" or is_loopback(point.host):
        return None
    key = f" and the key in {point.api_key_env}" if point.api_key_env else ""
    return (
        f"Warning: endpoint {point.name!r} uses plain http to {point.host}: the prompts{key} travel unencrypted; "
        "use https unless this network is yours."
    )


# -- the client --------------------------------------------------------------------------------

_clients = {}  # (base_url, timeout) -> an OpenAI client holding no key (each call adds the key of that moment)
_clients_lock = threading.Lock()


def need_openai():
    try:
        import openai
    except ImportError:
        raise CreativeError("remote models need the openai package: pip install 'creative_magics[remote]' (or pip install openai)") from None
    return openai


def _client(point, timeout):
    openai = need_openai()
    with _clients_lock:
        made = _clients.get((point.base_url, timeout))
        if made is None:
            # max_retries=0: the retries after a 429 are ours (with the waits said in the message); an
            # explicit key, so the client never picks OPENAI_API_KEY up for another server.
            made = _clients[(point.base_url, timeout)] = openai.OpenAI(
                base_url=point.base_url, api_key=NO_KEY, timeout=timeout, max_retries=0
            )
    return made


class Connection:
    """One call's way to a model on an endpoint: the requests, the 429 retries, every failure as one line."""

    def __init__(self, point, model, timeout):
        self.endpoint = point
        self.model = model
        self.timeout = float(point.timeout or timeout)
        self._key = None

    @property
    def label(self):
        return f"{self.endpoint.name}:{self.model}"

    def client(self, need_key=True):
        """(the client, `auth`): the cached client holds no key; `auth` is the keyword argument that carries
        the key read now into one request (`extra_headers`). Without `need_key` a missing key is no error
        (a probe: does the server answer at all)."""
        self._key = self.endpoint.key() if need_key or self.endpoint.key_is_set() else NO_KEY
        auth = {"extra_headers": {"Authorization": f"Bearer {self._key}"}} if self._key != NO_KEY else {}
        return _client(self.endpoint, self.timeout), auth

    def request(self, what, send, route=None):
        """send(client, auth) -> the server's answer, after up to RATE_LIMIT_TRIES tries on 429 (`auth`: the
        keywords that carry the key into the request); `what` names the call in messages
        ("chat/completions"), `route` says what a 404 for a model the server lists means."""
        openai = need_openai()
        client, auth = self.client()
        waited, reconnected = 0.0, False
        for attempt in range(RATE_LIMIT_TRIES):
            message = None
            try:
                return send(client, auth)
            except openai.APIConnectionError as err:
                if _dropped(err) and not reconnected:  # a kept-alive connection the server had closed: once more, anew
                    reconnected, wait = True, 0.0
                else:
                    message = self._describe(err, what, route)
            except openai.RateLimitError as err:
                if _error_code(err) == "insufficient_quota" or attempt == RATE_LIMIT_TRIES - 1:
                    message = self._describe(err, what, route, tries=attempt + 1, waited=waited)
                else:
                    wait = _retry_after(err, BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)])
            except openai.OpenAIError as err:
                message = self._describe(err, what, route)
            except (ValueError, TypeError, AttributeError, KeyError) as err:  # an answer the client could not read
                message = self.malformed(what, err)
            if message is not None:
                raise RemoteError(message)  # raised outside the except: the client's error (with its request) is not kept
            backoff(wait)
            waited += wait
        raise AssertionError("unreachable")

    def chunks(self, stream, what):
        """The chunks of a streamed answer, with failures in the middle as one line; the stream is closed
        when the caller stops (also on Ctrl-C)."""
        openai = need_openai()
        message = None
        try:
            iterator = iter(stream)
            while True:
                try:
                    chunk = next(iterator)
                except StopIteration:
                    return
                except openai.OpenAIError as err:
                    message = self._describe(err, what, None)
                except (ValueError, TypeError, AttributeError, KeyError) as err:
                    message = self.malformed(what, err)
                if message is not None:
                    break
                yield chunk
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        if message is not None:
            raise RemoteError(message)

    def models(self, timeout=None):
        """The model ids the endpoint lists, or None when it does not answer that."""
        openai = need_openai()
        try:
            client, auth = self.client()
            client = client.with_options(timeout=timeout or min(self.timeout, 10.0))
            return sorted(str(m.id) for m in client.models.list(**auth).data)
        except (openai.OpenAIError, ValueError, TypeError, AttributeError, CreativeError):
            return None

    # -- messages -----------------------------------------------------------------------------

    def scrub(self, text):
        """A server's text, safe to show: one line, the key (and anything like a key) masked, cut short."""
        text = " ".join(str(text).split())
        if self._key and self._key != NO_KEY and len(self._key) >= 4:
            text = text.replace(self._key, "***")
        text = _KEY_LIKE.sub(lambda m: m.group(1) + "-***", text)
        return text if len(text) <= SERVER_TEXT else text[: SERVER_TEXT - 3] + "..."

    def malformed(self, what, err=None):
        detail = f" ({self.scrub(first_line(err))})" if err is not None else ""
        return (
            f"endpoint {self.endpoint.name!r} answered {what} with something that is not an OpenAI-style response{detail}: "
            f"check that {self.endpoint.shown_url} is an OpenAI-compatible API (most end in /v1)"
        )

    def _describe(self, err, what, route, tries=1, waited=0.0):
        openai = need_openai()
        name, url = self.endpoint.name, self.endpoint.shown_url
        env = self.endpoint.api_key_env
        if isinstance(err, openai.APITimeoutError):
            how = (
                "raise the 'timeout' of its entry in CreativeMagics.endpoints"
                if self.endpoint.timeout
                else f"wait longer with %config CreativeMagics.remote_timeout = {self.timeout * 4:g}"
            )
            return f"endpoint {name!r} did not answer {what} within {self.timeout:g} s (busy or stalled?): try again, or {how}"
        if isinstance(err, openai.APIConnectionError):
            cause = _root_cause(err)
            if _is_dns_failure(cause):
                return f"cannot find the host {self.endpoint.host!r} of endpoint {name!r} (name lookup failed): check its base_url and your network"
            if isinstance(cause, ConnectionRefusedError):
                return f"endpoint {name!r} refused the connection at {url}: is the server running there?"
            return f"cannot reach endpoint {name!r} at {url} ({self.scrub(first_line(cause or err))}): check the server and your network"
        status = getattr(err, "status_code", None)
        server = self.scrub(_server_message(err))
        said = f"; it said: {server}" if server else ""
        if isinstance(err, openai.AuthenticationError):
            if env:
                return f"endpoint {name!r} refused the key (401): set {env} to a valid key for {url}"
            return f"endpoint {name!r} wants a key (401): add 'api_key_env': 'NAME' to its entry in CreativeMagics.endpoints and set that variable"
        if isinstance(err, openai.PermissionDeniedError):
            whose = f"the key in {env}" if env else "this client"
            return f"endpoint {name!r} denied access to {self.model!r} (403): {whose} has no access to it{said}"
        if isinstance(err, openai.NotFoundError):
            listed = self.models(timeout=min(self.timeout, 5.0))
            if listed is None:
                return f"endpoint {name!r} answered 404 for {what} at {url}: check its base_url (most end in /v1){said}"
            if self.model in listed and route:
                return route
            if self.model in listed:
                return f"endpoint {name!r} answered 404 for {what} with model {self.model!r}{said}"
            shown = ", ".join(listed[:MODELS_LISTED]) + (f" and {len(listed) - MODELS_LISTED} more" if len(listed) > MODELS_LISTED else "")
            serves = f"it serves: {shown}" if listed else "it lists no models"
            return f"endpoint {name!r} has no model {self.model!r}; {serves}"
        if isinstance(err, openai.RateLimitError):
            if _error_code(err) == "insufficient_quota":
                return f"endpoint {name!r} says the account has no quota left (429): check its plan and billing{said}"
            return (
                f"endpoint {name!r} is limiting the rate of requests (429), still after {tries} tries over {round(waited, 1):g} s: "
                "wait a minute and run again"
            )
        if isinstance(err, openai.InternalServerError) or (status or 0) >= 500:
            return f"endpoint {name!r} failed with a server error ({status}) on {what}: try again, or look at the server's log{said}"
        if isinstance(err, openai.APIResponseValidationError):
            return self.malformed(what, err)
        if isinstance(err, openai.APIStatusError):
            return f"endpoint {name!r} refused the request to {what} ({status}){said}"
        return f"endpoint {name!r}: {what} failed ({self.scrub(first_line(err))})"


def backoff(seconds):
    """The wait between tries after a 429 (one place, so tests can count the waits)."""
    time.sleep(seconds)


def _root_cause(err):
    seen, cause = set(), err
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        nxt = cause.__cause__ or cause.__context__
        if nxt is None:
            return cause
        cause = nxt
    return cause


def _dropped(err):
    """Whether a connection error is a dropped connection (reset, or closed without an answer), not a
    refusal, a failed lookup or a timeout."""
    if isinstance(err, need_openai().APITimeoutError):
        return False
    cause = _root_cause(err)
    text = str(cause).lower()
    return isinstance(cause, (ConnectionResetError, BrokenPipeError)) or "disconnected without sending" in text or "connection reset" in text


def _is_dns_failure(cause):
    import socket

    if isinstance(cause, socket.gaierror):
        return True
    text = str(cause).lower()
    return "name or service not known" in text or "nodename nor servname" in text or "getaddrinfo failed" in text


def _server_message(err):
    """The server's own words: OpenAI's {"error": {"message": ...}}, FastAPI's {"detail": ...}, or the text."""
    body = getattr(err, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            return str(inner.get("message") or inner.get("detail") or "")
        return str(inner or body.get("detail") or "")
    if isinstance(body, str):
        return body
    return ""


def _error_code(err):
    body = getattr(err, "body", None)
    inner = body.get("error", body) if isinstance(body, dict) else None
    return inner.get("code") if isinstance(inner, dict) else None


def _retry_after(err, default):
    """The wait a 429 asks for (retry-after-ms or retry-after, in seconds), capped; else `default`."""
    headers = getattr(getattr(err, "response", None), "headers", None) or {}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, min(MAX_RETRY_AFTER_S, float(value) * scale))
        except ValueError:
            continue
    return default


# -- %creative endpoints ---------------------------------------------------------------------------


def probe(point, timeout=PROBE_S):
    """(answers, what it said) for one endpoint: its model list within `timeout`. A probe runs in a thread
    this waits for at most `timeout` + 1 s, since a name lookup ignores socket timeouts."""
    outcome = {}

    def work():
        connection = Connection(point, "", timeout)
        try:
            openai = need_openai()
            client, auth = connection.client(need_key=False)
            listed = client.models.list(**auth).data
            outcome["said"] = f"yes, {len(listed)} model{'s' if len(listed) != 1 else ''}"
            outcome["answers"] = True
        except CreativeError as err:
            outcome.update(answers=False, said=str(err))
        except Exception as err:  # any failure is a row of the table, never an error of the command
            answered = isinstance(err, openai.APIStatusError)
            line = connection._describe(err, "the model list", None) if isinstance(err, openai.OpenAIError) else first_line(err)
            outcome.update(answers=answered, said=("yes, but " if answered else "no: ") + line)

    worker = threading.Thread(target=work, name="creative-magics-probe", daemon=True)
    worker.start()
    worker.join(timeout + 1.0)
    if not outcome:
        return False, f"no: no answer within {timeout:g} s"
    return outcome["answers"], outcome["said"]


def probe_all(table, timeout=PROBE_S):
    """{name: (answers, said)}, the endpoints probed side by side."""
    results = {}
    threads = []
    for name, point in table.items():
        thread = threading.Thread(target=lambda n=name, p=point: results.__setitem__(n, probe(p, timeout)), daemon=True)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join(timeout + 2.0)
    return {name: results.get(name, (False, "no: no answer")) for name in table}
