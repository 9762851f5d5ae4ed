"""The Python API. Each function merges defaults (argument > panel > %config) and calls its task.

The magics call these same functions, passing `_given="flag"` so recipes say where values came from.
"""

import contextlib

from . import defaults
from .errors import CreativeError
from .session import current


def _layers(task, given, params, session):
    panel = session.panel_defaults(task)
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
    with one_at_a_time(session), session.cache.use("story", values.get("model")) as text_model:
        name = values.get("model") or session.resolve("story", None).name
        result = _retrying_out_of_memory(
            session, "story", values.get("model"),
            lambda: task.write(text_model, prompt, values, sources, model_name=name, on_text=on_text),
            lambda: (
                f"out of GPU memory writing {_value(values, task, 'n', 1)} x {_value(values, task, 'max_new_tokens')} tokens "
                "even with the other models evicted: try a smaller -n or --max-new-tokens, a smaller model, or %creative device cpu"
            ),
        )
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


# -- %%paint ---------------------------------------------------------------------------------


def paint(prompt=None, *, recipe=None, on_step=None, on_preview=None, _given="argument", _namespace=None, **params):
    """Paint pictures from `prompt`; returns an ImageResult (`.images`, `.image`, `.seeds`, `.recipe`).

    Parameters: model, negative, steps, guidance, width, height, seed, n, scheduler (euler, euler_a,
    dpm++, ddim, lcm; default: the model's own), init (an IMAGE: path, URL, PIL image, array, result,
    `last` or `canvas`) with strength for image-to-image, and save (a folder for the PNGs).
    Values not given come from the panel, %config CreativeMagics.paint_defaults, then the model's
    recommended settings. `recipe=` re-runs a recipe (a dict, or `read_recipe(png)`); arguments win.
    on_step(step, total) follows the steps; on_preview(images, step, total) gets cheap previews.
    """
    from . import devices, media
    from .tasks import paint as task

    params = {name: value for name, value in params.items() if value is not None}
    _unknown(params, task.PARAMS, "paint")
    from_recipe, recipe_hash = {}, None
    if recipe is not None:
        prompt, from_recipe, recipe_hash = _paint_recipe(recipe, prompt, params)
    if prompt is None or not str(prompt).strip():
        raise CreativeError("the prompt is empty: write it in the cell body")
    session = current()
    panel = session.panel_defaults("paint")
    configured = getattr(session.settings, "paint_defaults", {}) or {}
    values, sources = defaults.merge((_given, params), ("recipe", from_recipe), ("panel", panel), ("config", configured))
    if recipe_hash and values.get("init") is None:
        raise CreativeError("this recipe started from an image object it cannot name: pass that image with --init")
    if values.get("init") is None and sources.get("strength") in ("recipe", "panel", "config"):
        # Only an explicit strength without --init is a mistake: the panel's slider, a default, or an
        # A1111 text-to-image recipe (its hires fix records one) apply to image-to-image runs only.
        del values["strength"], sources["strength"]
    task.check(values)  # before loading anything: a bad value costs no load
    init = None
    if values.get("init") is not None:
        image, label = media.resolve_image(values["init"], _namespace, what="init image")
        fingerprint = media.image_hash(image)
        if recipe_hash and fingerprint != recipe_hash:
            raise CreativeError(
                f"the init image {label!r} is not the one this recipe started from (hash {fingerprint}, "
                f"recipe {recipe_hash}): pass the original with --init"
            )
        init = (image, label, fingerprint)
    if values.get("save"):
        media.check_folder(values["save"])
    spec = session.resolve("paint", values.get("model"))
    device = devices.resolve_device(session.settings.device)
    offload = bool(getattr(session.settings, "cpu_offload", False)) and devices.is_accelerator(device)
    with one_at_a_time(session):
        result = _retrying_out_of_memory(
            session, "paint", values.get("model"),
            lambda: _paint_once(session, task, prompt, values, sources, spec, init, device, offload, on_step, on_preview),
            lambda: task.oom_message(values, offload),
        )
    if values.get("save"):
        result.save(values["save"])
    return session.remember(result)


