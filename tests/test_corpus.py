"""The texts %%finetune learns from: every accepted source, one-line errors for the bad ones, and the
cut into training and held-out blocks."""

import json

import pytest

from creative_magics import corpus
from creative_magics.errors import CreativeError


class CharTokenizer:
    """One token per character; 0 ends a text. Enough to check the block arithmetic without a model."""

    eos_token_id = 0

    def __call__(self, text, verbose=True):
        return {"input_ids": [ord(ch) for ch in text]}


def test_a_text_a_list_and_a_story_result():
    assert corpus.read_texts("the sea at night").texts == ["the sea at night"]
    texts = corpus.read_texts(["one poem", "  ", "another poem"])
    assert texts.texts == ["one poem", "another poem"]  # blank texts are dropped
    assert texts.source == "3 texts, 22 characters"

    class Story:
        texts = ["a story written earlier"]

    assert corpus.read_texts(Story()).texts == ["a story written earlier"]


def test_a_txt_file_a_folder_of_them_and_a_jsonl(tmp_path):
    (tmp_path / "one.txt").write_text("first poem\n", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "two.txt").write_text("second poem\n", encoding="utf-8")
    (tmp_path / "notes.md").write_text("not a .txt file", encoding="utf-8")
    assert corpus.read_texts(tmp_path / "one.txt").texts == ["first poem\n"]
    assert corpus.read_texts(str(tmp_path / "one.txt")).texts == ["first poem\n"]  # a str that names a file
    folder = corpus.read_texts(tmp_path)
    assert folder.texts == ["first poem\n", "second poem\n"]
    assert "2 .txt files" in folder.source
    lines = [json.dumps({"text": "a line of verse", "author": "me"}), "", json.dumps({"text": "another"})]
    (tmp_path / "poems.jsonl").write_text("\n".join(lines), encoding="utf-8")
    assert corpus.read_texts(tmp_path / "poems.jsonl").texts == ["a line of verse", "another"]


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda p: None, "no texts to learn from"),
        (lambda p: "   \n\n ", "the training text is empty"),
        (lambda p: [], "the training text is empty"),
        (lambda p: ["fine", 3], "must hold only strings, not int"),
        (lambda p: 42, "data must be a text, a list of texts"),
        (lambda p: p / "missing.txt", "no file or folder"),
        (lambda p: str(p / "missing.txt"), "no file or folder"),
        (lambda p: _write(p / "empty.txt", ""), "the training text is empty"),
        (lambda p: _write(p / "a.jsonl", '{"body": "x"}\n'), "line 1 has no 'text' field"),
        (lambda p: _write(p / "b.jsonl", '{"text": "ok"}\nnot json\n'), "line 2 is not valid JSON"),
        (lambda p: _write(p / "c.jsonl", '{"text": 5}\n'), "the 'text' field must be a string"),
        (lambda p: _write(p / "d.json", '["x"]'), "use a .jsonl file"),
        (lambda p: _write(p / "e.txt", b"\xff\xfe\x00bad"), "is not UTF-8 text"),
        (lambda p: _mkdir(p / "nothing"), "holds no .txt files"),
    ],
)
def test_bad_data_is_one_line(tmp_path, make, fragment):
    with pytest.raises(CreativeError) as caught:
        corpus.read_texts(make(tmp_path))
    message = str(caught.value)
    assert fragment in message and "\n" not in message


def _write(path, content):
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def _mkdir(path):
    path.mkdir()
    return path


def test_blocks_hold_out_a_share_and_drop_the_remainder():
    texts = ["abcdefghij" * 10, "klmnopqrst" * 5]  # 100 + 1 and 50 + 1 tokens
    blocks = corpus.make_blocks(CharTokenizer(), texts, block_size=10, eval_split=0.2, seed=0)
    assert blocks.tokens == 152
    assert len(blocks.train) + len(blocks.held_out) == 15 and len(blocks.held_out) == 3
    assert all(len(b) == 10 for b in blocks.train + blocks.held_out)
    stream = [ord(c) for c in texts[0]] + [0] + [ord(c) for c in texts[1]] + [0]
    cut = [stream[i * 10 : (i + 1) * 10] for i in range(15)]
    assert sorted(blocks.train + blocks.held_out) == sorted(cut)
    again = corpus.make_blocks(CharTokenizer(), texts, block_size=10, eval_split=0.2, seed=0)
    assert again.held_out == blocks.held_out  # the seed decides the split
    assert corpus.make_blocks(CharTokenizer(), texts, block_size=10, eval_split=0.0, seed=0).held_out == []


def test_at_least_one_block_is_held_out_when_asked():
    blocks = corpus.make_blocks(CharTokenizer(), ["x" * 39], block_size=10, eval_split=0.01, seed=1)
    assert (len(blocks.train), len(blocks.held_out)) == (3, 1)


@pytest.mark.parametrize(
    "texts, block_size, split, context, fragment",
    [
        (["x" * 15], 10, 0.1, None, "the texts give 16 tokens, too few for 2 blocks"),
        (["x" * 5], 10, 0.0, None, "too few for 1 block of 10 tokens"),
        (["x" * 100], 300, 0.1, 256, "block-size 300 is beyond the model's context of 256 tokens: use --block-size 256 or less"),
        (["x" * 100], 1, 0.1, None, "block-size must be at least 2"),
    ],
)
def test_block_errors_are_one_line(texts, block_size, split, context, fragment):
    with pytest.raises(CreativeError) as caught:
        corpus.make_blocks(CharTokenizer(), texts, block_size, split, seed=0, context=context)
    assert fragment in str(caught.value) and "\n" not in str(caught.value)
