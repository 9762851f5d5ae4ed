"""%%compose and creative_magics.compose: the same audio as a plain `generate`, lengths from the codec's
frame rate, progress in seconds of audio, Ctrl-C, recipes that reproduce, WAV with the recipe inside,
melody conditioning, and one-line errors for bad input."""

import wave

import numpy as np
import pytest
import torch

import creative_magics
from creative_magics import audio, session
from creative_magics.tasks import compose as compose_task
from helpers import assert_one_line_error

DESCRIPTION = "lo-fi piano, rainy evening, 80 bpm"
FRAME_SAMPLES = 640  # the tiny codec, as the real 32 kHz EnCodec: 32000 / 50


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The tiny models run fastest on one thread; on a 2-core machine shared with other work, torch's thread
    pool spins (as tests/test_reliability.py found), which turns the long pieces here from seconds into minutes."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def warm(name="musicgen-small"):
    return session.current().cache.get("compose", name)


def plain_generate(music_model, description, recipe, input_features=None):
    """What a person would write by hand with transformers, from the recorded recipe."""
    model = music_model.model
    p = recipe["params"]
    inputs = music_model.tokenizer([description] * p["n"], padding=True, return_tensors="pt")
    if input_features is not None:
        inputs["input_features"] = input_features.repeat(p["n"], 1, 1)
    frames = max(4, round(p["seconds"] * model.config.audio_encoder.frame_rate))  # at least one frame per codebook
    kwargs = dict(guidance_scale=max(p["guidance"], 1.0), max_new_tokens=frames + model.decoder.config.num_codebooks - 1)
    if p["temperature"] == 0:
        kwargs.update(do_sample=False)
    else:
        kwargs.update(do_sample=True, temperature=p["temperature"], top_k=p["top_k"])
    torch.manual_seed(recipe["seed"])
    return model.generate(**inputs, **kwargs)


def assert_same_audio(result, expected):
    assert len(result.audios) == expected.shape[0]
    for got, want in zip(result.audios, expected):
        assert got.dtype == np.float32 and got.shape == tuple(want.shape)
        assert torch.equal(torch.from_numpy(got), want.float())


@pytest.mark.parametrize(
    "params",
    [
        dict(seed=7, seconds=0.4),
        dict(seed=3, seconds=0.3, guidance=1.5, temperature=0.7, top_k=20, n=2),
        dict(seed=5, seconds=0.3, guidance=0),
        dict(seconds=0.2, temperature=0),
    ],
    ids=["defaults", "all-knobs", "no-guidance", "greedy"],
)
def test_audio_equals_a_plain_generate_call(ip, params):
    result = creative_magics.compose(DESCRIPTION, **params)
    assert_same_audio(result, plain_generate(warm(), DESCRIPTION, result.recipe))
    assert result.sample_rate == 32000
    assert result.audio is result.audios[0] and result.audio.shape[0] == 1  # channels x samples
    assert len(result.audios) == params.get("n", 1)


def test_seeds_and_descriptions_change_the_music(ip):
    one = creative_magics.compose(DESCRIPTION, seconds=0.3, seed=1)
    assert not np.array_equal(one.audio, creative_magics.compose(DESCRIPTION, seconds=0.3, seed=2).audio)
    assert not np.array_equal(one.audio, creative_magics.compose("a brass band marching", seconds=0.3, seed=1).audio)
    assert np.array_equal(one.audio, creative_magics.compose(DESCRIPTION, seconds=0.3, seed=1).audio)


@pytest.mark.parametrize("seconds, frames", [(0.3, 15), (0.01, 4), (1.234, 62)])
def test_seconds_become_frames_at_the_codec_frame_rate(ip, seconds, frames):
    result = creative_magics.compose(DESCRIPTION, seconds=seconds, seed=1)
    assert result.audio.shape == (1, frames * FRAME_SAMPLES)
    assert result.seconds == pytest.approx(frames / 50)
    assert result.recipe["params"]["seconds"] == seconds


