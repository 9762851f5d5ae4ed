"""One module per task: plain functions over a cached model, nothing of IPython. Each reads as steps
(check, defaults, build the call, run, recipe); the helpers they share are here.

Tasks import the parameter declarations, results, recipes, media and the loaders' helpers; never the
session, the settings, the api, the magics or the widgets.
"""


def generation_defaults(model, names):
    """The values the model's own generation_config sets (those differing from the library's), under our
    names. `names` maps our parameter names to transformers' GenerationConfig names."""
    config = getattr(model, "generation_config", None)
    if config is None:
        return {}
    given = config.to_diff_dict()
    return {ours: given[theirs] for ours, theirs in names.items() if given.get(theirs) is not None}


def context_length(model):
    """How many positions a transformers model has (None when its config does not say)."""
    config = model.config
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def used_values(values, sources, names):
    """The recipe's `params` (the values used) and `sources` (where each came from) for `names`."""
    used = {name: values[name] for name in names}
    return used, {name: sources.get(name, "default") for name in used}


def make_recipe(task, model, seed, prompt, params, sources, interrupted=False, **more):
    """A recipe: what made a result, enough to make it again (`interrupted` only when it was stopped)."""
    recipe = {"task": task, "model": model, "seed": seed, "prompt": prompt, **more, "params": params, "sources": sources}
    if interrupted:
        recipe["interrupted"] = True
    return recipe


# What the caller gave (a flag or an argument): a value the model cannot use is then a mistake, said in one line.
CALLER = ("flag", "argument")
QUIET = ("default", "model")  # house and model defaults a model cannot use just do not apply
# What to use instead, said with a remote-only parameter given for a local model.
LOCAL_INSTEAD = {"presence_penalty": "--repetition-penalty", "frequency_penalty": "--repetition-penalty"}


def usable(task, values, sources, *, remote, model, extras=()):
    """(values, sources, note) without the values `model` cannot use: a remote model what its API has no
    field for (unless the endpoint lists it in `extras`), a local model the remote-only ones. Given by the
    caller, such a value is refused in one line; from the panel, %config or a recipe it is left out and
    `note` says so in one line; house defaults are left out quietly."""
    from ..errors import CreativeError

    values, sources = dict(values), dict(sources or {})
    left_out = []
    for name in task.not_for(values, remote, extras):
        param = task[name]
        source = sources.get(name, "default")
        if source in CALLER:
            if not remote:
                instead = f": use {LOCAL_INSTEAD[name]}" if name in LOCAL_INSTEAD else ""
                raise CreativeError(f"{param.flag} is for remote models (ENDPOINT:MODEL); {model} is a local model{instead}")
            extra = (
                f", or list {name!r} in the endpoint's 'extra_params' if its server takes it (vLLM takes {param.remote_extra})"
                if param.remote_extra
                else ""
            )
            raise CreativeError(f"{param.flag} cannot be sent to {model}: an OpenAI-compatible API has no such field; drop it{extra}")
        if source not in QUIET:
            shown = values[name]
            shown = f"{shown:g}" if isinstance(shown, float) else shown
            left_out.append(f"{param.flag} {shown} ({source})")
        del values[name]
        sources.pop(name, None)
    note = f"Not used by {model}: {', '.join(left_out)}." if left_out else None
    return values, sources, note
