"""The key of a remote endpoint never reaches an output: a recipe, a PNG chunk, a saved file, the gallery,
the panel, a repr, %config's output, %creative's tables or an error message, even when the server
repeats the key back in its own error text. The key is read from the environment at call time; the
client kept between calls holds none. Every output of a session that uses the key is searched for it."""

import json
import secrets

import pytest

import creative_magics
from creative_magics import remote

KEY = "sk-creative-" + secrets.token_hex(16)
WRONG = "sk-wrong-" + secrets.token_hex(16)


@pytest.fixture()
def keyed(ip, monkeypatch):
    from openai_standin import StandIn

    server = StandIn(key=KEY).start()
    monkeypatch.setenv("CM_TEST_KEY", KEY)
    monkeypatch.setenv("CM_WRONG_KEY", WRONG)
    ip.run_line_magic(
        "config",
        "CreativeMagics.endpoints = {"
        f"'vault': {{'base_url': '{server.url}', 'api_key_env': 'CM_TEST_KEY'}}, "
        f"'wrong': {{'base_url': '{server.url}', 'api_key_env': 'CM_WRONG_KEY'}}}}",
    )
    yield server
    server.stop()


def leaks(text, *keys):
    """The keys (or their distinctive halves) found in `text`."""
    text = text if isinstance(text, str) else text.decode("latin-1")
    return [key for key in keys for part in (key, key[-16:]) if part in text]


def widget_states():
    from ipywidgets.widgets import widget

    return json.dumps([w.get_state() for w in list(widget._instances.values())], default=str)


def test_no_output_of_a_session_holds_the_key(keyed, ip, run, tmp_path):
    outputs = []

    def cell(source):
        ran = run(source)
        outputs.extend([ran.out, ran.err])
        return ran

    # calls that work: streamed and not, several samples, paintings saved with their recipes, an edit
    assert cell("%%story -m vault:echo --max-new-tokens 5 -n 2 -o tale\nOnce").ok
    assert cell("%%story -m vault:echo --no-stream --api completions --max-new-tokens 5 -o plain\nOnce").ok
    assert cell(f"%%paint -m vault:dall-e-2 --width 256 --height 256 -n 2 --save {tmp_path} -o pics\na fox").ok
    ip.user_ns["start"] = ip.user_ns["pics"].image
    assert cell("%%paint -m vault:dall-e-2 --init start --width 256 --height 256 -o edit\na fox in snow").ok
    assert keyed.requests  # the key did go to the server: the requests were authorised with it
    # calls that fail, where the server repeats the key (or a wrong one) in its answer
    for source in (
        "%%story -m wrong:echo\nHi",  # 401 "Incorrect API key provided: <the wrong key>"
        "%%story -m vault:fault-echo-key\nHi",  # 400 whose message holds "Bearer <key>"
        "%%story -m vault:fault-500\nHi",
        "%%story -m vault:nobody\nHi",
        "%%paint -m vault:dall-e-3 -n 3\na fox",
    ):
        ran = cell(source)
        assert not ran.ok and ran.error_lines, source
    try:
        creative_magics.story("Hi", model="vault:fault-echo-key")
    except creative_magics.errors.CreativeError as err:
        outputs.append(str(err))
        outputs.append(repr(err))
    # the tables, the options, the widgets
    for source in ("%creative models", "%creative endpoints", "%config CreativeMagics", "print(repr(CreativeMagics_endpoints))"):
        if source.startswith("print"):
            ip.user_ns["CreativeMagics_endpoints"] = ip.magics_manager.registry["CreativeMagics"].endpoints
        cell(source)
    outputs.append(repr(ip.run_line_magic("config", "CreativeMagics.endpoints")))
    gallery = creative_magics.gallery()
    panel = creative_magics.panel()
    outputs.append(widget_states())
    gallery.close()
    panel.close()
    # results: reprs, Markdown, recipes, every PNG as shown and as saved
    for name in ("tale", "plain", "pics", "edit"):
        result = ip.user_ns[name]
        outputs += [repr(result), str(result), json.dumps(result.recipe, default=str)]
        if hasattr(result, "markdown"):
            outputs.append(result.markdown())
        for image in getattr(result, "images", []):
            outputs.append(creative_magics.recipes.png_bytes(image))
            outputs.append(json.dumps(image.info, default=str))
        if hasattr(result, "images"):
            outputs.append(result._repr_png_())
    outputs += [path.read_bytes() for path in tmp_path.glob("*.png")]
    outputs.append(json.dumps([creative_magics.read_recipe(path) for path in tmp_path.glob("*.png")], default=str))

    found = [(index, leaks(text, KEY, WRONG)) for index, text in enumerate(outputs) if leaks(text, KEY, WRONG)]
    assert found == []
    assert len(outputs) > 30
    # the client kept between calls holds no key: each call adds the key of that moment
    assert remote._clients and all(client.api_key == remote.NO_KEY for client in remote._clients.values())


def test_the_key_is_read_at_call_time(keyed, monkeypatch):
    monkeypatch.setenv("CM_TEST_KEY", "not-it")
    with pytest.raises(creative_magics.errors.CreativeError, match="refused the key"):
        creative_magics.story("Hi", model="vault:echo", max_new_tokens=2)
    monkeypatch.setenv("CM_TEST_KEY", KEY)
    assert creative_magics.story("Hi", model="vault:echo", max_new_tokens=2).text


def test_a_server_text_is_scrubbed_of_anything_like_a_key():
    point = remote.endpoint("openai")
    connection = remote.Connection(point, "m", 1)
    connection._key = "abcd-the-key-1234"
    text = connection.scrub("echo abcd-the-key-1234 and sk-proj-" + "x" * 30 + "\nsecond line")
    assert "abcd-the-key-1234" not in text and "x" * 20 not in text and "\n" not in text
