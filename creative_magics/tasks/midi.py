"""%%compose --midi: notes a person can edit, written by the Anticipatory Music Transformer through `model.generate`.

The model writes a piece as events of three tokens (onset, duration, instrument and pitch; see
creative_magics.midi). The sampling rules of the `anticipation` package become one logits processor:
each position takes only tokens of its own block, controls and special tokens are never sampled, an
onset never goes back in time, and past 15 instruments only those already playing may play. One rule
is ours: an onset is at most a second after the previous one, because the training data had a REST
event at least every second (so the model never saw a longer gap; this keeps random weights musical
too). `--instrument` narrows the note block to those instruments. A stopping criterion ends each piece
at its first event past the end, reports progress and keeps the tokens, which Ctrl-C turns into the
piece so far.

Pieces longer than the context (1,024 positions: the flag token and 341 events) go window after window:
each next window continues from the last half of the piece so far, its times made relative to its first
event, as the package does. `--prompt-midi` notes are the first window's context and come back
unchanged at the start of the piece.
"""

import math

from .. import defaults, midi, params, seeds
from ..errors import CreativeError
from ..results import MidiResult
from . import context_length, generation_defaults, used_values
from .compose import check_length

TASK = params.COMPOSE
MODE = "midi"
HOUSE_DEFAULTS = {p.name: p.default for p in TASK.params if p.default is not None and (not p.methods or MODE in p.methods)}
GENERATE_NAMES = {"temperature": "temperature", "top_p": "top_p"}
INSTRUMENT_CAP = 15  # the package's instr_logits: past 15 instruments (16 MIDI channels, one kept for drums) no new ones
MAX_EVENTS_PER_SECOND = 64  # a piece that keeps writing notes at one instant still ends
KEEP_SECONDS = 50  # a window's context spans at most this much, so its relative times stay inside the vocabulary


def model_defaults(model):
    return generation_defaults(model, GENERATE_NAMES)


def check(values):
    """The rules between values of a MIDI call (each value was checked against its declaration)."""
    check_length(values)
    if values.get("temperature") == 0 and (values.get("n") or 1) > 1:
        raise CreativeError("temperature 0 (greedy) always gives the same notes; drop -n or raise --temperature")
    programs(values)


def programs(values):
    """The programs --instrument names (each one checked, one line for an unknown one), or None for any."""
    names = values.get("instrument")
    if not names:
        return None
    names = [names] if isinstance(names, str) else list(names)
    return tuple(dict.fromkeys(midi.instrument(name) for name in names))


# -- the sampling rules and the end of a piece ----------------------------------------------------------


def rules_class():
    """EventRules(floors, programs, present): the logits processor (built on first use: it imports torch)."""
    import torch
    from transformers import LogitsProcessor

    class EventRules(LogitsProcessor):
        """Each position samples only its block; onsets within [max(floor, previous onset), + 1 s]; notes of
        the allowed programs; past INSTRUMENT_CAP instruments, only those already present.

        floors: (rows,) the earliest relative onset of each row; present: (rows, 129) instruments in the
        piece so far (the context and earlier windows); start: the position where this window's new tokens begin."""

        def __init__(self, floors, present, start, allowed_programs=None):
            self.floors = floors
            self.present = torch.cat([present, torch.ones_like(present[:, :1])], dim=1)  # column 129: "not a note"
            self.start = start
            self.allowed_programs = allowed_programs
            self._masks = None

        def _build(self, scores):
            index = torch.arange(scores.shape[-1], device=scores.device)
            duration = (index >= midi.DURATION_OFFSET) & (index < midi.NOTE_OFFSET)
            notes = (index >= midi.NOTE_OFFSET) & (index < midi.REST)
            if self.allowed_programs is not None:
                program = torch.div(index - midi.NOTE_OFFSET, midi.MAX_PITCH, rounding_mode="floor")
                notes &= torch.isin(program, torch.tensor(self.allowed_programs, device=scores.device))
            notes |= index == midi.REST
            instrument = torch.where(
                (index >= midi.NOTE_OFFSET) & (index < midi.REST), torch.div(index - midi.NOTE_OFFSET, midi.MAX_PITCH, rounding_mode="floor"), 129
            )
            self._masks = (index, duration, notes, instrument)
            self.present = self.present.to(scores.device)
            self.floors = self.floors.to(scores.device)

        def __call__(self, input_ids, scores):
            if self._masks is None:
                self._build(scores)
            index, duration, notes, instrument = self._masks
            position = input_ids.shape[1]
            slot = (position - 1) % midi.EVENT_SIZE  # the flag token is position 0; events start at 1
            if position - 1 >= self.start and slot == 0:  # the token just taken was a note: count its instrument
                played = torch.clamp(torch.div(input_ids[:, -1] - midi.NOTE_OFFSET, midi.MAX_PITCH, rounding_mode="floor"), 0, 129)
                self.present[torch.arange(played.shape[0], device=played.device), played] = True
                self.present[:, 129] = True
            if slot == 0:
                previous = input_ids[:, -3] - midi.TIME_OFFSET if position >= 4 else torch.zeros_like(self.floors)
                # a row that ended (its later tokens may be padding) still gets one onset to sample, never none
                low = torch.clamp(torch.maximum(self.floors, previous), max=midi.MAX_TIME - 1)[:, None]
                allowed = (index[None, :] >= low) & (index[None, :] <= torch.clamp(low + midi.REST_EVERY, max=midi.MAX_TIME - 1))
            elif slot == 1:
                allowed = duration[None, :]
            else:
                crowded = self.present[:, : midi.MAX_INSTRUMENT].sum(dim=1) >= INSTRUMENT_CAP
                allowed = notes[None, :] & (~crowded[:, None] | self.present[:, instrument])
            return scores.masked_fill(~allowed, float("-inf"))

    return EventRules


