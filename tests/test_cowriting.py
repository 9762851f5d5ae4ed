"""Co-writing (W2 7/9): %story continue equals one longer generate, %story again draws a branch that its
recipe makes again, %%story --chat sends what the chat template makes of the messages and trims the
oldest turns (never the system message), --show-probs gives the softmax of a plain forward pass."""

import json
import os

import pytest
import torch

import creative_magics
from creative_magics import session
from creative_magics.results import Chat, StoryResult
from helpers import assert_one_line_error


def warm(name):
    return session.current().cache.get("story", name)


def longer_greedy_generate(text_model, prompt, tokens):
    tokenizer = text_model.tokenizer
    inputs = tokenizer(prompt, return_tensors="pt")
    out = text_model.model.generate(
        **inputs, max_new_tokens=tokens, do_sample=False, repetition_penalty=1.1, pad_token_id=tokenizer.pad_token_id,
        temperature=None, top_p=None, top_k=None,
    )
    return tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)


# -- %story continue ---------------------------------------------------------------------------------


def test_continue_equals_one_longer_greedy_generate(ip):
    first = creative_magics.story("Once upon a time", model="gpt2", greedy=True, max_new_tokens=12)
    more = creative_magics.continue_story(first, max_new_tokens=9)
    assert more.text == longer_greedy_generate(warm("gpt2"), "Once upon a time", 21)
    assert more.text.startswith(first.text) and len(more.text) > len(first.text)
    assert more.recipe["continues"] == first.recipe
    assert more.parent is first and first.text != more.text  # the old result is unchanged


def test_continue_twice_from_the_magic_defaults_to_the_latest_story(ip, run):
    run("%%story -m gpt2 --greedy --max-new-tokens 6 -o s\nThe sea")
    assert run("%story continue --max-new-tokens 5").ok
    assert run("%story continue --max-new-tokens 5 -o longer").ok
    assert ip.user_ns["longer"].text == longer_greedy_generate(warm("gpt2"), "The sea", 16)
    assert run("%story continue s --max-new-tokens 5 -o other").ok
    assert ip.user_ns["other"].text == longer_greedy_generate(warm("gpt2"), "The sea", 11)


def test_continue_of_a_chat_reply_grows_the_reply(ip):
    chat = Chat(system="You are a poet.")
    reply = creative_magics.chat(chat, "a poem about rain", model="smollm2", greedy=True, max_new_tokens=6)
    more = creative_magics.continue_story(chat, max_new_tokens=4)
    assert more.text.startswith(reply.text) and len(more.text) > len(reply.text)
    assert chat.messages[-1] == {"role": "assistant", "content": more.text}
    assert len(chat.messages) == 2


def test_a_continuation_is_made_again_from_its_recipe(ip):
    first = creative_magics.story("Once upon a time", model="gpt2", seed=4, max_new_tokens=6)
    more = creative_magics.continue_story(first, max_new_tokens=6)
    assert creative_magics.story(recipe=more.recipe).text == more.text


# -- %story again --------------------------------------------------------------------------------------


def test_again_gives_another_text_with_a_new_recorded_seed_that_reproduces(ip, run):
    run("%%story -m gpt2 --seed 3 --max-new-tokens 12 -o s\nOnce upon a time")
    first = ip.user_ns["s"]
    assert run("%story again s -o b").ok
    branch = ip.user_ns["b"]
    assert branch.recipe["seed"] != first.recipe["seed"]
    assert branch.text != first.text
    assert creative_magics.story(recipe=branch.recipe).text == branch.text
    third = creative_magics.again(first)
    assert first.branches == [first, branch, third] and branch.branches == first.branches
    assert len({b.recipe["seed"] for b in first.branches}) == 3


def test_again_of_a_continuation_redraws_only_the_continued_part(ip):
    first = creative_magics.story("Once upon a time", model="gpt2", seed=5, max_new_tokens=8)
    more = creative_magics.continue_story(first, max_new_tokens=8)
    other = creative_magics.again(more)
    assert other.text.startswith(first.text) and other.text != more.text
    assert other.parent is first and more.branches == [more, other]
    assert creative_magics.story(recipe=other.recipe).text == other.text


