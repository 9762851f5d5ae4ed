"""%%story and creative_magics.story: same text as a plain `generate`, streaming, samples, Ctrl-C,
recipes that reproduce, the defaults merge, and one-line errors for bad input."""

import pytest
import torch

import creative_magics
from creative_magics import session
from creative_magics.tasks import story as story_task
from helpers import assert_one_line_error


def warm(name):
    return session.current().cache.get("story", name)


def plain_generate(text_model, prompt, recipe):
    """What a person would write by hand with transformers, from the recorded recipe."""
    model, tokenizer = text_model.model, text_model.tokenizer
    if text_model.is_chat:
        messages = ([{"role": "system", "content": recipe["system"]}] if recipe["system"] else []) + [
            {"role": "user", "content": prompt}
        ]
        inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    else:
        inputs = tokenizer(prompt, return_tensors="pt")
    p = recipe["params"]
    kwargs = dict(
        max_new_tokens=p["max_new_tokens"],
        min_new_tokens=p["min_new_tokens"],
        repetition_penalty=p["repetition_penalty"],
        no_repeat_ngram_size=p["no_repeat_ngram"],
        num_return_sequences=p["n"],
        pad_token_id=tokenizer.pad_token_id,
    )
    if p["greedy"]:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    else:
        kwargs.update(do_sample=True, temperature=p["temperature"], top_p=p["top_p"], top_k=p["top_k"])
        if p["min_p"]:
            kwargs["min_p"] = p["min_p"]
    torch.manual_seed(recipe["seed"])
    out = model.generate(**inputs, **kwargs)
    return tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)


@pytest.mark.parametrize("model", ["gpt2", "smollm2"])
@pytest.mark.parametrize(
    "params",
    [
        dict(seed=7, max_new_tokens=30),
        dict(seed=3, temperature=1.3, top_p=0.8, top_k=20, min_p=0.05, repetition_penalty=1.3, max_new_tokens=25, n=3),
        dict(greedy=True, max_new_tokens=20, no_repeat_ngram=2),
    ],
    ids=["sampled", "sampled-all-knobs", "greedy"],
)
def test_text_equals_a_plain_generate_call(ip, model, params):
    result = creative_magics.story("Once upon a time", model=model, **params)
    expected = plain_generate(warm(model), "Once upon a time", result.recipe)
    assert result.texts == expected
    assert result.text == expected[0]
    assert len(result.texts) == params.get("n", 1)


def test_chat_models_get_the_system_and_user_messages(ip):
    result = creative_magics.story("write a haiku about autumn", model="smollm2", system="You are a poet.", seed=5, max_new_tokens=15)
    assert result.recipe["system"] == "You are a poet."
    assert result.texts == plain_generate(warm("smollm2"), "write a haiku about autumn", result.recipe)
    assert result.shown_prompt == ""  # the request is not echoed for instruct models


def test_system_needs_an_instruct_model(run):
    ran = run("%%story -m gpt2 --system 'be brief'\nOnce")
    assert_one_line_error(ran, "--system needs an instruct model")


def test_base_model_shows_the_prompt_in_bold_before_the_continuation(ip):
    result = creative_magics.story("Once upon a time", model="gpt2", seed=1, max_new_tokens=5)
    assert result.markdown().startswith("**Once upon a time**")
    assert result.markdown().endswith(result.text.split("\n")[-1])


def test_several_samples_are_labelled(ip):
    result = creative_magics.story("A fox", model="gpt2", seed=2, max_new_tokens=5, n=2)
    md = result.markdown()
    assert "**Sample 1**" in md and "**Sample 2**" in md and "---" in md


def test_streaming_reports_growing_text_then_the_whole(ip, monkeypatch):
    monkeypatch.setattr(story_task, "STREAM_INTERVAL_S", 0.0)
    seen = []
    result = creative_magics.story("Once", model="gpt2", seed=4, max_new_tokens=12, min_new_tokens=12, on_text=lambda r: seen.append(r.texts[0]))
    assert len(seen) >= 10  # one report per token
    assert all(b.startswith(a) or a == "" for a, b in zip(seen, seen[1:])) or seen[-1] == result.text
    assert seen[-1] == result.text


