"""Stories and poems from a causal language model, streamed token by token.

Instruct models (with a chat template) get the prompt as a user message, after an optional system
message; base models continue the prompt. Sampling runs through `model.generate`, so a seed and the
recorded parameters reproduce the text exactly.
"""

import codecs
import time

from .. import defaults, params, seeds
from ..errors import CreativeError
from ..results import StoryResult
from . import context_length, generation_defaults, make_recipe, used_values

TASK = params.STORY
# Used when neither the user, the panel, %config nor the model's generation_config give a value.
HOUSE_DEFAULTS = TASK.house_defaults()
SAMPLING = ("temperature", "top_p", "top_k", "min_p")
# what a recipe records besides n, greedy and stop (greedy drops the sampling values)
RECORDED = SAMPLING + ("repetition_penalty", "no_repeat_ngram", "max_new_tokens", "min_new_tokens")
# our name -> transformers GenerationConfig name
GENERATE_NAMES = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "min_p": "min_p",
    "repetition_penalty": "repetition_penalty",
    "no_repeat_ngram": "no_repeat_ngram_size",
    "max_new_tokens": "max_new_tokens",
    "min_new_tokens": "min_new_tokens",
}
PARAMS = TASK.names
STREAM_INTERVAL_S = 0.05


def model_defaults(model):
    """The sampling values the model's own generation_config sets (those differing from the library's)."""
    return generation_defaults(model, GENERATE_NAMES)


def check(values):
    """One line for a value no model accepts: each against its declaration, then the rules between
    values. Values not given (None) pass."""
    TASK.check(values)
    low, high = values.get("min_new_tokens"), values.get("max_new_tokens")
    if low and high and low > high:
        raise CreativeError(f"--min-new-tokens ({low}) cannot exceed --max-new-tokens ({high})")
    if (values.get("greedy") or values.get("temperature") == 0) and (values.get("n") or 1) > 1:
        raise CreativeError("greedy decoding always gives the same text; drop -n or --greedy")


def stop_strings(stop):
    """Stop strings as typed on a magic line: `\\n` means a newline."""
    if stop is None:
        return []
    if isinstance(stop, str):
        stop = [stop]
    out = []
    for item in stop:
        text = codecs.decode(str(item), "unicode_escape") if "\\" in str(item) else str(item)
        if not text:
            raise CreativeError("a --stop string cannot be empty")
        out.append(text)
    return out


def encode(text_model, prompt, system):
    """Token ids for the model: a chat turn for instruct models, the plain prompt for base models."""
    tokenizer = text_model.tokenizer
    if text_model.is_chat:
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        encoded = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
        return dict(encoded)
    if system:
        raise CreativeError("--system needs an instruct model (one with a chat template); this is a base model that continues text")
    return dict(tokenizer(prompt, return_tensors="pt"))


def generate_kwargs(values, tokenizer):
    """The keyword arguments for `model.generate` that the recorded values stand for."""
    sample = not values["greedy"] and values["temperature"] > 0
    kwargs = {
        "do_sample": sample,
        "max_new_tokens": values["max_new_tokens"],
        "min_new_tokens": values["min_new_tokens"],
        "repetition_penalty": values["repetition_penalty"],
        "no_repeat_ngram_size": values["no_repeat_ngram"],
        "num_return_sequences": values["n"],
        "pad_token_id": tokenizer.pad_token_id,
    }
    if sample:
        kwargs.update(temperature=values["temperature"], top_p=values["top_p"], top_k=values["top_k"])
        if values["min_p"]:
            kwargs["min_p"] = values["min_p"]
    else:
        # Greedy: neutralise sampling values a model's generation_config may carry, so none warns.
        kwargs.update(temperature=None, top_p=None, top_k=None, min_p=None)
    if values["stop"]:
        kwargs.update(stop_strings=values["stop"], tokenizer=tokenizer)
    return kwargs


