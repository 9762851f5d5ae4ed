"""%%story -m ENDPOINT:MODEL against a REAL OpenAI-compatible server: `transformers serve`, started once
on 127.0.0.1 (tests/servers.py, the `transformers_serve` fixture) with local model folders, stopped by its
PID at the end. Each call is compared with the plain `openai` client's call of the same request on the
same server: chat and completions, streamed and not, n > 1, stop strings, seeds, the system message, and
recipes that run again to the same text.

The served models are SERVED's entries: another model folder (W2 2/9's real offline SmolLM2, say) is one
more entry, `"smollm2-offline": Served("chat", lambda: <its folder>)`, and every test below runs on it too.
"""

from dataclasses import dataclass

import openai
import pytest

import creative_magics
from creative_magics import tiny
from helpers import assert_one_line_error



@dataclass(frozen=True)
class Served:
    api: str  # what it is written with: chat (instruct models) or completions (base models)
    folder: object  # () -> its folder; the server serves a folder by its path
    samples: bool = True  # False: its generation_config does not sample, and transformers serve then decodes greedily


SERVED = {
    "tiny-chat": Served("chat", lambda: str(tiny.ensure("tiny-chat"))),
    "tiny-gpt2": Served("completions", lambda: str(tiny.ensure("tiny-gpt2")), samples=False),
}
CHAT = [name for name, served in SERVED.items() if served.api == "chat"]
SAMPLING = [name for name, served in SERVED.items() if served.samples]
ANY = list(SERVED)
PROMPT = "Write a short poem about the sea"


@pytest.fixture()
def served(ip, transformers_serve):
    """The server as endpoint `served`; the folder of each model, under its name, as a variable-free ref."""
    ip.run_line_magic("config", f"CreativeMagics.endpoints = {{'served': {{'base_url': '{transformers_serve.url}'}}}}")
    return transformers_serve


def ref(name):
    return f"served:{SERVED[name].folder()}"


def api_of(name):
    return SERVED[name].api


def plain(server, name, prompt=PROMPT, system=None, **fields):
    """The plain openai client's call of what %%story sends: its texts."""
    client = openai.OpenAI(base_url=server.url, api_key="no-key", max_retries=0)
    fields = {"temperature": 0.8, "top_p": 0.95, "max_tokens": 24, **fields}
    folder = SERVED[name].folder()
    if api_of(name) == "chat":
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        answer = client.chat.completions.create(model=folder, messages=messages, **fields)
        return [choice.message.content for choice in answer.choices]
    answer = client.completions.create(model=folder, prompt=prompt, **fields)
    return [choice.text for choice in answer.choices]


def story(name, **params):
    params = {"max_new_tokens": 24, **params}
    return creative_magics.story(PROMPT, model=ref(name), api=api_of(name), **params)


# -- what is sent, streamed or not -------------------------------------------------------------------


@pytest.mark.parametrize("name", ANY)
def test_a_streamed_call_writes_what_the_plain_client_gets_and_shows_it_as_it_comes(served, name):
    partials = []
    result = story(name, seed=11, on_text=partials.append)
    assert result.texts == plain(served, name, seed=11)
    assert partials and all(p.text == result.text[: len(p.text)] for p in partials)  # the view saw the text grow
    assert result.recipe["endpoint"] == "served" and result.recipe["model"] == ref(name)
    assert result.shown_prompt == (PROMPT if api_of(name) == "completions" else "")


@pytest.mark.parametrize("name", ANY)
def test_no_stream_gives_the_same_text_in_one_piece(served, name):
    partials = []
    result = story(name, seed=11, stream=False, on_text=partials.append)
    assert partials == [] and result.texts == plain(served, name, seed=11)


@pytest.mark.parametrize("name", CHAT)
def test_the_system_message_goes_first_in_the_chat(served, name):
    result = story(name, seed=5, system="You answer in rhymes.")
    assert result.texts == plain(served, name, system="You answer in rhymes.", seed=5)
    assert result.recipe["system"] == "You answer in rhymes."


def test_completions_refuse_a_system_message_in_one_line(served):
    with pytest.raises(creative_magics.errors.CreativeError, match="--system needs chat/completions"):
        story("tiny-gpt2", system="Be brief.")


