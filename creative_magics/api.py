"""The Python API: one function per task, shared by the magics, the slider panel and `import creative_magics`.

Every call goes the same way:
  1. merge its values: argument (or flag) > recipe > the panel's > %config defaults; the task adds the
     model's own and the house's once the model is loaded;
  2. check them against their declarations (params.py): one line, before anything loads;
  3. resolve the notebook references (images, audio, texts) and the model, once;
  4. run the task with the model in use: one generation at a time, and one more try after a GPU
     out-of-memory error with the other models evicted;
  5. remember the result, and the call for "Run again".
"""

import contextlib

from . import defaults, refs
from . import params as declared
from . import tasks as task_helpers
from .errors import CreativeError
from .fast import check as fast_check
from .session import Call, current


# -- 1-2. values -----------------------------------------------------------------------------


def _merge(session, task, given, source, recipe_values=None, above=None):
    """(values, sources): `above` (sliders moved since a call, for "Run again") > given > recipe >
    registered defaults (the panel) > %config."""
    configured = getattr(session.settings, f"{task}_defaults", {}) or {}
    layers = list(above or []) + [(source, given), ("recipe", recipe_values or {})]
    layers += session.default_layers(task) + [("config", configured)]
    return defaults.merge(*layers)


def _given(task, params):
    """The parameters a caller gave (None = not given), refused in one line when the task has no such one."""
    given = {name: value for name, value in params.items() if value is not None}
    declared.of(task).refuse_unknown(given)
    return given


def _recipe_values(recipe, task):
    """The values a recipe holds, as a layer below the caller's own: its params, model and seed."""
    if not isinstance(recipe, dict) or recipe.get("task") != task:
        hint = " (read one from a PNG with creative_magics.read_recipe)" if task == "paint" else ""
        if task == "stylize" and isinstance(recipe, dict) and recipe.get("task") == "paint":
            hint = " (--method img2img makes paint recipes: run it again with %paint --recipe)"
        raise CreativeError(f"that is not a {task} recipe{hint}")
    values = dict(recipe.get("params", {}))
    for key in ("model", "seed", "system"):
        if recipe.get(key) is not None:
            values[key] = recipe[key]
    known = declared.of(task)
    return {name: value for name, value in values.items() if name in known}


def _text(value, message):
    if value is None or not str(value).strip():
        raise CreativeError(message)
    return str(value)


def _begin(task, text_name, text, recipe, params, source, above, namespace, output, empty):
    """Steps 1 and 2 of a call whose input is a text (a prompt, a description): the Call as made, the
    text (a recipe's when none is given), and the merged values. Returns (session, call, text, values, sources)."""
    session = current()
    given = _given(task, params)
    call = Call(task, {text_name: text, "recipe": recipe}, given, source, namespace, output)
    recipe_values = _recipe_values(recipe, task) if recipe is not None else {}
    if recipe is not None and text is None:
        text = recipe.get("prompt")
    text = _text(text, empty)
    values, sources = _merge(session, task, given, source, recipe_values, above)
    return session, call, text, values, sources


# -- 4. running: one generation at a time, a second try after a GPU out-of-memory error --------------


def _say_waiting():
    print("Waiting for the run in progress (the panel's) to finish...")


@contextlib.contextmanager
def one_at_a_time(session, on_wait=None):
    """Models and pipelines are not safe to run from two threads at once, and the slider panel re-runs
    tasks in a worker thread while cells run: generations take turns (a caller waits for a run in
    flight, and says so through `on_wait`). Re-entrant, for a task that calls another (stylize's img2img paints)."""
    lock = session.generation_lock
    held = False
    try:
        held = _take(lock, blocking=False)
        if not held:
            (on_wait or _say_waiting)()
            held = _take(lock, blocking=True)
        yield
    finally:
        if held:
            lock.release()


def _take(lock, blocking):
    """lock.acquire(), safe from a Ctrl-C that lands just after the lock was taken but before the caller
    knows it (the panel's run ending as the person interrupts the waiting cell): the lock is then let go
    again, never left held by a call that ended. Only this thread's own acquire is undone: a blocking one
    waits for the lock only when this thread does not hold it already."""
    if not blocking:
        return lock.acquire(blocking=False)
    try:
        return lock.acquire()
    except BaseException:
        try:
            lock.release()  # taken after all: give it back
        except RuntimeError:  # "cannot release un-acquired lock": it was not taken
            pass
        raise


def _out_of_memory(err):
    import sys

    torch = sys.modules.get("torch")
    if torch is None:
        return False
    return isinstance(err, getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError))


def _retrying_out_of_memory(session, task_name, spec, work, message):
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
            session.cache.evict_others(task_name, spec, device)
    devices.release_memory(device)
    raise CreativeError(message())


def _run(session, task_name, spec, work, message, on_wait=None):
    """work(model) with the model of `spec` in use, one generation at a time, retried once after a GPU OOM."""

    def attempt():
        with session.cache.use(task_name, spec) as model:
            return work(model)

    with one_at_a_time(session, on_wait):
        return _retrying_out_of_memory(session, task_name, spec, attempt, message)


def _say(line):
    print(line)


def _usable(session, task, spec, values, sources, on_note):
    """The values the model of `spec` can use (tasks.usable): a remote model what its API has fields for,
    a local one all but the remote-only ones. Refused in one line when the caller gave such a value."""
    point = _endpoint(session, spec) if spec.kind == "remote" else None
    values, sources, note = task_helpers.usable(
        declared.of(task), values, sources, remote=point is not None, model=values.get("model") or spec.name,
        extras=point.extra_params if point is not None else (),
    )
    if note:
        (on_note or _say)(note)
    return values, sources


def _endpoint(session, spec):
    from . import remote

    name, _, _ = spec.source.partition(":")
    return remote.endpoint(name, getattr(session.settings, "endpoints", None))


def _run_remote(session, task_name, spec, work, on_wait=None, on_note=None):
    """work(connection) for the remote model of `spec` (ENDPOINT:MODEL), one generation at a time like the
    local ones; plain http to another machine is said once per endpoint, and the call is counted for
    %creative models."""
    from . import remote

    point = _endpoint(session, spec)
    warning = remote.plain_http_warning(point)
    if warning and session.warn_once(("plain http", point.name, point.base_url)):
        (on_note or _say)(warning)
    _, _, model = spec.source.partition(":")
    connection = remote.Connection(point, model, session.settings.remote_timeout)
    with one_at_a_time(session, on_wait):
        result = work(connection)
    session.count_remote(task_name, point.name, model)
    return result