class _Collector:
    """A transformers streamer that keeps each sample's new tokens and reports the texts as they grow."""

    def __init__(self, tokenizer, n, on_text=None, shown_prompt=""):
        self.tokenizer = tokenizer
        self.tokens = [[] for _ in range(n)]
        self.done = [False] * n
        self.on_text = on_text
        self.shown_prompt = shown_prompt
        self.prompt_seen = False
        self.before = []  # a continuation: the story's tokens written before this call
        self.last_report = 0.0
        eos = tokenizer.eos_token_id
        self.eos = set(eos if isinstance(eos, list) else [eos]) - {None}

    def put(self, value):
        if not self.prompt_seen:  # generate() first hands over the prompt
            self.prompt_seen = True
            return
        for index, token in enumerate(value.reshape(-1).tolist()):
            if self.done[index]:
                continue
            self.tokens[index].append(token)
            if token in self.eos:
                self.done[index] = True
        if self.on_text is not None and time.monotonic() - self.last_report >= STREAM_INTERVAL_S:
            self.report()

    def end(self):
        pass

    def texts(self):
        return [self.tokenizer.decode(self.before + tokens, skip_special_tokens=True) for tokens in self.tokens]

    def report(self):
        self.last_report = time.monotonic()
        self.on_text(StoryResult(texts=self.texts(), recipe={}, shown_prompt=self.shown_prompt))


def add_eos_ids(model, tokenizer):
    """Chat models often end a turn with a token other than the tokenizer's eos; generation_config knows it."""
    ids = model.generation_config.eos_token_id
    return ids if ids is not None else tokenizer.eos_token_id


def cut_at_stops(text, stops):
    cut = min((text.find(s) for s in stops if s in text), default=-1)
    return text[:cut] if cut >= 0 else text


def write(text_model, prompt, values, sources=None, model_name="", on_text=None):
    """Generate from `prompt` with merged `values` (see params.STORY; None = not given). Returns a StoryResult.

    on_text(result) gets a partial StoryResult as the samples grow (streaming), at most every 50 ms.
    Ctrl-C stops within a token: the partial texts are returned with `interrupted=True`.
    """
    # 1. the prompt, and the values: the model's own defaults, then the house's
    prompt = prompt.strip("\n")
    if not prompt.strip():
        raise CreativeError("the prompt is empty: write it in the cell body")
    values, sources = _filled(text_model.model, values, sources)
    system = values.get("system") or None

    # 2. the tokens, within the model's context
    inputs = encode(text_model, prompt, system)
    shown_prompt = "" if text_model.is_chat else prompt

    # 3-4. generate (streamed; Ctrl-C keeps what was written), the recipe
    return _run(text_model, inputs, values, sources, model_name, on_text, shown_prompt, prompt, {"system": system})


def write_more(text_model, story, values, sources=None, model_name="", on_text=None):
    """%story continue: `story` (a StoryResult made here by a local model) written on from where it stopped.

    The context is the story's own tokens (base models: prompt and text; instruct models: the chat turn
    and the reply so far), so greedy decoding gives what one longer `generate` would have. The result is
    one text, the old and the new together; its recipe holds the story's recipe under "continues".
    """
    import torch

    ids = _ids_to_continue(story)
    values, sources = _filled(text_model.model, values, sources)
    values["n"] = 1
    inputs = {"input_ids": torch.tensor([ids]), "attention_mask": torch.ones(1, len(ids), dtype=torch.long)}
    more = {"system": story.recipe.get("system"), "continues": story.recipe}
    return _run(text_model, inputs, values, sources, model_name, on_text, story.shown_prompt, story.prompt, more,
                prompt_tokens=story.prompt_tokens)


def reply(text_model, messages, system, values, sources=None, model_name="", on_text=None, on_note=None):
    """%%story --chat: the model's reply to `messages` (user and assistant turns, the last one the user's)
    after `system`. When they would overflow the model's context, the oldest turns are left out (the
    system message and the latest turn always stay) and on_note says so in one line."""
    if not text_model.is_chat:
        raise CreativeError(
            f"--chat needs an instruct model (one with a chat template); {model_name or 'this model'} is a base model that "
            "continues text: use an instruct model, e.g. -m smollm2"
        )
    values, sources = _filled(text_model.model, values, sources)
    values["n"] = 1
    sent, left_out = fit_chat(text_model, messages, system, values["max_new_tokens"])
    if left_out and on_note is not None:
        on_note(
            f"The chat is longer than {model_name or 'the model'}'s context: its oldest {left_out} message"
            f"{'s are' if left_out > 1 else ' is'} left out of this reply (the system message is kept)."
        )
    inputs = chat_inputs(text_model.tokenizer, sent, system)
    more = {"system": system, "messages": [dict(m) for m in sent]}
    if left_out:
        more["left_out"] = left_out
    return _run(text_model, inputs, values, sources, model_name, on_text, "", sent[-1]["content"], more)