@pytest.mark.parametrize("name", SAMPLING)
def test_the_same_seed_writes_the_same_text_and_another_seed_another(served, name):
    wild = {"temperature": 1.5, "top_p": 1.0}  # the tiny base model is sure of itself at 0.8
    first, again, other = story(name, seed=3, **wild), story(name, seed=3, **wild), story(name, seed=4, **wild)
    assert first.texts == again.texts
    assert first.texts != other.texts


@pytest.mark.parametrize("name", ANY)
def test_n_samples_on_a_server_that_gives_one_per_request(served, name, capsys):
    notes = []
    result = story(name, seed=20, n=3, on_note=notes.append)
    assert len(result.texts) == 3
    # transformers serve ignores n: sample i came from seed 20 + i, and a note says so in one line
    assert result.texts == [plain(served, name, seed=20 + i)[0] for i in range(3)]
    assert len(notes) == 1 and "3 requests" in notes[0] and "seeds 20-22" in notes[0]
    assert result.recipe["params"]["n"] == 3 and result.recipe["seed"] == 20


@pytest.mark.parametrize("name", ANY)
def test_a_recipe_runs_again_to_the_same_text(served, name, ip, run):
    result = story(name, n=2, temperature=1.1, top_p=0.9, frequency_penalty=0.5)
    again = creative_magics.story(recipe=result.recipe)
    assert again.texts == result.texts and again.recipe["params"] == result.recipe["params"]
    assert result.recipe["params"]["frequency_penalty"] == 0.5
    ip.user_ns["earlier"] = result  # the magic form too: %%story --recipe VAR
    ran = run("%%story --recipe earlier -o remade\n" + PROMPT)
    assert ran.ok, ran.err
    assert ip.user_ns["remade"].texts == result.texts


@pytest.mark.parametrize("name", ANY)
def test_the_magic_streams_into_the_story_view_and_keeps_the_result(served, name, ip, run):
    ran = run(f"%%story -m {ref(name)} --api {api_of(name)} --max-new-tokens 24 --seed 11 -o poem\n{PROMPT}")
    assert ran.ok and not ran.err, ran.err
    poem = ip.user_ns["poem"]
    assert poem.texts == plain(served, name, seed=11)
    assert "served:" in repr(poem)


# -- a fault of the real server, and the session's tables ----------------------------------------------------


def test_a_server_error_is_one_line_and_the_next_call_works(served, run):
    ran = run("%%story -m served:/no/such/folder --max-new-tokens 4\nHi")
    assert_one_line_error(ran, "endpoint 'served' failed with a server error (500)")
    assert story("tiny-chat", seed=1).text


def test_creative_models_lists_the_remote_models_used_with_their_calls(served, run):
    story("tiny-chat", seed=1)
    story("tiny-chat", seed=2)
    ran = run("%creative models")
    assert ran.ok
    lines = [line for line in ran.out.splitlines() if SERVED["tiny-chat"].folder() in line]
    assert len(lines) == 1 and lines[0].split()[0] == "served" and lines[0].split()[3] == "2", ran.out
    assert "remote models used in this session" in ran.out


def test_creative_endpoints_says_which_answer(served, run, ip):
    from servers import free_port

    ip.run_line_magic(
        "config",
        f"CreativeMagics.endpoints = {{'served': {{'base_url': '{served.url}'}}, 'nothing': {{'base_url': 'http://127.0.0.1:{free_port()}/v1'}}}}",
    )
    ran = run("%creative endpoints")
    assert ran.ok, ran.err
    rows = {line.split()[0]: line for line in ran.out.splitlines()[1:] if line.strip()}
    assert "yes" in rows["served"] and "refused the connection" in rows["nothing"]
    assert "OPENAI_API_KEY" in rows["openai"]


def test_an_alias_can_name_a_remote_model(served, ip):
    ip.run_line_magic("config", f"CreativeMagics.aliases = {{'poet': '{ref('tiny-chat')}'}}")
    result = creative_magics.story(PROMPT, model="poet", max_new_tokens=24, seed=11)
    assert result.texts == plain(served, "tiny-chat", seed=11)
    assert result.recipe["model"] == "poet" and result.recipe["endpoint"] == "served"