def _fast(session, spec, values, sources, on_note=None, **why):
    """The spec to run: `spec`, or with --compile its compiled copy (fast.compiled_spec), said in one progress
    line before it first loads. A fast path that cannot apply is refused in one line (fast.check)."""
    from . import fast

    if not fast.check(spec, values, sources, **why):
        if values.pop("compile", None):  # from %config, the panel or a recipe, where it cannot apply: the model runs eager
            sources.pop("compile", None)
        return spec
    spec = fast.compiled_spec(spec, values)
    note = fast.compile_note(spec, session.cache.loaded(spec) is not None)
    if note:
        (on_note or _say)(note)
    return spec


def _shown(values, task, name, fallback=None):
    """A merged value, or the task's house default when it was not given (for messages)."""
    value = values.get(name)
    if value is None:
        value = declared.of(task).house_defaults().get(name, fallback)
    return f"{value:g}" if isinstance(value, float) else value


# -- %%story ---------------------------------------------------------------------------------


def story(prompt=None, *, recipe=None, on_text=None, on_wait=None, on_note=None, _given_as="argument", _above=None, _namespace=None,
          _output=None, _remember=True, **params):
    """Write a story or poem from `prompt`; returns a StoryResult (`.text`, `.texts`, `.recipe`; `.tokens` with
    show_probs=True).

    `recipe=` re-runs a recorded recipe (its prompt, model, seed and parameters; arguments win; a
    continuation's or a chat reply's recipe makes it again from the start). on_text(partial result)
    follows the text as it is written; on_note(line) gets what is worth a line (values a model cannot
    use, a remote server's limits; printed when not given). A model `ENDPOINT:MODEL` writes on a remote
    OpenAI-compatible server. See also continue_story, again and chat. Parameters:
    """
    from .tasks import story as task

    callbacks = {"on_text": on_text, "on_wait": on_wait, "on_note": on_note}
    if isinstance(recipe, dict) and recipe.get("task") == "story" and (recipe.get("continues") or recipe.get("messages")):
        return _replay(recipe, params, callbacks, _given_as, _namespace, _remember)
    session, call, prompt, values, sources = _begin(
        "story", "prompt", prompt, recipe, params, _given_as, _above, _namespace, _output, "the prompt is empty: write it in the cell body, or after the flags of the line magic"
    )
    task.check(values)
    spec = session.resolve("story", values.get("model"))
    name = values.get("model") or spec.name
    fast_check(spec, values, sources)
    _refuse_remote_probs(spec, values, name)
    values, sources = _usable(session, "story", spec, values, sources, on_note)
    if spec.kind == "remote":
        result = _run_remote(
            session, "story", spec,
            lambda connection: task.write_remote(connection, prompt, values, sources, model_name=name, on_text=on_text, on_note=on_note),
            on_wait, on_note,
        )
    else:
        spec = _fast(session, spec, values, sources, on_note)
        result = _run(
            session, "story", spec,
            lambda text_model: task.write(_as_used(text_model, spec), prompt, values, sources, model_name=name, on_text=on_text),
            _story_out_of_memory(values), on_wait,
        )
    return session.remember(result, call) if _remember else result


def _as_used(text_model, spec):
    return text_model if spec.chat is None else text_model.used_as(spec.chat)


def _story_out_of_memory(values):
    return lambda: (
        f"out of GPU memory writing {_shown(values, 'story', 'n', 1)} x {_shown(values, 'story', 'max_new_tokens')} tokens "
        "even with the other models evicted: try a smaller -n or --max-new-tokens, a smaller model, or %creative device cpu"
    )


def _refuse_remote_probs(spec, values, name):
    if spec.kind == "remote" and values.get("show_probs"):
        raise CreativeError(
            f"--show-probs needs each token's probabilities, and {name} (a remote endpoint) gives no logprobs here: "
            "drop --show-probs, or use a local model"
        )


def _replay(recipe, params, callbacks, given_as, namespace, remember):
    """A continuation or a chat reply made again from its recipe: the story it continues first (quietly), then it."""
    if recipe.get("continues"):
        parent = _replay(recipe["continues"], {}, {}, "recipe", namespace, False) if (
            recipe["continues"].get("continues") or recipe["continues"].get("messages")) else story(recipe=recipe["continues"], _remember=False)
        return continue_story(parent, recipe=recipe, _given_as=given_as, _namespace=namespace, _remember=remember, **callbacks, **params)
    return chat(None, recipe=recipe, _given_as=given_as, _namespace=namespace, _remember=remember, **callbacks, **params)


def _step_values(recipe, given, new_draw):
    """The values of one more step after `recipe` (a continuation, a redraw): its own, less its seed when
    this is a new draw, and always one sample."""
    values = _recipe_values(recipe, "story")
    values.pop("n", None)
    if new_draw:
        values.pop("seed", None)
    if given.get("model") is not None and given["model"] != recipe.get("model"):
        raise CreativeError(f"this story goes on with its own model ({recipe.get('model')}): drop -m")
    return values


def continue_story(result=None, *, recipe=None, on_text=None, on_wait=None, on_note=None, _given_as="argument", _namespace=None,
                   _output=None, _remember=True, **params):
    """%story continue: write on from where the story `result` stopped (a StoryResult, a Chat, a variable's name; None:
    the latest story), as one text; returns a new StoryResult (the old one is unchanged). Its values are the
    story's own (a new seed) unless given. A chat's latest reply grows in the chat too. Parameters: as story()."""
    from .tasks import story as task

    session = current()
    given = _given("story", params)
    parent = refs.story(result, _namespace, what="continue")
    if parent.recipe.get("endpoint"):
        raise CreativeError("%story continue writes on from a local model's tokens; this story came from a remote endpoint: "
                            "give its text as a new prompt instead")
    values, sources = _merge(session, "story", given, _given_as, _step_values(recipe or parent.recipe, given, recipe is None))
    task.check(values)
    spec = session.resolve("story", values.get("model"))
    name = values.get("model") or spec.name
    values, sources = _usable(session, "story", spec, values, sources, on_note)
    spec = _fast(session, spec, values, sources, on_note)
    result = _run(
        session, "story", spec,
        lambda text_model: task.write_more(_as_used(text_model, spec), parent, values, sources, model_name=name, on_text=on_text),
        _story_out_of_memory(values), on_wait,
    )
    result.parent = parent
    _grow_chat(parent, result)
    return session.remember(result) if _remember else result


