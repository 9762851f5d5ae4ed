"""The Python API. Each function merges defaults (argument > panel > %config) and calls its task.

The magics call these same functions, passing `_given="flag"` so recipes say where values came from.
"""

from . import defaults
from .errors import CreativeError
from .session import current


def _layers(task, given, params, session):
    panel = session.panel_defaults(task) if hasattr(session, "panel_defaults") else {}
    configured = getattr(session.settings, f"{task}_defaults", {}) or {}
    return defaults.merge((given, params), ("panel", panel), ("config", configured))


def _unknown(params, allowed, task):
    extra = sorted(set(params) - set(allowed))
    if extra:
        raise CreativeError(f"{task}() got unknown parameter(s): {', '.join(extra)}; it takes {', '.join(sorted(allowed))}")


def story(prompt=None, *, recipe=None, on_text=None, _given="argument", **params):
    """Write a story or poem from `prompt`; returns a StoryResult (`.text`, `.texts`, `.recipe`).

    Parameters: model, temperature, top_p, top_k, min_p, repetition_penalty, no_repeat_ngram,
    max_new_tokens, min_new_tokens, seed, n, system, stop, greedy, stream.
    `recipe=` re-runs a recorded recipe (its prompt, model, seed and parameters; arguments win).
    """
    from .tasks import story as task

    if recipe is not None:
        prompt, params = _from_recipe(recipe, "story", prompt, params)
    _unknown(params, task.PARAMS, "story")
    if prompt is None or not str(prompt).strip():
        raise CreativeError("the prompt is empty: write it in the cell body")
    session = current()
    values, sources = _layers("story", _given, params, session)
    task.check(values)  # before loading anything: a bad value costs no load
    with session.cache.use("story", values.get("model")) as text_model:
        name = values.get("model") or session.resolve("story", None).name
        result = task.write(text_model, prompt, values, sources, model_name=name, on_text=on_text)
    return session.remember(result)


def _from_recipe(recipe, task, prompt, params):
    if not isinstance(recipe, dict) or recipe.get("task") != task:
        raise CreativeError(f"that is not a {task} recipe")
    merged = dict(recipe.get("params", {}))
    for key in ("model", "seed", "system"):
        if recipe.get(key) is not None:
            merged[key] = recipe[key]
    merged.update(params)
    return (prompt if prompt is not None else recipe.get("prompt")), merged
