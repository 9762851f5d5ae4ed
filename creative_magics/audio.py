"""Audio in and out: WAV files with the recipe inside (and the recipes of MIDI files), a melody's chroma,
resampling, the player and the picture.

WAV is read and written here with the standard library (`struct`), because the `wave` module reads and
writes integer PCM only: we also write 32-bit float, read the float files other tools make, and keep
the recipe in the file as a RIFF INFO chunk (ICMT, JSON), where players show it as the comment.
numpy, torch and matplotlib are imported inside the functions.
"""

import io
import json
import os
import struct

from .errors import CreativeError

MAX_MELODY_BYTES = 200 * 2**20  # a melody file larger than this is refused (about 20 minutes of CD audio)
SOFTWARE = "creative_magics"
_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE


# -- writing -------------------------------------------------------------------------------


def wav_bytes(audio, sample_rate, recipe=None, float32=False, title=None):
    """A WAV file of `audio` (channels x samples, floats in [-1, 1]) as bytes: 16-bit PCM (clipped to
    [-1, 1]) or 32-bit float, with the recipe as JSON in a LIST/INFO ICMT chunk and `title` as INAM."""
    import numpy as np

    samples = _channels_first(audio)
    channels = samples.shape[0]
    interleaved = samples.T.reshape(-1)
    if float32:
        data = interleaved.astype("<f4").tobytes()
        fmt = struct.pack("<HHIIHHH", _FLOAT, channels, sample_rate, sample_rate * channels * 4, channels * 4, 32, 0)
        fact = _chunk(b"fact", struct.pack("<I", samples.shape[1]))
    else:
        pcm = np.round(np.clip(interleaved, -1.0, 1.0) * 32767.0).astype("<i2")
        data = pcm.tobytes()
        fmt = struct.pack("<HHIIHH", _PCM, channels, sample_rate, sample_rate * channels * 2, channels * 2, 16)
        fact = b""
    info = [(b"ISFT", SOFTWARE)]
    if title:
        info.append((b"INAM", " ".join(str(title).split())[:200]))
    if recipe is not None:
        info.append((b"ICMT", json.dumps(recipe, ensure_ascii=False, sort_keys=True, default=str)))
    listed = b"INFO" + b"".join(_chunk(key, value.encode("utf-8") + b"\0") for key, value in info)
    body = b"WAVE" + _chunk(b"fmt ", fmt) + fact + _chunk(b"data", data) + _chunk(b"LIST", listed)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def write_wav(path, audio, sample_rate, recipe=None, float32=False, title=None):
    """Write `audio` to `path` as WAV (see wav_bytes). Returns the path. Raises CreativeError, one line."""
    data = wav_bytes(audio, sample_rate, recipe=recipe, float32=float32, title=title)
    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError as err:
        raise CreativeError(f"cannot write {os.fspath(path)!r}: {err.strerror or err}") from None
    return path


def check_wav_path(path):
    """Check a --save path before any work: a .wav name in a folder that exists."""
    text = os.fspath(path).strip()
    if not text.lower().endswith(".wav"):
        midi = " (MIDI files come with --midi)" if text.lower().endswith((".mid", ".midi")) else ""
        raise CreativeError(f"--save writes WAV files{midi}: name it something.wav, not {text!r}")
    folder = os.path.dirname(os.path.abspath(os.path.expanduser(text)))
    if not os.path.isdir(folder):
        raise CreativeError(f"cannot save to {text!r}: the folder {folder!r} does not exist")
    return os.path.expanduser(text)


def numbered_paths(path, count):
    """`path` itself for one piece; song-1.wav, song-2.wav, ... for several."""
    if count == 1:
        return [path]
    stem, ext = os.path.splitext(path)
    return [f"{stem}-{index}{ext}" for index in range(1, count + 1)]


def _chunk(key, payload):
    return key + struct.pack("<I", len(payload)) + payload + (b"\0" if len(payload) % 2 else b"")


def _channels_first(audio):
    import numpy as np

    samples = np.asarray(audio, dtype=np.float32)
    if samples.ndim == 1:
        samples = samples[None, :]
    if samples.ndim != 2:
        raise CreativeError(f"audio must be channels x samples, not an array of shape {samples.shape}")
    return samples


# -- reading -------------------------------------------------------------------------------