def again(result=None, *, on_text=None, on_wait=None, on_note=None, _given_as="argument", _namespace=None, _output=None, **params):
    """%story again: draw the last sample of the story `result` (None: the latest story) again with a new seed, a branch
    from the same place; returns the new StoryResult, and both keep every draw on `.branches`. The new
    seed is recorded: its recipe makes it again. Parameters: as story()."""
    from . import seeds

    session = current()
    base = refs.story(result, _namespace, what="again")
    params = {name: value for name, value in params.items() if value is not None}
    recorded = base.recipe.get("params", {})
    if recorded.get("greedy") and "greedy" not in params and "temperature" not in params:
        raise CreativeError("this story was written greedily, so drawing it again gives the same text: add --temperature 0.8 for a branch")
    if params.get("seed") is None:
        taken = {branch.recipe.get("seed") for branch in base.branches}
        seed = seeds.choose(None)
        while seed in taken:
            seed = seeds.choose(None)
        params["seed"] = seed
    callbacks = {"on_text": on_text, "on_wait": on_wait, "on_note": on_note}
    if base.parent is not None:
        result = continue_story(base.parent, recipe=base.recipe, _given_as=_given_as, _namespace=_namespace, **callbacks, **params)
    elif base.recipe.get("messages"):
        result = chat(None, recipe=base.recipe, _given_as=_given_as, _namespace=_namespace, _redraw=base, **callbacks, **params)
    else:
        result = story(recipe=base.recipe, _given_as=_given_as, _namespace=_namespace, _output=_output, **callbacks, **params)
    base.add_branch(result)
    if base.parent is not None:
        _grow_chat(base, result)
    return result


def _grow_chat(before, after):
    """A chat whose latest reply is `before` gets `after` in its place (a continued or redrawn reply)."""
    conversation = getattr(before, "chat", None)
    if conversation is None or not conversation.replies or conversation.replies[-1] is not before:
        return
    after.chat = conversation
    conversation.replies[-1] = after
    conversation.messages[-1] = {"role": "assistant", "content": after.text}


def chat(conversation, message=None, *, recipe=None, on_text=None, on_wait=None, on_note=None, _given_as="argument", _namespace=None,
         _remember=True, _redraw=None, **params):
    """%%story --chat NAME: `message` as the user's turn in `conversation` (a results.Chat), the instruct model's
    reply appended; returns the reply as a StoryResult. The model and system message are the chat's own
    unless given (then they become its own). When the conversation would overflow the model's context the
    oldest turns are left out of the request (said in one line; the system message stays). `recipe=` (a
    reply's) answers the same messages again. Parameters: as story()."""
    from .results import Chat
    from .tasks import story as task

    session = current()
    given = _given("story", params)
    if recipe is not None:
        messages = [dict(m) for m in recipe["messages"]]
        recipe_values = _recipe_values(recipe, "story")
        recipe_values.pop("n", None)
    else:
        if not isinstance(conversation, Chat):
            raise CreativeError(f"chat() takes a Chat (creative_magics.results.Chat), not a {type(conversation).__name__}")
        message = _text(message, "the message is empty: write your turn of the chat in the cell body")
        messages = [dict(m) for m in conversation.messages] + [{"role": "user", "content": message}]
        recipe_values = {key: value for key, value in (("model", conversation.model), ("system", conversation.system)) if value}
    values, sources = _merge(session, "story", given, _given_as, recipe_values)
    values["n"] = 1
    task.check(values)
    spec = session.resolve("story", values.get("model"))
    name = values.get("model") or spec.name
    _refuse_remote_probs(spec, values, name)
    values, sources = _usable(session, "story", spec, values, sources, on_note)
    system = values.get("system") or None
    if spec.kind == "remote":
        result = _run_remote(
            session, "story", spec,
            lambda connection: task.write_remote(connection, messages[-1]["content"], values, sources, model_name=name, on_text=on_text,
                                                 on_note=on_note, messages=messages),
            on_wait, on_note,
        )
    else:
        spec = _fast(session, spec, values, sources, on_note)
        result = _run(
            session, "story", spec,
            lambda text_model: task.reply(_as_used(text_model, spec), messages, system, values, sources, model_name=name, on_text=on_text,
                                          on_note=on_note),
            _story_out_of_memory(values), on_wait,
        )
    if _redraw is not None:
        _grow_chat(_redraw, result)
    elif conversation is not None:
        conversation.add("user", message)
        conversation.add("assistant", result.text)
        conversation.replies.append(result)
        conversation.model, conversation.system = name, system
        result.chat = conversation
    return session.remember(result) if _remember else result


# -- %%paint ---------------------------------------------------------------------------------


