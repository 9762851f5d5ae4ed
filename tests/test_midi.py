"""%%compose --midi: the Anticipatory Music Transformer's event vocabulary and tokenization, MIDI files in and
out, generation that equals a plain `generate` call and reproduces from its recipe bit for bit, --prompt-midi,
--instrument, windows past the context, Ctrl-C, the previews (FluidSynth and the built-in synth), saving
with the recipe inside, and one-line errors for bad input."""

import io
import os

import mido
import numpy as np
import pytest
import torch

import creative_magics
from creative_magics import audio, midi, session, synth
from creative_magics.midi import Note
from creative_magics.tasks import midi as midi_task
from helpers import assert_one_line_error

DESCRIPTION = "a slow waltz for piano and cello"
REQUIRE_FLUIDSYNTH = os.environ.get("CREATIVE_MAGICS_REQUIRE_FLUIDSYNTH") == "1"


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The tiny models run fastest on one thread; on a 2-core machine shared with other work, torch's thread
    pool spins (as tests/test_reliability.py found), which turns the long pieces here from seconds into minutes."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def warm(name="amt-small"):
    return session.current().cache.get("midi", name)


def random_notes(seed=0, count=60, seconds=40.0):
    """Notes of several instruments (and drums) on a 1 ms grid, no two of one pitch and instrument within 20 ms."""
    rng = np.random.default_rng(seed)
    notes, taken = [], {}
    for _ in range(count):
        program = int(rng.choice([0, 40, 42, 73, midi.DRUMS]))
        pitch = int(rng.integers(30, 90))
        start = round(float(rng.uniform(0, seconds)), 3)
        if any(abs(start - other) < 0.02 for other in taken.get((program, pitch), [])):
            continue
        taken.setdefault((program, pitch), []).append(start)
        length = round(float(rng.uniform(0.01, 9.5)), 3)
        notes.append(Note(start, round(start + length, 3), pitch, int(rng.integers(1, 128)), program))
    return notes


def in_order(notes):
    """Notes in the order a MIDI file is read: by onset, then instrument, pitch, end and velocity."""
    return sorted(notes, key=lambda n: (n.start, n.program, n.pitch, n.end, n.velocity))


def by_voice(notes):
    return sorted(notes, key=lambda n: (n.program, n.pitch, n.start))


# -- the vocabulary ------------------------------------------------------------------------------------------


def test_the_vocabulary_is_the_published_one():
    """anticipation/vocab.py: times 0-9999, durations 10000-10999, notes 11000-27511 (instrument x 128 +
    pitch, 129 instruments), REST 27512, the control copies from 27513, then SEPARATOR, AUTOREGRESS, ANTICIPATE."""
    assert (midi.TIME_OFFSET, midi.DURATION_OFFSET, midi.NOTE_OFFSET, midi.REST, midi.CONTROL_OFFSET) == (0, 10000, 11000, 27512, 27513)
    assert (midi.SEPARATOR, midi.AUTOREGRESS, midi.ANTICIPATE, midi.VOCAB_SIZE) == (55025, 55026, 55027, 55028)
    assert midi.TIME_RESOLUTION == 100 and midi.CONTEXT == 1 + 3 * 341


def test_the_tiny_model_has_the_real_vocabulary_and_context(ip):
    model = warm().model
    assert type(model).__name__ == "GPT2LMHeadModel"
    assert model.config.vocab_size == midi.VOCAB_SIZE and model.config.n_positions == midi.CONTEXT