def test_again_of_greedy_text_is_refused_in_one_line(ip, run):
    run("%%story -m gpt2 --greedy --max-new-tokens 3\nHi")
    assert_one_line_error(run("%story again"), "written greedily")


# -- %%story --chat ------------------------------------------------------------------------------------


def test_chat_sends_the_chat_template_of_the_messages(ip, run):
    assert run("%%story --chat talk -m smollm2 --system 'You are brief.' --seed 1 --max-new-tokens 5\nHello there").ok
    assert run("%%story --chat talk --seed 2 --max-new-tokens 5 -o second\nTell me more").ok
    talk = ip.user_ns["talk"]
    assert isinstance(talk, Chat) and talk.model == "smollm2" and talk.system == "You are brief."
    assert [m["role"] for m in talk.messages] == ["user", "assistant", "user", "assistant"]
    tokenizer = warm("smollm2").tokenizer
    by_hand = tokenizer.apply_chat_template(
        [{"role": "system", "content": "You are brief."}] + talk.messages[:3], add_generation_prompt=True, return_dict=True,
    )["input_ids"]
    reply = ip.user_ns["second"]
    assert reply.ids[0][: reply.prompt_tokens] == list(by_hand)
    assert talk.messages[3]["content"] == reply.text


def test_a_chat_reply_is_made_again_from_its_recipe(ip):
    chat = Chat()
    creative_magics.chat(chat, "hello", model="smollm2", seed=1, max_new_tokens=6)
    reply = creative_magics.chat(chat, "and then?", seed=7, max_new_tokens=6)
    assert creative_magics.story(recipe=reply.recipe).text == reply.text


def test_trimming_keeps_the_system_message_and_drops_the_oldest_turns(ip, capsys):
    chat = Chat(system="Keep this system message.", model="smollm2")
    for index in range(6):
        chat.add("user", f"turn {index} " + "word " * 20)
        chat.add("assistant", "answer " * 20)
    notes = []
    reply = creative_magics.chat(chat, "the latest turn", seed=1, max_new_tokens=20, on_note=notes.append)
    assert len(notes) == 1 and "oldest" in notes[0] and "system message is kept" in notes[0]
    sent = reply.recipe["messages"]
    assert sent[-1] == {"role": "user", "content": "the latest turn"} and sent[0]["role"] == "user"
    assert reply.recipe["left_out"] > 0 and len(sent) + reply.recipe["left_out"] == 13
    text_model = warm("smollm2")
    by_hand = text_model.tokenizer.apply_chat_template(
        [{"role": "system", "content": "Keep this system message."}] + sent, add_generation_prompt=True, return_dict=True,
    )["input_ids"]
    assert reply.ids[0][: reply.prompt_tokens] == list(by_hand)
    assert len(by_hand) + 20 <= text_model.model.config.n_positions
    assert len(chat.messages) == 14  # the chat itself keeps every turn


def test_chat_with_a_base_model_is_refused_in_one_line(ip, run):
    assert_one_line_error(run("%%story --chat base_talk -m gpt2\nHello"), "--chat needs an instruct model", "use an instruct model")
    assert "base_talk" not in ip.user_ns


def test_chat_name_holding_something_else_is_refused(ip, run):
    ip.user_ns["taken"] = 42
    assert_one_line_error(run("%%story --chat taken -m smollm2\nHello"), "'taken' holds a int, not a Chat")


def test_chat_shows_as_a_conversation_and_saves_and_loads_as_json(ip, tmp_path):
    chat = Chat(system="Be kind.")
    creative_magics.chat(chat, "hello *you*", model="smollm2", seed=1, max_new_tokens=4)
    shown = chat._repr_markdown_()
    assert shown.startswith("*system:* Be kind.") and "**you:** hello \\*you\\*" in shown and "**smollm2:**" in shown
    path = chat.save(tmp_path / "chat.json")
    assert json.loads(path.read_text())["messages"] == chat.messages
    again = Chat.load(path)
    assert (again.messages, again.system, again.model) == (chat.messages, chat.system, chat.model)
    (tmp_path / "bad.json").write_text('{"messages": 3}')
    with pytest.raises(creative_magics.errors.CreativeError, match="is not a saved chat"):
        Chat.load(tmp_path / "bad.json")


# -- --show-probs --------------------------------------------------------------------------------------