def paint(prompt=None, *, recipe=None, on_step=None, on_preview=None, on_wait=None, on_note=None, _given_as="argument", _above=None,
          _namespace=None, _output=None, **params):
    """Paint pictures from `prompt`; returns an ImageResult (`.images`, `.image`, `.seeds`, `.recipe`, `.recipes`).

    An IMAGE (init, mask, control) is a path, an URL, a PIL image, an array, a result, `last` or `canvas`
    (as a mask: the strokes drawn on the canvas). Values not given come from the panel, %config
    CreativeMagics.paint_defaults, then the model's recommended settings. `recipe=` re-runs a recipe (a
    dict, or `read_recipe(png)`); arguments win. `sweep=` paints one picture per value (a grid).
    on_step(step, total) follows the steps; on_preview(images, step, total) gets cheap previews; on_note(line)
    what is worth a line. A model `ENDPOINT:MODEL` paints on a remote OpenAI-compatible server
    (images/generations; images/edits with an init image). Parameters:
    """
    from . import media
    from .tasks import paint as task

    session = current()
    given = _given("paint", params)
    call = Call("paint", {"prompt": prompt, "recipe": recipe}, given, _given_as, _namespace, _output)
    # 1. values: a recipe's below the caller's; a recipe's images only with those very pictures
    recipe_values, recipe_hashes = {}, {}
    if recipe is not None:
        recipe_values = _recipe_values(recipe, "paint")
        prompt = recipe.get("prompt") if prompt is None else prompt
        if "seed" in given or "n" in given:  # a new batch: the recipe's place in its old batch no longer applies
            recipe_values.pop("batch_pos", None)
        for name in task.IMAGE_INPUTS:
            if name in given:
                recipe_values.pop(name, None)
            elif recipe.get(f"{name}_hash"):
                recipe_hashes[name] = recipe[f"{name}_hash"]
    prompt = _text(prompt, "the prompt is empty: write it in the cell body, or after the flags of the line magic")
    _refuse_lora_tags(prompt)
    values, sources = _merge(session, "paint", given, _given_as, recipe_values, _above)
    for name in recipe_hashes:
        if values.get(name) is None:
            flag = declared.PAINT[name].flag
            raise CreativeError(f"this recipe started from an image object it cannot name: pass that image with {flag}")
    # A value that needs another (the denoising amount needs an init image) is a mistake only when the caller gave it; the
    # panel's slider, a default or an A1111 text-to-image recipe (its hires fix records one) just do not apply.
    values, sources = declared.PAINT.drop_unneeded(values, sources, keep=(_given_as,))
    if values.get("sweep") is not None and sources.get("n") != _given_as:
        values.pop("n", None)  # a sweep paints one picture a cell; only the caller's own -n is refused
    # 2. check, before anything loads; what the model cannot use
    task.check(values)
    spec = session.resolve("paint", values.get("model"))
    fast_check(spec, values, sources)
    values, sources = _usable(session, "paint", spec, values, sources, on_note)
    # 3. the images it reads (a mask with nothing to repaint is said before any model loads)
    inputs = _paint_images(values, recipe_hashes, _namespace)
    short_prompt = None
    if values.get("enhance"):  # the story model writes the detailed prompt first
        short_prompt = prompt.strip()
        prompt = _enhanced_prompt(session, short_prompt, on_wait, on_note)
    if values.get("save"):
        media.check_folder(values["save"])
    # 4. paint: on a remote server, once, or once per cell of a sweep
    callbacks = {"on_step": on_step, "on_preview": on_preview, "on_note": on_note}
    if spec.kind == "remote":
        mask = inputs.get("mask")
        result = _run_remote(
            session, "paint", spec,
            lambda connection: task.paint_remote(
                connection, prompt, values, sources, model_name=values.get("model") or spec.name, init=inputs.get("init"),
                mask=mask[0] if mask is not None else None, on_step=on_step, on_note=on_note,
            ),
            on_wait, on_note,
        )
    elif values.get("sweep") is not None:
        result = _paint_sweep(session, prompt, values, sources, inputs, callbacks, on_wait)
    else:
        result = _paint_once(session, prompt, values, sources, inputs, callbacks, on_wait)
    # 5. save, remember
    if short_prompt is not None:
        for recipe in [result.recipe] + list(result.cells or []):
            recipe.update(short_prompt=short_prompt, enhanced_by=_enhancer(session))
    if values.get("save"):
        result.save(values["save"])
    return session.remember(result, call)


# %%paint --enhance: what the story model is asked; greedy, so the same short prompt gives the same long one.
ENHANCE_REQUEST = (
    "Rewrite this idea as one detailed prompt for an image generator: name the subject, the art style, the light and the "
    "composition, in one line of at most 60 words. Write only the prompt.\nIdea: {prompt}\nPrompt:"
)
ENHANCE_TOKENS = 90


def _enhancer(session):
    """The story model that enhances prompts: the one %config CreativeMagics.story_defaults names, else the default."""
    return (getattr(session.settings, "story_defaults", None) or {}).get("model") or session.resolve("story").name


def _enhanced_prompt(session, short, on_wait=None, on_note=None):
    """%%paint --enhance: the detailed painting prompt the story model (local or remote) writes from `short`."""
    model = _enhancer(session)
    written = story(
        ENHANCE_REQUEST.format(prompt=short.strip()), model=model, greedy=True, max_new_tokens=ENHANCE_TOKENS, stream=False,
        on_wait=on_wait, on_note=on_note, _remember=False,
    )
    enhanced = clean_enhanced(written.text)
    if not enhanced:
        (on_note or _say)(f"{model} wrote no painting prompt from {short!r}, so it is painted as written.")
        return short
    return enhanced


def clean_enhanced(text):
    """The prompt in what a story model wrote: its first paragraph, without a label or quotes around it."""
    import re

    first = next((part.strip() for part in re.split(r"\n\s*\n", text.strip()) if part.strip()), "")
    first = re.sub(r"^(here is[^:]*:|prompt:)\s*", "", first, flags=re.IGNORECASE).strip()
    return " ".join(first.strip("\"'` ").split())


_IMAGE_WORDS = {"init": "init image", "mask": "mask", "control": "control image"}


def _refuse_lora_tags(prompt):
    """A1111's `<lora:NAME:WEIGHT>` in a prompt would reach the text encoder as words: say where it goes here."""
    import re

    tag = re.search(r"<lora:([^<>]+)>", prompt)
    if tag:
        raise CreativeError(f"a LoRA in the prompt ({tag.group(0)}) is A1111's way; here put it on the magic line: --lora {tag.group(1)}")


def _paint_images(values, recipe_hashes, namespace):
    """{"init"|"mask"|"control": (PIL image, label, hash)} for the IMAGE values given; each checked against the
    recipe's hash of it when re-running a recipe."""
    from . import media
    from .tasks import paint as task

    inputs = {}
    for name, what in _IMAGE_WORDS.items():
        if values.get(name) is None:
            continue
        image, label = refs.mask(values[name], namespace) if name == "mask" else refs.image(values[name], namespace, what=what)
        fingerprint = media.image_hash(image)
        expected = recipe_hashes.get(name)
        if expected and fingerprint != expected:
            raise CreativeError(
                f"the {what} {label!r} is not the one this recipe started from (hash {fingerprint}, "
                f"recipe {expected}): pass the original with {declared.PAINT[name].flag}"
            )
        inputs[name] = (image, label, fingerprint)
    if "mask" in inputs:
        task.check_mask(inputs["mask"][0])
    return inputs


