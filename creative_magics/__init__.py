"""creative_magics: a creative studio in a notebook.

`%load_ext creative_magics` registers %%story, %%paint, %stylize/%%stylize, %%compose, %%finetune
and %creative. `import creative_magics` gives the same tasks as functions. Nothing heavy (torch,
transformers, diffusers, ipywidgets) is imported until it is first used.
"""

from ._version import __version__

__all__ = [
    "story",
    "continue_story",
    "again",
    "chat",
    "Chat",
    "paint",
    "stylize",
    "compose",
    "finetune",
    "batch",
    "read_recipe",
    "similar",
    "panel",
    "canvas",
    "gallery",
    "load_ipython_extension",
    "unload_ipython_extension",
    "__version__",
]


def load_ipython_extension(ipython):
    from .magics import CreativeMagics
    from .session import current

    magics = CreativeMagics(shell=ipython)
    ipython.register_magics(magics)
    current().attach(magics)


def unload_ipython_extension(ipython):
    """Nothing to undo: the warm models stay with the kernel until `%creative evict all`."""


# -- the tasks: the same functions the magics call ----------------------------------------------


def story(prompt=None, **params):
    """Write a story or poem; see `creative_magics.api.story`."""
    from .api import story as run

    return run(prompt, **params)


def continue_story(story=None, **params):
    """Write on from where a story stopped (None: the latest); see `creative_magics.api.continue_story`."""
    from .api import continue_story as run

    return run(story, **params)


def again(story=None, **params):
    """Draw a story's last sample again with a new seed (a branch); see `creative_magics.api.again`."""
    from .api import again as run

    return run(story, **params)


def chat(conversation, message, **params):
    """Add `message` as your turn to a `Chat` and append the instruct model's reply; see `creative_magics.api.chat`."""
    from .api import chat as run

    return run(conversation, message, **params)


def __getattr__(name):
    if name == "Chat":  # the class, without importing results at %load_ext
        from .results import Chat

        return Chat
    raise AttributeError(f"module 'creative_magics' has no attribute {name!r}")


def paint(prompt=None, **params):
    """Paint pictures from a prompt (or from an image and a prompt); see `creative_magics.api.paint`."""
    from .api import paint as run

    return run(prompt, **params)


def stylize(content=None, style=None, **params):
    """Restyle an image after style images (Gatys; method="adain" in one pass), as a painter (method="cyclegan",
    style="monet"), or after a text style (method="img2img"); see `creative_magics.api.stylize`. With
    method="adain" and `canvas` as an input, live=True runs it again on every stroke of the style canvas."""
    if params.get("live") is True:
        from .widgets.canvas import stylize_live

        return stylize_live(content, style, **params)
    from .api import stylize as run

    return run(content, style, **params)


def compose(description=None, **params):
    """Compose music from a description of it; see `creative_magics.api.compose`."""
    from .api import compose as run

    return run(description, **params)


def finetune(name, data=None, **params):
    """Adapt a text model to your own texts and save it as `name`; see `creative_magics.api.finetune`."""
    from .api import finetune as run

    return run(name, data, **params)


def batch(task, items, backend="local", address=None, workers=None, **options):
    """Run `task` once per item (dicts of its parameters, or prompts), here or on Ray workers that keep their
    models warm; the results in item order; see `creative_magics.batch.batch`."""
    from .batches import batch as run

    return run(task, items, backend, address, workers, **options)


def similar(query, k=5, folder=None, **options):
    """Rank this session's results (or a folder's images and texts) by CLIP similarity to `query` (words, an
    image, or "last") -> [(score, item)], best first; see `creative_magics.api.similar`."""
    from .api import similar as run

    return run(query, k=k, folder=folder, **options)


def read_recipe(path_or_image):
    """The recipe inside a PNG made here (or by the AUTOMATIC1111 web UI), ready to run again:
    `paint(recipe=...)` for paintings, `stylize(...)` with its values for style transfers."""
    from .recipes import read_recipe as read

    return read(path_or_image)


# -- the widgets: ipywidgets and ipycanvas load only when one is opened ---------------------------


def panel():
    """The slider panel (one per kernel): its values become the defaults of the next magic run."""
    from .widgets.panel import open_panel

    return open_panel()


def canvas(width=None, height=None):
    """The style canvas (one per kernel); `.to_image()` is what `canvas` means as an IMAGE."""
    from .widgets.canvas import open_canvas

    return open_canvas(width=width, height=height)


def gallery():
    """Every result of this session, with its recipe: view it large, load it into the panel, use it as `last`, save it."""
    from .widgets.gallery import open_gallery

    return open_gallery()
