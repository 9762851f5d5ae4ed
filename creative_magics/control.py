"""`%creative`: the studio's controls (warm models, aliases, eviction, the device, the widgets)."""

import os

from .errors import CreativeError

COMMANDS = (
    "models",
    "endpoints",
    "aliases [TASK]",
    "evict NAME|all",
    "device auto|cpu|cuda|mps",
    "panel",
    "canvas [--width W --height H]",
    "gallery",
    "workers [stop]",
    "similar QUERY|last [-k K] [--folder DIR]",
)


def run(magics, words):
    command, rest = (words[0], words[1:]) if words else ("help", [])
    handler = HANDLERS.get(command)
    if handler is None:
        raise CreativeError(f"unknown command {command!r}; try: %creative {' | '.join(COMMANDS)}")
    return handler(magics, *rest)


def _help(magics, *rest):
    print("%creative " + "\n%creative ".join(COMMANDS))


def _models(magics, *rest):
    from .session import current

    rows = current().cache.table()
    remote = current().remote_table()
    _add_finetune_bases(rows)
    if not rows and not remote:
        print("No models are loaded yet; each loads on its first use.")
        return
    if rows:
        print(format_table(rows))
    if remote:
        if rows:
            print()
        print("remote models used in this session:")
        print(aligned(("endpoint", "model", "task", "calls", "last used"),
                      [(r["endpoint"], r["model"], r["task"], str(r["calls"]), f"{r['last_used_s']:.0f} s ago") for r in remote],
                      right={3}))


def _endpoints(magics, *rest):
    """The configured endpoints (the built-in openai too): where, which key variable, and whether each answers now."""
    from . import remote

    if rest:
        raise CreativeError("usage: %creative endpoints")
    table = remote.endpoints(getattr(magics, "endpoints", None))
    answers = remote.probe_all(table)
    rows = [(name, point.shown_url, point.key_state(), point.api, answers[name][1]) for name, point in sorted(table.items())]
    print(aligned(("name", "base_url", "key", "api", "answers"), rows))
    print("Use one with -m NAME:MODEL; add one with %config CreativeMagics.endpoints = {'NAME': {'base_url': ..., 'api_key_env': ...}}")


def aligned(headers, rows, right=()):
    """A plain table: columns padded to their widest cell, `right` ones right-aligned."""
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(headers)]
    fmt = lambda cells: "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join(fmt(cells).rstrip() for cells in [headers, *rows])


PAINT_FAMILIES = (("controlnet", "--controlnet"), ("lora", "--lora"))


def _aliases(magics, *rest):
    from . import finetuned, models
    from .models import BUILTIN_ALIASES, DEFAULT_MODELS, METHOD_FAMILY, OWN_NETWORKS, TASK_FAMILY
    from .session import current

    tasks = rest or sorted(DEFAULT_MODELS)
    for task in tasks:
        if task not in DEFAULT_MODELS:
            raise CreativeError(f"unknown task {task!r}; tasks: {', '.join(sorted(DEFAULT_MODELS))}")
    profile = current().effective_profile()
    sections = []
    for task in tasks:
        rows = [
            (name, _loads(task, name, alias, profile), alias.note)  # what the alias loads now
            for name, alias in sorted(BUILTIN_ALIASES.items())
            # %stylize's methods each run their own network (gatys VGG19, adain, cyclegan's painters)
            if alias.family == TASK_FAMILY[task] or (task == "stylize" and alias.family in OWN_NETWORKS and alias.family in METHOD_FAMILY.values())
        ]
        if task == "story":  # fine-tuned models adapt the story model
            rows += [(name, finetuned.describe(data), "(fine-tuned)") for name, data in finetuned.registered().items()]
        sections.append((f"{task} (default {DEFAULT_MODELS[task]}):", rows))
        for family, flag in PAINT_FAMILIES if task == "paint" else ():  # what --controlnet and --lora take by name
            rows = [
                (name, alias.tiny if profile == "tiny" else alias.source, alias.note)
                for name, alias in sorted(BUILTIN_ALIASES.items())
                if alias.family == family
            ]
            sections.append((f"paint {flag}:", rows))
    yours = [(name, target, "(yours)") for name, target in sorted(magics.aliases.items())]
    if yours:
        sections.append(("yours (%config CreativeMagics.aliases):", yours))
    every = [row for _, rows in sections for row in rows]
    widths = [max((len(row[i]) for row in every), default=0) for i in (0, 1)]
    for title, rows in sections:
        print(title)
        for name, target, note in rows:
            print(f"  {name:<{widths[0]}}  {target:<{widths[1]}}  {note}".rstrip())


def _loads(task, name, alias, profile):
    """What alias `name` loads now under `profile` (a %stylize alias through the method that runs its network)."""
    from . import models

    method = next((m for m, family in models.METHOD_FAMILY.items() if family == alias.family), None) if task == "stylize" else None
    return models.resolve(task, name, profile=profile, method=method).source


