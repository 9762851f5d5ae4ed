"""creative_magics.audio: WAV out and in (with the recipe inside), the melody chroma, player and picture."""

import struct
import wave

import numpy as np
import pytest

from creative_magics import audio
from creative_magics.errors import CreativeError

RATE = 32000


def tone(frequency, seconds=1.0, rate=RATE, level=0.5):
    times = np.arange(int(seconds * rate)) / rate
    return (level * np.sin(2 * np.pi * frequency * times)).astype(np.float32)


def test_pcm16_round_trip_with_the_recipe_and_readable_by_the_wave_module(tmp_path):
    stereo = np.stack([tone(440), tone(660, level=0.25)])
    recipe = {"task": "compose", "seed": 1, "prompt": "ünïcode ♪", "params": {"seconds": 1.0}}
    path = audio.write_wav(tmp_path / "a.wav", stereo, RATE, recipe=recipe, title="a\ntitle")
    samples, rate, info = audio.read_wav(path)
    assert rate == RATE and samples.shape == (2, RATE) and samples.dtype == np.float32
    assert np.abs(samples - stereo).max() <= 1 / 32767  # written x 32767, read / 32768, as libsndfile and scipy do
    assert audio.read_recipe(path) == recipe and info["INAM"] == "a title"
    with wave.open(str(path)) as plain:
        assert (plain.getnchannels(), plain.getsampwidth(), plain.getnframes()) == (2, 2, RATE)
        frames = np.frombuffer(plain.readframes(RATE), dtype="<i2").reshape(-1, 2).T
    assert np.array_equal(frames, np.round(stereo * 32767).astype(np.int16))


def test_float32_is_exact_and_loud_pcm_is_clipped(tmp_path):
    loud = np.array([[0.0, 1.5, -2.0, 0.25]], dtype=np.float32)
    audio.write_wav(tmp_path / "f.wav", loud, RATE, float32=True)
    assert np.array_equal(audio.read_wav(tmp_path / "f.wav")[0], loud)
    audio.write_wav(tmp_path / "i.wav", loud, RATE)
    assert np.allclose(audio.read_wav(tmp_path / "i.wav")[0], [[0.0, 32767 / 32768, -32767 / 32768, round(0.25 * 32767) / 32768]])
    assert audio.read_recipe(tmp_path / "i.wav") is None


def _riff(fmt, data, extra=b""):
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize("bits", [8, 24, 32])
def test_other_pcm_widths_are_read(bits):
    values = np.array([0, 2 ** (bits - 2), -(2 ** (bits - 1))], dtype=np.int64)
    if bits == 8:
        data = (values + 128).astype(np.uint8).tobytes()
    elif bits == 24:
        data = b"".join(int(v).to_bytes(3, "little", signed=True) for v in values)
    else:
        data = values.astype("<i4").tobytes()
    fmt = struct.pack("<HHIIHH", 1, 1, RATE, RATE * bits // 8, bits // 8, bits)
    samples, rate, _ = audio.parse_wav(_riff(fmt, data), "x.wav")
    assert np.allclose(samples, [[0.0, 0.5, -1.0]])


def test_extensible_float64_and_unknown_chunks(tmp_path):
    guid_float = struct.pack("<H", 3) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    fmt = struct.pack("<HHIIHHHHI", 0xFFFE, 1, RATE, RATE * 8, 8, 64, 22, 64, 4) + guid_float
    data = np.array([0.5, -0.25], dtype="<f8").tobytes()
    samples, _, _ = audio.parse_wav(_riff(fmt, data, extra=b"junk" + struct.pack("<I", 3) + b"abc\0"), "x.wav")
    assert np.array_equal(samples, np.array([[0.5, -0.25]], dtype=np.float32))


@pytest.mark.parametrize(
    "data, fragment",
    [
        (b"ID3\x04 an mp3", "is not a WAV file"),
        (b"RIFF\x04\x00\x00\x00WAVE", "not a complete WAV file"),
        (_riff(struct.pack("<HHIIHH", 2, 1, RATE, RATE, 1, 4), b"\x00" * 8), "cannot be read"),
    ],
)
def test_unreadable_files_are_one_line(data, fragment):
    with pytest.raises(CreativeError, match=fragment) as caught:
        audio.parse_wav(data, "x.wav")
    assert "\n" not in str(caught.value)


def test_load_melody_checks_files_before_any_model(tmp_path):
    with pytest.raises(CreativeError, match="does not exist"):
        audio.load_melody(str(tmp_path / "nope.wav"))
    (tmp_path / "a.ogg").write_bytes(b"OggS\x00\x02")
    with pytest.raises(CreativeError, match="only WAV files can be read as a melody"):
        audio.load_melody(str(tmp_path / "a.ogg"))
    with pytest.raises(CreativeError, match="is a folder"):
        audio.load_melody(str(tmp_path))
    samples, rate, label = audio.load_melody((tone(440, 0.1), RATE))
    assert samples.shape == (1, 3200) and rate == RATE and label == "(an audio array)"
    with pytest.raises(CreativeError, match="holds no audio"):
        audio.load_melody((np.zeros((1, 0)), RATE))


@pytest.mark.parametrize("frequency, pitch_class", [(261.63, 0), (440.0, 9), (392.0, 7), (880.0, 9)])
@pytest.mark.parametrize("rate", [32000, 44100])
def test_melody_chroma_finds_the_pitch_class(frequency, pitch_class, rate):
    features = {"sampling_rate": 32000, "n_fft": 16384, "hop_length": 4096, "num_chroma": 12, "chunk_length": 30}
    chroma = audio.melody_chroma(tone(frequency, 2.0, rate)[None], rate, features)
    assert chroma.shape == (1, 1 + 64000 // 4096, 12)
    assert (chroma.sum(-1) == 1).all()
    assert (chroma[0].argmax(-1) == pitch_class).all()


def test_melody_chroma_is_cut_at_the_chunk_length():
    features = {"sampling_rate": 32000, "n_fft": 16384, "hop_length": 4096, "num_chroma": 12, "chunk_length": 1}
    assert audio.melody_chroma(tone(440, 3.0)[None], RATE, features).shape[1] == 1 + 32000 // 4096


def test_player_keeps_levels_and_survives_silence():
    html = audio.player_html(tone(440, 0.1)[None], RATE)
    assert html.startswith("<audio") and "data:audio/wav;base64," in html
    assert "data:audio/wav;base64," in audio.player_html(np.zeros((1, 100), dtype=np.float32), RATE)
    assert "no audio" in audio.player_html(np.zeros((1, 0), dtype=np.float32), RATE)


@pytest.mark.parametrize("samples", [RATE, 100, 1])
def test_picture_is_a_png_for_any_length(samples):
    png = audio.picture_png(tone(440, samples / RATE)[None], RATE, title="t")
    assert png.startswith(b"\x89PNG")
