"""creative_magics: a creative studio in a notebook.

`%load_ext creative_magics` registers %%story, %%paint, %%stylize, %%compose, %%finetune and
%creative. `import creative_magics` gives the same tasks as functions. Nothing heavy (torch,
transformers, diffusers) is imported until a model is first used.
"""

__version__ = "0.1.0"

__all__ = ["story", "load_ipython_extension", "unload_ipython_extension", "__version__"]


def load_ipython_extension(ipython):
    from .magics import CreativeMagics
    from .session import current

    magics = CreativeMagics(shell=ipython)
    ipython.register_magics(magics)
    current().attach(magics)


def unload_ipython_extension(ipython):
    """Nothing to undo: the warm models stay with the kernel until `%creative evict all`."""


def story(prompt=None, **params):
    """Write a story or poem; see `creative_magics.api.story`."""
    from .api import story as run

    return run(prompt, **params)
