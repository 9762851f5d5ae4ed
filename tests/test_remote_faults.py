"""Every way a remote server can fail, each one line that says what to do, and the kernel usable after:
refused, an unknown host, a stall past the deadline, 401/403, a model it does not have (404, with the
models it lists), 429 (retried with backoff, then said), 5xx, answers that are not the API's, and Ctrl-C
in the middle of a stream. The faults come from the OpenAI protocol stand-in (tests/openai_standin.py),
a local server that answers as OpenAI's API does, error shapes included; the refused port is a real
closed port, and the unknown host a real lookup of a name under .invalid (RFC 6761: it never resolves).
"""

import pytest

import creative_magics
from creative_magics import remote
from creative_magics.errors import CreativeError
from helpers import assert_one_line_error
from servers import free_port

GOOD = "%%story -m stand:echo --max-new-tokens 4 --seed 1 -o fine\nStill here"


@pytest.fixture()
def stand(ip, standin, monkeypatch):
    """The stand-in as endpoint `stand`, with retries that do not wait long."""
    monkeypatch.setattr(remote, "BACKOFF_S", (0.01, 0.01, 0.01))
    ip.run_line_magic("config", f"CreativeMagics.endpoints = {{'stand': {{'base_url': '{standin.url}'}}}}")
    return standin


def works_after(run, ip):
    """The next call on a healthy model works: the kernel, the session and the client are fine."""
    ip.user_ns.pop("fine", None)
    ran = run(GOOD)
    assert ran.ok and not ran.err, ran.err
    assert ip.user_ns["fine"].text == "you said Still here"


# (model or endpoint setup, the cell's model, a fragment of the one line)
SERVER_FAULTS = [
    ("fault-401", "wants a key (401): add 'api_key_env'"),
    ("fault-403", "denied access to 'fault-403' (403)"),
    ("fault-500", "failed with a server error (500) on chat/completions"),
    ("fault-502", "failed with a server error (502)"),
    ("fault-429", "limiting the rate of requests (429), still after 4 tries"),
    ("fault-quota", "no quota left (429)"),
    ("fault-garbage", "not an OpenAI-style response"),
    ("fault-nochoices", "not an OpenAI-style response"),
    ("fault-badstream", "not an OpenAI-style response"),
    ("missing-model", "has no model 'missing-model'; it serves: dall-e-2, dall-e-3, echo,"),
]


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "no-stream"])
@pytest.mark.parametrize("model, fragment", SERVER_FAULTS)
def test_a_server_fault_is_one_line_and_the_next_call_works(stand, ip, run, model, fragment, stream):
    flags = "" if stream else " --no-stream"
    ran = run(f"%%story -m stand:{model} --max-new-tokens 4{flags}\nHi")
    assert_one_line_error(ran, "endpoint 'stand'", fragment)
    works_after(run, ip)


def test_a_429_is_retried_with_backoff_and_a_server_that_recovers_answers(stand, ip, run):
    ran = run("%%story -m stand:fault-429-twice --max-new-tokens 4 -o late\nHi")
    assert ran.ok and not ran.err, ran.err
    assert stand.counts["fault-429-twice"] == 3  # two 429s, then the answer


def test_a_429_honours_retry_after_and_gives_up_after_four_tries(stand, ip, run, monkeypatch):
    waits = []
    monkeypatch.setattr(remote, "backoff", waits.append)
    ran = run("%%story -m stand:fault-429 --max-new-tokens 4\nHi")
    assert_one_line_error(ran, "still after 4 tries", "wait a minute and run again")
    assert stand.counts["fault-429"] == 4
    assert waits == [0.005, 0.005, 0.005]  # the stand-in's retry-after-ms: 5
    assert stand.counts.get("fault-quota") is None


def test_no_quota_is_not_retried(stand, run):
    assert_one_line_error(run("%%story -m stand:fault-quota\nHi"), "no quota left")
    assert stand.counts["fault-quota"] == 1


def test_refused_connection(ip, run):
    ip.run_line_magic("config", f"CreativeMagics.endpoints = {{'down': {{'base_url': 'http://127.0.0.1:{free_port()}/v1'}}}}")
    assert_one_line_error(run("%%story -m down:any\nHi"), "endpoint 'down' refused the connection at http://127.0.0.1:", "is the server running")


