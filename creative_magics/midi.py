"""MIDI in and out, and the event vocabulary of the Anticipatory Music Transformer (AMT).

Notes are `Note(start, end, pitch, velocity, program)` tuples in seconds; program is the General MIDI
program 0-127, or 128 for the drum kit (channel 10). Files are read and written with mido.

The vocabulary is written here from the published description (Thickstun et al. 2023, "Anticipatory
Music Transformer", and the constants of its `anticipation` package): a note is an *arrival-time
event* of three tokens, (onset time, duration, instrument x 128 + pitch), each in its own block of the
55,028-token vocabulary; times are 10 ms steps from the start of the model's context, durations are
10 ms steps below 10 s, and velocity is not modelled. Silences longer than a second are filled with
REST events, as the models were trained. mido, numpy and matplotlib are imported inside the functions.
"""

import io
import json
import os
import re
from typing import NamedTuple

from .errors import CreativeError, first_line

# -- the vocabulary (anticipation/config.py and vocab.py) ---------------------------------------

TIME_RESOLUTION = 100  # time steps a second: 10 ms
MAX_TIME = 100 * TIME_RESOLUTION  # onset times 0 .. 99.99 s within a context
MAX_DURATION = 10 * TIME_RESOLUTION  # durations 0 .. 9.99 s
MAX_PITCH = 128
DRUMS = 128  # the 129th instrument: General MIDI's drum kit (channel 10)
MAX_INSTRUMENT = 129
MAX_NOTE = MAX_PITCH * MAX_INSTRUMENT

TIME_OFFSET = 0
DURATION_OFFSET = TIME_OFFSET + MAX_TIME  # 10000
NOTE_OFFSET = DURATION_OFFSET + MAX_DURATION  # 11000
REST = NOTE_OFFSET + MAX_NOTE  # 27512: an event that holds no note
CONTROL_OFFSET = REST + 1  # 27513: the anticipated (control) copies of the three blocks
SPECIAL_OFFSET = CONTROL_OFFSET + MAX_TIME + MAX_DURATION + MAX_NOTE  # 55025
SEPARATOR = SPECIAL_OFFSET  # between pieces in the training stream
AUTOREGRESS = SPECIAL_OFFSET + 1  # first token of a context: plain continuation, no anticipated controls
ANTICIPATE = SPECIAL_OFFSET + 2  # first token of a context with anticipated controls
VOCAB_SIZE = ANTICIPATE + 1  # 55028
CONTEXT = 1024  # positions of the released models: the flag token and 341 events
EVENT_SIZE = 3
REST_EVERY = TIME_RESOLUTION  # no gap between events is longer than this (a second) in the training data
DEFAULT_VELOCITY = 72  # what the anticipation package gives generated notes (the vocabulary has no velocity)

# -- writing files: 1 ms ticks (500 ticks a beat at 120 bpm), so 10 ms steps are whole ticks -------------

TICKS_PER_BEAT = 500
TEMPO = 500_000  # microseconds a beat: 120 bpm
MAX_MIDI_BYTES = 20 * 2**20
RECIPE_PREFIX = "creative_magics recipe: "
MELODIC_CHANNELS = tuple(c for c in range(16) if c != 9)

