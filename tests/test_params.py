"""Every bad value of every declared parameter gives one line, from the magic and from the Python API alike.

The cases are generated from the declarations (params.py), so a new parameter is covered by itself: its
type, its range, its choices. A check runs before any model loads, so none of these cases loads one.
"""

import math

import numpy as np
import pytest
from PIL import Image

import creative_magics
from creative_magics import params, session
from creative_magics.errors import CreativeError
from helpers import assert_one_line_error

# What each bad value is made of, by kind; `wrong` values only the Python API can pass (a flag's type
# conversion refuses them first, which the magic case checks too).
NOT_A_NUMBER = "lots"


def bad_values(param):
    """(value, how a magic line writes it or None, a fragment the one line must hold)."""
    kind = param.kind
    out = []
    if kind in ("int", "seed", "float"):
        whole = kind != "float"
        out.append((NOT_A_NUMBER, NOT_A_NUMBER, "invalid"))  # the flag's own type check
        out.append((2.5 if whole else "2", None, param.flag))  # the wrong type from Python
        if not whole:
            out.append((math.nan, "nan", f"{param.flag} must be a number, not nan"))
            out.append((math.inf, "inf", f"{param.flag} must be a number, not inf"))
        if param.low is not None:
            below = param.low if param.open_low else param.low - (1 if whole else 0.5)
            out.append((below, str(below), f"{param.flag} must be"))
        if param.high is not None:
            above = param.high if param.open_high else param.high + (1 if whole else 0.5)
            out.append((above, str(above), f"{param.flag} must be"))
        if param.multiple_of:
            odd = param.low + 1
            out.append((odd, str(odd), f"{param.flag} must be a multiple of {param.multiple_of}"))
    elif kind == "choice":
        out.append(("nonsense", "nonsense", f"{param.flag} must be"))
        out.append((3, None, f"{param.flag} must be"))
    elif kind == "choices":
        out.append((["nonsense"], "nonsense", f"{param.flag}: unknown 'nonsense'"))
    elif kind == "bool":
        out.append(("yes", None, f"{param.flag} must be True or False"))
    elif kind == "text":
        out.append((5, None, f"{param.flag} must be text"))
    elif kind == "texts":
        out.append(([5], None, f"{param.flag} must be text, not 5"))
    elif kind == "floats":
        out.append((["a"], "a", "invalid"))
        if param.low is not None:
            out.append(([param.low - 1], str(param.low - 1), f"{param.flag} must be"))
    elif kind == "model":
        out.append((7, None, f"{param.flag} must be text"))
    elif kind == "loras":  # MODEL[:WEIGHT]
        out.append(("style:strong", "style:strong", f"{param.flag} style:strong: the weight after ':' must be a number"))
        out.append((f"style:{param.high + 1:g}", f"style:{param.high + 1:g}", f"{param.flag} style:{param.high + 1:g}: the weight must be in"))
        out.append((5, None, f"{param.flag} takes one item or a list of them"))
    elif kind == "sweeps":  # NAME=V1,V2,...
        out.append(("guidance", "guidance", f"{param.flag} must be NAME=V1,V2,..."))
        out.append(("guidance=", "guidance=", f"{param.flag} must be NAME=V1,V2,..."))
    return out


def cases():
    for task in params.TASKS.values():
        for param in task.params:
            for value, written, fragment in bad_values(param):
                yield pytest.param(task.name, param, value, written, fragment, id=f"{task.name}-{param.name}-{value!r}")


CASES = list(cases())


def test_every_checked_kind_has_cases():
    """A parameter of a kind this table knows nothing of would go unchecked: fail instead."""
    unchecked = {"image", "images", "audio", "midi", "path"}  # references, resolved and checked in refs.py, media.py and midi.py
    for task in params.TASKS.values():
        for param in task.params:
            assert param.kind in unchecked or bad_values(param), (task.name, param.name, param.kind)


def test_there_are_many_cases():
    assert len(CASES) > 100


@pytest.fixture()
def images(ip):
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8), "RGB")
    ip.user_ns.update(content=picture, style=picture)
    return picture


def stylize_method(param):
    """The %stylize method a parameter is tried with: gatys (the default) where it may, else its first one."""
    return None if not param.methods or "gatys" in param.methods else param.methods[0]


def call_api(task, param, value, images):
    kwargs = {param.name: value}
    if task == "story":
        return creative_magics.story("Hi", **kwargs)
    if task == "paint":
        return creative_magics.paint("a fox", **kwargs)
    if task == "stylize":
        method = stylize_method(param)
        prompt = "watercolor" if method == "img2img" else None
        if param.name == "method":
            return creative_magics.stylize(images, [images], **kwargs)
        return creative_magics.stylize(images, None if method == "img2img" else [images], prompt=prompt, method=method, **kwargs)
    if task == "compose":
        return creative_magics.compose("piano", **kwargs)
    return creative_magics.finetune("never-made", "some text to learn", **kwargs)


def magic_cell(task, param, written):
    flag = f"{param.flag} {written}"
    if task == "story":
        return f"%%story {flag}\nHi"
    if task == "paint":
        return f"%%paint {flag}\na fox"
    if task == "stylize":
        method = stylize_method(param)
        if method == "img2img":
            return f"%%stylize --content content --method img2img {flag}\nwatercolor"
        return f"%stylize --content content --style style {flag}" + (f" --method {method}" if method else "")
    if task == "compose":
        return f"%%compose {flag}\npiano"
    return f"%%finetune never-made {flag}\nsome text to learn"


@pytest.mark.parametrize("task, param, value, written, fragment", CASES)
def test_a_bad_value_is_one_line_from_the_python_api(ip, images, task, param, value, written, fragment):
    if fragment == "invalid":  # a flag's own type conversion: from Python, the same value is the wrong type
        fragment = param.flag
    with pytest.raises(CreativeError) as caught:
        call_api(task, param, value, images)
    message = str(caught.value)
    assert "\n" not in message and fragment in message, message
    assert session.current().cache.entries() == []  # refused before anything loaded


@pytest.mark.parametrize("task, param, value, written, fragment", [case for case in CASES if case.values[3] is not None and case.values[1].magic])
def test_a_bad_value_is_one_line_from_the_magic(ip, run, images, task, param, value, written, fragment):
    if fragment == "invalid":
        fragment = f"argument {'/'.join(param.all_flags)}: invalid"
    assert_one_line_error(run(magic_cell(task, param, written)), fragment)
    assert session.current().cache.entries() == []
