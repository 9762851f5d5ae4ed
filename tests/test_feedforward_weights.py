"""The published AdaIN and CycleGAN weights: downloaded once on first use from their authors' release
URLs (here a local server stands in), verified before use (every byte the server announced, a size no
smaller than the tensors, the published SHA-256 where there is one), read with weights_only=True, kept
warm; a truncated, stalled, damaged or booby-trapped file is refused in one line and leaves nothing."""

import dataclasses
import functools
import hashlib
import http.server
import threading

import pytest
import torch

from creative_magics import hub, loaders, session
from creative_magics.errors import ModelNotAvailable
from creative_magics.nets import adain, cyclegan


@pytest.fixture(autouse=True)
def private_home(tmp_path, monkeypatch):
    """Each test its own models folder (downloads land in it); the tiny models are shared."""
    from creative_magics import paths

    shared_tiny = paths.home() / "tiny"
    shared_tiny.mkdir(parents=True, exist_ok=True)
    home = tmp_path / "home"
    home.mkdir()
    (home / "tiny").symlink_to(shared_tiny, target_is_directory=True)
    monkeypatch.setenv("CREATIVE_MAGICS_HOME", str(home))
    return home


def adain_states(widths=(4, 8, 8, 16)):
    torch.manual_seed(3)
    net = adain.AdaIN(widths)
    return net.encoder.state_dict(), net.decoder.state_dict()


def default_profile_session():
    session.reset()
    current = session.current()
    current.settings.profile = "default"
    return current


class Handler(http.server.SimpleHTTPRequestHandler):
    """Files from the served folder; /short/NAME announces more bytes than it sends, then hangs up."""

    def do_GET(self):
        if self.path.startswith("/short/"):
            body = (self.server.folder / self.path[len("/short/"):]).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body) + 1000))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.close()
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture()
def server(tmp_path):
    folder = tmp_path / "served"
    folder.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
    httpd.folder = folder
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    hub.forget()
    yield folder, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    hub.forget()
    session.reset()


def publish_adain(monkeypatch, base, folder, path="", **changes):
    """Serve a tiny AdaIN as the release's two .pth files, and point the published URLs at them."""
    encoder, decoder = adain_states()
    torch.save(encoder, folder / "vgg_normalised.pth")
    torch.save(decoder, folder / "decoder.pth")
    files = []
    for item, state in zip(adain.PUBLISHED, (encoder, decoder)):
        tensors = sum(t.numel() * t.element_size() for t in state.values())
        files.append(dataclasses.replace(item, url=f"{base}/{path}{item.name}", min_bytes=tensors, **changes))
    monkeypatch.setattr(adain, "PUBLISHED", tuple(files))
    return files


def test_adain_downloads_once_verifies_and_records_the_weights(server, monkeypatch):
    folder, base = server
    publish_adain(monkeypatch, base, folder)
    loads = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: loads.append(k) or real_load(*a, **k))
    current = default_profile_session()
    net = current.cache.get("stylize", current.resolve("stylize", None, method="adain"))
    assert loads and all(k.get("weights_only") is True for k in loads)
    stored = loaders.weights_folder("adain")
    assert sorted(p.name for p in stored.iterdir()) == ["decoder.pth", "vgg_normalised.pth"]  # no partial file left
    assert [w["url"] for w in net.weights] == [f"{base}/vgg_normalised.pth", f"{base}/decoder.pth"]
    assert net.weights[1]["sha256"] == hashlib.sha256((folder / "decoder.pth").read_bytes()).hexdigest()
    assert torch.equal(net.decoder[28].weight, adain_states()[1]["28.weight"])
    (folder / "decoder.pth").unlink()  # a second session reads the files it has, and fetches nothing
    again = default_profile_session().cache.get("stylize", session.current().resolve("stylize", None, method="adain"))
    assert torch.equal(again.decoder[28].weight, net.decoder[28].weight)


def test_a_download_cut_short_is_one_line_and_leaves_nothing(server, monkeypatch):
    folder, base = server
    publish_adain(monkeypatch, base, folder, path="short/")
    current = default_profile_session()
    with pytest.raises(ModelNotAvailable) as caught:
        current.cache.get("stylize", current.resolve("stylize", None, method="adain"))
    message = str(caught.value)
    assert "\n" not in message and ("stopped at" in message or "downloading the AdaIN weights failed" in message), message
    assert not loaders.weights_folder("adain").exists() or list(loaders.weights_folder("adain").iterdir()) == []
    assert current.cache.table() == []


