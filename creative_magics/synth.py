"""A listening preview of MIDI notes: FluidSynth with a General MIDI SoundFont when both are here
(Debian: `apt-get install fluidsynth fluid-soundfont-gm`, and `pip install pyfluidsynth`), else a small
additive synth of our own, which says so in one line. numpy and pyfluidsynth are imported inside.
"""

import os

from .midi import DRUMS, channels_for

SAMPLE_RATE = 32000  # as MusicGen's: the previews and the generated audio play alike
# Where distributions put a General MIDI SoundFont (Debian/Ubuntu, Fedora, Arch, Homebrew).
SOUNDFONTS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
    "/usr/share/soundfonts/FluidR3_GM2-2.sf2",
    "/opt/homebrew/share/soundfonts/default.sf2",
    "/usr/local/share/soundfonts/default.sf2",
)
FALLBACK_NOTE = (
    "preview by the built-in synth: for real instruments install FluidSynth and a General MIDI SoundFont "
    "(apt-get install fluidsynth fluid-soundfont-gm; pip install pyfluidsynth)"
)


def find_soundfont(configured=""):
    """The SoundFont to use: the configured file if given, else the first of the usual places, else None."""
    if configured:
        path = os.path.expanduser(configured)
        return path if os.path.isfile(path) else None
    return next((path for path in SOUNDFONTS if os.path.isfile(path)), None)


def _fluidsynth():
    """pyfluidsynth's module, or None where it or the FluidSynth library is missing."""
    try:
        import fluidsynth
    except (ImportError, OSError):  # pyfluidsynth raises ImportError when libfluidsynth is not found
        return None
    return fluidsynth if hasattr(fluidsynth, "Synth") else None


def render(notes, seconds, sample_rate=SAMPLE_RATE, soundfont=""):
    """(audio float32 of shape (1, round(seconds x rate)), how it was made, a note or None): FluidSynth
    with a General MIDI SoundFont where both are here, else the built-in synth with FALLBACK_NOTE."""
    path = find_soundfont(soundfont)
    module = _fluidsynth() if path else None
    if module is not None:
        audio = render_fluidsynth(module, notes, seconds, sample_rate, path)
        if audio is not None:
            return audio, f"FluidSynth with {os.path.basename(path)}", None
    if soundfont and path is None:
        return render_builtin(notes, seconds, sample_rate), "the built-in synth", f"the SoundFont {soundfont!r} does not exist; {FALLBACK_NOTE}"
    return render_builtin(notes, seconds, sample_rate), "the built-in synth", FALLBACK_NOTE


def _length(seconds, sample_rate):
    return max(0, int(round(seconds * sample_rate)))


def render_fluidsynth(module, notes, seconds, sample_rate, path):
    """The notes played by FluidSynth offline (no audio device), mixed to mono; None if the SoundFont does not load."""
    import numpy as np

    total = _length(seconds, sample_rate)
    synth = module.Synth(gain=0.6, samplerate=float(sample_rate))
    try:
        font = synth.sfload(path)
        if font == -1:
            return None
        channels = channels_for(list(dict.fromkeys(n.program for n in notes)))
        for program, channel in channels.items():
            synth.program_select(channel, font, 128 if program == DRUMS else 0, 0 if program == DRUMS else program)
        events = []
        for note in notes:
            on = _length(note.start, sample_rate)
            off = max(_length(note.end, sample_rate), on + 1)
            events.append((on, 1, channels[note.program], note.pitch, note.velocity))
            events.append((off, 0, channels[note.program], note.pitch, 0))
        events.sort()
        chunks, position = [], 0
        for sample, kind, channel, pitch, velocity in events:
            sample = min(sample, total)
            if sample > position:
                chunks.append(np.asarray(synth.get_samples(sample - position), dtype=np.float32))
                position = sample
            if kind:
                synth.noteon(channel, pitch, velocity)
            else:
                synth.noteoff(channel, pitch)
        if total > position:
            chunks.append(np.asarray(synth.get_samples(total - position), dtype=np.float32))
    finally:
        synth.delete()
    stereo = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    mono = stereo.reshape(-1, 2).mean(axis=1) / 32768.0
    return _safe_level(mono[:total])[None, :]


# -- the built-in synth: a few harmonics and an envelope per instrument family, noise for drums ----------

