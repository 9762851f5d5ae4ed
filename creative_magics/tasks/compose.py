"""Music from a text description with MusicGen; MusicGen-melody also follows the chroma of a melody.

Generation runs through `model.generate`, so a seed and the recorded parameters give the same audio as a
plain call. A stopping criterion that never stops sees every step: it drives the progress bar and keeps
the codes generated so far, which Ctrl-C decodes into the partial piece. (transformers 5.23's MusicGen
`generate` does not pass a `streamer` on to its sampling loop, so a criterion is the dependable hook.)

Lengths: MusicGen writes one frame of codes a step (50 a second for the released models), each
codebook one step behind the previous one, so `seconds` take round(seconds x frame rate) frames plus
(codebooks per channel - 1) steps.

Longer pieces and continuations (as audiocraft makes them): the released models learned 30 s pieces,
so a longer one is made window after window, each next window continuing from the last `overlap`
seconds of codes made so far (passed to `generate` as `decoder_input_ids`, which keeps them as they
are). `continue_from` audio is encoded by the model's own codec into the codes the first window
continues. The codes of the whole piece are decoded once at the end, so windows leave no seams; the
result starts with the continued audio as the codec gives it back. Melody models follow their melody
for one window, so they make one window, up to what their positions allow.
"""

import math

from .. import defaults, params, seeds
from ..errors import CreativeError
from ..results import AudioResult
from . import generation_defaults, make_recipe, used_values

TASK = params.COMPOSE
MODE = "audio"
# Used when neither the user, the panel, %config nor the model's generation_config give a value.
# top-k 250 and temperature 1 are audiocraft's defaults for MusicGen; guidance 3 is the released models'.
HOUSE_DEFAULTS = {p.name: p.default for p in TASK.params if p.default is not None and (not p.methods or MODE in p.methods)}
WINDOW_SECONDS = 30.0  # what the released models were trained on; audiocraft's max_duration
# our name -> transformers GenerationConfig name
GENERATE_NAMES = {"guidance": "guidance_scale", "temperature": "temperature", "top_k": "top_k"}
RECORDED = ("seconds", "guidance", "temperature", "top_k")
PARAMS = TASK.names


def model_defaults(model):
    """The sampling values the model's own generation_config sets (those differing from the library's)."""
    return generation_defaults(model, GENERATE_NAMES)


def check(values):
    """One line for a value no model accepts: each against its declaration, then the rules between
    values. Values not given (None) pass."""
    TASK.check(values)
    check_length(values)
    if values.get("temperature") == 0 and (values.get("n") or 1) > 1:
        raise CreativeError("temperature 0 (greedy) always gives the same music; drop -n or raise --temperature")
    if values.get("melody") is not None and values.get("continue_from") is not None:
        raise CreativeError(
            "--continue and --melody cannot go together: a melody model follows its melody for one window only; "
            "continue with musicgen-small, -medium or -large, without --melody"
        )


def check_length(values):
    """The hard cap of a piece, audio or MIDI: a longer one would take hours and more memory than a GPU has."""
    seconds = values.get("seconds")
    if seconds is not None and seconds > params.MAX_MUSIC_SECONDS:
        raise CreativeError(
            f"--seconds {seconds:g} is beyond the longest piece %%compose makes, {params.MAX_MUSIC_SECONDS:g} s (5 minutes): "
            "ask for less, then continue it with --continue (audio) or --prompt-midi (MIDI)"
        )


def is_melody_model(model):
    return getattr(model.config, "model_type", "") == "musicgen_melody"


def codebooks_per_channel(model):
    decoder = model.decoder.config
    return decoder.num_codebooks // decoder.audio_channels


def frame_rate(model):
    return model.config.audio_encoder.frame_rate


def frames_for(seconds, rate, per_channel=1):
    """Frames for `seconds`; at least one per codebook, the shortest piece MusicGen's delay pattern makes."""
    return max(per_channel, int(round(seconds * rate)))


def max_frames(model, prefix_positions=0):
    """The most frames the decoder's positions hold, after a conditioning prefix (melody models put
    the chroma and the text in front of the audio codes)."""
    positions = model.decoder.config.max_position_embeddings
    return positions - 1 - prefix_positions - (codebooks_per_channel(model) - 1)