def test_progress_counts_seconds_of_audio(ip):
    reports = []
    result = creative_magics.compose(DESCRIPTION, seconds=0.3, seed=2, on_progress=lambda done, total: reports.append((done, total)))
    assert len(reports) == 15 + 3  # one per step: 15 frames, the last codebook 3 steps behind the first
    assert all(total == pytest.approx(0.3) for _, total in reports)
    done = [d for d, _ in reports]
    assert done == sorted(done) and done[0] == 0 and done[-1] == pytest.approx(0.3)


def test_terminal_shows_a_tqdm_bar_and_a_summary(ip, run):
    ran = run(f"%%compose --seconds 0.2 --seed 4\n{DESCRIPTION}")
    assert ran.ok, ran.err
    assert "s of audio" in ran.err and "composing" in ran.err
    assert ran.out.splitlines() == [DESCRIPTION, "musicgen-small, seed 4: 0.20 s of mono audio at 32000 Hz"]


def test_decoding_the_loop_ids_gives_the_generated_audio(ip):
    """The Ctrl-C path decodes the sampling loop's ids as generate does at its end."""
    music_model = warm()
    watcher = compose_task._watcher_class()()
    inputs = music_model.tokenizer([DESCRIPTION] * 2, padding=True, return_tensors="pt")
    from transformers import StoppingCriteriaList

    torch.manual_seed(0)
    full = music_model.model.generate(**inputs, max_new_tokens=20, stopping_criteria=StoppingCriteriaList([watcher]))
    with torch.no_grad():
        assert torch.equal(compose_task.decode_codes(music_model.model, watcher.ids, 2), full)
        assert compose_task.decode_codes(music_model.model, watcher.ids[:, :5], 2).shape == (2, 1, 0)  # no whole frame yet


def test_ctrl_c_keeps_the_piece_so_far_and_the_model_stays_usable(ip):
    steps = []

    def interrupt_after_twelve_steps(done, total):
        steps.append(done)
        if len(steps) == 12:
            raise KeyboardInterrupt

    partial = creative_magics.compose(DESCRIPTION, seconds=0.5, seed=9, on_progress=interrupt_after_twelve_steps)
    assert partial.interrupted and partial.recipe["interrupted"] is True
    assert partial.audio.shape == (1, (12 - 3) * FRAME_SAMPLES)  # the frames every codebook had reached
    assert "(stopped)" in repr(partial)

    music_model = warm()
    watcher = compose_task._watcher_class()()
    inputs = music_model.tokenizer([DESCRIPTION], padding=True, return_tensors="pt")
    from transformers import StoppingCriteriaList

    torch.manual_seed(9)
    music_model.model.generate(
        **inputs, do_sample=True, guidance_scale=3.0, temperature=1.0, top_k=250, max_new_tokens=28, stopping_criteria=StoppingCriteriaList([watcher])
    )
    with torch.no_grad():
        expected = compose_task.decode_codes(music_model.model, watcher.ids[:, : 1 + 12], 1)
    assert torch.equal(torch.from_numpy(partial.audio), expected[0])  # the same codes, stopped within a step

    again = creative_magics.compose(DESCRIPTION, seconds=0.3, seed=9)
    assert not again.interrupted
    assert_same_audio(again, plain_generate(music_model, DESCRIPTION, again.recipe))
    assert session.current().cache.table()[0]["in_use"] is False


def test_ctrl_c_in_the_magic_shows_and_stores_the_partial_piece(ip, run, monkeypatch):
    from creative_magics import views

    calls = []
    original = views.AudioView.progress

    def progress(self, done, total):
        calls.append(done)
        if len(calls) == 8:
            raise KeyboardInterrupt
        original(self, done, total)

    monkeypatch.setattr(views.AudioView, "progress", progress)
    ran = run(f"%%compose --seconds 0.5 --seed 3 -o partial\n{DESCRIPTION}")
    assert ran.ok
    assert ip.user_ns["partial"].interrupted and ip.user_ns["partial"].audio.shape == (1, 5 * FRAME_SAMPLES)
    assert "(stopped)" in ran.out
    monkeypatch.setattr(views.AudioView, "progress", original)
    assert run(f"%%compose --seconds 0.1\n{DESCRIPTION}").ok