def end_class():
    """PieceEnd(offsets, end, room, on_time): the stopping criterion (built on first use)."""
    import torch
    from transformers import StoppingCriteria

    class PieceEnd(StoppingCriteria):
        """Stops a row at its first onset at or past `end` (absolute steps), or at `room` (relative steps,
        the window is out of times); keeps the latest ids and calls on_time(earliest onset) after each onset."""

        def __init__(self, offsets, end, room=midi.MAX_TIME - midi.REST_EVERY, on_time=None):
            self.offsets = offsets
            self.end = end
            self.room = room
            self.on_time = on_time
            self.ids = None
            self.stopped = None

        def __call__(self, input_ids, scores, **kwargs):
            self.ids = input_ids
            if self.stopped is None:
                self.stopped = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
                self.offsets = self.offsets.to(input_ids.device)
            if (input_ids.shape[1] - 2) % midi.EVENT_SIZE == 0:  # the token just taken was an onset
                relative = input_ids[:, -1] - midi.TIME_OFFSET
                self.stopped |= (relative + self.offsets >= self.end) | (relative >= self.room)
                if self.on_time is not None:
                    self.on_time(int(torch.clamp(relative + self.offsets, max=self.end).min()))
            return self.stopped.clone()

    return PieceEnd


def generate_kwargs(values, max_new_tokens):
    """The keyword arguments for `model.generate` that the recorded values stand for."""
    sample = values["temperature"] > 0
    kwargs = {"do_sample": sample, "max_new_tokens": max_new_tokens, "top_k": 0, "pad_token_id": midi.SEPARATOR}
    if sample:
        kwargs.update(temperature=values["temperature"], top_p=values["top_p"])
    else:
        kwargs.update(temperature=None, top_p=None)
    return kwargs


# -- windows ---------------------------------------------------------------------------------------------