def test_unknown_host(ip, run, standin):
    ip.run_line_magic("config", "CreativeMagics.endpoints = {'far': {'base_url': 'https://no-such-host.invalid/v1'}}")
    assert_one_line_error(run("%%story -m far:any\nHi"), "cannot find the host 'no-such-host.invalid' of endpoint 'far'", "check its base_url")


def test_a_stall_ends_at_the_deadline_you_choose(stand, ip, run):
    ip.run_line_magic("config", "CreativeMagics.remote_timeout = 0.5")
    ran = run("%%story -m stand:fault-stall --max-new-tokens 4\nHi")
    assert_one_line_error(ran, "did not answer chat/completions within 0.5 s", "CreativeMagics.remote_timeout = 2")
    stand.release.set()
    ip.run_line_magic("config", "CreativeMagics.remote_timeout = 60")
    works_after(run, ip)


def test_an_endpoint_of_its_own_deadline(stand, ip, run):
    ip.run_line_magic("config", f"CreativeMagics.endpoints = {{'slowpoke': {{'base_url': '{stand.url}', 'timeout': 0.3}}}}")
    ran = run("%%story -m slowpoke:fault-stall\nHi")
    assert_one_line_error(ran, "within 0.3 s", "'timeout' of its entry in CreativeMagics.endpoints")


def test_a_wrong_base_url_says_so(stand, ip, run):
    base = stand.url.removesuffix("/v1")  # without /v1: every route is a 404, and so is the model list
    ip.run_line_magic("config", f"CreativeMagics.endpoints = {{'nov1': {{'base_url': '{base}'}}}}")
    assert_one_line_error(run("%%story -m nov1:echo\nHi"), "answered 404 for chat/completions", "most end in /v1")


def test_ctrl_c_mid_stream_keeps_the_text_and_the_server_sees_the_stream_closed(stand, ip, run):
    got = []

    def ctrl_c(partial):
        got.append(partial.text)
        if len(partial.text.split()) >= 3:
            raise KeyboardInterrupt

    result = creative_magics.story("Hi", model="stand:slow", max_new_tokens=2000, on_text=ctrl_c)
    assert result.interrupted and result.text.startswith("w0 w1 w2")
    assert len(result.text.split()) < 2000
    assert stand.hung_up.wait(120)  # the connection was closed: the server stopped writing
    works_after(run, ip)


def test_a_missing_key_names_the_variable_before_any_request(stand, ip, run, monkeypatch):
    monkeypatch.delenv("STAND_KEY", raising=False)
    ip.run_line_magic("config", f"CreativeMagics.endpoints = {{'keyed': {{'base_url': '{stand.url}', 'api_key_env': 'STAND_KEY'}}}}")
    assert_one_line_error(run("%%story -m keyed:echo\nHi"), "STAND_KEY is not set")
    assert stand.requests == []


def test_a_refused_key_names_the_variable_to_set(ip, run, monkeypatch):
    from openai_standin import StandIn

    keyed = StandIn(key="the-right-key-000111").start()
    try:
        monkeypatch.setenv("STAND_KEY", "a-wrong-key-999888")
        ip.run_line_magic("config", f"CreativeMagics.endpoints = {{'keyed': {{'base_url': '{keyed.url}', 'api_key_env': 'STAND_KEY'}}}}")
        assert_one_line_error(run("%%story -m keyed:echo\nHi"), "endpoint 'keyed' refused the key (401): set STAND_KEY to a valid key")
        monkeypatch.setenv("STAND_KEY", "the-right-key-000111")  # read at call time: the next call has it
        assert run("%%story -m keyed:echo --max-new-tokens 2\nHi").ok
    finally:
        keyed.stop()