def test_a_drawn_seed_is_recorded_and_the_recipe_reproduces_the_music(ip):
    first = creative_magics.compose(DESCRIPTION, seconds=0.3, n=2)
    assert isinstance(first.recipe["seed"], int)
    again = creative_magics.compose(recipe=first.recipe)
    assert all(np.array_equal(a, b) for a, b in zip(again.audios, first.audios))
    assert again.recipe["params"] == first.recipe["params"] and again.recipe["prompt"] == DESCRIPTION


def test_recipe_records_every_value_used_and_where_it_came_from(ip, run):
    ip.magics_manager.registry["CreativeMagics"].compose_defaults = {"top_k": 12, "seconds": 0.2}
    ran = run(f"%%compose -m musicgen-small --temperature 0.9 --seed 2 -o r\n{DESCRIPTION}")
    assert ran.ok, ran.err
    recipe = ip.user_ns["r"].recipe
    p, s = recipe["params"], recipe["sources"]
    assert (recipe["task"], recipe["model"], recipe["seed"], recipe["prompt"]) == ("compose", "musicgen-small", 2, DESCRIPTION)
    assert (p["temperature"], s["temperature"]) == (0.9, "flag")
    assert (p["top_k"], s["top_k"]) == (12, "config")
    assert (p["seconds"], s["seconds"]) == (0.2, "config")
    assert (p["guidance"], s["guidance"]) == (3.0, "model")  # the tiny model's generation_config, as musicgen-small's
    assert set(p) == {"seconds", "guidance", "temperature", "top_k", "n"}
    assert ip.user_ns["r"].audio.shape == (1, 10 * FRAME_SAMPLES)


def test_greedy_records_no_top_k(ip):
    result = creative_magics.compose(DESCRIPTION, seconds=0.1, temperature=0)
    assert result.recipe["params"]["temperature"] == 0 and "top_k" not in result.recipe["params"]


def test_compose_defaults_are_checked(ip):
    from traitlets import TraitError

    with pytest.raises(TraitError, match="compose_defaults takes"):
        ip.magics_manager.registry["CreativeMagics"].compose_defaults = {"sconds": 3}


def test_the_result_is_remembered_and_the_model_loads_once(ip):
    first = creative_magics.compose(DESCRIPTION, seconds=0.1)
    assert session.current().last("audio") is first and first.kind == "audio"
    creative_magics.compose(DESCRIPTION, seconds=0.1)
    (row,) = session.current().cache.table()
    assert (row["loads"], row["hits"]) == (1, 1)


def test_prompt_interpolation(ip, run):
    ip.user_ns["mood"] = "melancholic"
    run("%%compose --seconds 0.1 -o r\n{mood} cello, {unknown}")
    assert ip.user_ns["r"].recipe["prompt"] == "melancholic cello, {unknown}"


def test_save_writes_a_wav_that_reads_back_with_the_recipe(ip, run, tmp_path):
    target = tmp_path / "song.wav"
    ran = run(f"%%compose --seconds 0.2 --seed 6 --save {target} -o r\n{DESCRIPTION}")
    assert ran.ok, ran.err
    result = ip.user_ns["r"]
    assert f"Saved {target}" in ran.out and result.paths == [str(target)]
    samples, rate, info = audio.read_wav(target)
    assert rate == 32000 and samples.shape == result.audio.shape
    assert np.abs(samples - np.clip(result.audio, -1, 1)).max() <= 1 / 32767
    assert audio.read_recipe(target) == result.recipe
    assert info["INAM"] == DESCRIPTION and info["ISFT"] == "creative_magics"
    with wave.open(str(target)) as plain:  # an ordinary 16-bit PCM file for every other tool
        assert (plain.getnchannels(), plain.getsampwidth(), plain.getframerate(), plain.getnframes()) == (1, 2, 32000, samples.shape[1])
    again = creative_magics.compose(recipe=audio.read_recipe(target))
    assert np.array_equal(again.audio, result.audio)