GM_NAMES = (
    "Acoustic Grand Piano", "Bright Acoustic Piano", "Electric Grand Piano", "Honky-tonk Piano", "Electric Piano 1",
    "Electric Piano 2", "Harpsichord", "Clavi", "Celesta", "Glockenspiel", "Music Box", "Vibraphone", "Marimba", "Xylophone",
    "Tubular Bells", "Dulcimer", "Drawbar Organ", "Percussive Organ", "Rock Organ", "Church Organ", "Reed Organ", "Accordion",
    "Harmonica", "Tango Accordion", "Acoustic Guitar (nylon)", "Acoustic Guitar (steel)", "Electric Guitar (jazz)",
    "Electric Guitar (clean)", "Electric Guitar (muted)", "Overdriven Guitar", "Distortion Guitar", "Guitar Harmonics",
    "Acoustic Bass", "Electric Bass (finger)", "Electric Bass (pick)", "Fretless Bass", "Slap Bass 1", "Slap Bass 2",
    "Synth Bass 1", "Synth Bass 2", "Violin", "Viola", "Cello", "Contrabass", "Tremolo Strings", "Pizzicato Strings",
    "Orchestral Harp", "Timpani", "String Ensemble 1", "String Ensemble 2", "Synth Strings 1", "Synth Strings 2", "Choir Aahs",
    "Voice Oohs", "Synth Voice", "Orchestra Hit", "Trumpet", "Trombone", "Tuba", "Muted Trumpet", "French Horn", "Brass Section",
    "Synth Brass 1", "Synth Brass 2", "Soprano Sax", "Alto Sax", "Tenor Sax", "Baritone Sax", "Oboe", "English Horn", "Bassoon",
    "Clarinet", "Piccolo", "Flute", "Recorder", "Pan Flute", "Blown Bottle", "Shakuhachi", "Whistle", "Ocarina",
    "Lead 1 (square)", "Lead 2 (sawtooth)", "Lead 3 (calliope)", "Lead 4 (chiff)", "Lead 5 (charang)", "Lead 6 (voice)",
    "Lead 7 (fifths)", "Lead 8 (bass + lead)", "Pad 1 (new age)", "Pad 2 (warm)", "Pad 3 (polysynth)", "Pad 4 (choir)",
    "Pad 5 (bowed)", "Pad 6 (metallic)", "Pad 7 (halo)", "Pad 8 (sweep)", "FX 1 (rain)", "FX 2 (soundtrack)", "FX 3 (crystal)",
    "FX 4 (atmosphere)", "FX 5 (brightness)", "FX 6 (goblins)", "FX 7 (echoes)", "FX 8 (sci-fi)", "Sitar", "Banjo", "Shamisen",
    "Koto", "Kalimba", "Bagpipe", "Fiddle", "Shanai", "Tinkle Bell", "Agogo", "Steel Drums", "Woodblock", "Taiko Drum",
    "Melodic Tom", "Synth Drum", "Reverse Cymbal", "Guitar Fret Noise", "Breath Noise", "Seashore", "Bird Tweet",
    "Telephone Ring", "Helicopter", "Applause", "Gunshot",
)
# Short names people use, beside the 128 General MIDI names.
SHORT_NAMES = {
    "piano": 0, "grandpiano": 0, "electricpiano": 4, "rhodes": 4, "organ": 16, "guitar": 24, "nylonguitar": 24,
    "steelguitar": 25, "electricguitar": 27, "bass": 32, "electricbass": 33, "doublebass": 43, "harp": 46, "strings": 48,
    "choir": 52, "voice": 53, "horn": 60, "brass": 61, "sax": 65, "saxophone": 65, "synth": 80, "pad": 88,
    "drums": DRUMS, "drumkit": DRUMS, "percussion": DRUMS,
}


def _key(name):
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


INSTRUMENTS = {**{_key(name): program for program, name in enumerate(GM_NAMES)}, **SHORT_NAMES}
_SHOWN = {**{_key(name): name.lower() for name in GM_NAMES}, **{key: key for key in SHORT_NAMES}}


def instrument_name(program):
    return "Drums" if program == DRUMS else GM_NAMES[program]


def instrument(name):
    """The program of an instrument name (any General MIDI name, a short one such as piano or drums, or a
    number 0-127). An unknown name is one CreativeError line with the closest names."""
    import difflib

    text = str(name).strip()
    if text.isdigit() and 0 <= int(text) <= 127:
        return int(text)
    found = INSTRUMENTS.get(_key(text))
    if found is not None:
        return found
    close = difflib.get_close_matches(_key(text), list(INSTRUMENTS), n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(_SHOWN[c] for c in close)}? " if close else ""
    raise CreativeError(
        f"--instrument: unknown instrument {text!r}; {hint}Give a General MIDI name (piano, violin, flute, alto sax, "
        "acoustic guitar (nylon), ...), drums, or a program number 0-127"
    )


class Note(NamedTuple):
    start: float  # seconds
    end: float
    pitch: int  # 0-127
    velocity: int  # 1-127
    program: int  # 0-127, 128 = drums