@pytest.mark.parametrize("model, params", [("gpt2", dict(greedy=True)), ("smollm2", dict(seed=2, temperature=1.2, top_k=20))])
def test_show_probs_equal_the_softmax_of_a_plain_forward_pass(ip, model, params):
    result = creative_magics.story("Once upon a time", model=model, max_new_tokens=10, show_probs=True, **params)
    text_model = warm(model)
    ids = torch.tensor([result.ids[0]])
    with torch.inference_mode():
        logits = text_model.model(ids).logits[0]
    probs = torch.softmax(logits.float(), dim=-1)
    start = result.prompt_tokens
    new = result.ids[0][start:]
    assert len(result.tokens) == len(new) == 10
    for index, (piece, prob, alternatives) in enumerate(result.tokens):
        row = probs[start - 1 + index]
        assert prob == pytest.approx(row[new[index]].item(), abs=1e-5)
        top = torch.topk(row, 5)
        assert [p for _, p in alternatives] == pytest.approx(top.values.tolist(), abs=1e-5)
        assert alternatives[0][0] == text_model.tokenizer.decode([top.indices[0].item()])
    assert "".join(piece for piece, _, _ in result.tokens) == result.text


def test_show_probs_displays_shaded_html_with_alternatives_in_titles(ip, run):
    ran = run("%%story -m gpt2 --greedy --max-new-tokens 4 --show-probs -o p\nOnce")
    assert ran.ok
    html = ip.user_ns["p"]._repr_html_()
    assert html.count('title="p = ') == 4 and "<script" not in html and "background-color: rgba(" in html
    assert "<b>Once</b>" in html
    plain = creative_magics.story("Once", model="gpt2", greedy=True, max_new_tokens=4)
    assert plain.tokens is None and plain._repr_html_() is None
    assert plain.text == ip.user_ns["p"].text  # asking for the probabilities changes nothing in the text


def test_show_probs_with_a_remote_endpoint_is_refused_in_one_line(ip, run):
    assert_one_line_error(run("%%story -m openai:gpt-4o-mini --show-probs\nHi"), "--show-probs needs each token's probabilities", "no logprobs")


# -- bad input -------------------------------------------------------------------------------------


def test_continue_with_no_story_yet(ip, run):
    assert_one_line_error(run("%story continue"), "no story yet in this session")
    assert_one_line_error(run("%story again"), "no story yet in this session")


def test_continue_a_name_that_is_not_a_story(ip, run):
    ip.user_ns["number"] = 3
    assert_one_line_error(run("%story continue number"), "holds a int, not a story")
    assert_one_line_error(run("%story continue nothing_here"), "no variable named 'nothing_here'")
    assert_one_line_error(run("%story again number"), "holds a int, not a story")
    assert isinstance(ip.user_ns["number"], int) and not isinstance(ip.user_ns["number"], StoryResult)


# -- %%paint --enhance -----------------------------------------------------------------------------------


def test_enhance_paints_the_story_models_prompt_and_the_recipe_keeps_both(ip, run):
    from creative_magics import api

    assert run("%%paint --enhance --steps 1 --seed 3 -o enhanced\na red fox").ok
    recipe = ip.user_ns["enhanced"].recipe
    written = creative_magics.story(api.ENHANCE_REQUEST.format(prompt="a red fox"), model="smollm2", greedy=True,
                                    max_new_tokens=api.ENHANCE_TOKENS)
    assert recipe["short_prompt"] == "a red fox" and recipe["enhanced_by"] == "smollm2"
    assert recipe["prompt"] == api.clean_enhanced(written.text) and recipe["prompt"] != "a red fox"
    assert "enhance" not in recipe["params"]  # made again from its recipe, the long prompt is painted as it is
    again = creative_magics.paint(recipe=recipe)
    assert again.recipe["prompt"] == recipe["prompt"] and "short_prompt" not in again.recipe
    assert list(again.image.getdata()) == list(ip.user_ns["enhanced"].image.getdata())


def test_enhance_uses_the_configured_story_model(ip, run):
    run("%config CreativeMagics.story_defaults = {'model': 'gpt2'}")
    assert run("%%paint --enhance --steps 1 --seed 3 -o enhanced\na red fox").ok
    assert ip.user_ns["enhanced"].recipe["enhanced_by"] == "gpt2"