def test_several_pieces_are_saved_numbered_and_float32_is_exact(ip, tmp_path):
    result = creative_magics.compose(DESCRIPTION, seconds=0.1, n=2, seed=1)
    paths = result.save(tmp_path / "duo.wav", float32=True)
    assert paths == [str(tmp_path / "duo-1.wav"), str(tmp_path / "duo-2.wav")]
    for index, path in enumerate(paths):
        samples, rate, _ = audio.read_wav(path)
        assert np.array_equal(samples, result.audios[index])
        assert audio.read_recipe(path)["sample"] == index + 1


def test_rich_display_has_players_pictures_and_a_text_summary(ip):
    result = creative_magics.compose(DESCRIPTION, seconds=0.2, seed=1, n=2)
    html = result._repr_html_()
    assert html.count("<audio") == 2 and html.count("data:image/png;base64,") == 2
    assert "Piece 2" in html and "lo-fi piano" in html
    assert result.picture().startswith(b"\x89PNG")
    assert repr(result) == f"<AudioResult musicgen-small seed=1: 0.20 s of mono audio at 32000 Hz, 2 pieces, {DESCRIPTION!r}>"


# -- melody ------------------------------------------------------------------------------------


@pytest.fixture()
def melody_wav(tmp_path):
    """Two seconds of a rising arpeggio (A, C#, E) at 44.1 kHz, stereo, as a WAV file."""
    rate = 44100
    times = np.arange(2 * rate) / rate
    pitch = np.where(times < 0.7, 440.0, np.where(times < 1.4, 554.37, 659.25))
    tone = 0.4 * np.sin(2 * np.pi * pitch * times).astype(np.float32)
    path = tmp_path / "arpeggio.wav"
    audio.write_wav(path, np.stack([tone, tone]), rate)
    return path


def test_melody_models_load_with_their_own_classes(ip):
    music_model = warm("musicgen-melody")
    assert type(music_model.model).__name__ == "MusicgenMelodyForConditionalGeneration"
    assert music_model.melody_features["hop_length"] == 4096
    assert type(warm()).__name__ == "MusicModel" and not compose_task.is_melody_model(warm().model)


def test_melody_conditioning_equals_a_plain_generate_call(ip, melody_wav):
    result = creative_magics.compose(DESCRIPTION, model="musicgen-melody", melody=str(melody_wav), seconds=0.4, seed=11, n=2)
    assert result.recipe["params"]["melody"] == str(melody_wav)
    music_model = warm("musicgen-melody")
    samples, rate, _ = audio.read_wav(melody_wav)
    features = audio.melody_chroma(samples, rate, music_model.melody_features)
    assert_same_audio(result, plain_generate(music_model, DESCRIPTION, result.recipe, input_features=features))


def test_the_melody_steers_the_music(ip, melody_wav):
    followed = creative_magics.compose(DESCRIPTION, model="musicgen-melody", melody=str(melody_wav), seconds=0.6, seed=11)
    free = creative_magics.compose(DESCRIPTION, model="musicgen-melody", seconds=0.6, seed=11)
    assert not np.array_equal(followed.audio, free.audio)
    assert "melody" not in free.recipe["params"]
    assert_same_audio(free, plain_generate(warm("musicgen-melody"), DESCRIPTION, free.recipe))


def test_melody_from_a_variable_holding_an_audio_result(ip, run, melody_wav):
    samples, rate, _ = audio.read_wav(melody_wav)
    ip.user_ns["tune"] = creative_magics.compose(DESCRIPTION, seconds=0.3, seed=1)
    ran = run(f"%%compose -m musicgen-melody --melody tune --seconds 0.2 --seed 2 -o r\n{DESCRIPTION}")
    assert ran.ok, ran.err
    assert ip.user_ns["r"].recipe["params"]["melody"] == "tune"  # the name, so the recipe runs again here