# -- reading --------------------------------------------------------------------------------------


def looks_like_midi(data):
    return bytes(data[:4]) == b"MThd"


def read_notes(data, label="the MIDI"):
    """The notes of a standard MIDI file (bytes), in seconds through its tempo map, sorted by onset.
    A file that is not MIDI, or that cannot be parsed, is one CreativeError line."""
    import mido

    if not looks_like_midi(data):
        raise CreativeError(f"{label!r} is not a MIDI file (a .mid starts with 'MThd'); export MIDI from your editor, or give a MidiResult")
    try:
        parsed = mido.MidiFile(file=io.BytesIO(bytes(data)), clip=True)
        if parsed.type == 2:
            raise CreativeError(f"{label!r} is a type 2 MIDI file (independent sequences), which is not supported; save it as type 0 or 1")
        merged = mido.merge_tracks(parsed.tracks)
    except CreativeError:
        raise
    except Exception as err:  # mido raises OSError, EOFError, KeyError, ValueError on damaged files
        raise CreativeError(f"{label!r} is a damaged MIDI file ({first_line(err)}); export it again") from None
    per_second = parsed.ticks_per_beat * 1_000_000  # time = sum(ticks x tempo) / per_second, kept exact
    elapsed, tempo = 0, TEMPO
    programs = {}
    held = {}
    notes = []
    for message in merged:
        elapsed += message.time * tempo
        now = elapsed / per_second
        if message.type == "set_tempo":
            tempo = message.tempo
        elif message.type == "program_change":
            programs[message.channel] = message.program
        elif message.type in ("note_on", "note_off"):
            key = (message.channel, message.note)
            if message.type == "note_on" and message.velocity > 0:
                program = DRUMS if message.channel == 9 else programs.get(message.channel, 0)
                held.setdefault(key, []).append((now, message.velocity, program))
            elif held.get(key):
                start, velocity, program = held[key].pop(0)  # first on, first off
                notes.append(Note(start, now, message.note, velocity, program))
    end = elapsed / per_second
    for (channel, pitch), starts in held.items():  # a note never released ends with the file
        notes.extend(Note(start, max(end, start), pitch, velocity, program) for start, velocity, program in starts)
    return sorted(notes, key=lambda n: (n.start, n.program, n.pitch, n.end, n.velocity))


def read_midi_file(path, what="MIDI file"):
    """The bytes of a MIDI file, checked before any model loads: it exists, is a file, is not too large."""
    text = os.fspath(path).strip()
    if not text:
        raise CreativeError(f"the {what} is empty: give a .mid file, a MidiResult variable or `last`")
    full = os.path.expanduser(text)
    if not os.path.exists(full):
        raise CreativeError(f"{what} {text!r} does not exist")
    if os.path.isdir(full):
        raise CreativeError(f"{what} {text!r} is a folder; give a .mid file")
    if os.path.getsize(full) > MAX_MIDI_BYTES:
        raise CreativeError(f"{what} {text!r} is larger than {MAX_MIDI_BYTES // 2**20} MB; that is not a piece of music to continue")
    with open(full, "rb") as f:
        return f.read()


def read_recipe(data):
    """The recipe a MIDI file written here carries in a text meta event, or None."""
    import mido

    try:
        parsed = mido.MidiFile(file=io.BytesIO(bytes(data)), clip=True)
    except Exception:
        return None
    for track in parsed.tracks:
        for message in track:
            if message.is_meta and message.type == "text" and message.text.startswith(RECIPE_PREFIX):
                try:
                    recipe = json.loads(message.text[len(RECIPE_PREFIX) :])
                except ValueError:
                    return None
                return recipe if isinstance(recipe, dict) else None
    return None


# -- writing --------------------------------------------------------------------------------------


def _latin1(text):
    return str(text).encode("latin-1", "replace").decode("latin-1")


def _ticks(seconds):
    return int(round(seconds * TICKS_PER_BEAT * 1_000_000 / TEMPO))


