"""Nothing unsafe by default (DESIGN.md, "Rules of the house"), one block per acceptance criterion:

1. no `trust_remote_code` unless `%config CreativeMagics.trust_remote_code = True` says so;
2. weights come from safetensors or `torch.load(weights_only=True)`; a booby-trapped pickle never runs;
3. URL fetches have a deadline, a size cap and a content-type check, and nothing else fetches URLs;
4. recipes (PNG text chunks, WAV comments) are parsed as JSON/text, never eval'd or unpickled.

Related tests elsewhere: tests/test_media.py (every URL failure as one line: 404, fake PNG, refused
schemes, a slow server), tests/test_vgg_weights.py (torch.load is called with weights_only=True,
hash checks of torchvision's VGG19 file).
"""

import ast
import http.server
import io
import json
import pickle
import re
import shutil
import socket
import struct
import threading
import warnings
from pathlib import Path

import mido
import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

import creative_magics
from creative_magics import audio, corpus, media, recipes, refs, session, tiny
from creative_magics.errors import CreativeError
from helpers import assert_one_line_error

PACKAGE = Path(creative_magics.__file__).parent
SOURCES = sorted(PACKAGE.rglob("*.py"))


def parsed_sources():
    for path in SOURCES:
        yield path.relative_to(PACKAGE).as_posix(), ast.parse(path.read_text(encoding="utf-8"), str(path))


def calls(tree):
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)]


def keyword(call, name):
    return next((k.value for k in call.keywords if k.arg == name), None)


def dotted(node):
    """`a.b.c` for an expression made of names and attributes, else ''."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def is_true(node):
    return isinstance(node, ast.Constant) and node.value is True


def is_false(node):
    return isinstance(node, ast.Constant) and node.value is False


class Trap:
    """Unpickling this creates `marker`: the stand-in for code a malicious weights file would run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def save_trap(path, marker, keys=("features.0.weight",)):
    """A torch checkpoint whose tensors are traps (torch.save pickles them as they are)."""
    import torch

    torch.save({key: Trap(marker) for key in keys}, path)
    return path


def assert_trap_is_live(path, marker):
    """The control: the same file, loaded the unsafe way, does run its code, so refusing it meant something."""
    import torch

    assert not marker.exists()
    try:
        torch.load(path, weights_only=False)
    except Exception:
        pass
    assert marker.exists(), "the trap did not fire when unpickled: the test proves nothing"


# -- 1. trust_remote_code -------------------------------------------------------------------------------


def test_trust_remote_code_true_is_never_hard_coded():
    for name, tree in parsed_sources():
        for call in calls(tree):
            assert not is_true(keyword(call, "trust_remote_code")), f"{name}:{call.lineno} passes trust_remote_code=True"
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values):
                    if isinstance(key, ast.Constant) and key.value == "trust_remote_code":
                        assert not is_true(value), f"{name}:{node.lineno} holds trust_remote_code: True"
        text = (PACKAGE / name).read_text(encoding="utf-8")
        assert not re.search(r"trust_remote_code\s*[=:]\s*True", text), name


# Loads that cannot run a repo's code, so they take no trust_remote_code: peft reads adapter_config.json
# and weights; the tiny builders read the CLIP tokenizer files bundled in creative_magics/data/; a
# concrete diffusers model class (%%paint's ControlNetModel) reads its config and safetensors weights.
NO_REMOTE_CODE_PATH = {("finetuned.py", "PeftModel"), ("tiny/diffusion.py", "CLIPTokenizer"), ("loaders.py", "ControlNetModel")}