def test_melody_model_length_limit_leaves_room_for_the_chroma_and_text(ip, run):
    ran = run(f"%%compose -m musicgen-melody --seconds 40\n{DESCRIPTION}")
    assert_one_line_error(ran, "beyond what musicgen-melody can make: at most 35.7 s (2048 positions, less 258 for the melody and the description")


def test_tiny_melody_model_builds_the_same_every_time(tmp_path):
    from pathlib import Path

    from creative_magics.tiny import music_melody

    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second):
        folder.mkdir()
        music_melody.build(str(folder))

    def files(folder):
        return {p.name: p.read_bytes() for p in Path(folder).iterdir()}

    assert set(files(first)) == {"config.json", "generation_config.json", "model.safetensors", "preprocessor_config.json", "tokenizer.json", "tokenizer_config.json"}
    assert files(first) == files(second)


# -- mistakes ------------------------------------------------------------------------------------


@pytest.fixture()
def not_a_wav(tmp_path):
    path = tmp_path / "tune.mp3"
    path.write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x00fake mp3")
    return path


@pytest.mark.parametrize(
    "line, body, fragment",
    [
        ("--seconds 0", DESCRIPTION, "--seconds must be > 0, not 0"),
        ("--seconds -2", DESCRIPTION, "--seconds must be > 0"),
        ("--seconds 1000", DESCRIPTION, "--seconds 1000 is beyond the longest piece %%compose makes, 300 s (5 minutes)"),
        ("--guidance -1", DESCRIPTION, "--guidance must be >= 0"),
        ("--temperature -0.5", DESCRIPTION, "--temperature must be >= 0"),
        ("--top-k -1", DESCRIPTION, "--top-k must be a whole number >= 0"),
        ("-n 0", DESCRIPTION, "-n must be a whole number from 1 to 8"),
        ("-n 2 --temperature 0", DESCRIPTION, "temperature 0 (greedy) always gives the same music"),
        ("--seed -3", DESCRIPTION, "seed must be a whole number"),
        ("-m nobody/no-such-model", DESCRIPTION, "not in the local Hugging Face cache"),
        ("-m gpt2", DESCRIPTION, "'gpt2' is not a compose model"),
        ("--melody missing.wav", DESCRIPTION, "melody file 'missing.wav' does not exist"),
        ("--melody {not_a_wav}", DESCRIPTION, "only WAV files can be read as a melody"),
        ("--melody {melody_wav}", DESCRIPTION, "--melody needs a melody model such as musicgen-melody; musicgen-small follows"),
        ("", "  \n ", "the description is empty"),
        ("--seconds long", DESCRIPTION, "invalid float value: 'long'"),
        ("--secs 3", DESCRIPTION, "unrecognized arguments: --secs"),
        ("-o 'not a name'", DESCRIPTION, "-o needs a Python variable name"),
        ("--save song.mp3", DESCRIPTION, "--save writes WAV files"),
        ("--save /no/such/folder/song.wav", DESCRIPTION, "the folder '/no/such/folder' does not exist"),
    ],
)
def test_bad_input_is_one_line_and_the_next_call_works(ip, run, line, body, fragment, not_a_wav, melody_wav):
    ran = run(f"%%compose {line.format(not_a_wav=not_a_wav, melody_wav=melody_wav)}\n{body}")
    assert_one_line_error(ran, fragment)
    assert run(f"%%compose --seconds 0.1\n{DESCRIPTION}").ok


def test_unknown_keyword_in_the_python_api(ip):
    with pytest.raises(creative_magics.errors.CreativeError, match="unknown parameter"):
        creative_magics.compose(DESCRIPTION, secnds=3)


# -- longer than the window, and continuing ------------------------------------------------------------