def generate_kwargs(values, frames, per_channel):
    """The keyword arguments for `model.generate` that the recorded values stand for."""
    sample = values["temperature"] > 0
    kwargs = {
        "do_sample": sample,
        # MusicGen guides only above 1; below, transformers would pick a text-model guidance that breaks it
        "guidance_scale": values["guidance"] if values["guidance"] > 1 else 1.0,
        "max_new_tokens": frames + per_channel - 1,
    }
    if sample:
        kwargs.update(temperature=values["temperature"], top_k=int(values["top_k"]))
    else:
        kwargs.update(temperature=None, top_k=None)  # greedy: neutralise a generation_config's sampling values
    return kwargs


def melody_features(music_model, melody):
    """The (1, frames, chroma) input features of a melody: transformers' feature extractor where it can be
    built, else the same computation in creative_magics.audio."""
    from .. import audio

    samples, sample_rate, _ = melody
    processor = music_model.processor
    if processor is not None and hasattr(processor, "feature_extractor"):
        mono = samples.mean(axis=0)
        return processor.feature_extractor(mono, sampling_rate=sample_rate, return_tensors="pt")["input_features"]
    return audio.melody_chroma(samples, sample_rate, music_model.melody_features or {})


def _watcher_class():
    from transformers import StoppingCriteria

    class StepWatcher(StoppingCriteria):
        """Never stops generation; keeps the latest ids and reports each step."""

        def __init__(self, on_step=None):
            self.ids = None
            self.steps = 0
            self.on_step = on_step
            self._never = None

        def __call__(self, input_ids, scores, **kwargs):
            import torch

            self.ids = input_ids
            self.steps += 1
            if self.on_step is not None:
                self.on_step(self.steps)
            if self._never is None or self._never.shape[0] != input_ids.shape[0]:
                self._never = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
            return self._never

    return StepWatcher


def undelay(model, ids, batch, context=None):
    """The codes (batch, codebooks, frames) in the raw ids of the sampling loop (batch x codebooks rows,
    the start token first, then `context` frames if the window continued some), undelayed as `generate`
    does at its end. Only whole frames: a loop stopped mid-frame gives the frames every codebook reached."""
    import torch

    decoder = model.decoder
    codebooks = decoder.num_codebooks
    length = ids.shape[-1]
    if length < 2 * codebooks_per_channel(model) - 1:
        return context if context is not None else torch.zeros((batch, codebooks, 0), dtype=torch.long, device=ids.device)
    start, pad = model.generation_config.decoder_start_token_id, model.generation_config.pad_token_id
    prefix = ids[:, :1] if context is None else torch.cat([ids[:, :1], context.reshape(batch * codebooks, -1).to(ids.device)], dim=1)
    _, mask = decoder.build_delay_pattern_mask(prefix, pad_token_id=start, max_length=length)
    codes = decoder.apply_delay_pattern_mask(ids, mask)
    return codes[codes != pad].reshape(batch, codebooks, -1)


def decode(model, codes):
    """Audio (batch, channels, samples) of codes (batch, codebooks, frames), as `generate` decodes them."""
    import torch

    batch = codes.shape[0]
    channels = model.decoder.config.audio_channels
    codes = codes[None, ...]
    scales = [None] * batch
    if channels == 1:
        return model.audio_encoder.decode(codes, audio_scales=scales).audio_values
    left = model.audio_encoder.decode(codes[:, :, ::2, :], audio_scales=scales).audio_values
    right = model.audio_encoder.decode(codes[:, :, 1::2, :], audio_scales=scales).audio_values
    return torch.cat([left, right], dim=1)


def decode_codes(model, ids, batch):
    """Audio (batch, channels, samples) from the raw ids of the sampling loop, undelayed and decoded as
    `generate` does at its end. Used for the partial piece of a Ctrl-C; too few steps for one whole
    frame give no audio."""
    import torch

    codes = undelay(model, ids, batch)
    if codes.shape[-1] == 0:
        return torch.zeros((batch, model.decoder.config.audio_channels, 0))
    return decode(model, codes)