def test_the_tiny_model_builds_the_same_every_time(tmp_path):
    from creative_magics.tiny import midi as tiny_midi

    for folder in ("a", "b"):
        tiny_midi.build(str(tmp_path / folder))
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == ["config.json", "generation_config.json", "model.safetensors"]
    assert all((tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes() for name in names)


# -- tokenization and files ----------------------------------------------------------------------------------


def test_tokenization_round_trip_keeps_every_note_within_the_time_resolution():
    """MIDI -> events -> tokens -> events -> MIDI: onsets and durations within half a 10 ms step (plus the
    file's 1 ms ticks), every pitch and instrument kept; velocity is not in the vocabulary (72 comes back)."""
    notes = random_notes()
    read = midi.read_notes(midi.write_notes(notes))
    assert read == in_order(notes)  # the file keeps 1 ms exactly
    tokens = midi.events_to_tokens(midi.notes_to_events(read))
    assert len(tokens) == 3 * len(notes)
    assert all(0 <= t < 10000 for t in tokens[0::3]) and all(10000 <= t < 11000 for t in tokens[1::3])
    assert all(11000 <= t < 27512 for t in tokens[2::3])
    back = midi.read_notes(midi.write_notes(midi.events_to_notes(midi.tokens_to_events(tokens))))
    assert len(back) == len(notes)
    for before, after in zip(by_voice(notes), by_voice(back)):
        assert (after.pitch, after.program, after.velocity) == (before.pitch, before.program, midi.DEFAULT_VELOCITY)
        assert abs(after.start - before.start) <= 0.005 + 1e-9
        assert abs((after.end - after.start) - (before.end - before.start)) <= 0.005 + 1e-9


def test_long_notes_are_cut_below_ten_seconds_and_rests_fill_silences():
    events = midi.notes_to_events([Note(0.0, 12.0, 60, 90, 0), Note(3.5, 4.0, 62, 90, 0)])
    assert events == [(0, 999, 60), (350, 50, 62)]
    padded = midi.pad_rests(events, end=600)
    assert [e for e in padded if e[2] == midi.MAX_NOTE] == [(100, 0, midi.MAX_NOTE), (200, 0, midi.MAX_NOTE), (300, 0, midi.MAX_NOTE),
                                                             (450, 0, midi.MAX_NOTE), (550, 0, midi.MAX_NOTE)]
    times = [e[0] for e in padded]
    assert max(b - a for a, b in zip(times, times[1:])) <= 100
    assert midi.events_to_notes(padded) == [Note(0.0, 9.99, 60, 72, 0), Note(3.5, 4.0, 62, 72, 0)]


def test_reading_follows_tempo_changes_programs_drums_and_running_notes():
    song = mido.MidiFile(type=1, ticks_per_beat=480)
    head = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=1_000_000, time=0), mido.MetaMessage("set_tempo", tempo=500_000, time=960)])
    keys = mido.MidiTrack([
        mido.Message("program_change", channel=2, program=40, time=0),
        mido.Message("note_on", channel=2, note=64, velocity=100, time=480),  # a beat at 60 bpm: 1 s
        mido.Message("note_on", channel=2, note=64, velocity=0, time=480),  # velocity 0 = off, 2 s
        mido.Message("note_on", channel=9, note=36, velocity=80, time=480),  # 2 s + 0.5 s at 120 bpm: 2.5 s
        mido.Message("note_off", channel=9, note=36, time=240),  # 2.75 s
        mido.Message("note_on", channel=0, note=60, velocity=50, time=0),  # never released
        mido.MetaMessage("end_of_track", time=480),  # the file ends at 3.25 s
    ])
    song.tracks += [head, keys]
    buffer = io.BytesIO()
    song.save(file=buffer)
    assert midi.read_notes(buffer.getvalue()) == [
        Note(1.0, 2.0, 64, 100, 40), Note(2.5, 2.75, 36, 80, midi.DRUMS), Note(2.75, 3.25, 60, 50, 0)
    ]


def test_writing_is_deterministic_with_a_track_per_instrument_and_the_recipe_inside(tmp_path):
    notes = [Note(0.0, 0.5, 60, 90, 0), Note(0.5, 1.0, 36, 100, midi.DRUMS), Note(0.25, 0.25, 67, 70, 40)]
    recipe = {"task": "compose", "params": {"midi": True, "seconds": 1.0}, "prompt": "ünïcode too"}
    data = midi.write_notes(notes, recipe=recipe, title="a title")
    assert data == midi.write_notes(list(reversed(notes)), recipe=recipe, title="a title")
    parsed = mido.MidiFile(file=io.BytesIO(data))
    assert parsed.type == 1 and [t.name for t in parsed.tracks] == ["a title", "Acoustic Grand Piano", "Violin", "Drums"]
    assert {m.channel for m in parsed.tracks[3] if not m.is_meta} == {9}
    assert midi.read_notes(data) == in_order(notes)  # a zero-length note survives
    path = midi.write_midi(tmp_path / "x.mid", data)
    assert audio.read_recipe(path) == recipe