def chat_inputs(tokenizer, messages, system):
    """The token ids of `messages` after `system`, as the chat template lays them out, ready for the reply."""
    full = ([{"role": "system", "content": system}] if system else []) + [{"role": m["role"], "content": m["content"]} for m in messages]
    return dict(tokenizer.apply_chat_template(full, add_generation_prompt=True, return_tensors="pt", return_dict=True))


def fit_chat(text_model, messages, system, max_new_tokens):
    """(the messages to send, how many of the oldest were left out) so that they and the reply fit the
    model's context; a conversation is cut before a user turn, and the latest turn always stays."""
    context = context_length(text_model.model)
    if not context:
        return list(messages), 0
    starts = [i for i, m in enumerate(messages) if m["role"] == "user"] or [0]
    for start in starts:
        sent = list(messages[start:])
        if chat_inputs(text_model.tokenizer, sent, system)["input_ids"].shape[1] + max_new_tokens <= context:
            return sent, start
    return list(messages[starts[-1]:]), starts[-1]  # the latest turn alone: check_context says what to do


def _filled(model, values, sources):
    """The values with the model's own defaults and the house's filled in, checked."""
    values, sources = defaults.fill(values, sources, ("model", model_defaults(model)), ("default", HOUSE_DEFAULTS))
    values.update(n=int(values.get("n") or 1), greedy=bool(values.get("greedy")), stop=stop_strings(values.get("stop")))
    check(values)
    return values, sources


def _ids_to_continue(story):
    """The token ids of the story's first sample, prompt included, without a closing end-of-text token."""
    if not getattr(story, "ids", None):
        raise CreativeError("this story has no tokens to continue from (it was written by a remote model): %story continue needs a local model's story")
    return list(story.ids[0])


def _run(text_model, inputs, values, sources, model_name, on_text, shown_prompt, prompt, more, prompt_tokens=None):
    """Steps 3-4 of every local call: generate from `inputs`, then the result and its recipe. `prompt_tokens`
    is where the story's text starts (a continuation's context holds text already written)."""
    model, tokenizer = text_model.model, text_model.tokenizer
    seed = seeds.choose(values.get("seed"))
    context_tokens = inputs["input_ids"].shape[1]
    check_context(model, context_tokens, values["max_new_tokens"])
    kwargs = generate_kwargs(values, tokenizer)
    stream = on_text if values.get("stream", True) is not False else None
    start = context_tokens if prompt_tokens is None else prompt_tokens
    run = _generate(model, tokenizer, inputs, kwargs, values, seed, stream, shown_prompt, start, bool(values.get("show_probs")))
    values["greedy"] = not kwargs["do_sample"]
    recorded = [name for name in RECORDED if kwargs["do_sample"] or name not in SAMPLING]
    fast = ["compile"] if values.get("compile") else []  # --compile: the recipe re-runs on the compiled copy
    used, used_sources = used_values(values, sources, recorded + ["n", "greedy", "stop"] + fast)
    system = more.pop("system", None)
    recipe = make_recipe("story", model_name, seed, prompt, used, used_sources, run.interrupted, system=system, **more)
    return StoryResult(
        texts=run.texts, recipe=recipe, prompt=prompt, shown_prompt=shown_prompt, interrupted=run.interrupted, ids=run.ids,
        prompt_tokens=start, token_lists=run.tokens,
    )


