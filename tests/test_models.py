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
    assert resolve("story", "gpt2-xl").kind == "hub"  # a legacy hub id without an owner


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


def test_auto_profile_falls_back_to_tiny_and_says_so_once(monkeypatch, capsys):
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=2.0: False)
    current = session.Session()
    current.settings.profile = "auto"
    assert current.effective_profile() == "tiny"
    assert current.effective_profile() == "tiny"
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "tiny offline models" in out[0]
    assert current.resolve("story", "gpt2").source == "tiny-gpt2"


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