def test_instrument_names_numbers_and_one_line_for_an_unknown_one():
    assert [midi.instrument(n) for n in ("piano", "Violin", "acoustic guitar (nylon)", "alto-sax", "drums", "42")] == [0, 40, 24, 65, 128, 42]
    with pytest.raises(creative_magics.errors.CreativeError, match="unknown instrument 'violn'; did you mean violin"):
        midi.instrument("violn")
    with pytest.raises(creative_magics.errors.CreativeError, match="at most 15"):
        midi.write_notes([Note(0, 1, 60, 90, p) for p in range(16)])


# -- generation ------------------------------------------------------------------------------------------


def plain_generate(recipe, prompt_notes=()):
    """The same tokens by hand: the flag token and the prompt's events, the sampling rules, `generate`, and the
    tokens read back three at a time (onset and duration in 10 ms steps, instrument x 128 + pitch)."""
    model = warm(recipe["model"]).model
    p = recipe["params"]
    events = midi.notes_to_events(prompt_notes)
    start = events[-1][0] if events else 0
    end = round((max([n.end for n in prompt_notes], default=0) + p["seconds"]) * 100)
    events = midi.pad_rests(events, start)
    offset = events[0][0] if events else 0
    prompt = [midi.AUTOREGRESS] + [t for e in events for t in (e[0] - offset, 10000 + e[1], 11000 + e[2])]
    n = p["n"]
    input_ids = torch.tensor([prompt] * n)
    present = torch.zeros((n, 129), dtype=torch.bool)
    for e in events:
        if e[2] < midi.MAX_NOTE:
            present[:, e[2] // 128] = True
    rules = midi_task.rules_class()(torch.full((n,), start - offset), present, start=len(prompt))
    stop = midi_task.end_class()(torch.full((n,), offset), end)
    torch.manual_seed(recipe["seed"])
    out = model.generate(
        input_ids=input_ids, attention_mask=torch.ones_like(input_ids), logits_processor=[rules], stopping_criteria=[stop],
        do_sample=True, temperature=p["temperature"], top_p=p["top_p"], top_k=0, max_new_tokens=3 * ((1024 - len(prompt)) // 3),
        pad_token_id=midi.SEPARATOR,
    )
    pieces = []
    for row in out[:, len(prompt):].tolist():
        notes = list(prompt_notes)
        for i in range(0, len(row) - 2, 3):
            time, duration, note = row[i] + offset, row[i + 1] - 10000, row[i + 2] - 11000
            if time >= end:
                break
            if note < midi.MAX_NOTE:
                notes.append(Note(time / 100, (time + duration) / 100, note % 128, 72, note // 128))
        pieces.append(notes)
    return pieces, out[:, len(prompt):]


@pytest.mark.parametrize("params", [dict(seed=3, seconds=6), dict(seed=4, seconds=3, temperature=0.8, top_p=0.9, n=2)], ids=["defaults", "knobs"])
def test_notes_equal_a_plain_generate_call_and_follow_the_rules(ip, params):
    result = creative_magics.compose(DESCRIPTION, midi=True, **params)
    pieces, tokens = plain_generate(result.recipe)
    assert result.pieces == pieces and len(result.pieces) == params.get("n", 1)
    for piece, row in zip(result.pieces, tokens.tolist()):
        assert piece and all(isinstance(n, Note) for n in piece)
        starts = [n.start for n in piece]
        assert starts == sorted(starts) and max(b - a for a, b in zip([0.0] + starts, starts)) <= 1.0 + 1e-9
        assert all(0 <= n.end - n.start < 10 and 0 <= n.pitch < 128 and 0 <= n.program <= 128 for n in piece)
        for i, token in enumerate(row[: 3 * len(piece)]):  # each position took only a token of its own block
            assert [0, 10000, 11000][i % 3] <= token < [10000, 11000, 27513][i % 3]
    assert result.seconds >= params["seconds"]


def test_the_result_is_a_valid_midi_file_reproducible_from_its_recipe_bit_for_bit(ip, run, tmp_path):
    ran = run(f"%%compose --midi --seconds 5 --seed 11 --save {tmp_path / 'waltz.mid'} -o r\n{DESCRIPTION}")
    assert ran.ok, ran.err
    result = ip.user_ns["r"]
    assert f"Saved {tmp_path / 'waltz.mid'} (the recipe is inside: creative_magics.audio.read_recipe)" in ran.out
    data = (tmp_path / "waltz.mid").read_bytes()
    assert data == result.midi and midi.read_notes(data) == result.notes and len(result.notes) > 0
    assert mido.MidiFile(file=io.BytesIO(data)).length == pytest.approx(max(n.end for n in result.notes), abs=0.002)
    recipe = audio.read_recipe(tmp_path / "waltz.mid")
    assert recipe == {k: v for k, v in result.recipe.items() if k != "sources"}
    assert creative_magics.compose(recipe=recipe).midi == data
    assert creative_magics.compose(recipe=result.recipe).midi == data
    again = run(f"%%compose --recipe r -o s\n{DESCRIPTION}")
    assert again.ok and ip.user_ns["s"].midi == data
    from_file = run(f"%compose --recipe {tmp_path / 'waltz.mid'} -o t")
    assert from_file.ok, from_file.err
    assert ip.user_ns["t"].midi == data


def test_the_recipe_records_every_value_used_and_where_it_came_from(ip, run):
    ip.magics_manager.registry["CreativeMagics"].compose_defaults = {"top_p": 0.9, "guidance": 5, "seconds": 2}
    ran = run(f"%%compose --midi --temperature 0.9 --seed 2 --instrument violin cello -o r\n{DESCRIPTION}")
    assert ran.ok, ran.err
    recipe = ip.user_ns["r"].recipe
    p, s = recipe["params"], recipe["sources"]
    assert (recipe["task"], recipe["model"], recipe["seed"], recipe["prompt"]) == ("compose", "amt-small", 2, DESCRIPTION)
    assert p == {"midi": True, "seconds": 2, "temperature": 0.9, "top_p": 0.9, "n": 1, "instrument": ["violin", "cello"]}
    assert s == {"midi": "flag", "seconds": "config", "temperature": "flag", "top_p": "config", "n": "default", "instrument": "flag"}


def test_instrument_keeps_the_new_notes_to_those_instruments(ip):
    result = creative_magics.compose(midi=True, seconds=8, seed=5, instrument=["flute", "drums"])
    assert result.notes and {n.program for n in result.notes} <= {73, midi.DRUMS}
    assert set(result.instruments()) <= {"Flute", "Drums"}


def test_greedy_is_repeatable_and_records_no_top_p(ip):
    one = creative_magics.compose(midi=True, seconds=2, temperature=0, seed=1)
    two = creative_magics.compose(midi=True, seconds=2, temperature=0, seed=2)
    assert one.notes == two.notes and "top_p" not in one.recipe["params"]


@pytest.fixture()
def prompt_file(tmp_path):
    notes = [Note(0.0, 0.5, 60, 90, 0), Note(0.5, 1.0, 64, 80, 0), Note(1.0, 2.25, 67, 70, 0), Note(1.0, 2.25, 48, 60, 32)]
    path = tmp_path / "phrase.mid"
    path.write_bytes(midi.write_notes(notes))
    return path, notes


def test_prompt_midi_keeps_the_prompt_notes_unchanged_at_the_start(ip, run, prompt_file):
    path, notes = prompt_file
    ran = run(f"%%compose --midi --prompt-midi {path} --seconds 4 --seed 7 -o r\n{DESCRIPTION}")
    assert ran.ok, ran.err
    result = ip.user_ns["r"]
    assert result.notes[: len(notes)] == in_order(notes) and result.prompt_notes == len(notes)
    new = result.notes[len(notes) :]
    assert new and all(n.start >= 1.0 for n in new)  # from the prompt's last onset on
    assert all(n.start < 2.25 + 4 for n in new) and result.seconds >= 6.25
    assert result.recipe["params"]["prompt_midi"] == str(path)
    assert midi.read_notes(result.midi)[: len(notes)] == in_order(notes)
    pieces, _ = plain_generate(result.recipe, prompt_notes=in_order(notes))
    assert result.pieces == pieces


def test_prompt_midi_from_a_variable_and_from_last(ip, run, prompt_file):
    ip.user_ns["sketch"] = creative_magics.compose(midi=True, seconds=2, seed=1)
    first = ip.user_ns["sketch"].notes
    assert run("%compose --midi --prompt-midi sketch --seconds 1 --seed 2 -o a").ok
    assert ip.user_ns["a"].notes[: len(first)] == first and ip.user_ns["a"].recipe["params"]["prompt_midi"] == "sketch"
    assert run("%compose --midi --prompt-midi last --seconds 1 --seed 3 -o b").ok
    assert ip.user_ns["b"].notes[: len(ip.user_ns["a"].notes)] == ip.user_ns["a"].notes
    ip.user_ns["raw"] = prompt_file[0].read_bytes()
    assert run("%compose --midi --prompt-midi raw --seconds 1 --seed 3 -o c").ok


def test_the_line_form_needs_no_description(ip, run):
    ran = run("%compose --midi --seconds 2 --seed 9 -o r")
    assert ran.ok, ran.err
    assert ip.user_ns["r"].prompt == "" and ip.user_ns["r"].recipe["prompt"] == ""
    assert ran.out.splitlines()[-1].startswith("amt-small, seed 9: ")


def test_past_the_context_it_goes_window_after_window(ip, tmp_path, monkeypatch):
    """A model with 64 positions (21 events) writes a 20 s piece in many windows, each continuing from the
    last events of the piece so far with times relative to its first one."""
    from creative_magics.tiny import midi as tiny_midi

    folder = tmp_path / "short-context"
    tiny_midi.build(str(folder), context=64)
    model = session.current().cache.get("midi", str(folder)).model
    calls = []
    original = model.generate

    def generate(**kwargs):
        calls.append(kwargs["input_ids"].clone())
        return original(**kwargs)

    monkeypatch.setattr(model, "generate", generate)
    reports = []
    result = creative_magics.compose(midi=True, model=str(folder), seconds=20, seed=4, on_progress=lambda d, t: reports.append((d, t)))
    assert len(calls) >= 3
    assert all(ids.shape[1] <= 1 + 3 * 10 and ids[0, 0] == midi.AUTOREGRESS for ids in calls)
    assert all(ids.shape[1] == 1 or ids[0, 1] == 0 for ids in calls)  # each context starts at time 0
    starts = [n.start for n in result.notes]
    assert starts == sorted(starts) and result.seconds >= 20 and not result.interrupted
    assert max(n.start for n in result.notes) < 20
    done = [d for d, _ in reports]
    assert done == sorted(done) and done[-1] == pytest.approx(20) and all(t == 20 for _, t in reports)


def test_ctrl_c_keeps_the_notes_so_far_and_the_model_stays_usable(ip, run):
    seen = []

    def stop_after_four_onsets(done, total):
        seen.append(done)
        if len(seen) == 4:
            raise KeyboardInterrupt

    partial = creative_magics.compose(midi=True, seconds=30, seed=6, on_progress=stop_after_four_onsets)
    assert partial.interrupted and partial.recipe["interrupted"] is True and "(stopped)" in repr(partial)
    assert 1 <= len(partial.notes) <= 4 and midi.read_notes(partial.midi) == partial.notes
    whole = creative_magics.compose(midi=True, seconds=30, seed=6)
    assert whole.notes[: len(partial.notes)] == partial.notes
    assert session.current().cache.table()[0]["in_use"] is False
    assert run("%compose --midi --seconds 1").ok


def test_ctrl_c_in_the_magic_shows_and_stores_the_notes_so_far(ip, run, monkeypatch):
    """A Ctrl-C inside the model's forward (as the stop button sends it) mid-piece."""
    from transformers import GPT2LMHeadModel

    original = GPT2LMHeadModel.forward
    calls = []

    def forward(module, *args, **kwargs):
        calls.append(1)
        if len(calls) == 40:
            raise KeyboardInterrupt
        return original(module, *args, **kwargs)

    assert run("%compose --midi --seconds 0.5").ok  # loaded before the forward is patched
    monkeypatch.setattr(GPT2LMHeadModel, "forward", forward)
    ran = run(f"%%compose --midi --seconds 60 --seed 3 -o partial\n{DESCRIPTION}")
    assert ran.ok and "(stopped)" in ran.out
    partial = ip.user_ns["partial"]
    assert partial.interrupted and 0 < len(partial.notes) <= 13 and partial.seconds < 60
    monkeypatch.setattr(GPT2LMHeadModel, "forward", original)
    assert run("%compose --midi --seconds 1 -o again").ok and not ip.user_ns["again"].interrupted
    (row,) = session.current().cache.table()
    assert row["loads"] == 1 and row["in_use"] is False


# -- previews, display, saving --------------------------------------------------------------------------------


def fluidsynth_here():
    return synth._fluidsynth() is not None and synth.find_soundfont() is not None


def test_the_fluidsynth_preview_has_the_length_of_the_piece(ip):
    if not fluidsynth_here():
        if REQUIRE_FLUIDSYNTH:
            pytest.fail("FluidSynth, pyfluidsynth or a General MIDI SoundFont is missing (make soundfont installs them)")
        pytest.skip("no FluidSynth here (apt-get install fluidsynth fluid-soundfont-gm; pip install pyfluidsynth)")
    result = creative_magics.compose(midi=True, seconds=4, seed=2)
    assert result.preview_by.startswith("FluidSynth with ") and result.preview_note is None
    assert result.audio.shape == (1, round(result.seconds * result.sample_rate)) and result.audio.dtype == np.float32
    assert np.abs(result.audio).max() > 0.01 and np.abs(result.audio).max() <= 1.0


def test_without_fluidsynth_the_built_in_synth_plays_and_says_so_in_one_line(ip, monkeypatch):
    monkeypatch.setattr(synth, "_fluidsynth", lambda: None)
    result = creative_magics.compose(midi=True, seconds=4, seed=2, instrument=["piano", "drums"])
    assert result.preview_by == "the built-in synth" and "\n" not in result.preview_note
    assert "apt-get install fluidsynth fluid-soundfont-gm" in result.preview_note
    assert result.audio.shape == (1, round(result.seconds * result.sample_rate))
    assert np.abs(result.audio).max() > 0.01 and np.abs(result.audio).max() <= 1.0
    assert result.preview_note in result.html()


def test_a_missing_configured_soundfont_falls_back_and_says_so(ip, monkeypatch):
    ip.magics_manager.registry["CreativeMagics"].soundfont = "/no/such/font.sf2"
    result = creative_magics.compose(midi=True, seconds=1, seed=2)
    assert result.preview_by == "the built-in synth" and "'/no/such/font.sf2' does not exist" in result.preview_note
    assert result.audio.shape == (1, round(result.seconds * result.sample_rate))


def test_the_built_in_synth_is_deterministic_and_silent_past_the_notes():
    notes = [Note(0.1, 0.4, 69, 100, 0), Note(0.2, 0.3, 38, 90, midi.DRUMS), Note(0.5, 0.6, 45, 80, 33)]
    one, two = synth.render_builtin(notes, 2.0), synth.render_builtin(notes, 2.0)
    assert np.array_equal(one, two) and one.shape == (1, 64000)
    assert np.abs(one[0, : int(0.1 * 32000)]).max() == 0 and np.abs(one[0, int(1.5 * 32000) :]).max() == 0
    assert np.abs(one[0, int(0.15 * 32000) : int(0.35 * 32000)]).max() > 0.01


def test_the_display_shows_a_piano_roll_a_player_and_a_download_link(ip):
    result = creative_magics.compose(DESCRIPTION, midi=True, seconds=2, seed=1, n=2)
    html = result._repr_html_()
    assert html.count('alt="piano roll"') == 2 and html.count("<audio") == 2
    assert html.count('href="data:audio/midi;base64,') == 2 and 'download="a-slow-waltz-for-piano-and-1.mid"' in html
    assert "Piece 2" in html and DESCRIPTION in html
    assert result.picture().startswith(b"\x89PNG")
    assert repr(result).startswith("<MidiResult amt-small seed=1: ") and "2 pieces" in repr(result)


def test_several_pieces_are_saved_numbered_each_with_its_recipe(ip, tmp_path):
    result = creative_magics.compose(midi=True, seconds=1, n=2, seed=1)
    paths = result.save(tmp_path / "duo.mid")
    assert paths == [str(tmp_path / "duo-1.mid"), str(tmp_path / "duo-2.mid")]
    for index, path in enumerate(paths):
        assert open(path, "rb").read() == result.midis[index]
        assert audio.read_recipe(path)["sample"] == index + 1


def test_the_result_is_remembered_and_the_model_loads_once(ip):
    first = creative_magics.compose(midi=True, seconds=1)
    assert session.current().last("midi") is first and first.kind == "midi"
    creative_magics.compose(midi=True, seconds=1)
    (row,) = session.current().cache.table()
    assert (row["task"], row["name"], row["loads"], row["hits"]) == ("midi", "amt-small", 1, 1)


def test_the_aliases_list_the_midi_models(ip, run):
    ran = run("%creative aliases midi")
    assert ran.ok and "midi (default amt-small):" in ran.out
    assert all(name in ran.out for name in ("amt-small", "amt-medium", "amt-large"))


# -- mistakes ------------------------------------------------------------------------------------------------


@pytest.fixture()
def bad_files(tmp_path):
    (tmp_path / "notes.txt").write_text("not music")
    empty = mido.MidiFile()
    empty.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000)]))
    empty.save(str(tmp_path / "empty.mid"))
    (tmp_path / "broken.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0MTrk\x00\x00\x10\x00\x90")
    (tmp_path / "phrase.mid").write_bytes(midi.write_notes([Note(0, 1, 60, 90, 0)]))
    return tmp_path