def _paint_once(session, prompt, values, sources, inputs, callbacks, on_wait):
    """One painting: the model (and its ControlNet and LoRAs) resolved once, run one generation at a time,
    retried once after a GPU out-of-memory error with the other models evicted."""
    from . import devices
    from .tasks import paint as task

    values, sources = dict(values), dict(sources)
    spec = session.resolve("paint", values.get("model"))
    model_name = values.get("model") or spec.name
    loras = _paint_loras(session, values, spec, model_name)
    device = devices.resolve_device(session.settings.device)
    offload = bool(getattr(session.settings, "cpu_offload", False)) and devices.is_accelerator(device)
    spec = _fast(session, spec, values, sources, callbacks.get("on_note"), offload=offload, loras=bool(loras))

    def use(task_name, model_spec):
        return session.cache.use_offloaded(task_name, model_spec, device) if offload else session.cache.use(task_name, model_spec)

    def work():
        with use("paint", spec) as pipe, contextlib.ExitStack() as stack:
            controlnet = None
            if "control" in inputs:
                name = task.controlnet_name(values, spec.base or task.base_of(pipe))
                controlnet_spec = session.resolve("paint", name, family="controlnet")
                task.check_fits(model_name, spec.base or task.base_of(pipe), "ControlNet", name, controlnet_spec.base)
                if not values.get("controlnet"):
                    values["controlnet"], sources["controlnet"] = name, "default"
                controlnet = (stack.enter_context(use("controlnet", controlnet_spec)), name)
            return task.paint(
                pipe, prompt, values, sources, spec=spec, model_name=model_name, init=inputs.get("init"), mask=inputs.get("mask"),
                control=inputs.get("control"), controlnet=controlnet, loras=loras,
                safety=bool(getattr(session.settings, "safety_checker", True)), offload_device=device if offload else None,
                on_step=callbacks.get("on_step"), on_preview=callbacks.get("on_preview"),
            )

    with one_at_a_time(session, on_wait):
        return _retrying_out_of_memory(session, "paint", spec, work, lambda: task.oom_message(values, offload))


def _paint_loras(session, values, spec, model_name):
    """[(name, folder, weight file, weight)] of the --lora values: found (or downloaded) before the model loads,
    and refused in one line when an alias says it is for another architecture."""
    from . import loaders
    from .tasks import paint as task

    out = []
    for item in declared.items(declared.PAINT["lora"], values.get("lora")):
        ref, weight = declared.parse_lora(item)
        lora_spec = session.resolve("paint", ref, family="lora")
        task.check_fits(model_name, spec.base, "LoRA", ref, lora_spec.base)
        folder, weight_name = loaders.locate_lora(lora_spec)
        out.append((ref, folder, weight_name, weight))
    return out


class _SweepProgress:
    """One progress line over a whole sweep: the steps of the cells done, then of this one, of an estimate of all."""

    def __init__(self, cells, on_step=None, on_preview=None, on_note=None):
        self.cells, self.on_step, self.on_preview, self.on_note = cells, on_step, on_preview, on_note
        self.before = 0  # steps of the cells done

    def callbacks(self, index):
        def overall(step, total):
            return self.before + step, self.before + total * (self.cells - index)

        def step(done, total):
            if self.on_step is not None:
                self.on_step(*overall(done, total))

        def preview(images, done, total):
            if self.on_preview is not None:
                self.on_preview(images, *overall(done, total))

        return {"on_step": step, "on_preview": preview if self.on_preview is not None else None, "on_note": self.on_note}


def _paint_sweep(session, prompt, values, sources, inputs, callbacks, on_wait):
    """A1111's X/Y/Z plot: one painting per cell of the sweep, in grid order, each a plain call with its values
    (the seed drawn once for all); Ctrl-C keeps the cells done. One ImageResult with the labelled grid."""
    from . import seeds, sweeps
    from .tasks import paint as task

    made = sweeps.axes(declared.PAINT, values["sweep"], values)
    base = {name: value for name, value in values.items() if name not in ("sweep", "yes", "save")}
    base_sources = dict(sources)
    if base.get("seed") is None:
        base["seed"], base_sources["seed"] = seeds.choose(None), "drawn"
    cells = sweeps.cells(made, base)
    for model in dict.fromkeys(cell["model"] for cell in cells if "model" in cell):
        if session.resolve("paint", model).kind == "remote":  # a model that is none, in one line, before the first cell paints
            raise CreativeError(f"a sweep paints with local models, and {model} is a remote one: sweep it with a loop over creative_magics.paint")
    progress = _SweepProgress(len(cells), callbacks.get("on_step"), callbacks.get("on_preview"), callbacks.get("on_note"))
    results, interrupted = [], False
    for index, cell in enumerate(cells):
        cell_values = {**base, **cell}
        cell_sources = {**base_sources, **{name: "sweep" for name in cell}}
        try:
            result = _paint_once(session, prompt, cell_values, cell_sources, inputs, progress.callbacks(index), on_wait)
        except KeyboardInterrupt:
            interrupted = True
            break
        if result.interrupted:  # stopped within this cell: the cells done are kept, not its previews
            interrupted = True
            break
        results.append(result)
        progress.before += result.steps_total
    return task.sweep_result(results, made, prompt, base, interrupted, source=sources.get("sweep", "argument"))


# -- %%compose -------------------------------------------------------------------------------


def compose(description=None, *, recipe=None, on_progress=None, on_wait=None, _given_as="argument", _above=None,
            _namespace=None, _output=None, **params):
    """Compose music from `description`; returns an AudioResult (`.audio` channels x samples,
    `.sample_rate`, `.recipe`; `.save(path)` writes WAV with the recipe inside).

    A melody, or the audio to continue, is a WAV path, an audio result, `last` or an (array, sample_rate)
    pair. With midi=True it writes notes instead and returns a MidiResult (`.midi` bytes of a MIDI file,
    `.notes`, `.audio` a preview, `.save(path)` a .mid); the description is then optional and kept in the
    recipe. on_progress(seconds_done, seconds_total) follows the generation. `recipe=` re-runs a recorded
    recipe (its description, model, seed and parameters; arguments win). Parameters:
    """
    from . import models
    from .tasks import compose as task

    session = current()
    given = _given("compose", params)
    call = Call("compose", {"description": description, "recipe": recipe}, given, _given_as, _namespace, _output)
    recipe_values = _recipe_values(recipe, "compose") if recipe is not None else {}
    if recipe is not None and description is None:
        description = recipe.get("prompt")
    values, sources = _merge(session, "compose", given, _given_as, recipe_values, _above)
    declared.COMPOSE.check_each(values)
    mode = "midi" if values.get("midi") else "audio"
    values, sources = _for_mode(values, sources, mode, keep=(_given_as,))
    family = models.family_named(values.get("model") or models.DEFAULT_MODELS["midi" if mode == "midi" else "compose"], session.settings.aliases)
    if mode == "midi":
        if family == "musicgen":
            raise CreativeError(
                f"--midi writes notes with a MIDI model (amt-small, amt-medium or amt-large); {values['model']} makes audio: "
                "drop --midi, or choose one of those with -m"
            )
        return _compose_midi(session, call, description, values, sources, on_progress, on_wait, _namespace)
    if family == "midi":
        raise CreativeError(f"{values['model']} writes MIDI notes, not audio: add --midi, or choose a MusicGen model (musicgen-small)")
    description = _text(description, "the description is empty: describe the music in the cell body")
    task.check(values)
    melody = refs.audio(values["melody"], _namespace) if values.get("melody") is not None else None
    continuation = refs.audio(values["continue_from"], _namespace, "continue") if values.get("continue_from") is not None else None
    spec = session.resolve("compose", values.get("model"))
    name = values.get("model") or spec.name
    spec = _fast(session, spec, values, sources)
    result = _run(
        session, "compose", spec,
        lambda music_model: task.compose(
            music_model, description, values, sources, model_name=name, melody=melody, continuation=continuation, on_progress=on_progress
        ),
        lambda: (
            f"out of GPU memory making {_shown(values, 'compose', 'n', 1)} x {_shown(values, 'compose', 'seconds')} s of music even with the "
            "other models evicted: try fewer --seconds or a smaller -n, a smaller model (musicgen-small), or %creative device cpu"
        ),
        on_wait,
    )
    return session.remember(result, call)