def channels_for(programs):
    """{program: channel}: drums on channel 10 (index 9), the others on the remaining 15 in order of appearance."""
    melodic = [p for p in programs if p != DRUMS]
    if len(melodic) > len(MELODIC_CHANNELS):
        raise CreativeError(f"these notes use {len(melodic)} instruments besides drums; a MIDI file holds at most {len(MELODIC_CHANNELS)}")
    out = dict(zip(melodic, MELODIC_CHANNELS))
    if DRUMS in programs:
        out[DRUMS] = 9
    return out


def write_notes(notes, recipe=None, title=None):
    """A type 1 standard MIDI file (bytes) of `notes`: a tempo track (120 bpm, 1 ms ticks, the recipe as a
    text meta event) and one track per instrument, named after it. The same notes give the same bytes."""
    import mido

    notes = sorted(notes, key=lambda n: (n.start, n.program, n.pitch, n.end, n.velocity))
    programs = list(dict.fromkeys(n.program for n in notes))
    channels = channels_for(programs)
    song = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT, charset="latin1")
    head = mido.MidiTrack()
    if title:
        head.append(mido.MetaMessage("track_name", name=_latin1(" ".join(str(title).split())[:120]), time=0))
    head.append(mido.MetaMessage("set_tempo", tempo=TEMPO, time=0))
    head.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
    if recipe is not None:
        text = RECIPE_PREFIX + json.dumps(recipe, ensure_ascii=True, sort_keys=True, default=str)
        head.append(mido.MetaMessage("text", text=text, time=0))
    head.append(mido.MetaMessage("end_of_track", time=0))
    song.tracks.append(head)
    for program in programs:
        channel = channels[program]
        events = []
        for note in (n for n in notes if n.program == program):
            on, off = _ticks(note.start), max(_ticks(note.end), _ticks(note.start))
            events.append((on, 1, note.pitch, "note_on", note.velocity))
            # at one tick: the notes that end there, then those that start, then those that also end there (zero length)
            events.append((off, 0 if off > on else 2, note.pitch, "note_off", 0))
        events.sort()
        track = mido.MidiTrack()
        track.append(mido.MetaMessage("track_name", name=instrument_name(program), time=0))
        track.append(mido.Message("program_change", channel=channel, program=0 if program == DRUMS else program, time=0))
        now = 0
        for tick, _, pitch, kind, velocity in events:
            track.append(mido.Message(kind, channel=channel, note=pitch, velocity=velocity, time=tick - now))
            now = tick
        track.append(mido.MetaMessage("end_of_track", time=0))
        song.tracks.append(track)
    buffer = io.BytesIO()
    song.save(file=buffer)
    return buffer.getvalue()


def check_midi_path(path):
    """Check a --save path for MIDI before any work: a .mid name in a folder that exists."""
    text = os.fspath(path).strip()
    if not text.lower().endswith((".mid", ".midi")):
        raise CreativeError(f"--save with --midi writes MIDI files: name it something.mid, not {text!r}")
    folder = os.path.dirname(os.path.abspath(os.path.expanduser(text)))
    if not os.path.isdir(folder):
        raise CreativeError(f"cannot save to {text!r}: the folder {folder!r} does not exist")
    return os.path.expanduser(text)


def write_midi(path, data):
    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError as err:
        raise CreativeError(f"cannot write {os.fspath(path)!r}: {err.strerror or err}") from None
    return path


# -- events and tokens ------------------------------------------------------------------------------


def notes_to_events(notes):
    """(time, duration, note) triples in 10 ms steps, sorted by onset; durations are cut below 10 s."""
    events = []
    for n in sorted(notes, key=lambda n: (n.start, n.program, n.pitch, n.end, n.velocity)):
        time = int(round(n.start * TIME_RESOLUTION))
        duration = min(int(round((n.end - n.start) * TIME_RESOLUTION)), MAX_DURATION - 1)
        events.append((time, max(duration, 0), n.program * MAX_PITCH + n.pitch))
    return events


def events_to_notes(events, velocity=DEFAULT_VELOCITY):
    """Notes from (time, duration, note) triples; REST events hold none."""
    out = []
    for time, duration, note in events:
        if note >= MAX_NOTE:
            continue
        program, pitch = divmod(note, MAX_PITCH)
        out.append(Note(time / TIME_RESOLUTION, (time + duration) / TIME_RESOLUTION, pitch, velocity, program))
    return out