@pytest.mark.parametrize(
    "line, fragment",
    [
        ("--midi -m musicgen-small", "--midi writes notes with a MIDI model (amt-small, amt-medium or amt-large); musicgen-small makes audio"),
        ("-m amt-small", "amt-small writes MIDI notes, not audio: add --midi"),
        ("--prompt-midi {files}/phrase.mid", "--prompt-midi is for MIDI composition: add --midi"),
        ("--instrument violin", "--instrument is for MIDI composition: add --midi"),
        ("--top-p 0.9", "--top-p is for MIDI composition: add --midi"),
        ("--midi --guidance 4", "--guidance is for MusicGen's audio; --midi writes notes without it"),
        ("--midi --continue {files}/phrase.mid", "--continue is for MusicGen's audio"),
        ("--midi --prompt-midi {files}/notes.txt", "notes.txt' is not a MIDI file"),
        ("--midi --prompt-midi {files}/empty.mid", "empty.mid' holds no notes to continue"),
        ("--midi --prompt-midi {files}/broken.mid", "broken.mid' is a damaged MIDI file"),
        ("--midi --prompt-midi {files}/missing.mid", "--prompt-midi file '"),
        ("--midi --prompt-midi nobody", "no variable or file named 'nobody'"),
        ("--midi --instrument violn", "unknown instrument 'violn'; did you mean violin"),
        ("--midi --seconds 301", "--seconds 301 is beyond the longest piece %%compose makes, 300 s"),
        ("--midi -n 2 --temperature 0", "temperature 0 (greedy) always gives the same notes"),
        ("--midi --top-p 0", "--top-p must be in (0, 1]"),
        ("--midi --save song.wav", "--save with --midi writes MIDI files: name it something.mid"),
        ("--save song.mid", "--save writes WAV files (MIDI files come with --midi)"),
        ("--midi -m {files}", "is not a midi model folder: it has no config.json"),
    ],
)
def test_bad_input_is_one_line_and_the_next_call_works(ip, run, bad_files, line, fragment):
    ran = run(f"%%compose {line.format(files=bad_files)}\n{DESCRIPTION}")
    assert_one_line_error(ran, fragment)
    assert run(f"%%compose --midi --seconds 0.5\n{DESCRIPTION}").ok


def test_a_model_with_another_vocabulary_is_refused_in_one_line(ip, run):
    from creative_magics import tiny

    ran = run(f"%compose --midi -m {tiny.ensure('tiny-gpt2')}")
    assert_one_line_error(ran, "is not the Anticipatory Music Transformer's 55028 event tokens")


def test_last_without_a_midi_result_is_one_line(ip, run):
    assert_one_line_error(run("%compose --midi --prompt-midi last"), "no MIDI made yet in this session")