def test_a_file_shorter_than_its_tensors_is_refused_before_it_is_read(server, monkeypatch):
    folder, base = server
    files = publish_adain(monkeypatch, base, folder)
    stored = loaders.weights_folder("adain")
    stored.mkdir(parents=True, exist_ok=True)
    whole = (folder / "decoder.pth").read_bytes()
    (stored / "vgg_normalised.pth").write_bytes((folder / "vgg_normalised.pth").read_bytes())
    (stored / "decoder.pth").write_bytes(whole[: files[1].min_bytes // 2])  # a download truncated by hand, say
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("a truncated file was read"))
    current = default_profile_session()
    with pytest.raises(ModelNotAvailable, match=r"decoder.pth is .* bytes, less than the .* its tensors take: the file is truncated"):
        current.cache.get("stylize", current.resolve("stylize", None, method="adain"))


def test_a_published_hash_is_checked(server, monkeypatch):
    folder, base = server
    publish_adain(monkeypatch, base, folder, sha256="0" * 64)
    current = default_profile_session()
    with pytest.raises(ModelNotAvailable, match="has the wrong hash"):
        current.cache.get("stylize", current.resolve("stylize", None, method="adain"))
    assert not (loaders.weights_folder("adain") / "vgg_normalised.pth").exists()


def test_a_right_published_hash_passes(server, monkeypatch):
    folder, base = server
    files = publish_adain(monkeypatch, base, folder)
    digests = [hashlib.sha256((folder / item.name).read_bytes()).hexdigest() for item in files]
    monkeypatch.setattr(adain, "PUBLISHED", tuple(dataclasses.replace(item, sha256=d) for item, d in zip(files, digests)))
    current = default_profile_session()
    assert current.cache.get("stylize", current.resolve("stylize", None, method="adain")) is not None


def test_an_unreachable_host_is_one_line_that_says_where_to_put_the_files(monkeypatch):
    monkeypatch.setattr(hub, "reachable_url", lambda url, timeout=2.0: False)
    current = default_profile_session()
    with pytest.raises(ModelNotAvailable) as caught:
        current.cache.get("stylize", current.resolve("stylize", None, method="adain"))
    message = str(caught.value)
    assert "not downloaded yet and github.com is unreachable" in message and str(loaders.weights_folder("adain")) in message
    painter = current.resolve("stylize", "cyclegan-ukiyoe", method="cyclegan")
    assert painter.kind == "download"
    with pytest.raises(ModelNotAvailable, match="CycleGAN ukiyoe generator .* efrosgans.eecs.berkeley.edu is unreachable"):
        current.cache.get("stylize", painter)
    session.reset()


def test_a_painter_downloads_and_paints(server, monkeypatch, ip, run):
    folder, base = server
    torch.manual_seed(4)
    net = cyclegan.ResnetGenerator(ngf=4)
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, folder / "style_cezanne.pth")  # DataParallel-style keys
    item = dataclasses.replace(cyclegan.PUBLISHED["cezanne"], url=f"{base}/style_cezanne.pth", min_bytes=1000)
    monkeypatch.setattr(cyclegan, "PUBLISHED", {**cyclegan.PUBLISHED, "cezanne": item})
    ip.run_line_magic("config", "CreativeMagics.profile = 'default'")
    from PIL import Image

    ip.user_ns["photo"] = Image.new("RGB", (60, 44), (40, 120, 200))
    ran = run("%stylize --method cyclegan --content photo --style cezanne -o painted")
    assert ran.ok, ran.err
    result = ip.user_ns["painted"]
    assert result.image.size == (60, 44) and result.recipe["weights"][0]["url"] == f"{base}/style_cezanne.pth"
    assert (loaders.weights_folder("cyclegan") / "style_cezanne.pth").exists()


def test_a_stalled_download_is_given_up_in_one_line(tmp_path, monkeypatch):
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

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stalling)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{httpd.server_address[1]}"
        monkeypatch.setattr(adain, "PUBLISHED", tuple(dataclasses.replace(item, url=f"{base}/{item.name}") for item in adain.PUBLISHED))
        monkeypatch.setattr(loaders, "DOWNLOAD_STALL_S", 0.3)
        current = default_profile_session()
        with pytest.raises(ModelNotAvailable, match="downloading the AdaIN weights .* failed .*try again"):
            current.cache.get("stylize", current.resolve("stylize", None, method="adain"))
        assert not loaders.weights_folder("adain").exists() or list(loaders.weights_folder("adain").iterdir()) == []
    finally:
        release.set()
        httpd.shutdown()
        hub.forget()
        session.reset()


def test_a_booby_trapped_download_is_refused_in_one_line_and_never_runs(server, monkeypatch, tmp_path):
    from test_security import Trap, assert_trap_is_live

    folder, base = server
    files = publish_adain(monkeypatch, base, folder)
    marker = tmp_path / "pwned-download"
    torch.save({key: Trap(marker) for key in ("1.weight", "5.weight")}, folder / "decoder.pth")
    monkeypatch.setattr(adain, "PUBLISHED", (files[0], dataclasses.replace(files[1], min_bytes=10)))
    current = default_profile_session()
    with pytest.raises(ModelNotAvailable, match="does not hold loadable AdaIN weights .*delete it to download it again"):
        current.cache.get("stylize", current.resolve("stylize", None, method="adain"))
    assert not marker.exists()
    assert current.cache.table() == []
    assert_trap_is_live(folder / "decoder.pth", marker)