def test_clean_enhanced_takes_the_first_paragraph_without_labels():
    from creative_magics.api import clean_enhanced

    assert clean_enhanced('Here is the prompt: "A fox in snow, oil painting,\n soft light"\n\nHope it helps') == (
        "A fox in snow, oil painting, soft light"
    )
    assert clean_enhanced("\n\n  ") == ""


# -- %creative similar -----------------------------------------------------------------------------------


def square(colour, size=48):
    from PIL import Image

    return Image.new("RGB", (size, size), colour)


@pytest.fixture()
def squares(tmp_path):
    folder = tmp_path / "works"
    folder.mkdir()
    for colour in ("green", "red", "blue"):
        square(colour).save(folder / f"{colour}.png")
    square("red").save(folder / "red-copy.png")
    (folder / "poem.txt").write_text("green", encoding="utf-8")
    (folder / "notes.md").write_text("not compared", encoding="utf-8")
    return folder


def test_similar_ranks_the_red_square_first_for_red_and_identical_items_score_1(ip, squares):
    ranked = creative_magics.similar("red", k=3, folder=squares)
    assert [os.path.basename(item) for _, item in ranked[:2]] == ["red-copy.png", "red.png"]
    assert ranked[0][0] == pytest.approx(1.0, abs=1e-5) and ranked[1][0] == pytest.approx(1.0, abs=1e-5)
    assert ranked[2][0] < 0.5
    by_image = creative_magics.similar(str(squares / "blue.png"), k=1, folder=squares)
    assert by_image == [(pytest.approx(1.0, abs=1e-5), str(squares / "blue.png"))]
    assert creative_magics.similar("green", k=1, folder=squares)[0][0] == pytest.approx(1.0, abs=1e-5)


def test_similar_ranks_the_sessions_results_and_keeps_their_embeddings(ip, monkeypatch):
    from creative_magics import session as session_module
    from creative_magics.results import ImageResult
    from creative_magics.tasks import similar as task

    results = [ImageResult(images=[square(colour)], recipe={"task": "paint", "model": "x", "seed": i}) for i, colour in enumerate(("green", "red", "blue"))]
    for result in results:
        session_module.current().remember(result)
    story = creative_magics.story("Once", model="gpt2", max_new_tokens=3, seed=1)
    calls, embed = [], task.embed
    monkeypatch.setattr(task, "embed", lambda clip, **kw: calls.append(kw) or embed(clip, **kw))
    ranked = creative_magics.similar("red", k=4)
    assert ranked[0][1] is results[1] and ranked[0][0] == pytest.approx(1.0, abs=1e-5)
    assert {id(item) for _, item in ranked} == {id(r) for r in results} | {id(story)}
    assert "clip" in results[1].embeddings and "clip" in story.embeddings
    kept = results[1].embeddings["clip"]
    assert len(calls) == 4
    creative_magics.similar("blue", k=1)
    assert results[1].embeddings["clip"] is kept and len(calls) == 4  # computed once
    last = creative_magics.similar("last", k=1)  # the latest result (the story) is the query, not a candidate
    assert last[0][1] is not story


def test_similar_from_the_magic_shows_a_strip_with_scores(ip, run, squares):
    ran = run(f"%creative similar red -k 2 --folder {squares}")
    assert ran.ok
    assert "1.000  red-copy.png" in ran.out and "1.000  red.png" in ran.out


def test_similar_bad_input_is_one_line(ip, run, tmp_path):
    assert_one_line_error(run("%creative similar red"), "no images or texts in this session yet")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.md").write_text("x")
    assert_one_line_error(run(f"%creative similar red --folder {empty}"), "holds no images")
    assert_one_line_error(run(f"%creative similar red --folder {tmp_path}/nowhere"), "no such folder")
    assert_one_line_error(run("%creative similar red -k none"), "-k must be a whole number")
    assert_one_line_error(run("%creative similar"), "usage: %creative similar")


def test_similar_takes_a_variable_holding_words_or_an_image(ip, run, squares):
    ip.user_ns["wanted"] = "blue"
    ip.user_ns["picture"] = square("green")
    assert run(f"%creative similar wanted -k 1 --folder {squares}").out.startswith("1.000  blue.png")
    assert run(f"%creative similar picture -k 1 --folder {squares}").out.startswith("1.000  green.png")