def test_the_panel_offers_the_remote_models_used(served, ip):
    from creative_magics.widgets import panel

    story("tiny-chat", seed=1)
    opened = panel.open_panel()
    values = [value for _, value in opened._model_options("story", None)]
    assert ref("tiny-chat") in values
    assert ref("tiny-chat") not in [value for _, value in opened._model_options("paint", None)]


# -- last: calls that close their stream early (the server finishes an abandoned generation in the
# background, drawing from the random generator the seeded calls above compare on) ---------------------


@pytest.mark.parametrize("name", ANY)
def test_a_stop_string_ends_the_text_before_it(served, name):
    full = creative_magics.story(PROMPT, model=ref(name), api=api_of(name), max_new_tokens=40, seed=8).text
    cut = next(ch for ch in full[3:] if ch.strip())  # a character the text has after its start
    stopped = creative_magics.story(PROMPT, model=ref(name), api=api_of(name), max_new_tokens=40, seed=8, stop=[cut])
    assert stopped.text == full[: full.index(cut)]
    assert cut not in stopped.text and stopped.recipe["params"]["stop"] == [cut]


def test_ctrl_c_mid_stream_keeps_the_text_so_far_and_closes_the_stream(served, monkeypatch):
    from creative_magics import remote

    closed = []
    chunks = remote.Connection.chunks

    def watched(self, stream, what):
        original = stream.close
        stream.close = lambda: (closed.append(True), original())[1]
        return chunks(self, stream, what)

    monkeypatch.setattr(remote.Connection, "chunks", watched)
    seen = []

    def ctrl_c(partial):
        seen.append(partial.text)
        raise KeyboardInterrupt  # as if Ctrl-C arrived while the text streams in

    result = creative_magics.story(PROMPT, model=ref("tiny-chat"), max_new_tokens=200, seed=2, on_text=ctrl_c)
    assert result.interrupted and result.recipe["interrupted"]
    assert result.text == seen[0] and result.text  # what had arrived is kept
    assert closed  # the stream was closed: the server stops writing
    # and the next call works (its text need not continue this one: the server may still be finishing the
    # abandoned generation, which draws from the same random generator)
    assert story("tiny-chat", seed=2, max_new_tokens=8).text


# -- W2 7/9: a chat and --enhance on a remote model --------------------------------------------------


@pytest.mark.parametrize("name", CHAT)
def test_a_chat_on_a_remote_model_sends_every_turn(served, name):
    chat = creative_magics.Chat(system="You answer briefly.")
    first = creative_magics.chat(chat, "Name a colour.", model=ref(name), seed=3, max_new_tokens=12)
    second = creative_magics.chat(chat, "And another one?", seed=4, max_new_tokens=12)
    client = openai.OpenAI(base_url=served.url, api_key="no-key", max_retries=0)
    messages = [{"role": "system", "content": "You answer briefly."}, {"role": "user", "content": "Name a colour."},
                {"role": "assistant", "content": first.text}, {"role": "user", "content": "And another one?"}]
    answer = client.chat.completions.create(model=SERVED[name].folder(), messages=messages, temperature=0.8, top_p=0.95, max_tokens=12, seed=4)
    assert second.text == answer.choices[0].message.content
    assert chat.messages[-1] == {"role": "assistant", "content": second.text} and chat.model == ref(name)
    assert creative_magics.story(recipe=second.recipe).text == second.text


@pytest.mark.parametrize("name", CHAT)
def test_enhance_with_a_remote_story_model(served, name, ip, run):
    from creative_magics import api

    ip.run_line_magic("config", f"CreativeMagics.story_defaults = {{'model': {ref(name)!r}}}")
    assert run("%%paint --enhance --steps 1 --seed 2 -o enhanced\na red fox").ok
    recipe = ip.user_ns["enhanced"].recipe
    client = openai.OpenAI(base_url=served.url, api_key="no-key", max_retries=0)
    answer = client.chat.completions.create(
        model=SERVED[name].folder(), messages=[{"role": "user", "content": api.ENHANCE_REQUEST.format(prompt="a red fox")}],
        temperature=0, max_tokens=api.ENHANCE_TOKENS,
    )
    expected = api.clean_enhanced(answer.choices[0].message.content) or "a red fox"
    assert recipe["short_prompt"] == "a red fox" and recipe["enhanced_by"] == ref(name) and recipe["prompt"] == expected