def check_context(model, prompt_tokens, max_new_tokens):
    context = context_length(model)
    if context and prompt_tokens + max_new_tokens > context:
        room = context - prompt_tokens
        hint = f"use --max-new-tokens {room} or less" if room > 0 else "shorten the prompt"
        raise CreativeError(
            f"max-new-tokens {max_new_tokens} is beyond the model's context: the prompt takes {prompt_tokens} "
            f"of its {context} tokens; {hint}"
        )


class _Run:
    """What one `generate` gave: the texts, each sample's token ids (context included), and with
    --show-probs each token's probability and top alternatives."""

    def __init__(self, texts, interrupted, ids, tokens):
        self.texts, self.interrupted, self.ids, self.tokens = texts, interrupted, ids, tokens


TOP_ALTERNATIVES = 5


def _generate(model, tokenizer, inputs, kwargs, values, seed, on_text, shown_prompt, start, show_probs=False):
    """A _Run of `model.generate` with a streamer that keeps each sample's tokens. The text of a sample is
    its tokens from `start` on (a continuation's context already holds some of it)."""
    import torch

    inputs = {k: v.to(model.device) for k, v in inputs.items()}
    context = inputs["input_ids"].shape[1]
    collector = _Collector(tokenizer, values["n"], on_text, shown_prompt)
    if start < context:
        collector.before = inputs["input_ids"][0, start:].tolist()
    collector.eos = set(_as_list(add_eos_ids(model, tokenizer))) - {None}
    output = None
    extra = {"return_dict_in_generate": True, "output_logits": True} if show_probs else {}
    try:
        torch.manual_seed(seed)
        with torch.inference_mode():
            output = model.generate(**inputs, **kwargs, **extra, streamer=collector)
    except KeyboardInterrupt:
        pass
    head = inputs["input_ids"][0].tolist()
    logits = None
    if output is not None:
        sequences = output.sequences if show_probs else output
        new = [_until_eos(row[context:].tolist(), collector.eos) for row in sequences]
        logits = output.logits if show_probs else None
    else:
        new = [list(tokens) for tokens in collector.tokens]
        new = [_until_eos(tokens, collector.eos) for tokens in new]
    ids = [head + tokens for tokens in new]
    texts = [tokenizer.decode(row[start:], skip_special_tokens=True) for row in ids]
    texts = [cut_at_stops(text, values["stop"]) for text in texts]
    tokens = None
    if show_probs and logits is not None:
        tokens = [_token_probs(tokenizer, new[i], [step[i] for step in logits[: len(new[i])]]) for i in range(len(new))]
    return _Run(texts, output is None, ids, tokens)


def _until_eos(tokens, eos):
    for index, token in enumerate(tokens):
        if token in eos:
            return tokens[:index]
    return tokens


def _token_probs(tokenizer, tokens, logits):
    """[(text, prob, [(alternative, prob), ...])] of each new token: its probability under the model (softmax
    of the raw logits, before temperature or top-k) and the TOP_ALTERNATIVES most likely tokens there."""
    import torch

    out = []
    if not tokens:
        return out
    probs = torch.softmax(torch.stack([step.float() for step in logits]), dim=-1)
    chosen = probs[torch.arange(len(tokens)), torch.tensor(tokens)].tolist()
    top = torch.topk(probs, min(TOP_ALTERNATIVES, probs.shape[-1]), dim=-1)
    pieces = _pieces(tokenizer, tokens)
    names = {}
    for index, token in enumerate(tokens):
        alternatives = []
        for alt, p in zip(top.indices[index].tolist(), top.values[index].tolist()):
            if alt not in names:
                names[alt] = tokenizer.decode([alt], skip_special_tokens=False)
            alternatives.append((names[alt], p))
        out.append((pieces[index], chosen[index], alternatives))
    return out


def _pieces(tokenizer, tokens):
    """The text each token adds (decoded in context, so characters split over several tokens come out whole on
    the last of them); the pieces add up to the decoded text."""
    pieces, before = [], ""
    for index in range(len(tokens)):
        text = tokenizer.decode(tokens[: index + 1], skip_special_tokens=True)
        if text.endswith("\ufffd"):  # a character not yet complete
            pieces.append("")
            continue
        pieces.append(text[len(before):] if text.startswith(before) else text)
        before = text
    return pieces