def _paint_once(session, task, prompt, values, sources, spec, init, device, offload, on_step, on_preview):
    """One painting, with the pipeline in use for its length (offloaded to host memory between parts when asked)."""
    if offload:
        using = session.cache.use_offloaded("paint", values.get("model"), device)
    else:
        using = session.cache.use("paint", values.get("model"))
    with using as pipe:
        return task.paint(
            pipe,
            prompt,
            values,
            sources,
            spec=spec,
            model_name=values.get("model") or spec.name,
            init=init,
            safety=bool(getattr(session.settings, "safety_checker", True)),
            offload_device=device if offload else None,
            on_step=on_step,
            on_preview=on_preview,
        )


def _paint_recipe(recipe, prompt, params):
    """(prompt, recipe values, init image hash) of a paint recipe; `params` (the user's) win over it."""
    if not isinstance(recipe, dict) or recipe.get("task") != "paint":
        raise CreativeError("that is not a paint recipe (read one from a PNG with creative_magics.read_recipe)")
    values = dict(recipe.get("params", {}))
    for key in ("model", "seed"):
        if recipe.get(key) is not None:
            values[key] = recipe[key]
    if "seed" in params or "n" in params:  # a new batch: the recipe's place in its old batch no longer applies
        values.pop("batch_pos", None)
    recipe_hash = None if "init" in params else recipe.get("init_hash")
    if "init" in params:
        values.pop("init", None)
    return (prompt if prompt is not None else recipe.get("prompt")), values, recipe_hash


def _out_of_memory(err):
    import sys

    torch = sys.modules.get("torch")
    if torch is None:
        return False
    return isinstance(err, getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError))


# -- one generation at a time, and a second try after a GPU out-of-memory error ----------------------


@contextlib.contextmanager
def one_at_a_time(session):
    """Models and pipelines are not safe to run from two threads at once, and the slider panel re-runs
    magics in a worker thread while cells run: generations take turns (a cell waits for a re-run in
    flight, and says so). Re-entrant, for a task that calls another (stylize's img2img paints)."""
    lock = session.generation_lock
    held = False
    try:  # acquired inside the try, so a Ctrl-C right after acquiring still releases it
        held = lock.acquire(blocking=False)
        if not held:
            print("Waiting for the run in progress (the panel's) to finish...")
            held = lock.acquire()
        yield
    finally:
        if held:
            lock.release()


def _retrying_out_of_memory(session, task_name, ref, work, message):
    """work(); after a GPU out-of-memory error, evict every other model from the device and try once more;
    after a second one, raise one line (`message()`). The failed attempt's tensors are let go (the
    exception and its frames) before evicting, so the second try has their memory too."""
    from . import devices

    device = devices.resolve_device(session.settings.device)
    for attempt in (1, 2):
        try:
            return work()
        except Exception as err:
            if not _out_of_memory(err):
                raise
        if attempt == 1:
            session.cache.evict_others(task_name, ref, device)
    devices.release_memory(device)
    raise CreativeError(message())


def _value(values, task, name, fallback=None):
    """A merged value, or the task's house default when it was not given (for messages)."""
    value = values.get(name)
    if value is None:
        value = getattr(task, "HOUSE_DEFAULTS", {}).get(name, fallback)
    return f"{value:g}" if isinstance(value, float) else value


# -- %%compose -------------------------------------------------------------------------------