def clip(seconds=1.0, rate=32000):
    """A mono test clip at the model's rate, a whole number of frames long."""
    times = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 220 * times) * np.exp(-times)).astype(np.float32)[None, :]


def test_a_continuation_equals_a_plain_generate_call_with_an_audio_prompt(ip):
    """One window: what transformers' MusicGen does with `processor(audio=..., text=...)` and `generate`."""
    music_model = warm()
    samples = clip(1.0)
    result = creative_magics.compose(DESCRIPTION, continue_from=(samples, 32000), seconds=0.5, seed=5)
    assert result.recipe["params"]["continue_from"] == "(an audio array)" and result.recipe["params"]["overlap"] == 10.0
    inputs = music_model.processor(audio=samples[0], sampling_rate=32000, text=[DESCRIPTION], padding=True, return_tensors="pt")
    torch.manual_seed(5)
    expected = music_model.model.generate(**inputs, do_sample=True, guidance_scale=3.0, temperature=1.0, top_k=250, max_new_tokens=25 + 3)
    assert_same_audio(result, expected)


def test_a_continuation_keeps_the_prompt_audio_at_the_start_and_reaches_the_asked_length(ip):
    music_model = warm()
    samples = clip(2.0)
    result = creative_magics.compose(DESCRIPTION, continue_from=(samples, 32000), seconds=1.5, seed=2)
    assert result.audio.shape == (1, (100 + 75) * FRAME_SAMPLES) and result.prompt_seconds == 2.0
    with torch.no_grad():
        codes = compose_task.encode(music_model.model, (samples, 32000, "clip"))
        round_trip = compose_task.decode(music_model.model, codes)[0].numpy()
    assert round_trip.shape == samples.shape
    settled = samples.shape[1] - 4 * FRAME_SAMPLES  # the codec's decoder looks a few frames ahead
    assert np.allclose(result.audio[:, :settled], round_trip[:, :settled], atol=1e-5)
    # as close to the prompt as the codec itself gets, right up to where the new music starts
    prompt_error = np.abs(result.audio[:, : samples.shape[1]] - samples).mean()
    assert prompt_error <= 1.5 * np.abs(round_trip - samples).mean()


def test_continue_takes_a_wav_a_variable_or_last_and_other_rates(ip, run, tmp_path):
    path = audio.write_wav(tmp_path / "clip.wav", np.repeat(clip(1.0, 44100), 2, axis=0), 44100)  # stereo, 44.1 kHz
    ran = run(f"%%compose --continue {path} --seconds 0.4 --seed 1 -o a\n{DESCRIPTION}")
    assert ran.ok, ran.err
    a = ip.user_ns["a"]
    assert a.audio.shape == (1, (50 + 20) * FRAME_SAMPLES) and a.recipe["params"]["continue_from"] == str(path)
    assert run(f"%%compose --continue a --seconds 0.2 --seed 1 -o b\n{DESCRIPTION}").ok
    b = ip.user_ns["b"]
    assert b.audio.shape == (1, (70 + 10) * FRAME_SAMPLES) and b.recipe["params"]["continue_from"] == "a"
    assert np.array_equal(creative_magics.compose(recipe=b.recipe).audio, b.audio)
    assert run(f"%%compose --continue last --seconds 0.2 --seed 1 -o c\n{DESCRIPTION}").ok
    assert ip.user_ns["c"].audio.shape == (1, (80 + 10) * FRAME_SAMPLES) and ip.user_ns["c"].recipe["params"]["continue_from"] == "last"
    again = creative_magics.compose(recipe=a.recipe)
    assert np.array_equal(again.audio, a.audio)