def test_the_client_never_sends_openai_api_key_to_another_server(stand, ip, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-for-openai-only-0123456789")
    seen = []
    original = stand.RequestHandlerClass._key_ok

    def spy(handler):
        seen.append(handler.headers.get("Authorization"))
        return original(handler)

    monkeypatch.setattr(stand.RequestHandlerClass, "_key_ok", spy)
    creative_magics.story("Hi", model="stand:echo", max_new_tokens=2)
    assert seen and all("sk-for-openai-only" not in (header or "") for header in seen)


def test_plain_http_to_another_machine_is_warned_once(ip, run):
    ip.run_line_magic("config", "CreativeMagics.endpoints = {'lan': {'base_url': 'http://no-such-host.invalid:8000/v1', 'api_key_env': 'LAN_KEY'}}")
    import os

    os.environ["LAN_KEY"] = "lan-key-value-1234"
    try:
        first = run("%%story -m lan:any\nHi")
        second = run("%%story -m lan:any\nHi")
    finally:
        del os.environ["LAN_KEY"]
    warnings = [line for line in first.out.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 1 and "plain http to no-such-host.invalid" in warnings[0] and "LAN_KEY" in warnings[0]
    assert_one_line_error(first, "cannot find the host")
    assert "Warning" not in second.out  # once per endpoint and session
    assert remote.plain_http_warning(remote.endpoint("x", {"x": {"base_url": "http://127.0.0.1:1/v1"}})) is None
    assert remote.plain_http_warning(remote.endpoint("x", {"x": {"base_url": "http://localhost:1/v1"}})) is None
    assert remote.plain_http_warning(remote.endpoint("x", {"x": {"base_url": "http://[::1]:1/v1"}})) is None
    assert remote.plain_http_warning(remote.endpoint("x", {"x": {"base_url": "https://10.0.0.5/v1"}})) is None
    assert remote.plain_http_warning(remote.endpoint("x", {"x": {"base_url": "http://10.0.0.5/v1"}}))


# -- refused before anything is sent ------------------------------------------------------------------


@pytest.mark.parametrize(
    "cell, fragment",
    [
        ("%%story -m nowhere:model\nHi", "no endpoint named 'nowhere'; endpoints: openai, stand"),
        ("%%story -m stand:\nHi", "names no model after the colon"),
        ("%%story -m stand:echo --min-p 0.1\nHi", "--min-p cannot be sent to stand:echo"),
        ("%%story -m stand:echo --top-k 5\nHi", "list 'top_k' in the endpoint's 'extra_params'"),
        ("%%story -m stand:echo --repetition-penalty 1.3\nHi", "--repetition-penalty cannot be sent"),
        ("%%story -m stand:echo --no-repeat-ngram 3\nHi", "--no-repeat-ngram cannot be sent"),
        ("%%story -m stand:echo --api completions --system Be\nHi", "--system needs chat/completions"),
        ("%%compose -m stand:echo\npiano", "remote servers write (%%story) and paint (%%paint), compose needs a local model"),
        ("%finetune x --base stand:echo --data nothing", "finetune needs a local model"),
        ("%%story -m gpt2 --presence-penalty 0.5\nHi", "--presence-penalty is for remote models (ENDPOINT:MODEL); gpt2 is a local model"),
        ("%%story -m gpt2 --api chat\nHi", "--api is for remote models"),
    ],
)
def test_what_no_server_could_take_is_refused_before_any_request(stand, run, cell, fragment):
    assert_one_line_error(run(cell), fragment)
    assert stand.requests == []


def test_values_from_the_panel_or_config_that_a_server_cannot_take_are_said_in_one_line(stand, ip, run):
    ip.run_line_magic("config", "CreativeMagics.story_defaults = {'top_k': 12, 'repetition_penalty': 1.2}")
    ran = run("%%story -m stand:echo --max-new-tokens 3\nHi")
    assert ran.ok and not ran.err
    notes = [line for line in ran.out.splitlines() if line.startswith("Not used by")]
    assert notes == ["Not used by stand:echo: --top-k 12 (config), --repetition-penalty 1.2 (config)."]
    path, body = stand.requests[-1]
    assert "top_k" not in body and "repetition_penalty" not in body


def test_extra_params_go_to_a_server_that_takes_them(stand, ip):
    ip.run_line_magic("config", f"CreativeMagics.endpoints = {{'vllm': {{'base_url': '{stand.url}', 'extra_params': ['top_k', 'min_p']}}}}")
    result = creative_magics.story("Hi", model="vllm:echo", top_k=7, min_p=0.05, max_new_tokens=3, presence_penalty=0.4)
    _, body = stand.requests[-1]
    assert body["top_k"] == 7 and body["min_p"] == 0.05 and body["presence_penalty"] == 0.4 and body["max_tokens"] == 3
    assert result.recipe["params"]["top_k"] == 7 and result.recipe["params"]["min_p"] == 0.05
    again = creative_magics.story(recipe=result.recipe)
    assert stand.requests[-1][1] == body


def test_the_request_carries_the_declared_fields(stand):
    creative_magics.story("Hi", model="stand:echo", temperature=0.3, top_p=0.5, max_new_tokens=9, seed=4, stop=["\\n", "END"],
                          presence_penalty=0.1, frequency_penalty=0.2, system="Be kind.")
    path, body = stand.requests[-1]
    assert path == "/v1/chat/completions"
    assert body["messages"] == [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"}]
    expected = {"temperature": 0.3, "top_p": 0.5, "max_tokens": 9, "seed": 4, "stop": ["\n", "END"], "presence_penalty": 0.1,
                "frequency_penalty": 0.2, "stream": True, "model": "echo"}
    assert {k: body[k] for k in expected} == expected
    creative_magics.story("Hi", model="stand:echo", greedy=True, api="completions", stream=False)
    path, body = stand.requests[-1]
    assert path == "/v1/completions" and body["prompt"] == "Hi" and body["temperature"] == 0 and "top_p" not in body
    assert body["stream"] is False


def test_n_is_sent_to_a_server_that_honours_it(stand):
    result = creative_magics.story("Hi", model="stand:echo", n=3, max_new_tokens=3)
    assert result.texts == ["you said Hi #0", "you said Hi #1", "you said Hi #2"]
    assert [body.get("n") for _, body in stand.requests] == [3]  # one request made all three


def test_endpoints_config_is_checked_in_one_line_and_never_repeats_a_value(ip, caplog):
    secret = "sk-live-DO-NOT-SHOW-987654321"
    for value, fragment in [
        ({"x": {"base_url": "ftp://host"}}, "needs a 'base_url' starting with http:// or https://"),
        ({"x": {"base_url": "http://h/v1", "api_key": secret}}, "never put the key itself here"),
        ({"x": {"base_url": "http://h/v1", "api_key_env": secret}}, "the NAME of an environment variable"),
        ({"x": {"base_url": "http://h/v1", "api": "rpc"}}, "'api' is chat or completions"),
        ({"x": {"base_url": "http://h/v1", "timeout": -1}}, "'timeout' is a number of seconds > 0"),
        ({"x": {"base_url": "http://h/v1", "extra_params": ["temperature"]}}, "'extra_params' lists some of"),
        ({"x": {"base_url": "http://h/v1", "colour": "red"}}, "'x' takes base_url, api_key_env"),
        ({"a:b": {"base_url": "http://h/v1"}}, "an endpoint's name is a word"),
    ]:
        caplog.clear()
        ip.run_line_magic("config", f"CreativeMagics.endpoints = {value!r}")
        errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
        assert len(errors) == 1 and fragment in errors[0] and "\n" not in errors[0], (value, errors)
        assert secret not in errors[0]
        assert ip.magics_manager.registry["CreativeMagics"].endpoints == {}


def test_the_unknown_endpoint_line_keeps_the_gguf_form_apart():
    from creative_magics.models import remote_ref

    assert remote_ref("openai:gpt-4o-mini") == ("openai", "gpt-4o-mini")
    assert remote_ref("ollama:llama3.2:3b", ["ollama"]) == ("ollama", "llama3.2:3b")
    assert remote_ref("bartowski/SmolLM2:SmolLM2.Q4.gguf") is None  # REPO:FILE.gguf is a GGUF file (W2 2/9)
    assert remote_ref("mine:repo:file.gguf", ["mine"]) == ("mine", "repo:file.gguf")  # a configured endpoint comes first
    assert remote_ref("C:\\models\\x") is None
    with pytest.raises(CreativeError, match="no endpoint named 'olama'; endpoints: ollama, openai"):
        remote_ref("olama:llama3", ["ollama"])