def _as_list(value):
    return value if isinstance(value, (list, tuple)) else [value]


# -- remote models: an OpenAI-compatible server's chat/completions or completions --------------------

# Values the request is built from by hand (the rest map one to one onto the API's fields).
REMOTE_BY_HAND = ("model", "system", "stream", "greedy", "stop", "n", "seed", "api")
REMOTE_DEFAULTS = {name: value for name, value in HOUSE_DEFAULTS.items() if TASK[name].remote}


def remote_request(values, extras=()):
    """(the API's fields, the fields beyond OpenAI's API) that the recorded values stand for."""
    fields, beyond = {}, {}
    standard = {p.name for p in TASK.params if p.remote}
    for name, field in TASK.remote_fields(extras).items():
        if name in REMOTE_BY_HAND or values.get(name) is None:
            continue
        if values["greedy"] and name in SAMPLING:
            continue
        (fields if name in standard else beyond)[field] = values[name]
    if values["greedy"]:
        fields["temperature"] = 0
    if values["stop"]:
        fields["stop"] = values["stop"]
    return fields, beyond


class _RemoteSamples:
    """The samples of a remote call as they arrive, reported at most every 50 ms; a sample is done at
    the end of its choice or at one of the stop strings (the text is cut there)."""

    def __init__(self, n, stops, on_text, shown_prompt):
        self.texts = [""] * n
        self.stopped = [False] * n
        self.stops = stops
        self.on_text = on_text
        self.shown_prompt = shown_prompt
        self.last_report = 0.0

    def add(self, slot, text):
        if slot >= len(self.texts) or self.stopped[slot] or not text:
            return
        self.texts[slot] += text
        if self.stops and any(s in self.texts[slot] for s in self.stops):
            self.texts[slot] = cut_at_stops(self.texts[slot], self.stops)
            self.stopped[slot] = True
        if self.on_text is not None and time.monotonic() - self.last_report >= STREAM_INTERVAL_S:
            self.last_report = time.monotonic()
            self.on_text(StoryResult(texts=list(self.texts), recipe={}, shown_prompt=self.shown_prompt))

    def all_stopped(self, slots):
        return all(self.stopped[slot] for slot in slots if slot < len(self.stopped))


def write_remote(connection, prompt, values, sources=None, model_name="", on_text=None, on_note=None, messages=None):
    """Generate from `prompt` on a remote server (`connection`, see remote.Connection) with merged values
    that the server can use (tasks.usable); returns a StoryResult whose recipe names the endpoint and model.

    chat/completions (the prompt as the user's turn after --system) or completions (the text continues),
    streamed into on_text. A server that gives fewer samples per request than -n asks for (Ollama and
    `transformers serve` give one) is asked again, with seed + 1, ... for the others, and on_note says so.
    Ctrl-C keeps the text so far and closes the stream. `messages` (a chat's turns, the last the user's)
    are sent instead of the prompt as one turn.
    """
    # 1. the prompt and the values: the house's where nothing else gave one
    prompt = prompt.strip("\n")
    if not prompt.strip():
        raise CreativeError("the prompt is empty: write it in the cell body")
    point = connection.endpoint
    values, sources = defaults.fill(values, sources, ("endpoint", {"api": point.api}), ("default", REMOTE_DEFAULTS))
    values.update(n=int(values.get("n") or 1), greedy=bool(values.get("greedy")), stop=stop_strings(values.get("stop")))
    if values.get("temperature") == 0:
        values["greedy"] = True
    check(values)
    seed = seeds.choose(values.get("seed"))
    system = values.get("system") or None
    api = values["api"]
    if system and api == "completions":
        raise CreativeError("--system needs chat/completions (--api chat); completions continue the text as it is")
    if messages is not None and api == "completions":
        raise CreativeError("--chat needs chat/completions (--api chat); completions continue a text, they hold no conversation")
    fields, beyond = remote_request(values, point.extra_params)
    stream = values.get("stream", True) is not False
    shown_prompt = prompt if api == "completions" else ""
    samples = _RemoteSamples(values["n"], values["stop"], on_text if stream else None, shown_prompt)

    # 2. requests until there are n samples; Ctrl-C keeps what was written
    requests, interrupted, filled = 0, False, 0
    try:
        while filled < values["n"]:
            want = values["n"] - filled
            got = _remote_request(connection, api, prompt, system, fields, beyond, want, seed + filled, stream, samples, filled, messages)
            requests += 1
            if got == 0:
                raise CreativeError(connection.malformed(api, "no choices"))
            filled += min(got, want)
    except KeyboardInterrupt:
        interrupted = True
    if requests > 1 and on_note is not None:
        on_note(f"{model_name} gave fewer samples per request than -n {values['n']}: {requests} requests made them, with seeds {seed}-{seed + requests - 1}.")

    # 3. the recipe: what was sent, the endpoint and model, never the key
    recorded = ["temperature", "top_p", "max_new_tokens", "presence_penalty", "frequency_penalty"]
    recorded += [name for name in TASK.remote_fields(point.extra_params) if TASK[name].remote_extra and not TASK[name].remote]
    recorded = [name for name in recorded if values.get(name) is not None and not (values["greedy"] and name in SAMPLING)]
    used, used_sources = used_values(values, sources, recorded + ["n", "greedy", "stop", "api"])
    recipe = {
        "task": "story",
        "model": model_name,
        "endpoint": point.name,
        "remote_model": connection.model,
        "seed": seed,
        "prompt": prompt,
        "system": system,
        **({"messages": [dict(m) for m in messages]} if messages is not None else {}),
        "params": used,
        "sources": used_sources,
    }
    if interrupted:
        recipe["interrupted"] = True
    return StoryResult(texts=list(samples.texts), recipe=recipe, prompt=prompt, shown_prompt=shown_prompt, interrupted=interrupted)


