"""VGG19 weights: torchvision's state dict loads into our net; a local file via %config; hashes are checked."""

import functools
import hashlib
import http.server
import threading

import pytest
import torch

from creative_magics import loaders, session
from creative_magics.errors import ModelNotAvailable
from creative_magics.models import resolve
from creative_magics.nets import vgg


def torchvision_like_state(widths=(4, 8, 8, 16, 16)):
    """A state dict with torchvision's VGG19 keys (features.N.*, classifier.*) and small random values."""
    torch.manual_seed(3)
    net = vgg.VGG19Features(widths)
    state = {f"features.{k}": v for k, v in net.features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)
    return state


def default_profile_session():
    session.reset()
    current = session.current()
    current.settings.profile = "default"
    return current


def test_a_torchvision_state_dict_file_set_in_config_loads_with_weights_only(tmp_path, monkeypatch):
    path = tmp_path / "my-vgg.pth"
    torch.save(torchvision_like_state(), path)
    calls = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(k) or real_load(*a, **k))
    current = default_profile_session()
    current.settings.vgg_weights = str(path)
    net = current.cache.get("stylize", "vgg19")
    assert calls and all(k.get("weights_only") is True for k in calls)
    assert torch.equal(net.features[0].weight, torchvision_like_state()["features.0.weight"])
    session.reset()


def test_wrong_hash_in_a_torchvision_named_file_is_one_line(tmp_path):
    path = tmp_path / "vgg19-dcbb9e9d.pth"
    torch.save(torchvision_like_state(), path)
    current = default_profile_session()
    current.settings.vgg_weights = str(path)
    with pytest.raises(ModelNotAvailable, match="has the wrong hash"):
        current.cache.get("stylize", "vgg19")
    assert current.cache.table() == []
    session.reset()


def test_a_right_hash_passes(tmp_path):
    scratch = tmp_path / "scratch.pth"
    torch.save(torchvision_like_state(), scratch)
    digest = hashlib.sha256(scratch.read_bytes()).hexdigest()[:8]
    path = tmp_path / f"vgg19-{digest}.pth"
    scratch.rename(path)
    current = default_profile_session()
    current.settings.vgg_weights = str(path)
    assert current.cache.get("stylize", "vgg19") is not None
    session.reset()


def test_not_a_weights_file_is_one_line(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("not a checkpoint")
    current = default_profile_session()
    current.settings.vgg_weights = str(path)
    with pytest.raises(ModelNotAvailable, match="is not a VGG19 weights file"):
        current.cache.get("stylize", "vgg19")
    session.reset()


def test_a_missing_configured_file_is_one_line(tmp_path):
    current = default_profile_session()
    current.settings.vgg_weights = str(tmp_path / "nowhere.pth")
    with pytest.raises(ModelNotAvailable, match="does not exist"):
        current.cache.get("stylize", "vgg19")
    session.reset()


@pytest.fixture()
def local_server(tmp_path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_download_checks_the_hash_and_keeps_no_damaged_file(local_server, tmp_path_factory, monkeypatch):
    served, base = local_server
    torch.save(torchvision_like_state(), served / "vgg19-00000000.pth")  # its name promises a hash it has not
    monkeypatch.setattr(vgg, "TORCHVISION_URL", f"{base}/vgg19-00000000.pth")
    hub_dir = tmp_path_factory.mktemp("torch_hub")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub_dir))
    current = default_profile_session()
    with pytest.raises(ModelNotAvailable, match="damaged"):
        current.cache.get("stylize", "vgg19")
    assert not (hub_dir / "checkpoints" / "vgg19-00000000.pth").exists()
    session.reset()


def test_download_with_the_right_hash_is_used(local_server, tmp_path_factory, monkeypatch):
    served, base = local_server
    torch.save(torchvision_like_state(), served / "scratch.pth")
    digest = hashlib.sha256((served / "scratch.pth").read_bytes()).hexdigest()[:8]
    (served / "scratch.pth").rename(served / f"vgg19-{digest}.pth")
    monkeypatch.setattr(vgg, "TORCHVISION_URL", f"{base}/vgg19-{digest}.pth")
    hub_dir = tmp_path_factory.mktemp("torch_hub")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub_dir))
    current = default_profile_session()
    net = current.cache.get("stylize", "vgg19")
    assert (hub_dir / "checkpoints" / f"vgg19-{digest}.pth").exists()
    assert net.widths == vgg.VGG19_WIDTHS or net.features[0].weight.shape[0] == 4
    session.reset()


def test_tiny_profile_needs_no_download():
    assert resolve("stylize", "vgg19", profile="tiny").source == "tiny-vgg19"


def test_a_download_that_stalls_is_given_up_in_one_line(tmp_path_factory, monkeypatch):
    """torch.hub's download has no timeout of its own: a server that stops sending mid-file must not
    hang the cell forever (the read deadline is patched small here; no clock is asserted)."""
    release = threading.Event()

    class Stalling(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(10**6))
            self.end_headers()
            self.wfile.write(b"\0" * 1000)
            self.wfile.flush()
            release.wait(30)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stalling)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(vgg, "TORCHVISION_URL", f"http://127.0.0.1:{server.server_address[1]}/vgg19-dcbb9e9d.pth")
        monkeypatch.setattr(loaders, "DOWNLOAD_STALL_S", 0.3)
        hub_dir = tmp_path_factory.mktemp("torch_hub")
        monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub_dir))
        current = default_profile_session()
        with pytest.raises(ModelNotAvailable, match="downloading the VGG19 weights failed.*try again"):
            current.cache.get("stylize", "vgg19")
        assert not (hub_dir / "checkpoints" / "vgg19-dcbb9e9d.pth").exists()
        assert current.cache.table() == []
    finally:
        release.set()
        server.shutdown()
        session.reset()