def read_wav(path):
    """(audio float32 channels x samples, sample rate, INFO dict) of a WAV file: integer PCM of 8 to 32
    bits or 32/64-bit float, plain or WAVE_FORMAT_EXTENSIBLE. Anything else is one CreativeError line."""
    label = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise CreativeError(f"cannot read {label!r}: {err.strerror or err}") from None
    return parse_wav(data, label)


def parse_wav(data, label="the audio"):
    import numpy as np

    if len(data) < 12 or data[:4] not in (b"RIFF", b"RIFX") or data[8:12] != b"WAVE":
        raise CreativeError(f"{label!r} is not a WAV file; convert it first, e.g. ffmpeg -i {label!r} melody.wav")
    if data[:4] == b"RIFX":
        raise CreativeError(f"{label!r} is a big-endian WAV (RIFX), which is not supported; convert it to a usual WAV")
    fmt = samples = None
    info = {}
    position = 12
    while position + 8 <= len(data):
        key, size = data[position : position + 4], struct.unpack("<I", data[position + 4 : position + 8])[0]
        payload = data[position + 8 : position + 8 + size]
        if key == b"fmt ":
            fmt = payload
        elif key == b"data":
            samples = payload
        elif key == b"LIST" and payload[:4] == b"INFO":
            info.update(_info(payload[4:]))
        position += 8 + size + (size % 2)
    if fmt is None or len(fmt) < 16 or samples is None:
        raise CreativeError(f"{label!r} is not a complete WAV file (no format or no data)")
    tag, channels, sample_rate, _, block, bits = struct.unpack("<HHIIHH", fmt[:16])
    if tag == _EXTENSIBLE and len(fmt) >= 26:
        tag = struct.unpack("<H", fmt[24:26])[0]
    width = bits // 8
    if channels < 1 or sample_rate < 1 or not width or block != channels * width:
        raise CreativeError(f"{label!r} has a WAV format that cannot be read ({channels} channels, {bits} bits)")
    usable = len(samples) - len(samples) % block
    raw = samples[:usable]
    if tag == _FLOAT and bits in (32, 64):
        values = np.frombuffer(raw, dtype="<f4" if bits == 32 else "<f8").astype(np.float32)
    elif tag == _PCM and bits == 8:
        values = (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif tag == _PCM and bits in (16, 32):
        kind = "<i2" if bits == 16 else "<i4"
        values = (np.frombuffer(raw, dtype=kind).astype(np.float64) / 2.0 ** (bits - 1)).astype(np.float32)
    elif tag == _PCM and bits == 24:
        triples = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        joined = triples[:, 0] | (triples[:, 1] << 8) | (triples[:, 2] << 16)
        joined = np.where(joined >= 2**23, joined - 2**24, joined)
        values = (joined / 2.0**23).astype(np.float32)
    else:
        raise CreativeError(
            f"{label!r} is a WAV of a kind that cannot be read (format {tag}, {bits} bits); use 16-bit PCM or 32-bit float"
        )
    return values.reshape(-1, channels).T.copy(), sample_rate, info


def _info(payload):
    out, position = {}, 0
    while position + 8 <= len(payload):
        key, size = payload[position : position + 4], struct.unpack("<I", payload[position + 4 : position + 8])[0]
        text = payload[position + 8 : position + 8 + size].split(b"\0", 1)[0]
        out[key.decode("ascii", "replace")] = text.decode("utf-8", "replace")
        position += 8 + size + (size % 2)
    return out


def read_recipe(path):
    """The recipe stored in a WAV or a MIDI file written by creative_magics, or None when it has none."""
    from . import midi

    label = os.fspath(path)
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as err:
        raise CreativeError(f"cannot read {label!r}: {err.strerror or err}") from None
    if midi.looks_like_midi(head):
        return midi.read_recipe(midi.read_midi_file(path))
    _, _, info = read_wav(path)
    text = info.get("ICMT")
    if not text:
        return None
    try:
        recipe = json.loads(text)
    except ValueError:
        return None
    return recipe if isinstance(recipe, dict) else None


# What a person passes as AUDIO is checked in the same steps for --melody and --continue; only the words differ.
_AUDIO_WORDS = {
    "melody": {
        "empty": "the melody is empty: give a WAV file",
        "missing": "melody file {text!r} does not exist",
        "folder": "melody {text!r} is a folder; give a WAV file",
        "large": "melody file {text!r} is larger than {mb} MB; cut it to the part to follow",
        "not_wav": "only WAV files can be read as a melody, and {text!r} is not one; convert it, e.g. ffmpeg -i {text!r} melody.wav",
        "kind": "a melody is a WAV file, an audio result or an (array, sample_rate) pair, not {kind}",
        "rate": "the melody's sample rate must be a positive whole number, not {rate!r}",
        "silent": "the melody {label} holds no audio",
    },
    "continue": {
        "empty": "--continue is empty: give a WAV file, a variable holding an audio result, or last",
        "missing": "--continue file {text!r} does not exist",
        "folder": "--continue {text!r} is a folder; give a WAV file",
        "large": "--continue file {text!r} is larger than {mb} MB; cut it to the part to continue from",
        "not_wav": "only WAV files can be continued, and {text!r} is not one; convert it, e.g. ffmpeg -i {text!r} clip.wav",
        "kind": "--continue takes a WAV file, an audio result or an (array, sample_rate) pair, not {kind}",
        "rate": "the sample rate of the audio to continue must be a positive whole number, not {rate!r}",
        "silent": "the audio to continue, {label}, holds no audio",
    },
}


def load_melody(ref):
    """(audio channels x samples, sample rate, label) for a --melody: a WAV path, an audio result
    (`.audio` and `.sample_rate`) or an (array, sample rate) pair. Checked before any model loads."""
    return load_audio(ref, "melody")


def load_audio(ref, what="melody"):
    """(audio channels x samples, sample rate, label) of an AUDIO argument (`what`: melody or continue),
    checked before any model loads, one CreativeError line for each thing that can be wrong."""
    words = _AUDIO_WORDS[what]
    if isinstance(ref, (str, os.PathLike)):
        text = os.fspath(ref).strip()
        if not text:
            raise CreativeError(words["empty"])
        path = os.path.expanduser(text)
        if not os.path.exists(path):
            raise CreativeError(words["missing"].format(text=text))
        if os.path.isdir(path):
            raise CreativeError(words["folder"].format(text=text))
        if os.path.getsize(path) > MAX_MELODY_BYTES:
            raise CreativeError(words["large"].format(text=text, mb=MAX_MELODY_BYTES // 2**20))
        with open(path, "rb") as f:
            head = f.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            raise CreativeError(words["not_wav"].format(text=text))
        audio, sample_rate, _ = read_wav(path)
        label = text
    elif hasattr(ref, "audio") and hasattr(ref, "sample_rate"):
        audio, sample_rate, label = ref.audio, ref.sample_rate, "(an audio result)"
    elif isinstance(ref, tuple) and len(ref) == 2:
        audio, sample_rate, label = ref[0], ref[1], "(an audio array)"
    else:
        raise CreativeError(words["kind"].format(kind=type(ref).__name__))
    audio = _channels_first(audio)
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
        raise CreativeError(words["rate"].format(rate=sample_rate))
    if audio.shape[1] == 0:
        raise CreativeError(words["silent"].format(label=label))
    return audio, sample_rate, label


# -- melody chroma -------------------------------------------------------------------------


def resample(audio, rate, target):
    """Linear interpolation to `target` Hz: plenty for a 12-bin chroma, not for listening."""
    import numpy as np

    if rate == target:
        return audio
    length = max(1, int(round(audio.shape[-1] * target / rate)))
    times = np.arange(length) * (rate / target)
    return np.stack([np.interp(times, np.arange(audio.shape[-1]), channel) for channel in audio]).astype(np.float32)


def resample_band_limited(audio, rate, target):
    """`audio` (channels x samples) at `target` Hz for listening: the spectrum cut (or padded) to the new
    Nyquist frequency, so no aliasing is added. For clips that a model continues."""
    import numpy as np

    samples = _channels_first(audio)
    if rate == target:
        return samples
    length = max(1, int(round(samples.shape[-1] * target / rate)))
    spectrum = np.fft.rfft(samples.astype(np.float64), axis=-1)
    bins = length // 2 + 1
    out = np.zeros((samples.shape[0], bins), dtype=spectrum.dtype)
    keep = min(bins, spectrum.shape[-1])
    out[:, :keep] = spectrum[:, :keep]
    return (np.fft.irfft(out, n=length, axis=-1) * (length / samples.shape[-1])).astype(np.float32)


def melody_chroma(audio, sample_rate, features):
    """The chroma MusicGen-melody reads, as transformers' MusicgenMelodyFeatureExtractor computes it
    (mono, up to `chunk_length` s, power spectrogram, chroma filters, the strongest bin of each frame),
    for where that extractor cannot be built (it needs torchaudio). Returns a (1, frames, 12) tensor."""
    import numpy as np
    import torch
    from transformers.audio_utils import chroma_filter_bank

    rate = int(features.get("sampling_rate", 32000))
    n_fft, hop = int(features.get("n_fft", 16384)), int(features.get("hop_length", 4096))
    num_chroma = int(features.get("num_chroma", 12))
    mono = resample(_channels_first(audio), sample_rate, rate).mean(axis=0)
    mono = mono[: int(features.get("chunk_length", 30)) * rate]
    wave = torch.from_numpy(np.ascontiguousarray(mono, dtype=np.float32))[None]
    if wave.shape[-1] < n_fft:
        pad = n_fft - wave.shape[-1]
        wave = torch.nn.functional.pad(wave, (pad // 2, pad // 2 + pad % 2))
    window = torch.hann_window(n_fft)
    spectrum = torch.stft(wave, n_fft, hop_length=hop, win_length=n_fft, window=window, center=True, pad_mode="reflect", return_complex=True)
    power = (spectrum / window.pow(2).sum().sqrt()).abs().pow(2)
    filters = torch.from_numpy(chroma_filter_bank(sampling_rate=rate, num_frequency_bins=n_fft, tuning=0, num_chroma=num_chroma)).float()
    chroma = torch.einsum("cf,...ft->...ct", filters, power)
    chroma = torch.nn.functional.normalize(chroma, p=float("inf"), dim=-2, eps=1e-6).transpose(1, 2)
    strongest = chroma.argmax(-1, keepdim=True)
    return torch.zeros_like(chroma).scatter_(-1, strongest, 1.0)


# -- showing -------------------------------------------------------------------------------


def player_html(audio, sample_rate):
    """IPython's audio player, with the WAV inside. Levels are kept unless they would clip."""
    import numpy as np
    from IPython.display import Audio

    samples = _channels_first(audio)
    if samples.shape[1] == 0:
        return "<p><i>(no audio)</i></p>"
    peak = float(np.max(np.abs(samples)))
    data = samples[0] if samples.shape[0] == 1 else samples
    return Audio(data=data, rate=sample_rate, normalize=peak > 1.0)._repr_html_().strip()


def picture_png(audio, sample_rate, title=None):
    """PNG bytes of the waveform above the spectrogram (matplotlib's Agg canvas directly, no pyplot)."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    samples = _channels_first(audio)
    mono = samples.mean(axis=0)
    seconds = mono.shape[0] / sample_rate
    figure = Figure(figsize=(7.0, 3.2), dpi=80)
    FigureCanvasAgg(figure)
    wave_axes, spec_axes = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [1, 1.6]})
    times = np.arange(mono.shape[0]) / sample_rate
    for channel in samples:
        wave_axes.plot(times, channel, linewidth=0.5, color="#2b6cb0", alpha=0.8 if samples.shape[0] > 1 else 1.0)
    wave_axes.set_ylabel("amplitude", fontsize=8)
    wave_axes.set_xlim(0, max(seconds, 1.0 / sample_rate))
    if title:
        wave_axes.set_title(title, fontsize=9)
    window = 1024 if mono.shape[0] >= 2048 else max(16, 2 ** int(np.log2(max(mono.shape[0], 32) // 2)))
    if mono.shape[0] >= window:
        spec_axes.specgram(mono, NFFT=window, Fs=sample_rate, noverlap=window // 2, cmap="magma", scale="dB")
    spec_axes.set_ylabel("Hz", fontsize=8)
    spec_axes.set_xlabel("seconds", fontsize=8)
    for axes in (wave_axes, spec_axes):
        axes.tick_params(labelsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return _small_png(buffer.getvalue())


def _small_png(png):
    """A 64-colour palette PNG: a third of the size, which matters for notebooks that embed it."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        buffer = io.BytesIO()
        image.convert("RGB").quantize(colors=64).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