def pad_rests(events, end=None):
    """Insert REST events so that no gap between events (from time 0, and up to `end`) is longer than a
    second, as in the training data (anticipation.ops.pad)."""
    out, previous = [], 0
    for time, duration, note in events:
        while time > previous + REST_EVERY:
            previous += REST_EVERY
            out.append((previous, 0, MAX_NOTE))
        out.append((time, duration, note))
        previous = time
    while end is not None and end > previous + REST_EVERY:
        previous += REST_EVERY
        out.append((previous, 0, MAX_NOTE))
    return out


def events_to_tokens(events, offset=0):
    """The vocabulary's tokens of events, their times `offset` steps earlier (relative to a context)."""
    tokens = []
    for time, duration, note in events:
        tokens += [TIME_OFFSET + time - offset, DURATION_OFFSET + duration, NOTE_OFFSET + note]
    return tokens


def tokens_to_events(tokens, offset=0):
    """(time, duration, note) triples of whole, well-formed events in `tokens` (times `offset` steps later);
    anything else (a cut-off last event, a control or special token) is left out."""
    events = []
    for index in range(0, len(tokens) - EVENT_SIZE + 1, EVENT_SIZE):
        time, duration, note = (int(t) for t in tokens[index : index + EVENT_SIZE])
        if TIME_OFFSET <= time < DURATION_OFFSET and DURATION_OFFSET <= duration < NOTE_OFFSET and NOTE_OFFSET <= note <= REST:
            events.append((time - TIME_OFFSET + offset, duration - DURATION_OFFSET, note - NOTE_OFFSET))
    return events


# -- the piano roll -------------------------------------------------------------------------------

_COLOURS = ("#2b6cb0", "#c05621", "#2f855a", "#b83280", "#6b46c1", "#b7791f", "#319795", "#9b2c2c")


def piano_roll_png(notes, seconds=None, prompt_end=None, title=None):
    """PNG bytes of the notes as a piano roll (time across, pitch up, a colour per instrument; the part
    that came from a prompt shaded). matplotlib's Agg canvas directly, no pyplot."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image

    end = max([seconds or 0.0] + [n.end for n in notes] + [1.0])
    figure = Figure(figsize=(7.0, 2.6), dpi=80)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    programs = list(dict.fromkeys(n.program for n in notes))
    for index, program in enumerate(programs):
        mine = [n for n in notes if n.program == program]
        colour = "#4a5568" if program == DRUMS else _COLOURS[index % len(_COLOURS)]
        bars = [(n.start, max(n.end - n.start, end / 400)) for n in mine]
        for (start, width), note in zip(bars, mine):
            axes.broken_barh([(start, width)], (note.pitch - 0.4, 0.8), facecolors=colour, alpha=0.35 + 0.65 * note.velocity / 127)
        axes.plot([], [], color=colour, linewidth=6, label=instrument_name(program))
    if prompt_end:
        axes.axvspan(0, prompt_end, color="#a0aec0", alpha=0.18, linewidth=0)
        axes.axvline(prompt_end, color="#718096", linewidth=0.8, linestyle="--")
    pitches = [n.pitch for n in notes] or [60]
    axes.set_ylim(min(pitches) - 2, max(pitches) + 2)
    axes.set_xlim(0, end)
    axes.set_xlabel("seconds", fontsize=8)
    axes.set_ylabel("pitch", fontsize=8)
    axes.tick_params(labelsize=7)
    axes.grid(alpha=0.2)
    if programs:
        axes.legend(fontsize=7, loc="upper right", ncol=min(len(programs), 4), frameon=False)
    if title:
        axes.set_title(title, fontsize=9)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    with Image.open(io.BytesIO(buffer.getvalue())) as image:  # a 64-colour palette: a third of the size in a notebook
        small = io.BytesIO()
        image.convert("RGB").quantize(colors=64).save(small, format="PNG", optimize=True)
    return small.getvalue()