def encode(model, continuation):
    """The codes (1, codebooks, frames) of the audio to continue, by the model's own codec: resampled to its
    rate, mixed to its channels, cut to whole frames. Too short for one frame is one line."""
    import numpy as np
    import torch

    from .. import audio

    samples, sample_rate, label = continuation
    target = int(model.config.audio_encoder.sampling_rate)
    hop = int(round(target / frame_rate(model)))
    channels = model.decoder.config.audio_channels
    samples = audio.resample_band_limited(samples, sample_rate, target)
    if channels == 1:
        samples = samples.mean(axis=0, keepdims=True)
    elif samples.shape[0] != 2:
        samples = np.repeat(samples[:1], 2, axis=0)
    usable = samples.shape[-1] // hop * hop
    if usable == 0:
        raise CreativeError(f"the audio to continue, {label}, is shorter than one frame of the model ({hop / target * 1000:.0f} ms)")
    values = torch.from_numpy(np.ascontiguousarray(samples[None, :, :usable])).to(device=model.device, dtype=model.dtype)
    encoder = model.audio_encoder
    mask = torch.ones((1, usable), dtype=torch.long, device=model.device)
    if channels == 1:
        return encoder.encode(values, padding_mask=mask).audio_codes[0]
    left = encoder.encode(values[:, :1], padding_mask=mask).audio_codes[0]
    right = encoder.encode(values[:, 1:], padding_mask=mask).audio_codes[0]
    codes = left.new_zeros((1, 2 * left.shape[1], left.shape[2]))
    codes[:, ::2], codes[:, 1::2] = left, right
    return codes


def window_frames(model):
    """The frames of one window: the 30 s the released models learned, or fewer where positions run out."""
    return min(frames_for(WINDOW_SECONDS, frame_rate(model)), max_frames(model))


def compose(music_model, description, values, sources=None, model_name="", melody=None, continuation=None, on_progress=None):
    """Compose from `description` with merged `values` (see PARAMS; None = not given). Returns an AudioResult.

    melody: (audio channels x samples, sample rate, label) from audio.load_melody, for melody models.
    continuation: the same for the audio to continue (--continue); `seconds` more are made after it.
    on_progress(seconds_done, seconds_total) is called after every step (seconds of new audio made).
    Ctrl-C stops within a step: the piece so far is decoded and returned with `interrupted=True`.
    """
    import torch

    # 1. values
    description = description.strip()
    if not description:
        raise CreativeError("the description is empty: describe the music in the cell body")
    model = music_model.model
    values, sources = defaults.fill(values, sources, ("model", model_defaults(model)), ("default", HOUSE_DEFAULTS))
    values["n"] = int(values.get("n") or 1)
    check(values)
    seed = seeds.choose(values.get("seed"))
    called = model_name or "this model"
    if melody is not None and not is_melody_model(model):
        raise CreativeError(f"--melody needs a melody model such as musicgen-melody; {called} follows the description only")
    if continuation is not None and is_melody_model(model):
        raise CreativeError(f"--continue needs a MusicGen model without melody (musicgen-small, -medium or -large); {called} is a melody model")

    # 2. the inputs and the length
    tokenizer = music_model.tokenizer if music_model.tokenizer is not None else music_model.processor.tokenizer
    n = values["n"]
    inputs = dict(tokenizer([description] * n, padding=True, return_tensors="pt"))
    prefix = 0
    if is_melody_model(model):
        prefix = model.config.chroma_length + inputs["input_ids"].shape[1]
        if melody is not None:
            inputs["input_features"] = melody_features(music_model, melody).repeat(n, 1, 1)
    rate = frame_rate(model)
    per_channel = codebooks_per_channel(model)
    frames = frames_for(values["seconds"], rate, per_channel)
    if is_melody_model(model):
        limit = max_frames(model, prefix)
        if frames > limit:
            most = math.floor(limit / rate * 10) / 10
            raise CreativeError(
                f"--seconds {values['seconds']:g} is beyond what {model_name or 'the model'} can make: at most {most:g} s "
                f"({model.decoder.config.max_position_embeddings} positions, less {prefix} for the melody and the description, "
                f"at {rate} frames a second); use --seconds {most:g} or less"
            )
    window = limit if is_melody_model(model) else window_frames(model)
    overlap = frames_for(values["overlap"], rate)
    windowed = continuation is not None or frames > window
    if windowed and overlap >= window:
        raise CreativeError(f"--overlap {values['overlap']:g} is not shorter than {called}'s window of {window / rate:g} s; use a smaller --overlap")
    device = model.device
    inputs = {k: v.to(device) for k, v in inputs.items()}
    if "input_features" in inputs:
        inputs["input_features"] = inputs["input_features"].to(model.dtype)

    # 3. run: one window as one plain `generate`, or window after window
    torch.manual_seed(seed)
    prompt = None
    if windowed:
        if continuation is not None:
            with torch.inference_mode():
                prompt = encode(model, continuation).repeat(n, 1, 1)
        output, interrupted = _windows(model, inputs, values, frames, window, overlap, prompt, on_progress)
    else:
        output, interrupted = _one_window(model, inputs, values, frames, on_progress)
    audios = [piece.detach().to(device="cpu", dtype=torch.float32).numpy() for piece in output]

    # 4. the recipe
    recorded = [name for name in RECORDED if values["temperature"] > 0 or name != "top_k"] + ["n"]
    if melody is not None:
        values["melody"] = melody[2]
        recorded.append("melody")
    if continuation is not None:
        values["continue_from"] = continuation[2]
        recorded.append("continue_from")
    if windowed:
        recorded.append("overlap")
    if values.get("compile"):
        recorded.append("compile")
    used, used_sources = used_values(values, sources, recorded)
    recipe = make_recipe("compose", model_name, seed, description, used, used_sources, interrupted)
    return AudioResult(
        audios=audios,
        sample_rate=int(model.config.audio_encoder.sampling_rate),
        recipe=recipe,
        prompt=description,
        interrupted=interrupted,
        prompt_seconds=prompt.shape[-1] / rate if windowed and prompt is not None else 0.0,
    )