# program // 8 -> (harmonic amplitudes, attack s, decay s (None: held), release s)
FAMILIES = (
    ((1.0, 0.5, 0.25, 0.12), 0.004, 1.2, 0.15),  # pianos
    ((1.0, 0.0, 0.4, 0.0, 0.2), 0.002, 0.6, 0.3),  # chromatic percussion
    ((1.0, 0.6, 0.5, 0.3, 0.2), 0.01, None, 0.05),  # organs
    ((1.0, 0.6, 0.35, 0.2, 0.1), 0.003, 0.9, 0.1),  # guitars
    ((1.0, 0.5, 0.2), 0.005, 1.5, 0.08),  # basses
    ((1.0, 0.5, 0.33, 0.25, 0.2, 0.16), 0.06, None, 0.2),  # strings
    ((1.0, 0.5, 0.33, 0.25, 0.2), 0.08, None, 0.25),  # ensembles
    ((1.0, 0.7, 0.5, 0.35, 0.25), 0.03, None, 0.1),  # brass
    ((1.0, 0.0, 0.5, 0.0, 0.3), 0.03, None, 0.08),  # reeds
    ((1.0, 0.15, 0.05), 0.04, None, 0.1),  # pipes
    ((1.0, 0.5, 0.33, 0.25, 0.2), 0.005, None, 0.08),  # synth leads
    ((1.0, 0.4, 0.2), 0.2, None, 0.4),  # synth pads
    ((1.0, 0.3, 0.3), 0.05, None, 0.3),  # synth effects
    ((1.0, 0.7, 0.4, 0.2), 0.003, 0.8, 0.1),  # ethnic
    ((1.0, 0.3), 0.001, 0.25, 0.05),  # percussive
    ((1.0, 0.3), 0.01, 0.5, 0.1),  # sound effects
)


def render_builtin(notes, seconds, sample_rate=SAMPLE_RATE):
    """The notes as simple additive tones (and noise bursts for drums), mono, deterministic."""
    import numpy as np

    total = _length(seconds, sample_rate)
    out = np.zeros(total, dtype=np.float64)
    for note in notes:
        start = _length(note.start, sample_rate)
        if start >= total:
            continue
        if note.program == DRUMS:
            wave = _drum(note.pitch, sample_rate, np.random.default_rng(note.pitch * 7919 + start))
        else:
            wave = _tone(note, sample_rate)
        wave = wave[: total - start]
        out[start : start + wave.shape[0]] += 0.2 * (note.velocity / 127.0) * wave
    return _safe_level(out.astype(np.float32))[None, :]


def _tone(note, sample_rate):
    import numpy as np

    harmonics, attack, decay, release = FAMILIES[note.program // 8]
    held = max(note.end - note.start, 0.02)
    times = np.arange(int((held + release) * sample_rate)) / sample_rate
    frequency = 440.0 * 2.0 ** ((note.pitch - 69) / 12.0)
    wave = np.zeros_like(times)
    for order, amplitude in enumerate(harmonics, start=1):
        if amplitude and frequency * order < sample_rate / 2:
            wave += amplitude * np.sin(2 * np.pi * frequency * order * times)
    wave /= sum(harmonics)
    envelope = np.minimum(times / attack, 1.0)
    if decay is not None:
        envelope *= np.exp(-times / decay)
    tail = times > held
    envelope[tail] *= np.exp(-(times[tail] - held) / (release / 4))
    return wave * envelope


def _drum(pitch, sample_rate, rng):
    import numpy as np

    if pitch in (35, 36):  # kick: a falling sine
        times = np.arange(int(0.35 * sample_rate)) / sample_rate
        phase = 2 * np.pi * (50 * times + 100 * 0.05 * (1 - np.exp(-times / 0.05)))
        return np.sin(phase) * np.exp(-times / 0.12)
    length = 0.9 if pitch in (49, 51, 52, 55, 57, 59) else 0.3 if pitch in (46,) else 0.18
    times = np.arange(int(length * sample_rate)) / sample_rate
    noise = rng.standard_normal(times.shape[0])
    if pitch in (42, 44, 46, 49, 51, 52, 55, 57, 59):  # hats and cymbals: bright noise
        noise = np.diff(noise, prepend=0.0) * 0.5
    tone = np.sin(2 * np.pi * (180 if pitch in (38, 40) else 80 + 4 * (pitch - 35)) * times)
    return (0.6 * noise + 0.4 * tone) * np.exp(-times / (length / 4))


def _safe_level(samples):
    """Scaled down only where it would clip."""
    import numpy as np

    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    return (samples * (0.99 / peak)).astype(np.float32) if peak > 0.99 else samples.astype(np.float32)