def _for_mode(values, sources, mode, keep):
    """Copies of (values, sources) for a %%compose `mode` ("audio" or "midi"): a value of the other mode is
    one line when the caller gave it (`keep`), and left out when a panel, %config or a recipe gave it."""
    values, sources = dict(values), dict(sources)
    if mode == "audio":
        values.pop("midi", None)  # midi=False
        sources.pop("midi", None)
    for param in declared.COMPOSE.params:
        if param.methods and mode not in param.methods and values.get(param.name) is not None:
            if sources.get(param.name) in keep:
                if mode == "audio":
                    raise CreativeError(f"{param.flag} is for MIDI composition: add --midi")
                raise CreativeError(f"{param.flag} is for MusicGen's audio; --midi writes notes without it: drop {param.flag}")
            del values[param.name]
            sources.pop(param.name, None)
    return values, sources


def _compose_midi(session, call, description, values, sources, on_progress, on_wait, namespace):
    """%%compose --midi: notes by the Anticipatory Music Transformer; the description is kept in the recipe."""
    from .tasks import midi as task

    task.check(values)
    prompt = refs.midi(values["prompt_midi"], namespace) if values.get("prompt_midi") is not None else None
    spec = session.resolve("midi", values.get("model"))
    name = values.get("model") or spec.name
    text = "" if description is None else str(description).strip()
    result = _run(
        session, "midi", spec,
        lambda midi_model: task.compose_midi(midi_model, text, values, sources, model_name=name, prompt=prompt, on_progress=on_progress),
        lambda: (
            f"out of GPU memory writing {_shown(values, 'compose', 'n', 1)} x {_shown(values, 'compose', 'seconds')} s of notes even with the "
            "other models evicted: try a smaller -n, a smaller model (amt-small), or %creative device cpu"
        ),
        on_wait,
    )
    result.soundfont = getattr(session.settings, "soundfont", "") or ""
    return session.remember(result, call)


# -- %%finetune ------------------------------------------------------------------------------


def finetune(name, data=None, *, overwrite=False, on_progress=None, on_wait=None, _given_as="argument", _namespace=None,
             _data_is_name_or_path=False, **params):
    """Adapt a text model to `data` and save it as `name`, usable at once with `story(..., model=name)`
    and after a restart. Returns a FinetuneResult (`.path`, `.losses`, `.perplexity_before`,
    `.perplexity_after`, `.recipe`).

    data: a text, a list of texts, or the path of a .txt file, a folder of .txt files or a .jsonl file
    with a "text" field on each line. `overwrite=True` lets `name` replace a model or alias that has it
    already. Parameters:
    """
    import os

    from . import finetuned
    from .tasks import finetune as task

    session = current()
    given = _given("finetune", params)
    finetuned.check_name(name)
    values, sources = _merge(session, "finetune", given, _given_as)
    task.check(values)
    base = values.get("base") or (getattr(session.settings, "story_defaults", None) or {}).get("model") or None
    base_spec = session.resolve("finetune", base)
    reason = finetuned.taken(name, session.settings.aliases)
    if reason and not overwrite:
        raise CreativeError(f"{name!r} is already {reason}: choose another name, or add --overwrite to replace it")
    if os.path.abspath(base_spec.source) == os.path.abspath(finetuned.folder(name)):
        raise CreativeError(f"{name!r} cannot be fine-tuned into itself: give the new model another name")
    texts = refs.texts(data, _namespace, name_or_path=_data_is_name_or_path)
    if not values.get("full"):
        finetuned.need_peft()
    result = _run(
        session, "finetune", base_spec,
        lambda text_model: task.train(
            text_model, texts, values, sources, name=name, base_name=base or base_spec.name, base_spec=base_spec, on_progress=on_progress
        ),
        lambda: (
            f"out of GPU memory training batches of {_shown(values, 'finetune', 'batch_size')} x {_shown(values, 'finetune', 'block_size')} tokens "
            "even with the other models evicted: try a smaller --batch-size or --block-size, or a smaller --base model"
        ),
        on_wait,
    )
    if result.path:
        finetuned.forget_warm(session.cache, result.path)  # a warm model of that name is now out of date
    return session.remember(result)


# -- %%stylize -------------------------------------------------------------------------------


