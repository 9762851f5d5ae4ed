"""The texts %%finetune learns from, and their cut into training and held-out blocks of tokens.

Texts come from the cell body, a variable (a string or a list of strings), a .txt file, a folder of
.txt files, or a .jsonl file with a "text" field on each line. Every problem a person can cause is one
CreativeError line, found before any model is loaded where it can be.
"""

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

from .errors import CreativeError

TEXT_FIELD = "text"
MIN_BLOCK_SIZE = 2


@dataclass
class Texts:
    """The texts as read, and a short description of where they came from (for the recipe)."""

    texts: list
    source: str

    @property
    def characters(self):
        return sum(len(text) for text in self.texts)


@dataclass
class Blocks:
    """Token blocks of `block_size`, split into training and held-out blocks."""

    train: list
    held_out: list
    block_size: int
    tokens: int  # tokens in the texts, including the end-of-text token after each

    @property
    def used_tokens(self):
        return (len(self.train) + len(self.held_out)) * self.block_size


def read_texts(data):
    """Texts from `data`: a str (text, or the path of a file or folder), a Path, or a list of strings.

    A str is read as a path when it names an existing file or folder, or looks like a file name
    (one line ending in .txt or .jsonl); otherwise it is the text itself.
    """
    if data is None:
        raise CreativeError("no texts to learn from: write them in the cell body, or pass --data PATH|VAR")
    if isinstance(data, os.PathLike) or (isinstance(data, str) and _looks_like_path(data)):
        return _from_path(Path(os.path.expanduser(os.fspath(data))))
    if isinstance(data, str):
        return _checked(Texts([data], _describe([data])))
    if hasattr(data, "texts") and isinstance(getattr(data, "texts"), list):  # a StoryResult, say
        data = data.texts
    if isinstance(data, (list, tuple)):
        bad = next((item for item in data if not isinstance(item, str)), None)
        if bad is not None:
            raise CreativeError(f"the data list must hold only strings, not {type(bad).__name__} ({_short(bad)})")
        return _checked(Texts(list(data), _describe(data)))
    raise CreativeError(
        f"data must be a text, a list of texts, or the path of a .txt file, a folder of .txt files or a .jsonl file, "
        f"not {type(data).__name__}"
    )


def _looks_like_path(text):
    if "\n" in text or len(text) > 1024:
        return False
    stripped = text.strip()
    return os.path.exists(os.path.expanduser(stripped)) or stripped.lower().endswith((".txt", ".jsonl"))


def _describe(texts):
    count = len(texts)
    return f"{count} text{'s' if count != 1 else ''}, {sum(len(t) for t in texts):,} characters"


def _short(value):
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _checked(texts):
    if not any(text.strip() for text in texts.texts):
        raise CreativeError("the training text is empty: write it in the cell body, or pass --data PATH|VAR")
    texts.texts = [text for text in texts.texts if text.strip()]
    return texts


def _from_path(path):
    shown = str(path)
    if not path.exists():
        raise CreativeError(
            f"no file or folder {shown!r}: --data takes a .txt file, a folder of .txt files, a .jsonl file or a variable name"
        )
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() == ".txt")
        if not files:
            raise CreativeError(f"folder {shown!r} holds no .txt files")
        texts = [_read_text(p) for p in files]
        return _checked(Texts(texts, f"{shown} ({len(files)} .txt files)"))
    if path.suffix.lower() == ".jsonl":
        return _checked(Texts(_read_jsonl(path), shown))
    if path.suffix.lower() == ".json":
        raise CreativeError(f"{shown!r} is JSON; use a .jsonl file (one {{\"text\": ...}} object per line) or a .txt file")
    return _checked(Texts([_read_text(path)], shown))


def _read_text(path):
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CreativeError(f"{str(path)!r} is not UTF-8 text") from None
    except OSError as err:
        raise CreativeError(f"cannot read {str(path)!r}: {err.strerror or err}") from None


def _read_jsonl(path):
    texts = []
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise CreativeError(f"{str(path)!r} line {number} is not valid JSON ({err.msg})") from None
        if not isinstance(record, dict) or TEXT_FIELD not in record:
            raise CreativeError(
                f"{str(path)!r} line {number} has no {TEXT_FIELD!r} field: each line must be a JSON object like "
                f'{{"{TEXT_FIELD}": "..."}}'
            )
        if not isinstance(record[TEXT_FIELD], str):
            raise CreativeError(f"{str(path)!r} line {number}: the {TEXT_FIELD!r} field must be a string")
        texts.append(record[TEXT_FIELD])
    return texts


def check_block_size(block_size, context):
    if block_size < MIN_BLOCK_SIZE:
        raise CreativeError(f"block-size must be at least {MIN_BLOCK_SIZE} tokens, not {block_size}")
    if context and block_size > context:
        raise CreativeError(
            f"block-size {block_size} is beyond the model's context of {context} tokens: use --block-size {context} or less"
        )


def token_ids(tokenizer, texts):
    """All texts as one stream of token ids, each text followed by the end-of-text token."""
    eos = tokenizer.eos_token_id
    ids = []
    for text in texts:
        encoded = tokenizer(text, verbose=False)["input_ids"]
        ids.extend(encoded)
        if eos is not None and (not encoded or encoded[-1] != eos):
            ids.append(eos)
    return ids


def make_blocks(tokenizer, texts, block_size, eval_split, seed, context=None):
    """Cut the texts into blocks of `block_size` tokens (the remainder is dropped, as run_clm does) and
    hold out a share `eval_split` of them (at least one when it is above 0), chosen with `seed`."""
    check_block_size(block_size, context)
    ids = token_ids(tokenizer, texts)
    count = len(ids) // block_size
    held_count = max(1, round(count * eval_split)) if eval_split > 0 else 0
    needed = held_count + 1 if eval_split > 0 else 1
    if count < needed:
        blocks_word = "blocks (one to train on, one held out)" if eval_split > 0 else "block"
        smaller = len(ids) // (2 if eval_split > 0 else 1)
        hint = f"add text, or use --block-size {smaller} or less" if smaller >= MIN_BLOCK_SIZE else "add text"
        raise CreativeError(
            f"the texts give {len(ids)} tokens, too few for {needed} {blocks_word} of {block_size} tokens: {hint}"
        )
    blocks = [ids[i * block_size : (i + 1) * block_size] for i in range(count)]
    held = set(random.Random(seed).sample(range(count), held_count)) if held_count else set()
    return Blocks(
        train=[b for i, b in enumerate(blocks) if i not in held],
        held_out=[b for i, b in enumerate(blocks) if i in held],
        block_size=block_size,
        tokens=len(ids),
    )