def test_long_pieces_go_window_after_window_and_reach_40_s(ip, monkeypatch):
    """30 s windows, each next one continuing from the last --overlap seconds of the codes made so far."""
    model = warm().model
    contexts = []
    original = model.generate

    def generate(**kwargs):
        contexts.append(kwargs.get("decoder_input_ids"))
        return original(**kwargs)

    monkeypatch.setattr(model, "generate", generate)
    reports = []
    result = creative_magics.compose(DESCRIPTION, seconds=40, overlap=5, seed=3, on_progress=lambda done, total: reports.append((done, total)))
    assert result.audio.shape == (1, 2000 * FRAME_SAMPLES) and result.seconds == 40.0 and not result.interrupted
    assert contexts[0] is None and contexts[1].shape == (4, 250) and len(contexts) == 2  # 30 s, then 10 s after 5 s of context
    done = [d for d, _ in reports]
    assert done == sorted(done) and done[-1] == pytest.approx(40.0) and all(t == pytest.approx(40.0) for _, t in reports)
    assert result.recipe["params"]["overlap"] == 5
    monkeypatch.setattr(model, "generate", original)
    assert np.array_equal(creative_magics.compose(recipe=result.recipe).audio, result.audio)


def test_each_next_window_continues_from_the_codes_made_so_far(ip, monkeypatch):
    model = warm().model
    seen = []
    original = model.generate

    def generate(**kwargs):
        seen.append(kwargs.get("decoder_input_ids"))
        return original(**kwargs)

    monkeypatch.setattr(model, "generate", generate)
    encoded = []
    real_decode = compose_task.decode
    monkeypatch.setattr(compose_task, "decode", lambda m, codes: encoded.append(codes) or real_decode(m, codes))
    creative_magics.compose(DESCRIPTION, seconds=31, overlap=2, seed=1, n=2)
    (codes,) = encoded  # the whole piece is decoded once
    assert codes.shape == (2, 4, 1550)
    assert torch.equal(seen[1].reshape(2, 4, -1), codes[..., 1500 - 100 : 1500])


def test_ctrl_c_in_a_later_window_keeps_every_window_so_far(ip):
    steps = []

    def interrupt_in_the_second_window(done, total):
        steps.append(done)
        if done > 30.2:
            raise KeyboardInterrupt

    partial = creative_magics.compose(DESCRIPTION, seconds=35, seed=4, on_progress=interrupt_in_the_second_window)
    assert partial.interrupted and 30.0 < partial.seconds < 31.0
    whole = creative_magics.compose(DESCRIPTION, seconds=35, seed=4)
    first_window = 1496 * FRAME_SAMPLES  # up to a few frames before the boundary, the same codes decode alike
    assert np.allclose(partial.audio[:, :first_window], whole.audio[:, :first_window], atol=1e-5)
    assert not creative_magics.compose(DESCRIPTION, seconds=0.1).interrupted


def test_melody_models_stay_one_window_and_do_not_continue(ip, run, melody_wav):
    assert_one_line_error(
        run(f"%%compose -m musicgen-melody --continue {melody_wav} --seconds 1\n{DESCRIPTION}"),
        "--continue needs a MusicGen model without melody (musicgen-small, -medium or -large); musicgen-melody is a melody model",
    )
    assert_one_line_error(
        run(f"%%compose -m musicgen-melody --melody {melody_wav} --continue {melody_wav}\n{DESCRIPTION}"),
        "--continue and --melody cannot go together",
    )


@pytest.mark.parametrize(
    "line, fragment",
    [
        ("--continue missing.wav", "--continue file 'missing.wav' does not exist"),
        ("--continue {not_a_wav}", "only WAV files can be continued"),
        ("--continue nobody", "--continue file 'nobody' does not exist"),
        ("--continue last", "no music made yet in this session, so `last` has nothing to give to --continue"),
        ("--overlap 0.5", "--overlap must be in [1, 20]"),
        ("--seconds 300.5", "--seconds 300.5 is beyond the longest piece %%compose makes, 300 s (5 minutes)"),
    ],
)
def test_continuing_mistakes_are_one_line(ip, run, line, fragment, not_a_wav):
    assert_one_line_error(run(f"%%compose {line.format(not_a_wav=not_a_wav)}\n{DESCRIPTION}"), fragment)
    assert run(f"%%compose --seconds 0.1\n{DESCRIPTION}").ok