def test_no_stream_reports_nothing_until_done(ip):
    seen = []
    creative_magics.story("Once", model="gpt2", seed=4, max_new_tokens=5, stream=False, on_text=seen.append)
    assert seen == []


def test_ctrl_c_keeps_the_partial_text_and_the_model_stays_usable(ip, monkeypatch):
    monkeypatch.setattr(story_task, "STREAM_INTERVAL_S", 0.0)
    reports = []

    def interrupt_after_five_tokens(partial):
        reports.append(partial.texts[0])
        if len(reports) == 5:
            raise KeyboardInterrupt

    result = creative_magics.story("Once", model="gpt2", seed=9, max_new_tokens=40, on_text=interrupt_after_five_tokens)
    assert result.interrupted and result.recipe["interrupted"] is True
    full = creative_magics.story("Once", model="gpt2", seed=9, max_new_tokens=40)
    assert not full.interrupted
    assert full.text.startswith(result.text) and len(result.text) < len(full.text)
    text_model = warm("gpt2")
    prompt = text_model.tokenizer("Once", return_tensors="pt")
    torch.manual_seed(9)
    ids = text_model.model.generate(**prompt, **story_task.generate_kwargs(dict(full.recipe["params"]), text_model.tokenizer))
    first_five = ids[0, prompt["input_ids"].shape[1] :][:5]
    assert result.text == text_model.tokenizer.decode(first_five, skip_special_tokens=True)  # stopped within a token
    assert session.current().cache.table()[0]["in_use"] is False


def test_ctrl_c_in_the_magic_shows_and_stores_the_partial_text(ip, run, monkeypatch):
    monkeypatch.setattr(story_task, "STREAM_INTERVAL_S", 0.0)
    from creative_magics import views

    calls = []
    original = views.StoryView.update

    def update(self, partial):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        original(self, partial)

    monkeypatch.setattr(views.StoryView, "update", update)
    ran = run("%%story -m gpt2 --seed 3 --max-new-tokens 30 -o partial\nOnce")
    assert ran.ok
    assert ip.user_ns["partial"].interrupted
    assert "(stopped)" in ran.out
    monkeypatch.setattr(views.StoryView, "update", original)
    assert run("%%story -m gpt2 --seed 3 --max-new-tokens 3\nOnce").ok