def test_every_from_pretrained_call_in_the_source_passes_the_setting():
    """Passed explicitly, never left to the library: transformers' Auto classes, given None, ask on
    stdin whether to run a repo's code (a prompt a notebook cell would hang on)."""
    seen = []
    for name, tree in parsed_sources():
        for call in calls(tree):
            if not (isinstance(call.func, ast.Attribute) and call.func.attr == "from_pretrained"):
                continue
            receiver = dotted(call.func.value)
            seen.append((name, receiver))
            if (name, receiver) in NO_REMOTE_CODE_PATH:
                continue
            value = keyword(call, "trust_remote_code")
            assert value is not None, f"{name}:{call.lineno} {receiver}.from_pretrained does not pass trust_remote_code"
            assert not isinstance(value, ast.Constant), f"{name}:{call.lineno} hard-codes trust_remote_code"
    assert ("loaders.py", "AutoModelForCausalLM") in seen and ("loaders.py", "AutoPipelineForText2Image") in seen


@pytest.fixture()
def from_pretrained_calls(monkeypatch):
    """[(class name, kwargs)] of every call to the from_pretrained entry points our loaders use."""
    import diffusers
    import peft
    import transformers

    for name in tiny.BUILDERS:  # built beforehand, so only loading is recorded
        tiny.ensure(name)
    recorded = []
    entry_points = [
        transformers.AutoConfig,
        transformers.AutoTokenizer,
        transformers.AutoProcessor,
        transformers.AutoModelForCausalLM,
        transformers.MusicgenForConditionalGeneration,
        transformers.MusicgenMelodyForConditionalGeneration,
        diffusers.AutoPipelineForText2Image,
        peft.PeftModel,
    ]
    for cls in entry_points:

        def recorder(*args, _cls=cls, _original=cls.from_pretrained, **kwargs):
            recorded.append((_cls.__name__, dict(kwargs)))
            return _original(*args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", recorder)
    return recorded


def lora_folder(tmp_path):
    """A LoRA adapter of the tiny GPT-2, with its own tokenizer files, as %%finetune saves one."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = str(tiny.ensure("tiny-gpt2"))
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(base, trust_remote_code=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # peft's deprecation chatter
        adapted = get_peft_model(model, LoraConfig(r=2, target_modules=["c_attn"], fan_in_fan_out=True, task_type="CAUSAL_LM"))
    folder = tmp_path / "my-lora"
    adapted.save_pretrained(folder)
    AutoTokenizer.from_pretrained(base, trust_remote_code=False).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("trusted", [False, True], ids=["default", "enabled-by-config"])
def test_loaders_pass_trust_remote_code_only_when_config_enables_it(ip, from_pretrained_calls, tmp_path, trusted):
    adapter = lora_folder(tmp_path)
    from_pretrained_calls.clear()
    if trusted:
        ip.run_line_magic("config", "CreativeMagics.trust_remote_code = True")
    assert session.current().settings.trust_remote_code is trusted
    cache = session.current().cache
    for task, ref in [
        ("story", "tiny-gpt2"),
        ("paint", "tiny-sd"),
        ("compose", "tiny-musicgen"),
        ("compose", "tiny-musicgen-melody"),
        ("midi", "tiny-amt"),
        ("stylize", "tiny-vgg19"),  # safetensors read directly: no from_pretrained at all
        ("story", str(adapter)),
    ]:
        assert cache.get(task, ref) is not None
    called = {name for name, _ in from_pretrained_calls}
    assert {
        "AutoTokenizer",
        "AutoModelForCausalLM",
        "AutoPipelineForText2Image",
        "AutoConfig",
        "AutoProcessor",
        "MusicgenForConditionalGeneration",
        "MusicgenMelodyForConditionalGeneration",
        "PeftModel",
    } <= called
    for name, kwargs in from_pretrained_calls:
        if name == "PeftModel":  # reads adapter_config.json and weights; there is no code path to trust
            assert "trust_remote_code" not in kwargs
            continue
        assert kwargs.get("trust_remote_code") is trusted, (name, kwargs)


# -- 2. weights: safetensors or weights_only=True ---------------------------------------------------------


def test_every_torch_load_in_the_source_is_weights_only():
    found = 0
    for name, tree in parsed_sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("torch"):
                assert "load" not in {alias.name for alias in node.names}, f"{name}:{node.lineno} imports torch's load bare"
        for call in calls(tree):
            target = dotted(call.func)
            assert target != "torch.hub.load", f"{name}:{call.lineno}: torch.hub.load runs a repo's hubconf.py"
            if target == "torch.load":
                found += 1
                assert is_true(keyword(call, "weights_only")), f"{name}:{call.lineno} torch.load without weights_only=True"
    assert found >= 1  # the torchvision .pth path of loaders.load_vgg


UNSAFE_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "marshal", "shelve"}


def test_no_pickle_family_loads_in_the_source():
    for name, tree in parsed_sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported = {(node.module or "").split(".")[0]}
            else:
                imported = set()
            assert not imported & UNSAFE_MODULES, f"{name}:{node.lineno} imports {imported & UNSAFE_MODULES}"
        for call in calls(tree):
            target = dotted(call.func)
            assert target.split(".")[0] not in UNSAFE_MODULES, f"{name}:{call.lineno} calls {target}"
            if target.endswith(("numpy.load", "np.load")):
                assert not is_true(keyword(call, "allow_pickle")), f"{name}:{call.lineno} np.load(allow_pickle=True)"
            if target == "yaml.load":
                pytest.fail(f"{name}:{call.lineno} yaml.load (use yaml.safe_load)")


def test_safetensors_are_never_turned_off():
    """Both libraries prefer safetensors when nothing says otherwise (use_safetensors=None) and read a
    .bin only with weights_only=True; we never pass use_safetensors=False, and we save safetensors."""
    saves = 0
    for name, tree in parsed_sources():
        for call in calls(tree):
            assert not is_false(keyword(call, "use_safetensors")), f"{name}:{call.lineno} use_safetensors=False"
            if isinstance(call.func, ast.Attribute) and call.func.attr == "save_pretrained" and "tokenizer" not in dotted(call.func.value):
                value = keyword(call, "safe_serialization")
                assert value is None or is_true(value), f"{name}:{call.lineno} save_pretrained(safe_serialization=False)"
                saves += value is not None
    assert saves >= 1


def copy_tiny(name, tmp_path):
    folder = tmp_path / name
    shutil.copytree(tiny.ensure(name), folder)
    return folder


def test_a_model_folder_with_both_formats_loads_the_safetensors_and_never_unpickles(ip, tmp_path):
    folder = copy_tiny("tiny-gpt2", tmp_path)
    marker = tmp_path / "pwned-text"
    save_trap(folder / "pytorch_model.bin", marker, keys=("transformer.wte.weight",))
    text_model = session.current().cache.get("story", str(folder))
    assert text_model.model is not None
    assert not marker.exists()


@pytest.mark.parametrize(
    "kind, weights, trap",
    [
        ("tiny-gpt2", "model.safetensors", "pytorch_model.bin"),
        ("tiny-sd", "unet/diffusion_pytorch_model.safetensors", "unet/diffusion_pytorch_model.bin"),
    ],
)
def test_a_booby_trapped_bin_is_refused_in_one_line_and_never_runs(ip, run, tmp_path, kind, weights, trap):
    folder = copy_tiny(kind, tmp_path)
    marker = tmp_path / f"pwned-{kind}"
    (folder / weights).unlink()
    save_trap(folder / trap, marker)
    magic = "story" if kind == "tiny-gpt2" else "paint --steps 1"
    ran = run(f"%%{magic} -m {folder}\nhello")
    assert_one_line_error(ran, "does not hold a loadable")
    assert not marker.exists()
    assert session.current().cache.table() == []
    assert_trap_is_live(folder / trap, marker)


def test_booby_trapped_controlnet_and_lora_files_are_refused_in_one_line_and_never_run(ip, run, tmp_path):
    """%%paint's other weights: a ControlNet folder holding only a pickle (safetensors only, so it is never
    read), and a LoRA given as a pickle (.bin/.pt files are refused by name; a folder of them holds no LoRA)."""
    controlnet = copy_tiny("tiny-controlnet", tmp_path)
    marker = tmp_path / "pwned-controlnet"
    (controlnet / "diffusion_pytorch_model.safetensors").unlink()
    save_trap(controlnet / "diffusion_pytorch_model.bin", marker, keys=("conv_in.weight",))
    ip.user_ns["drawing"] = Image.new("RGB", (64, 64), "white")
    assert_one_line_error(run(f"%%paint -m sd15 --control drawing --controlnet {controlnet}\na fox"), "does not hold a loadable controlnet model")
    lora = tmp_path / "lora"
    lora.mkdir()
    save_trap(lora / "pytorch_lora_weights.bin", marker, keys=("unet.conv_in.lora_A.weight",))
    assert_one_line_error(run(f"%%paint -m sd15 --lora {lora / 'pytorch_lora_weights.bin'}\na fox"), "only .safetensors LoRA files are read")
    assert_one_line_error(run(f"%%paint -m sd15 --lora {lora}\na fox"), "holds no .safetensors LoRA file")
    assert not marker.exists()
    assert_trap_is_live(controlnet / "diffusion_pytorch_model.bin", marker)


def test_a_booby_trapped_vgg_weights_file_is_refused_in_one_line_and_never_runs(ip, run, tmp_path):
    """Beyond tests/test_vgg_weights.py (weights_only=True is passed; a text file is refused): a real
    malicious pickle, through both ways a weights file is named (-m FILE, %config vgg_weights)."""
    marker = tmp_path / "pwned-vgg"
    path = save_trap(tmp_path / "vgg19-mine.pth", marker)
    ip.user_ns["picture"] = Image.new("RGB", (32, 32), (10, 120, 200))
    ran = run(f"%stylize --content picture --style picture --steps 1 --size 32 -m {path}")
    assert_one_line_error(ran, "does not hold a loadable vgg model")
    ip.run_line_magic("config", "CreativeMagics.profile = 'default'")
    ip.run_line_magic("config", f"CreativeMagics.vgg_weights = {str(path)!r}")
    ran = run("%stylize --content picture --style picture --steps 1 --size 32")
    assert_one_line_error(ran, "is not a VGG19 weights file")
    assert not marker.exists()
    assert_trap_is_live(path, marker)


@pytest.mark.parametrize("method", ["adain", "cyclegan"])
def test_a_booby_trapped_adain_or_cyclegan_file_is_refused_in_one_line_and_never_runs(ip, run, tmp_path, method):
    """Our feed-forward networks read .pth files with weights_only=True: a malicious pickle in place of the
    authors' decoder.pth (AdaIN) or style_<painter>.pth (CycleGAN) never runs."""
    import torch

    from creative_magics.nets import adain

    marker = tmp_path / f"pwned-{method}"
    if method == "adain":
        target = tmp_path / "adain-weights"
        target.mkdir()
        torch.save(adain.encoder((4, 8, 8, 16)).state_dict(), target / "vgg_normalised.pth")
        path = save_trap(target / "decoder.pth", marker, keys=("1.weight",))
        style = "picture"
    else:
        path = target = save_trap(tmp_path / "style_trap.pth", marker, keys=("model.1.weight",))
        style = "monet"
    ip.user_ns["picture"] = Image.new("RGB", (32, 32), (10, 120, 200))
    ran = run(f"%stylize --method {method} --content picture --style {style} -m {target}")
    assert_one_line_error(ran, f"does not hold a loadable {method} model")
    assert not marker.exists()
    assert session.current().cache.table() == []
    assert_trap_is_live(path, marker)