def compose(description=None, *, recipe=None, on_progress=None, _given="argument", **params):
    """Compose music from `description`; returns an AudioResult (`.audio` channels x samples,
    `.sample_rate`, `.recipe`; `.save(path)` writes WAV with the recipe inside).

    Parameters: model, seconds, guidance, temperature, top_k, seed, n, and melody (a WAV path, an audio
    result or an (array, sample_rate) pair; for melody models such as musicgen-melody).
    on_progress(seconds_done, seconds_total) follows the generation. `recipe=` re-runs a recorded
    recipe (its description, model, seed and parameters; arguments win).
    """
    from . import audio
    from .tasks import compose as task

    if recipe is not None:
        description, params = _from_recipe(recipe, "compose", description, params)
    _unknown(params, task.PARAMS, "compose")
    if description is None or not str(description).strip():
        raise CreativeError("the description is empty: describe the music in the cell body")
    session = current()
    values, sources = _layers("compose", _given, params, session)
    task.check(values)  # before loading anything: a bad value costs no load
    melody = audio.load_melody(values["melody"]) if values.get("melody") is not None else None
    with one_at_a_time(session), session.cache.use("compose", values.get("model")) as music_model:
        name = values.get("model") or session.resolve("compose", None).name
        result = _retrying_out_of_memory(
            session, "compose", values.get("model"),
            lambda: task.compose(music_model, str(description), values, sources, model_name=name, melody=melody, on_progress=on_progress),
            lambda: (
                f"out of GPU memory making {_value(values, task, 'n', 1)} x {_value(values, task, 'seconds')} s of music even with the "
                "other models evicted: try fewer --seconds or a smaller -n, a smaller model (musicgen-small), or %creative device cpu"
            ),
        )
    return session.remember(result)


# -- %%finetune ------------------------------------------------------------------------------


def finetune(name, data=None, *, overwrite=False, on_progress=None, _given="argument", **params):
    """Adapt a text model to `data` and save it as `name`, usable at once with `story(..., model=name)`
    and after a restart. Returns a FinetuneResult (`.path`, `.losses`, `.perplexity_before`,
    `.perplexity_after`, `.recipe`).

    data: a text, a list of texts, or the path of a .txt file, a folder of .txt files or a .jsonl file
    with a "text" field on each line. Parameters: base (default: the story model), epochs, max_steps,
    lr, batch_size, block_size, lora_r, lora_alpha, full, eval_split, seed.
    `overwrite=True` lets `name` replace a model or alias that has it already.
    """
    import os

    from . import adapters, corpus
    from .tasks import finetune as task

    _unknown(params, task.PARAMS, "finetune")
    adapters.check_name(name)
    session = current()
    values, sources = _layers("finetune", _given, params, session)
    task.check(values)  # before loading anything: a bad value costs no load
    base = values.get("base") or (getattr(session.settings, "story_defaults", None) or {}).get("model") or None
    base_spec = session.resolve("finetune", base)
    reason = adapters.taken(name, session.settings.aliases)
    if reason and not overwrite:
        raise CreativeError(f"{name!r} is already {reason}: choose another name, or add --overwrite to replace it")
    if os.path.abspath(base_spec.source) == os.path.abspath(adapters.folder(name)):
        raise CreativeError(f"{name!r} cannot be fine-tuned into itself: give the new model another name")
    texts = corpus.read_texts(data)
    if not values.get("full"):
        adapters.need_peft()
    with one_at_a_time(session), session.cache.use("finetune", base) as text_model:
        result = _retrying_out_of_memory(
            session, "finetune", base,
            lambda: task.train(
                text_model, texts, values, sources, name=name, base_name=base or base_spec.name, base_spec=base_spec, on_progress=on_progress
            ),
            lambda: (
                f"out of GPU memory training batches of {_value(values, task, 'batch_size')} x {_value(values, task, 'block_size')} tokens "
                "even with the other models evicted: try a smaller --batch-size or --block-size, or a smaller --base model"
            ),
        )
    if result.path:
        adapters.forget_warm(session.cache, result.path)  # a warm model of that name is now out of date
    return session.remember(result)


# -- %%stylize -------------------------------------------------------------------------------