def test_stop_strings_end_the_text(ip):
    free = creative_magics.story("Once", model="gpt2", seed=11, max_new_tokens=40)
    words = free.text.split()
    stop = words[len(words) // 2]
    stopped = creative_magics.story("Once", model="gpt2", seed=11, max_new_tokens=40, stop=[stop])
    assert stop not in stopped.text
    assert free.text.startswith(stopped.text)
    assert stopped.recipe["params"]["stop"] == [stop]


def test_stop_newline_escape_from_the_magic_line(ip, run):
    ran = run('%%story -m gpt2 --seed 1 --max-new-tokens 40 --stop "\\n" -o r\nOnce')
    assert ran.ok and "\n" not in ip.user_ns["r"].text
    assert ip.user_ns["r"].recipe["params"]["stop"] == ["\n"]


def test_a_drawn_seed_is_recorded_and_the_recipe_reproduces_the_text(ip):
    first = creative_magics.story("The sea", model="gpt2", max_new_tokens=20)
    assert isinstance(first.recipe["seed"], int)
    again = creative_magics.story(recipe=first.recipe)
    assert again.texts == first.texts
    assert again.recipe["params"] == first.recipe["params"]


def test_recipe_records_every_value_used_and_where_it_came_from(ip, run):
    ip.magics_manager.registry["CreativeMagics"].story_defaults = {"top_k": 12, "max_new_tokens": 9}
    run("%%story -m smollm2 --top-p 0.5 --seed 2 -o r\nHello")
    recipe = ip.user_ns["r"].recipe
    p, s = recipe["params"], recipe["sources"]
    assert recipe["task"] == "story" and recipe["model"] == "smollm2" and recipe["seed"] == 2
    assert (p["top_p"], s["top_p"]) == (0.5, "flag")
    assert (p["top_k"], s["top_k"]) == (12, "config")
    assert (p["max_new_tokens"], s["max_new_tokens"]) == (9, "config")
    assert (p["temperature"], s["temperature"]) == (0.7, "model")  # tiny-chat's generation_config
    assert (p["repetition_penalty"], s["repetition_penalty"]) == (1.1, "default")
    assert set(p) == {"temperature", "top_p", "top_k", "min_p", "repetition_penalty", "no_repeat_ngram", "max_new_tokens", "min_new_tokens", "n", "greedy", "stop"}


def test_default_model_comes_from_config(ip, run):
    ip.magics_manager.registry["CreativeMagics"].story_defaults = {"model": "gpt2"}
    run("%%story --max-new-tokens 3 -o r\nHi")
    assert ip.user_ns["r"].recipe["model"] == "gpt2"


def test_greedy_records_no_sampling_values(ip):
    result = creative_magics.story("Hi", model="gpt2", greedy=True, max_new_tokens=4)
    assert result.recipe["params"]["greedy"] is True
    assert "temperature" not in result.recipe["params"]


def test_magic_stores_the_result_and_prints_the_story(ip, run):
    ran = run("%%story -m gpt2 --seed 1 --max-new-tokens 8 -o tale\nOnce upon a time")
    tale = ip.user_ns["tale"]
    assert ran.ok and tale.text and tale.texts == [tale.text]
    assert ran.out.startswith("Once upon a time")  # terminal: the prompt, then the continuation
    assert tale.text in ran.out


def test_prompt_interpolation(ip, run):
    ip.user_ns["animal"] = "fox"
    run("%%story -m gpt2 --max-new-tokens 2 -o r\nA {animal} and a {unknown} with {{braces}} and {\"json\": 1}")
    assert ip.user_ns["r"].recipe["prompt"] == 'A fox and a {unknown} with {{braces}} and {"json": 1}'


def test_second_call_is_a_cache_hit(ip):
    creative_magics.story("Hi", model="gpt2", max_new_tokens=2)
    creative_magics.story("Hi", model="gpt2", max_new_tokens=2)
    (row,) = session.current().cache.table()
    assert (row["loads"], row["hits"]) == (1, 1)


@pytest.mark.parametrize(
    "line, body, fragment",
    [
        ("-m nobody/no-such-model", "Hi", "not in the local Hugging Face cache"),
        ("-m sd-turbo", "Hi", "'sd-turbo' is not a story model"),
        ("--temperature -0.5", "Hi", "temperature must be >= 0"),
        ("--temperature nan", "Hi", "temperature must be a number, not nan"),
        ("--top-p inf", "Hi", "top-p must be a number, not inf"),
        ("--top-p 0", "Hi", "top-p must be in (0, 1]"),
        ("--top-p 1.5", "Hi", "top-p must be in (0, 1]"),
        ("--top-k -1", "Hi", "--top-k must be a whole number >= 0"),
        ("--min-p 2", "Hi", "min-p must be in [0, 1]"),
        ("--repetition-penalty 0", "Hi", "repetition-penalty must be > 0"),
        ("--max-new-tokens 0", "Hi", "--max-new-tokens must be a whole number >= 1"),
        ("-m gpt2 --max-new-tokens 100000", "Hi", "beyond the model's context"),
        ("--min-new-tokens 50 --max-new-tokens 10", "Hi", "cannot exceed --max-new-tokens"),
        ("-n 0", "Hi", "-n must be a whole number from 1 to 16"),
        ("--greedy -n 2", "Hi", "greedy decoding always gives the same text"),
        ("--seed -3", "Hi", "seed must be a whole number"),
        ("", "   \n  ", "the prompt is empty"),
        ("--temprature 0.5", "Hi", "unrecognized arguments: --temprature"),
        ("--temperature hot", "Hi", "invalid float value: 'hot'"),
        ("-o 'not a name'", "Hi", "-o needs a Python variable name"),
        ("--stop ''", "Hi", "a --stop string cannot be empty"),
    ],
)
def test_bad_input_is_one_line_and_the_next_call_works(ip, run, line, body, fragment):
    ran = run(f"%%story {line}\n{body}")
    assert_one_line_error(ran, fragment)
    assert run("%%story -m gpt2 --max-new-tokens 2\nStill fine").ok


def test_unknown_keyword_in_the_python_api(ip):
    with pytest.raises(creative_magics.errors.CreativeError, match="unknown parameter"):
        creative_magics.story("Hi", temprature=0.5)


# -- the line form, and the bold prompt ---------------------------------------------------------------------


def test_the_line_form_takes_the_words_after_the_flags_as_the_prompt(ip, run):
    ran = run("%story -m gpt2 --seed 4 --max-new-tokens 5 -o tale A dragon's birthday, by the sea")
    assert ran.ok, ran.err
    tale = ip.user_ns["tale"]
    assert tale.recipe["prompt"] == "A dragon's birthday, by the sea" and tale.recipe["params"]["max_new_tokens"] == 5
    cell = run("%%story -m gpt2 --seed 4 --max-new-tokens 5 -o again\nA dragon's birthday, by the sea")
    assert cell.ok and ip.user_ns["again"].text == tale.text  # the same call as the cell form
    between = run("%story A dragon's birthday, --seed 4 -m gpt2 by the sea --max-new-tokens 5 -o mixed")
    assert between.ok and ip.user_ns["mixed"].text == tale.text  # flags may come between the words
    stop = run('%story -m gpt2 --max-new-tokens 5 --stop "\\n" -- Once upon a time')
    assert stop.ok and stop.out.startswith("Once upon a time")


def test_ipythons_hint_for_an_empty_cell_magic_leads_to_a_line_form_that_works(ip, run):
    hinted = run("%%story -m gpt2 --max-new-tokens 3 Once upon a time")
    assert not hinted.ok and "%story" in hinted.err  # IPython refuses an empty %% body and names the line magic
    assert run("%story -m gpt2 --max-new-tokens 3 Once upon a time").ok


PROMPT_ENDINGS = ["forest,", "forest", "5 * 3 =", "a *star*", "_under_ `code` [link](x) <b> &amp; $x$ ~~s~~", "...", '"quoted"',
                  "two\nlines.", "ends in a space "]
CONTINUATIONS = ["eg win", " there", "*bold*", "**x", ",and", "\nNext line", "_x_", "`code`", "123", "\u2014dash", "\u00e9t\u00e9", "'s", ""]


@pytest.mark.parametrize("prompt", PROMPT_ENDINGS)
def test_the_bold_prompt_renders_as_typed_whatever_the_continuation_starts_with(prompt):
    """Rendered by a CommonMark parser: the prompt's lines in bold, exactly as typed, then the continuation,
    with no stray asterisks, whatever the two sides end and start with."""
    import html
    import re

    from markdown_it import MarkdownIt

    from creative_magics.results import story_markdown

    parser = MarkdownIt("commonmark")
    lines = [line.strip() for line in prompt.splitlines() if line.strip()]
    for continuation in CONTINUATIONS:
        rendered = parser.render(story_markdown(prompt, [continuation]))
        bold = [html.unescape(b) for b in re.findall(r"<strong>(.*?)</strong>", rendered, re.S)]
        assert bold[: len(lines)] == lines, (prompt, continuation, rendered)
        text = html.unescape(re.sub(r"<[^>]+>", "", rendered)).replace("\u2060", "")
        assert "**" not in text.replace(continuation, ""), (prompt, continuation, rendered)
        if "*" not in continuation and "_" not in continuation and "`" not in continuation:
            assert continuation.strip() in text, (prompt, continuation, rendered)