def stylize(content=None, style=None, *, prompt=None, recipe=None, on_step=None, on_preview=None, on_wait=None, on_note=None,
            _given_as="argument", _above=None, _namespace=None, _output=None, _remember=True, **params):
    """Restyle the `content` image; returns an ImageResult (`.image`, `.images`, `.recipe`).

    method="gatys" (default): neural style transfer after `style` (an IMAGE, or a list of them, blended
    by weights) on VGG19. method="adain": the same after any style image(s), in one pass (Huang &
    Belongie). method="cyclegan": `style` is a painter, "monet", "vangogh", "cezanne" or "ukiyoe" (Zhu et
    al.'s generators). method="img2img": `prompt` describes the style ("a watercolor painting"); the
    content image is repainted by the %%paint image-to-image pipeline (model = a paint model) and the
    result carries a paint recipe. An IMAGE is a file path, an http(s) URL, a PIL image, a numpy array,
    a result, `last` or `canvas`. `recipe=` re-runs a stylize recipe (its method, model, images and
    values; arguments win). Parameters (each says which method uses it):
    """
    from .tasks import stylize as task

    session = current()
    given = _given("stylize", params)
    live = given.pop("live", None)
    declared.STYLIZE["live"].check(live)
    if live:
        raise CreativeError("live=True runs again on every canvas stroke: use %stylize ... --live, or creative_magics.stylize(..., live=True)")
    call = Call("stylize", {"content": content, "style": style, "prompt": prompt, "recipe": recipe}, dict(given), _given_as, _namespace, _output)
    # 1. the method, and what a recipe gives: its values, its images (by name), its method
    recipe_values, recipe_images = {}, None
    if recipe is not None:
        recipe_values = _recipe_values(recipe, "stylize")
        recipe_images = _recipe_images(recipe, content, style)
    method = given.pop("method", None) or (recipe.get("method") if isinstance(recipe, dict) else None) or "gatys"
    declared.STYLIZE["method"].check(method)
    if recipe_images is not None:
        content, style = recipe_images["content"], recipe_images["style"]
    if content is None or (isinstance(content, str) and not content.strip()):
        raise CreativeError("no content image: give --content IMAGE (a file, a URL, a variable, `last` or `canvas`)")
    task.check_method(method, given)
    if method == "img2img":
        return _stylize_img2img(session, call, content, style, prompt, given, on_step, on_preview, on_wait, _given_as, _above, _namespace,
                                on_note)
    if prompt and str(prompt).strip():
        raise CreativeError(f"a text style needs --method img2img; the {method} method takes its style from --style")
    styles = list(style) if isinstance(style, (list, tuple)) else ([] if style is None else [style])
    painter = _painter(styles, _namespace) if method == "cyclegan" else None
    if method == "adain":
        _refuse_painters(styles, _namespace)
    if not styles:
        raise CreativeError("no style image: give --style IMAGE (a file, a URL, a variable, `last` or `canvas`)")
    if method == "cyclegan" and recipe_images is not None and style is not recipe_images.get("recipe_style"):
        recipe_values.pop("model", None)  # a painter given anew: its own generator, not the recipe's
    # 2. values, checked before anything loads
    values, sources = _merge(session, "stylize", given, _given_as, recipe_values, _above)
    values = {name: value for name, value in values.items() if not declared.STYLIZE[name].methods or method in declared.STYLIZE[name].methods}
    values = _model_for_method(session, method, values, sources, keep=(_given_as, "recipe"))
    task.check(values)
    # 3. references, then the model once
    content_image, content_label = refs.image(content, _namespace, what="content image")
    if recipe_images is not None:
        _same_as_recipe(recipe, "content", content, content_image)
    resolved = []
    if method != "cyclegan":
        resolved = [refs.image(s, _namespace, what="style image") for s in styles]
        if recipe_images is not None:
            for index, (image, _) in enumerate(resolved):
                _same_as_recipe(recipe, "style", styles[index], image, index)
    labels = {"content": content_label, "style": [label for _, label in resolved]}
    default_model = f"cyclegan-{painter}" if method == "cyclegan" else None
    spec = session.resolve("stylize", values.get("model") or default_model, method=method)
    name = values.get("model") or spec.name
    style_images = [image for image, _ in resolved]

    def progress(step, steps, loss, preview):
        if on_step is not None:
            on_step(step, steps, loss)
        if preview is not None and on_preview is not None:
            on_preview([preview], step, steps)

    def work(net):
        if method == "adain":
            return task.adain(net, content_image, style_images, values, sources, name, labels, progress)
        if method == "cyclegan":
            return task.cyclegan(net, content_image, painter, values, sources, name, content_label, progress)
        return task.stylize(net, content_image, style_images, values, sources, name, labels, progress)

    # 4. run
    result = _run(
        session, "stylize", spec, work,
        lambda: (
            f"out of GPU memory at --size {_shown(values, 'stylize', 'size')} even with the other models evicted: "
            "try a smaller --size, or %creative device cpu"
        ),
        on_wait,
    )
    # 5. remember (live previews are not kept: only the frame drawn when the person stops)
    return session.remember(result, call) if _remember else result


def _model_for_method(session, method, values, sources, keep):
    """The methods run different networks: a model from the panel or %config that is not one of this
    method's is left out (the caller's own, or a recipe's, is said wrong in one line instead)."""
    from .errors import ModelNotAvailable

    model = values.get("model")
    if model is None or sources.get("model") in keep:
        return values
    try:
        session.resolve("stylize", model, method=method)
    except ModelNotAvailable:
        return {name: value for name, value in values.items() if name != "model"}
    return values


def _painter(styles, namespace):
    """The painter of a cyclegan call: one --style that names one (a painter name wins over a variable of that name)."""
    from .nets.layers import PAINTERS

    painters = ", ".join(PAINTERS)
    if not styles:
        raise CreativeError(f"no painter: give --style {painters.replace(', ', '|')}")
    if len(styles) > 1:
        raise CreativeError(f"--method cyclegan paints after one painter: give one --style ({painters})")
    given = styles[0]
    if isinstance(given, str) and given.strip() in PAINTERS:
        return given.strip()
    if not isinstance(given, str) or refs.names_an_image(given, namespace):
        raise CreativeError(f"--method cyclegan takes a painter, not a style image: --style {painters} (any style image: --method adain)")
    raise CreativeError(f"unknown painter {given!r}: --method cyclegan paints as {painters}")


def _refuse_painters(styles, namespace):
    """A painter's name given to adain (and naming no image here) is a mix-up of the two methods: one line."""
    from .nets.layers import PAINTERS

    for each in styles:
        if isinstance(each, str) and each.strip() in PAINTERS and not refs.names_an_image(each, namespace):
            raise CreativeError(
                f"--style {each.strip()} is a CycleGAN painter, not a style image: use --method cyclegan --style {each.strip()}, "
                "or give adain an image"
            )


def _recipe_images(recipe, content, style):
    """The content and style a recipe re-runs with: those given, else the ones it names (an image object it
    could not name must be passed again)."""
    out = {"content": content, "style": style}
    if content is None:
        label = recipe.get("content")
        if label is None:
            raise CreativeError("this recipe restyled an image object it cannot name: pass that image with --content")
        out["content"] = label
    if style is None:
        labels = list(recipe.get("style") or [])
        if not labels or any(label is None for label in labels):
            raise CreativeError("this recipe's style is an image object it cannot name: pass that image with --style")
        out["style"] = out["recipe_style"] = labels
    return out