def _remote_request(connection, api, prompt, system, fields, beyond, n, seed, stream, samples, first_slot, messages=None):
    """One request for `n` samples into samples[first_slot:]; returns how many choices the server gave."""
    body = dict(fields, seed=seed, model=connection.model, stream=stream)
    if n > 1:
        body["n"] = n
    if beyond:
        body["extra_body"] = dict(beyond)
    if api == "chat":
        turns = messages if messages is not None else [{"role": "user", "content": prompt}]
        body["messages"] = ([{"role": "system", "content": system}] if system else []) + [dict(m) for m in turns]
        send = lambda client, auth: client.chat.completions.create(**body, **auth)
        what = "chat/completions"
    else:
        body["prompt"] = prompt
        send = lambda client, auth: client.completions.create(**body, **auth)
        what = "completions"
    answer = connection.request(what, send)
    if not stream:
        choices = _choices(answer, connection, what)
        for position, choice in enumerate(choices):
            samples.add(first_slot + _index(choice, position), _choice_text(choice, api, streamed=False) or "")
        return len(choices)
    seen = set()
    chunks = 0
    stream_of = connection.chunks(answer, what)
    try:
        for chunk in stream_of:
            chunks += 1
            for position, choice in enumerate(_choices(chunk, connection, what, allow_empty=True)):
                index = _index(choice, position)
                seen.add(index)
                samples.add(first_slot + index, _choice_text(choice, api, streamed=True) or "")
            if seen and samples.all_stopped([first_slot + i for i in seen]):
                break  # every sample reached a stop string: close the stream, the server stops writing
    finally:
        stream_of.close()
    if chunks == 0:
        raise CreativeError(connection.malformed(what, "an empty stream"))
    return len(seen) if seen else 1


def _choices(answer, connection, what, allow_empty=False):
    choices = getattr(answer, "choices", None)
    if isinstance(answer, (str, bytes)) or not isinstance(choices, list) or (not choices and not allow_empty):
        raise CreativeError(connection.malformed(what))
    return choices


def _index(choice, position):
    index = getattr(choice, "index", None)
    return index if isinstance(index, int) and index >= 0 else position


def _choice_text(choice, api, streamed):
    if api == "completions":
        return getattr(choice, "text", None)
    part = getattr(choice, "delta" if streamed else "message", None)
    return getattr(part, "content", None)
