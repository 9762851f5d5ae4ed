"""Music from a text description with MusicGen; MusicGen-melody also follows the chroma of a melody.

Generation runs through `model.generate`, so a seed and the recorded parameters give the same audio as a
plain call. A stopping criterion that never stops sees every step: it drives the progress bar and keeps
the codes generated so far, which Ctrl-C decodes into the partial piece. (transformers 5.23's MusicGen
`generate` does not pass a `streamer` on to its sampling loop, so a criterion is the dependable hook.)

Lengths: MusicGen writes one frame of codes a step (50 a second for the released models), each
codebook one step behind the previous one, so `seconds` take round(seconds x frame rate) frames plus
(codebooks per channel - 1) steps. The longest piece is what the decoder's positions allow.
"""

import math

from .. import defaults, params, seeds
from ..errors import CreativeError
from ..results import AudioResult
from . import generation_defaults, make_recipe, used_values

TASK = params.COMPOSE
# Used when neither the user, the panel, %config nor the model's generation_config give a value.
# top-k 250 and temperature 1 are audiocraft's defaults for MusicGen; guidance 3 is the released models'.
HOUSE_DEFAULTS = TASK.house_defaults()
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
    if values.get("temperature") == 0 and (values.get("n") or 1) > 1:
        raise CreativeError("temperature 0 (greedy) always gives the same music; drop -n or raise --temperature")


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


def decode_codes(model, ids, batch):
    """Audio (batch, channels, samples) from the raw ids of the sampling loop (batch x codebooks rows,
    the start token first), undelayed and decoded as `generate` does at its end. Used for the partial
    piece of a Ctrl-C; too few steps for one whole frame give no audio."""
    import torch

    decoder = model.decoder
    per_channel = codebooks_per_channel(model)
    length = ids.shape[-1]
    channels = decoder.config.audio_channels
    if length < 2 * per_channel - 1:
        return torch.zeros((batch, channels, 0))
    pad = model.generation_config.pad_token_id
    _, mask = decoder.build_delay_pattern_mask(ids[:, :1], pad_token_id=pad, max_length=length)
    codes = decoder.apply_delay_pattern_mask(ids, mask)
    codes = codes[codes != pad].reshape(batch, decoder.num_codebooks, -1)[None, ...]
    scales = [None] * batch
    if channels == 1:
        return model.audio_encoder.decode(codes, audio_scales=scales).audio_values
    left = model.audio_encoder.decode(codes[:, :, ::2, :], audio_scales=scales).audio_values
    right = model.audio_encoder.decode(codes[:, :, 1::2, :], audio_scales=scales).audio_values
    return torch.cat([left, right], dim=1)


def compose(music_model, description, values, sources=None, model_name="", melody=None, on_progress=None):
    """Compose from `description` with merged `values` (see PARAMS; None = not given). Returns an AudioResult.

    melody: (audio channels x samples, sample rate, label) from audio.load_melody, for melody models.
    on_progress(seconds_done, seconds_total) is called after every step (seconds of audio made).
    Ctrl-C stops within a step: the piece so far is decoded and returned with `interrupted=True`.
    """
    import torch

    description = description.strip()
    if not description:
        raise CreativeError("the description is empty: describe the music in the cell body")
    model = music_model.model
    values, sources = defaults.fill(values, sources, ("model", model_defaults(model)), ("default", HOUSE_DEFAULTS))
    values["n"] = int(values.get("n") or 1)
    check(values)
    seed = seeds.choose(values.get("seed"))
    if melody is not None and not is_melody_model(model):
        raise CreativeError(f"--melody needs a melody model such as musicgen-melody; {model_name or 'this model'} follows the description only")

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
    limit = max_frames(model, prefix)
    if frames > limit:
        most = math.floor(limit / rate * 10) / 10
        taken = f", less {prefix} for the melody and the description" if prefix else ""
        raise CreativeError(
            f"--seconds {values['seconds']:g} is beyond what {model_name or 'the model'} can make: at most {most:g} s "
            f"({model.decoder.config.max_position_embeddings} positions{taken}, at {rate} frames a second); use --seconds {most:g} or less"
        )
    device = model.device
    inputs = {k: v.to(device) for k, v in inputs.items()}
    if "input_features" in inputs:
        inputs["input_features"] = inputs["input_features"].to(model.dtype)
    kwargs = generate_kwargs(values, frames, per_channel)
    total = frames / rate

    def on_step(steps):
        on_progress(min(max(steps - (per_channel - 1), 0), frames) / rate, total)

    from transformers import StoppingCriteriaList

    watcher = _watcher_class()(on_step if on_progress is not None else None)
    interrupted = False
    output = None
    try:
        torch.manual_seed(seed)
        with torch.inference_mode():
            output = model.generate(**inputs, **kwargs, stopping_criteria=StoppingCriteriaList([watcher]))
    except KeyboardInterrupt:
        interrupted = True
    if output is None:
        with torch.inference_mode():
            output = decode_codes(model, watcher.ids, n) if watcher.ids is not None else torch.zeros((n, model.decoder.config.audio_channels, 0))
    audios = [piece.detach().to(device="cpu", dtype=torch.float32).numpy() for piece in output]

    recorded = [name for name in RECORDED if kwargs["do_sample"] or name != "top_k"] + ["n"]
    if melody is not None:
        values["melody"] = melody[2]
        recorded.append("melody")
    used, used_sources = used_values(values, sources, recorded)
    recipe = make_recipe("compose", model_name, seed, description, used, used_sources, interrupted)
    return AudioResult(
        audios=audios,
        sample_rate=int(model.config.audio_encoder.sampling_rate),
        recipe=recipe,
        prompt=description,
        interrupted=interrupted,
    )