def _same_as_recipe(recipe, what, ref, image, index=None):
    """An image taken by its name from a recipe must be the one the recipe used (its pixels' hash)."""
    from . import media

    if what == "content":
        if ref != recipe.get("content") or not recipe.get("content_hash"):
            return
        expected = recipe["content_hash"]
    else:
        hashes = recipe.get("style_hash") or []
        if index >= len(hashes) or ref != (recipe.get("style") or [None] * (index + 1))[index]:
            return
        expected = hashes[index]
    found = media.image_hash(image)
    if found != expected:
        raise CreativeError(
            f"the {what} image {ref!r} is not the one this recipe used (hash {found}, recipe {expected}): pass the original with --{what}"
        )


def _stylize_img2img(session, call, content, style, prompt, given, on_step, on_preview, on_wait, given_as, above, namespace, on_note=None):
    """The diffusion method: %%paint's image-to-image with the text style as the prompt."""
    if style is not None and style != []:
        raise CreativeError("--method img2img takes its style from the text in the cell body, not from --style images")
    if prompt is None or not str(prompt).strip():
        raise CreativeError("--method img2img restyles after a text: describe the style in the cell body (\"a watercolor painting\")")
    result = paint(prompt, init=content, on_step=on_step, on_preview=on_preview, on_wait=on_wait, on_note=on_note, _given_as=given_as,
                   _above=above, _namespace=namespace, **given)
    session.calls["stylize"] = call
    session.last_task = "stylize"
    return result


# -- %creative similar ---------------------------------------------------------------------------

_FOLDER_EMBEDDINGS = {}  # (path, size, mtime, model) -> vectors of a folder's file, computed once


def similar(query, k=5, folder=None, *, model=None, _namespace=None):
    """Rank this session's results (images by their pixels, texts by their text), or a folder's images and .txt
    files, by CLIP similarity to `query`: a text, an image (a PIL image, an array, a result, a variable's
    name or an image file) or "last" (the latest result, itself left out). Returns [(score, item)], best
    first, at most `k`; an item is a result (the session's) or a file path (a folder's). Embeddings are
    computed once: a result keeps its own, a folder's are kept per file until it changes."""
    from .tasks import similar as task

    session = current()
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise CreativeError(f"-k must be a whole number >= 1, not {k!r}")
    query_kind, query_value, query_item = refs.similarity_query(query, _namespace)
    if folder is not None:
        candidates = refs.folder_items(folder, task.IMAGE_SUFFIXES, task.TEXT_SUFFIXES)
    else:
        candidates = [item for item in session.results if _comparable(item) and item is not query_item]
        if not candidates:
            more = " else" if query_item is not None else ""
            raise CreativeError(f"no images or texts{more} in this session yet to compare: make some with %%paint or %%story, or give --folder DIR")
    spec = session.resolve("similar", model)
    name = model or spec.name

    def work(clip):
        if query_kind == "image":
            vector = task.embed_images(clip, [query_value])[0]
        else:
            vector = task.embed_texts(clip, [query_value])[0]
        scored = [(item, _vectors(task, clip, item, name)) for item in candidates]
        return task.rank(vector, scored, k)

    return _run(session, "similar", spec, work, lambda: "out of GPU memory embedding the items with CLIP: try %creative device cpu")


def _comparable(result):
    return bool(getattr(result, "images", None)) or (getattr(result, "kind", None) == "text" and bool(getattr(result, "text", "")))


def _vectors(task, clip, item, model):
    """An item's embeddings under `model`, computed once: kept on a result, or per folder file (path, size, mtime)."""
    import os

    if isinstance(item, str):  # a folder's file
        stat = os.stat(item)
        key = (item, stat.st_size, stat.st_mtime_ns, model)
        if key not in _FOLDER_EMBEDDINGS:
            if item.lower().endswith(task.TEXT_SUFFIXES):
                _FOLDER_EMBEDDINGS[key] = task.embed(clip, texts=[refs.text_file(item)])
            else:
                _FOLDER_EMBEDDINGS[key] = task.embed(clip, images=[refs.image(item, what="image")[0]])
        return _FOLDER_EMBEDDINGS[key]
    kept = getattr(item, "embeddings", None)
    if kept is None:
        kept = {}
        item.embeddings = kept
    if model not in kept:
        images = [image for image in (getattr(item, "images", None) or []) if image is not None]
        kept[model] = task.embed(clip, images=images) if images else task.embed(clip, texts=list(item.texts))
    return kept[model]


# -- for the panel: what a task would use, and making a call again -----------------------------------


def model_defaults(task, model=None):
    """{param: value} a `task` call would use with `model` before any flag or panel value: %config, the
    model's own settings (its model card, or a warm model's generation_config), the house's. Loads nothing."""
    from .errors import ModelNotAvailable

    session = current()
    configured = getattr(session.settings, f"{task}_defaults", {}) or {}
    model_layer = {}
    try:
        spec = session.resolve(task, model or configured.get("model"))
    except ModelNotAvailable:
        spec = None
    if spec is not None and task == "paint":
        from .tasks import paint as paint_task

        model_layer = paint_task.recommended(spec)
        model_layer.pop("img2img", None)
    elif spec is not None and task in ("story", "compose"):
        from .tasks import compose as compose_task
        from .tasks import story as story_task

        loaded = session.cache.loaded(spec)
        if loaded is not None:
            model_layer = (story_task if task == "story" else compose_task).model_defaults(loaded.model)
    values, _ = defaults.merge(("config", configured), ("model", model_layer), ("default", declared.of(task).house_defaults()))
    return values


TASKS = {"story": story, "paint": paint, "stylize": stylize, "compose": compose}

# The parameters' help, from their declarations, ends each function's docstring.
for _name, _function in {**TASKS, "finetune": finetune}.items():
    _function.__doc__ = _function.__doc__.rstrip() + "\n" + declared.of(_name).doc() + "\n"


def run_again(call, above=None, **callbacks):
    """Make `call` again with the defaults of now (the panel's, %config's); `above` holds values that win
    over the call's own (sliders moved since it ran)."""
    inputs = {name: value for name, value in call.inputs.items() if value is not None}
    return TASKS[call.task](
        **inputs, **callbacks, _given_as=call.source, _above=above, _namespace=call.namespace, _output=call.output, **call.given
    )
