"""Sweeps, as AUTOMATIC1111's X/Y/Z plot makes them: `--sweep NAME=V1,V2,...` up to three times; every
combination of the values is one picture (a *cell*), X varying fastest, then Y, then Z.

A parameter can be swept when its declaration names its axis (params.Param.axis). `axes` reads and
checks the sweeps against the declarations (one line, before anything loads); `cells` turns them into
one dict of parameters per picture, in grid order, each a plain call of the task: what a batch of
calls (creative_magics.batch) can take as it is.
"""

import itertools
import numbers
from dataclasses import dataclass

from . import params as declared
from .errors import CreativeError

MAX_AXES = 3
AXIS_LETTERS = "XYZ"


@dataclass(frozen=True)
class Axis:
    """One swept parameter: its name, its values (checked, in their type) and how the person wrote it."""

    name: str
    values: tuple
    label: str  # how the grid and the A1111 text name it (its X/Y/Z plot axis: "CFG Scale")

    @property
    def written(self):
        """NAME=V1,V2,... as `--sweep` takes it."""
        return f"{self.name}={','.join(_shown(v) for v in self.values)}"

    def caption(self, value):
        """What the grid writes beside a row or above a column: "CFG Scale: 7", or a model's or sampler's name."""
        return f"{self.label}: {_shown(value)}" if isinstance(value, numbers.Number) else str(value)


def _shown(value):
    return f"{value:g}" if isinstance(value, float) else str(value)


def sweepable(task):
    """{every name a person may write for a parameter (its name, its flags without dashes, its axis name): name}."""
    names = {}
    for param in task.params:
        if not param.axis:
            continue
        for word in (param.name, param.name.replace("_", "-"), param.axis, *(f.lstrip("-") for f in param.all_flags)):
            names[word.lower()] = param.name
    return names


def axes(task, sweep, values=None):
    """The Axis of each `--sweep` item (NAME=V1,V2,... strings, (name, values) pairs, or a {name: values} dict),
    each value checked against its parameter's declaration. `values` (the call's other values) tells
    a LoRA weight sweep which LoRA it weighs."""
    param = task["sweep"]
    items = declared.items(param, sweep)
    if len(items) > MAX_AXES:
        raise CreativeError(f"--sweep takes up to {MAX_AXES} names (the X, Y and Z of the grid), not {len(items)}")
    names = sweepable(task)
    made = []
    for item in items:
        written, raw = declared.parse_sweep(item, param.flag)
        name = names.get(written.lower().lstrip("-"))
        if name is None:
            choices = ", ".join(sorted({n for n in names.values()}))
            raise CreativeError(f"--sweep {written}: unknown name; sweep one of {choices}")
        if any(axis.name == name for axis in made):
            raise CreativeError(f"--sweep {written}: {name} is swept twice; give its values once")
        swept = task[name]
        converted = tuple(_value(swept, value, written) for value in raw)
        for value in converted:
            try:
                (task["lora"].check([("x", value)]) if swept.kind == "loras" else swept.check(value))
            except CreativeError as err:
                raise CreativeError(f"--sweep {written}: {err}") from None
        if swept.kind == "loras":
            _one_lora(values, written)
        made.append(Axis(name, converted, swept.axis))
    return made


def _value(param, value, written):
    """One sweep value in its parameter's type (text as written on a magic line, or a Python value)."""
    if not isinstance(value, str):
        return value
    kind = param.kind
    try:
        if kind in ("int", "seed"):
            return int(value)
        if kind in ("float", "loras"):
            return float(value)
    except ValueError:
        what = "whole numbers" if kind in ("int", "seed") else "numbers"
        raise CreativeError(f"--sweep {written}: {param.flag} takes {what}, not {value!r}") from None
    return value


def _one_lora(values, written):
    given = declared.items(declared.PAINT["lora"], (values or {}).get("lora"))
    if len(given) != 1:
        raise CreativeError(f"--sweep {written}: a LoRA weight sweep weighs one --lora MODEL; this call has {len(given)}")


def count(made):
    total = 1
    for axis in made:
        total *= len(axis.values)
    return total


def check_size(made, yes, limit=None):
    """A sweep of more than `limit` (params.MAX_SWEEP_CELLS) pictures needs `yes` (--yes): one line otherwise."""
    limit = declared.MAX_SWEEP_CELLS if limit is None else limit
    total = count(made)
    if total > limit and not yes:
        sizes = " x ".join(str(len(axis.values)) for axis in made)
        raise CreativeError(f"this sweep paints {sizes} = {total} pictures, more than {limit}: add --yes to paint them all")
    return total


def cells(made, values=None):
    """One dict of parameters per picture, X fastest, then Y, then Z (the grid's reading order). `values`
    (the call's own) gives the LoRA whose weight a `lora` axis sweeps."""
    ordered = list(reversed(made))  # product() varies its last factor fastest: Z, Y, X -> X fastest
    out = []
    for combination in itertools.product(*(axis.values for axis in ordered)):
        cell = {}
        for axis, value in zip(ordered, combination):
            if axis.name == "lora":
                ref, _ = declared.parse_lora(declared.items(declared.PAINT["lora"], values["lora"])[0])
                cell["lora"] = [declared.lora_text(ref, value)]
            else:
                cell[axis.name] = value
        out.append(cell)
    return out


def position(made, index):
    """(x, y, z) of cell `index` in the grid."""
    sizes = [len(axis.values) for axis in made] + [1] * (MAX_AXES - len(made))
    x = index % sizes[0]
    y = (index // sizes[0]) % sizes[1]
    z = index // (sizes[0] * sizes[1])
    return x, y, z