def _one_window(model, inputs, values, frames, on_progress):
    """(audio, interrupted): one `generate` call, its own decoded output (or the codes so far after Ctrl-C)."""
    import torch
    from transformers import StoppingCriteriaList

    per_channel = codebooks_per_channel(model)
    kwargs = generate_kwargs(values, frames, per_channel)
    rate, total = frame_rate(model), frames / frame_rate(model)

    def on_step(steps):
        on_progress(min(max(steps - (per_channel - 1), 0), frames) / rate, total)

    watcher = _watcher_class()(on_step if on_progress is not None else None)
    n = values["n"]
    try:
        with torch.inference_mode():
            return model.generate(**inputs, **kwargs, stopping_criteria=StoppingCriteriaList([watcher])), False
    except KeyboardInterrupt:
        pass
    with torch.inference_mode():
        if watcher.ids is None:
            return torch.zeros((n, model.decoder.config.audio_channels, 0)), True
        return decode_codes(model, watcher.ids, n), True


def _windows(model, inputs, values, frames, window, overlap, prompt, on_progress):
    """(audio, interrupted) of `frames` new frames made window after window, each continuing from the last
    `overlap` frames of the codes so far (the prompt's, then its own); decoded once at the end."""
    import torch
    from transformers import StoppingCriteriaList

    per_channel = codebooks_per_channel(model)
    rate, total, n = frame_rate(model), frames / frame_rate(model), values["n"]
    codes, made, interrupted = prompt, 0, False
    while made < frames and not interrupted:
        context = codes[..., -overlap:] if codes is not None else None
        given = 0 if context is None else context.shape[-1]
        new = min(window - given, frames - made)

        def on_step(steps, made=made, new=new):
            on_progress((made + min(max(steps - (per_channel - 1), 0), new)) / rate, total)

        watcher = _watcher_class()(on_step if on_progress is not None else None)
        extra = {} if context is None else {"decoder_input_ids": context.reshape(n * context.shape[1], given)}
        try:
            with torch.inference_mode():
                model.generate(**inputs, **generate_kwargs(values, new, per_channel), **extra, stopping_criteria=StoppingCriteriaList([watcher]))
        except KeyboardInterrupt:
            interrupted = True
        if watcher.ids is None:
            break
        with torch.inference_mode():
            window_codes = undelay(model, watcher.ids, n, context)
        fresh = window_codes[..., given:]
        codes = fresh if codes is None else torch.cat([codes, fresh.to(codes.device)], dim=-1)
        made += fresh.shape[-1]
        if fresh.shape[-1] == 0:
            break
    with torch.inference_mode():
        if codes is None or codes.shape[-1] == 0:
            return torch.zeros((n, model.decoder.config.audio_channels, 0)), interrupted
        return decode(model, codes), interrupted