def tail_length(rows, context):
    """How many of the last events of each row the next window continues from: at most half the context,
    the same for every row (one batch, no padding), spanning at most KEEP_SECONDS."""
    keep = max(1, (context - 1) // midi.EVENT_SIZE // 2)
    count = min(min(len(row) for row in rows), keep)
    for row in rows:
        while count > 1 and row[-1][0] - row[-count][0] > KEEP_SECONDS * midi.TIME_RESOLUTION:
            count -= 1
    return count


def window_inputs(rows, count, start):
    """(input_ids, attention_mask, offsets, floors, present) of one window over `rows` (lists of events)."""
    import torch

    ids, offsets, floors, present = [], [], [], []
    for row in rows:
        tail = row[len(row) - count :] if count else []
        offset = tail[0][0] if tail else 0
        ids.append([midi.AUTOREGRESS] + midi.events_to_tokens(tail, offset))
        offsets.append(offset)
        floors.append(max(start - offset, 0))
        here = torch.zeros(midi.MAX_INSTRUMENT, dtype=torch.bool)
        for _, _, note in row:
            if note < midi.MAX_NOTE:
                here[note // midi.MAX_PITCH] = True
        present.append(here)
    input_ids = torch.tensor(ids, dtype=torch.long)
    return input_ids, torch.ones_like(input_ids), torch.tensor(offsets), torch.tensor(floors), torch.stack(present)


def new_events(tokens, offset, end, room):
    """(events, finished) from a window's new tokens (times `offset` steps later): the whole events before
    `end`; finished once an onset reaches it (the generation may stop right after that onset token)."""
    kept = []
    for index in range(0, len(tokens), midi.EVENT_SIZE):
        onset = tokens[index] - midi.TIME_OFFSET
        if not 0 <= onset < midi.MAX_TIME:
            break
        if onset + offset >= end:
            return kept, True
        whole = midi.tokens_to_events(tokens[index : index + midi.EVENT_SIZE], offset)
        if onset >= room or not whole:
            break
        kept.append(whole[0])
    return kept, False


def compose_midi(midi_model, description, values, sources=None, model_name="", prompt=None, on_progress=None):
    """Notes from the model (a MidiResult), with merged `values` (None = not given). The description is kept
    in the recipe only: the model reads no text. prompt: (notes, label) of --prompt-midi.
    on_progress(seconds_done, seconds_total) follows the new music; Ctrl-C keeps the notes so far."""
    import torch
    from transformers import LogitsProcessorList, StoppingCriteriaList

    # 1. values
    model = midi_model.model
    values, sources = defaults.fill(values, sources, ("model", model_defaults(model)), ("default", HOUSE_DEFAULTS))
    values["n"] = int(values.get("n") or 1)
    check(values)
    seed = seeds.choose(values.get("seed"))
    allowed = programs(values)
    n = values["n"]

    # 2. the prompt, and where the new music starts and ends (10 ms steps)
    prompt_notes = list(prompt[0]) if prompt is not None else []
    midi.channels_for(list(dict.fromkeys(note.program for note in prompt_notes)))  # a file with too many instruments: one line now
    history = midi.notes_to_events(prompt_notes)
    start = history[-1][0] if history else 0
    prompt_end = max((note.end for note in prompt_notes), default=0.0)
    end = int(round((prompt_end + values["seconds"]) * midi.TIME_RESOLUTION))
    history = midi.pad_rests(history, start)
    context = context_length(model) or midi.CONTEXT
    most_events = len(history) + math.ceil(values["seconds"] * MAX_EVENTS_PER_SECOND) + context
    total = (end - start) / midi.TIME_RESOLUTION  # the progress bar runs from the prompt's last onset to the end

    # 3. window after window until every piece reaches the end
    rows = [list(history) for _ in range(n)]
    finished = [False] * n
    interrupted = False
    device = model.device
    Rules, End = rules_class(), end_class()

    def on_time(onset):
        on_progress(min(max(onset - start, 0), end - start) / midi.TIME_RESOLUTION, total)

    torch.manual_seed(seed)
    while not all(finished):
        active = [i for i in range(n) if not finished[i]]
        count = tail_length([rows[i] for i in active], context)
        input_ids, mask, offsets, floors, present = window_inputs([rows[i] for i in active], count, start)
        space = midi.EVENT_SIZE * ((context - input_ids.shape[1]) // midi.EVENT_SIZE)
        if space < midi.EVENT_SIZE:
            break
        rules = Rules(floors, present, start=input_ids.shape[1], allowed_programs=allowed)
        watcher = End(offsets, end, on_time=on_time if on_progress is not None else None)
        try:
            with torch.inference_mode():
                model.generate(
                    input_ids=input_ids.to(device), attention_mask=mask.to(device), logits_processor=LogitsProcessorList([rules]),
                    stopping_criteria=StoppingCriteriaList([watcher]), **generate_kwargs(values, space),
                )
        except KeyboardInterrupt:
            interrupted = True
        ids = watcher.ids.detach().to("cpu") if watcher.ids is not None else input_ids
        grew = False
        for row, index in enumerate(active):
            events, done = new_events(ids[row, input_ids.shape[1] :].tolist(), int(offsets[row]), end, watcher.room)
            rows[index].extend(events)
            grew = grew or bool(events)
            finished[index] = done or len(rows[index]) >= most_events
        if interrupted or not grew:
            break

    # 4. the notes: the prompt's own, then the new ones
    pieces = [prompt_notes + midi.events_to_notes(row[len(history) :]) for row in rows]
    reached = [end if done else max((e[0] for e in row), default=0) for row, done in zip(rows, finished)]
    lengths = [max([r / midi.TIME_RESOLUTION] + [note.end for note in piece]) for r, piece in zip(reached, pieces)]

    # 5. the recipe
    values["midi"] = True
    recorded = ["midi", "seconds", "temperature"] + (["top_p"] if values["temperature"] > 0 else []) + ["n"]
    if allowed is not None:
        recorded.append("instrument")
        values["instrument"] = [values["instrument"]] if isinstance(values["instrument"], str) else list(values["instrument"])
    if prompt is not None:
        values["prompt_midi"] = prompt[1]
        recorded.append("prompt_midi")
    used, used_sources = used_values(values, sources, recorded)
    recipe = {"task": "compose", "model": model_name, "seed": seed, "prompt": description, "params": used, "sources": used_sources}
    if interrupted:
        recipe["interrupted"] = True
    return MidiResult(
        pieces=pieces, recipe=recipe, prompt=description, lengths=lengths, prompt_notes=len(prompt_notes), prompt_end=prompt_end,
        interrupted=interrupted,
    )
