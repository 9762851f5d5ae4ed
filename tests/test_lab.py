"""`make lab` on any machine: as root it adds --allow-root (Docker, cloud machines), with no display it opens no
browser and says to open the URL JupyterLab prints, on a desktop it opens the browser. Driven for real as
root in a clean clone, up to the server answering, then stopped with every process it started."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
URL = re.compile(r"(http://(?:localhost|127\.0\.0\.1):(\d+)/lab\S*?\?token=(\w+))")


def shim_venv(folder, real_bin=None, jupyter=None):
    """A venv folder for `make lab VENV=...` that is already installed: its bin/ links to `real_bin` (the
    running venv's), or holds a fake `jupyter`; its .installed is newer than any pyproject.toml."""
    bin_dir = folder / "bin"
    bin_dir.mkdir(parents=True)
    if real_bin is not None:
        for entry in Path(real_bin).iterdir():
            (bin_dir / entry.name).symlink_to(entry)
    if jupyter is not None:
        (bin_dir / "jupyter").write_text(jupyter)
        (bin_dir / "jupyter").chmod(0o755)
    (bin_dir / ".installed").touch()
    return folder


def headless_env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MAKEFLAGS", "MAKELEVEL")}
    env.update(JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"), JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"))
    env.update(extra)
    return env


FAKE_JUPYTER = '#!/bin/sh\necho "jupyter $* profile=$CREATIVE_MAGICS_PROFILE"\n'
FAKE_ID = '#!/bin/sh\nif [ "$1" = "-u" ]; then echo 1000; else exec /usr/bin/id "$@"; fi\n'


def fake_lab(tmp_path, **env):
    venv = shim_venv(tmp_path / "venv", jupyter=FAKE_JUPYTER)
    done = subprocess.run(["make", "-s", "-C", str(ROOT), "lab", f"VENV={venv}"], env=headless_env(tmp_path, **env),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.skipif(sys.platform != "linux", reason="the display and root checks are those of a Linux machine")
def test_headless_as_the_user_it_is_no_browser_and_the_url_is_said(tmp_path):
    out = fake_lab(tmp_path)
    command = out.splitlines()[-1]
    assert command.startswith("jupyter lab") and command.endswith("notebooks/quickstart.ipynb profile=auto")
    assert "--no-browser" in command and "no browser opens" in out and "URL JupyterLab prints" in out
    assert ("--allow-root" in command) == (os.geteuid() == 0)


@pytest.mark.skipif(sys.platform != "linux", reason="the display and root checks are those of a Linux machine")
def test_on_a_desktop_it_opens_the_browser_and_not_as_root_it_adds_nothing(tmp_path):
    fake_bin = tmp_path / "fake-bin"
    fake_bin.mkdir()
    (fake_bin / "id").write_text(FAKE_ID)
    (fake_bin / "id").chmod(0o755)
    out = fake_lab(tmp_path, DISPLAY=":0", PATH=f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    assert out.strip() == "jupyter lab notebooks/quickstart.ipynb profile=auto"
    out = fake_lab(tmp_path / "wayland", WAYLAND_DISPLAY="wayland-0")
    assert "--no-browser" not in out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_everything(process):
    """Stop `make lab` and every process it started (its process group, and any child that left it)."""
    import psutil

    try:
        tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        tree = []
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        for each in tree:
            try:
                each.send_signal(sig)
            except psutil.NoSuchProcess:
                pass
        gone, alive = psutil.wait_procs(tree, timeout=20)
        if not alive:
            break
    process.wait(timeout=20)
    return tree


@pytest.mark.skipif(sys.platform != "linux" or os.geteuid() != 0 or not shutil.which("git"), reason="runs as root on Linux")
def test_make_lab_as_root_in_a_clean_clone_serves_jupyterlab(tmp_path):
    """The README's `make lab`, in a clone of this commit, as root with no display (the venv is the one
    running the tests, so nothing is installed): JupyterLab starts with --allow-root and --no-browser,
    prints its URL and answers there; then it is stopped, with everything it started."""
    import psutil

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)], check=True)
    old = time.time() - 3600
    os.utime(clone / "pyproject.toml", (old, old))
    venv = shim_venv(tmp_path / "venv", real_bin=Path(sys.executable).parent)
    log = open(tmp_path / "lab.log", "w+")
    port = free_port()
    process = subprocess.Popen(
        ["make", "-C", str(clone), "lab", f"VENV={venv}", f"LAB_ARGS=--port={port} --ServerApp.port_retries=50"],
        stdout=log, stderr=subprocess.STDOUT, env=headless_env(tmp_path, HF_HUB_OFFLINE="1"), start_new_session=True,
    )
    tree = []
    try:
        found = None
        for _ in range(600):  # until the URL is printed (a guard against a server that never starts)
            log.seek(0)
            text = log.read()
            found = URL.search(text)
            if found or process.poll() is not None:
                break
            time.sleep(0.5)
        assert found, text
        assert "no browser opens" in text
        url, port, token = found.groups()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=30) as answer:
            assert answer.status == 200 and b"started" in answer.read()
        lab = [p for p in psutil.Process(process.pid).children(recursive=True) if "lab" in " ".join(p.cmdline())]
        assert lab, "no JupyterLab process"
        command = lab[0].cmdline()
        assert "--allow-root" in command and "--no-browser" in command and command[-1] == "notebooks/quickstart.ipynb"
        assert lab[0].environ().get("CREATIVE_MAGICS_PROFILE") == "auto"
    finally:
        tree = stop_everything(process)
        log.close()
    assert tree and not [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