def stylize(content=None, style=None, *, prompt=None, on_step=None, on_preview=None, _given="argument", _namespace=None, **params):
    """Restyle the `content` image; returns an ImageResult (`.image`, `.images`, `.recipe`).

    method="gatys" (default): neural style transfer after `style` (an IMAGE, or a list of them,
    blended with `style_blend` weights) on VGG19. Parameters: model, steps, size, style_weight,
    content_weight, tv_weight, init ("content" or "noise"), optimizer ("lbfgs" or "adam"), lr,
    preserve_color, style_layers, content_layer, seed.
    method="img2img": `prompt` describes the style ("a watercolor painting"); the content image is
    repainted by the %%paint image-to-image pipeline (model = a paint model; strength, guidance,
    steps, seed apply) and the result carries a paint recipe.
    An IMAGE is a file path, an http(s) URL, a PIL image, a numpy array, a result, `last` or `canvas`.
    """
    from . import media
    from .tasks import stylize as task

    params = {name: value for name, value in params.items() if value is not None}
    _unknown(params, task.PARAMS, "stylize")
    method = params.pop("method", None) or "gatys"
    if method not in task.METHODS:
        raise CreativeError(f"method must be gatys or img2img, not {method!r}")
    if content is None or (isinstance(content, str) and not content.strip()):
        raise CreativeError("no content image: give --content IMAGE (a file, a URL, a variable, `last` or `canvas`)")
    if method == "img2img":
        return _stylize_img2img(content, style, prompt, params, on_step, on_preview, _given, _namespace)
    if prompt and str(prompt).strip():
        raise CreativeError("a text style needs --method img2img; the gatys method takes its style from --style images")
    for name in ("strength", "guidance"):
        if name in params:
            raise CreativeError(f"--{name} belongs to --method img2img; the gatys method uses --style-weight and --steps")
    styles = style if isinstance(style, (list, tuple)) else ([] if style is None else [style])
    if not styles:
        raise CreativeError("no style image: give --style IMAGE (a file, a URL, a variable, `last` or `canvas`)")
    session = current()
    values, sources = _layers("stylize", _given, params, session)
    task.check(values)  # before loading anything: a bad value costs no load
    content_image, content_label = media.resolve_image(content, _namespace, what="content image")
    resolved = [media.resolve_image(s, _namespace, what="style image") for s in styles]
    labels = {"content": content_label, "style": [label for _, label in resolved]}
    with one_at_a_time(session), session.cache.use("stylize", values.get("model")) as net:
        name = values.get("model") or session.resolve("stylize", None).name

        def progress(step, steps, loss, preview):
            if on_step is not None:
                on_step(step, steps, loss)
            if preview is not None and on_preview is not None:
                on_preview([preview], step, steps)

        result = _retrying_out_of_memory(
            session, "stylize", values.get("model"),
            lambda: task.stylize(net, content_image, [image for image, _ in resolved], values, sources, name, labels, progress),
            lambda: (
                f"out of GPU memory at --size {_value(values, task, 'size')} even with the other models evicted: "
                "try a smaller --size, or %creative device cpu"
            ),
        )
    return session.remember(result)


def _stylize_img2img(content, style, prompt, params, on_step, on_preview, given, namespace):
    """The diffusion method: %%paint's image-to-image with the text style as the prompt."""
    if style is not None and style != []:
        raise CreativeError("--method img2img takes its style from the text in the cell body, not from --style images")
    if prompt is None or not str(prompt).strip():
        raise CreativeError("--method img2img restyles after a text: describe the style in the cell body (\"a watercolor painting\")")
    gatys_only = sorted(set(params) - {"model", "seed", "strength", "guidance", "steps"})
    if gatys_only:
        raise CreativeError(f"--{gatys_only[0].replace('_', '-')} belongs to the gatys method, not img2img")
    return paint(prompt, init=content, on_step=on_step, on_preview=on_preview, _given=given, _namespace=namespace, **params)
