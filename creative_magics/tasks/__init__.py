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