def _evict(magics, name=None, *rest):
    from .session import current

    if name is None or rest:
        raise CreativeError("usage: %creative evict NAME|all")
    dropped = current().cache.evict(name)
    print(f"Evicted {', '.join(dropped)}." if dropped else "Nothing evicted: the models are in use.")


def _device(magics, device=None, *rest):
    from traitlets import TraitError

    from .session import current

    if device is None:
        from .devices import resolve_device

        print(f"device: {magics.device} (now {resolve_device(magics.device)})")
        return
    if rest:
        raise CreativeError("usage: %creative device auto|cpu|cuda|cuda:N|mps")
    before = magics.device
    try:
        magics.device = device
        placed = current().cache.move_all(magics.device)
    except TraitError as err:
        raise CreativeError(str(err)) from None
    except CreativeError:
        magics.device = before  # a device that is not here changes nothing
        raise
    print(f"Models now run on {placed}.")


def _panel(magics, *rest):
    if rest:
        raise CreativeError("usage: %creative panel")
    from IPython.display import display

    from .widgets import panel

    display(panel.open_panel())


def _canvas(magics, *rest):
    from IPython.display import display

    from .widgets import canvas

    width, height = canvas.parse_size_flags(rest)
    display(canvas.open_canvas(width=width, height=height))


def _gallery(magics, *rest):
    if rest:
        raise CreativeError("usage: %creative gallery")
    from IPython.display import display

    from .widgets import gallery

    display(gallery.open_gallery())


def _workers(magics, *rest):
    """The Ray workers of this session's batches: where each runs, its warm models and the items it did."""
    from . import ray_pool

    if rest == ("stop",):
        stopped = sum(each.size for each in ray_pool.pools().values())
        ray_pool.shutdown()
        print(f"Stopped {stopped} Ray worker{'s' if stopped != 1 else ''} (and the local Ray this session started)." if stopped
              else "No Ray workers to stop.")
        return
    if rest:
        raise CreativeError("usage: %creative workers [stop]")
    rows = ray_pool.workers_table()
    if not rows:
        print("No Ray workers yet: %%paint --batch FILE|VAR --ray (or creative_magics.batch(..., backend='ray')) starts them.")
        return
    print(aligned(("worker", "address", "node", "pid", "device", "warm models", "loads", "items done"),
                  [(str(i), r["address"], r["node"], str(r["pid"]), r["device"], ", ".join(r["warm"]) or "-", str(r["loads"]), str(r["items"]))
                   for i, r in enumerate(rows)], right={3, 6, 7}))


def _similar(magics, *rest):
    """%creative similar QUERY|last [-k K] [--folder DIR]: the best matches as a strip with their scores."""
    from IPython.display import display

    from . import api
    from .views import similar_bundle

    words, k, folder = [], 5, None
    rest = list(rest)
    while rest:
        word = rest.pop(0)
        if word in ("-k", "--k", "--folder"):
            if not rest:
                raise CreativeError(f"{word} needs a value: %creative similar QUERY|last [-k K] [--folder DIR]")
            value = rest.pop(0)
            if word == "--folder":
                folder = value
            else:
                try:
                    k = int(value)
                except ValueError:
                    raise CreativeError(f"-k must be a whole number >= 1, not {value!r}") from None
        else:
            words.append(word)
    if not words:
        raise CreativeError("usage: %creative similar QUERY|last [-k K] [--folder DIR] (QUERY: words, an image file or a variable)")
    ranked = api.similar(" ".join(words), k=k, folder=folder, _namespace=magics.shell.user_ns if magics.shell is not None else None)
    display(similar_bundle(ranked), raw=True)


HANDLERS = {
    "similar": _similar,
    "help": _help,
    "models": _models,
    "endpoints": _endpoints,
    "aliases": _aliases,
    "evict": _evict,
    "device": _device,
    "panel": _panel,
    "canvas": _canvas,
    "gallery": _gallery,
    "workers": _workers,
}


def format_table(rows):
    headers = ("name", "task", "device", "dtype", "size MB", "loads", "hits", "last used")
    lines = [
        (
            r["name"] + (" *" if r["in_use"] else ""),
            r["task"],
            r["device"],
            r["dtype"],
            f"{r['size_mb']:.1f}",
            str(r["loads"]),
            str(r["hits"]),
            f"{r['last_used_s']:.0f} s ago",
        )
        for r in rows
    ]
    if any(r.get("base") for r in rows):  # fine-tuned models show what they adapt
        headers += ("base",)
        lines = [line + (r.get("base") or "",) for line, r in zip(lines, rows)]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]
    right = {4, 5, 6}
    fmt = lambda cells: "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join(fmt(cells).rstrip() for cells in [headers, *lines])


def _add_finetune_bases(rows):
    """Give each warm fine-tuned model's row a `base` ('LoRA on gpt2'), read from its folder."""
    from . import finetuned

    for row in rows:
        source = row.get("source")
        if source and os.path.isdir(source):
            data = finetuned.metadata(source)
            if data is not None:
                row["base"] = finetuned.describe(data)