# -- 3. URLs: a deadline, a size cap, a content-type check ------------------------------------------------


class _Routes(http.server.BaseHTTPRequestHandler):
    """HTTP/1.0 responses that end when the connection closes, so Content-Length can be left out."""

    routes = {}
    hits = []

    def do_GET(self):
        self.hits.append(self.path)
        kind, body, send_length = self.routes.get(self.path, ("text/plain", b"not here", True))
        self.send_response(200)
        self.send_header("Content-Type", kind)
        if send_length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass

    def log_message(self, *args):
        pass


def png(size=(8, 8)):
    buffer = io.BytesIO()
    Image.new("RGB", size, (1, 2, 3)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def server():
    _Routes.routes = {
        "/page.png": ("text/html; charset=utf-8", png(), True),  # a real PNG, served as a web page
        "/big.png": ("image/png", png() + bytes(8000), False),  # no Content-Length: only counting stops it
        "/tune.wav": ("audio/wav", audio.wav_bytes(np.zeros((1, 100), dtype=np.float32), 8000), True),
        "/texts.txt": ("text/plain", b"a story to learn", True),
    }
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Routes)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture()
def stalled_url():
    """A server that accepts connections (the kernel's backlog does) and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/never.png"
    listener.close()


def one_line(excinfo):
    text = str(excinfo.value)
    assert "\n" not in text, text
    return text


def test_fetches_use_the_configured_deadline_and_cap(monkeypatch):
    assert 0 < media.URL_TIMEOUT_S <= 60 and 0 < media.MAX_FILE_BYTES <= 100 * 2**20
    seen = []
    monkeypatch.setattr(media, "_download", lambda url, timeout, max_bytes: seen.append((timeout, max_bytes)) or png())
    image, _ = refs.image("https://example.invalid/cat.png")
    assert image.size == (8, 8)
    assert seen == [(media.URL_TIMEOUT_S, media.MAX_FILE_BYTES)]


def test_a_stalled_server_is_given_up_on_at_the_deadline(stalled_url, monkeypatch):
    deadlines = []
    real_connect = socket.create_connection

    def connect(address, timeout=None, *args, **kwargs):
        deadlines.append(timeout)
        return real_connect(address, timeout, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", connect)
    monkeypatch.setattr(media, "URL_TIMEOUT_S", 0.2)
    with pytest.raises(CreativeError) as excinfo:
        refs.image(stalled_url)
    assert "did not answer" in one_line(excinfo) or "no answer within" in one_line(excinfo)
    assert deadlines == [0.2]  # the socket itself waits no longer than the deadline


def test_a_download_without_content_length_is_capped_while_it_streams(server, monkeypatch):
    monkeypatch.setattr(media, "MAX_FILE_BYTES", 4096)
    with pytest.raises(CreativeError) as excinfo:
        refs.image(f"{server}/big.png")
    assert "larger than" in one_line(excinfo)


def test_the_content_type_is_checked_before_the_bytes(server):
    with pytest.raises(CreativeError) as excinfo:
        refs.image(f"{server}/page.png")
    assert "is text/html, not an image" in one_line(excinfo)


def test_melodies_and_training_data_are_never_fetched_from_urls(server):
    """Only IMAGE arguments fetch URLs; a melody or --data URL is a missing file, and no request is made."""
    _Routes.hits.clear()
    with pytest.raises(CreativeError, match="does not exist"):
        audio.load_melody(f"{server}/tune.wav")
    with pytest.raises(CreativeError, match="does not exist"):
        audio.load_audio(f"{server}/clip.wav", "continue")
    with pytest.raises(CreativeError, match="does not exist"):
        refs.midi(f"{server}/phrase.mid")
    with pytest.raises(CreativeError, match="no file or folder"):
        corpus.read_texts(f"{server}/texts.txt")
    assert corpus.read_texts(f"{server}/story").texts == [f"{server}/story"]  # read as the text itself
    assert _Routes.hits == []


NETWORK_MODULES = {"urllib", "http", "socket", "requests", "httpx", "aiohttp", "urllib3", "ftplib", "openai"}
NETWORK_USERS = {
    "remote.py": "remote endpoints (-m ENDPOINT:MODEL) through the openai client, under remote_timeout; keys from the "
    "environment at call time, never shown (test_remote_secrets.py); socket only to tell a failed name lookup",
    "media.py": "IMAGE URLs: fetch_url, with the deadline, cap and content-type check above",
    "hub.py": "a TCP probe of the hub's host, with a 2 s deadline; fetches nothing",
    "loaders.py": "the hash-checked VGG19 download and the verified AdaIN / CycleGAN downloads, under a socket read deadline "
    "(test_vgg_weights.py, test_feedforward_weights.py)",
}


def test_only_the_known_modules_touch_the_network():
    users = set()
    for name, tree in parsed_sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            modules = {n.split(".")[0] for n in names if n != "urllib.parse"}  # parsing a URL fetches nothing
            if modules & NETWORK_MODULES:
                users.add(name)
        for call in calls(tree):
            if dotted(call.func).endswith(("urlopen", "urlretrieve", "download_url_to_file", "load_state_dict_from_url")):
                assert name == "loaders.py", f"{name}:{call.lineno} downloads {dotted(call.func)}"
    assert users <= set(NETWORK_USERS), users - set(NETWORK_USERS)


# -- 4. recipes: parsed as JSON and text, never evaluated or unpickled --------------------------------------


def test_no_eval_exec_or_dynamic_code_in_the_source():
    for name, tree in parsed_sources():
        for call in calls(tree):
            if isinstance(call.func, ast.Name):
                assert call.func.id not in {"eval", "exec", "compile", "__import__"}, f"{name}:{call.lineno} {call.func.id}()"
            assert dotted(call.func) not in {"builtins.eval", "builtins.exec", "code.interact"}, f"{name}:{call.lineno}"


def test_a_png_whose_chunks_hold_code_or_a_pickle_is_only_read_as_text(tmp_path):
    marker = tmp_path / "pwned-png"
    code = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    info = PngInfo()
    info.add_text("parameters", f"{code}\nSteps: 2, Sampler: Euler, Seed: 1, Model: {code}, Size: 8x8")
    path = tmp_path / "recipe.png"
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    recipe = creative_magics.read_recipe(str(path))
    assert recipe["prompt"] == code and recipe["model"] == code  # kept as text
    info = PngInfo()
    info.add_text("parameters", f"a cat\nSteps: {code}, Sampler: Euler, Seed: 1")
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    with pytest.raises(CreativeError, match="'Steps' value .* is not readable"):  # int() of it, no eval
        creative_magics.read_recipe(str(path))
    assert not marker.exists()

    pickled = pickle.dumps(Trap(marker), protocol=0).decode("ascii")  # protocol 0 is printable text
    info = PngInfo()
    info.add_text("parameters", "a cat\nSteps: 2, Sampler: Euler, Seed: 1")
    info.add_text(recipes.JSON_KEY, pickled)
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    with pytest.raises(CreativeError, match="damaged creative_magics recipe"):
        creative_magics.read_recipe(str(path))
    assert not marker.exists()

    info = PngInfo()
    info.add_text(recipes.JSON_KEY, json.dumps({"task": "stylize", "model": code, "params": {"steps": code}}))
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    assert creative_magics.read_recipe(str(path)) == {"task": "stylize", "model": code, "params": {"steps": code}}
    assert not marker.exists()


def test_a_midi_text_event_holding_a_pickle_is_not_a_recipe(tmp_path):
    from creative_magics import midi

    marker = tmp_path / "pwned-midi"
    song = mido.MidiFile()
    text = midi.RECIPE_PREFIX + pickle.dumps(Trap(marker), protocol=0).decode("latin-1")
    song.tracks.append(mido.MidiTrack([mido.MetaMessage("text", text=text)]))
    path = tmp_path / "piece.mid"
    song.save(str(path))
    assert audio.read_recipe(path) is None
    assert not marker.exists()


def test_a_wav_comment_holding_a_pickle_is_not_a_recipe(tmp_path):
    marker = tmp_path / "pwned-wav"
    data = bytearray(audio.wav_bytes(np.zeros((1, 16), dtype=np.float32), 8000))
    comment = pickle.dumps(Trap(marker), protocol=0) + b"\0"
    comment += b"\0" * (len(comment) % 2)
    listed = b"INFO" + b"ICMT" + struct.pack("<I", len(comment)) + comment
    data += b"LIST" + struct.pack("<I", len(listed)) + listed
    data[4:8] = struct.pack("<I", len(data) - 8)
    path = tmp_path / "tune.wav"
    path.write_bytes(bytes(data))
    assert audio.read_recipe(path) is None
    assert not marker.exists()
