"""The widgets in a real browser: JupyterLab 4 and Notebook 7 on 127.0.0.1 (private config, data and
runtime dirs) driven by Debian's Chromium through Playwright for Python (../shared/notes/browser-e2e.md).

It loads the extension with the tiny profile, opens the panel and the style canvas, moves the
temperature slider, draws a stroke, runs the image magics that take `canvas` (a %%paint from the drawing,
then a %%paint that repaints where the stroke was drawn, `--mask canvas`) and a %%story that
uses the panel's temperature, clicks "Run again", and checks from the kernel's side (a second
client on the same kernel) that the slider value and the drawn pixels arrived and the results
appeared. In Notebook 7's own notebook page it opens the panel and the canvas, moves the slider and
draws a stroke, with the same kernel-side checks. Element screenshots go to artifacts/browser-e2e/
(JupyterLab) and artifacts/browser-e2e/notebook7/ (git-ignored). Every process it starts is stopped.

Each test skips when Chromium (/usr/bin/chromium), Playwright or its server (JupyterLab, Notebook)
is missing, unless CREATIVE_MAGICS_REQUIRE_BROWSER=1, where a missing piece fails the test.
"""

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("CREATIVE_MAGICS_CHROMIUM", "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts" / "browser-e2e"
NOTEBOOK7_ARTIFACTS = ARTIFACTS / "notebook7"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT_MS = 300_000  # generous: the first run of a cell builds and loads tiny models

SETUP_CELLS = [
    "%load_ext creative_magics",
    "%creative panel",
    "%creative canvas --width 256 --height 256",
]
STORY_CELL = "%%story -m gpt2 --max-new-tokens 8 --seed 5 -o tale\nOnce upon a time"
# The magics that take the canvas as an IMAGE; each runs when that magic exists in this build.
# (name, cell, variable it stores, what its recipe must say about the canvas)
IMAGE_STEPS = [
    (
        "paint",
        "%%paint --init canvas --steps 2 --width 64 --height 64 --seed 1 -o painted\na red square",
        "painted",
        "recipe['params']['init'] == 'canvas' and recipe['init_hash'] == media.image_hash(canvas.to_image())",
    ),
    (
        # the stroke drawn on the canvas is the mask: it repaints that part of the picture just made
        "paint-mask",
        "%%paint --init painted --mask canvas --steps 2 --seed 2 -o inpainted\na blue river",
        "inpainted",
        "recipe['params']['mask'] == 'canvas' and recipe['mask_hash'] == media.image_hash(canvas.to_mask())"
        " and canvas.to_mask().getextrema() == (0, 255) and inpainted.image.size == painted.image.size",
    ),
    (
        "stylize",
        "%stylize --content last --style canvas --steps 2 --size 32 --seed 1 -o styled",
        "styled",
        "'canvas' in json.dumps(recipe)",
    ),
]


def _missing(reason):
    if os.environ.get("CREATIVE_MAGICS_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (CREATIVE_MAGICS_REQUIRE_BROWSER=1 makes this a failure)")
    pytest.skip(reason)


def _require_browser(server_module):
    """Skip (or fail, with CREATIVE_MAGICS_REQUIRE_BROWSER=1) unless Chromium, Playwright and the server are here."""
    if not os.path.exists(CHROMIUM):
        _missing(f"no Chromium at {CHROMIUM}: apt-get install -y chromium")
    for module in ("playwright", server_module, "psutil"):
        if importlib.util.find_spec(module) is None:
            _missing(f"{module} is not installed: pip install -e '.[browser]'")


def _available_magics():
    from creative_magics.magics import CreativeMagics

    return {name for name, *_ in IMAGE_STEPS if hasattr(CreativeMagics, name.split("-")[0])}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _notebook(path, cells):
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nbformat.write(notebook, str(path))


# How each front-end is served and where its page for e2e.ipynb is. Notebook 7's pages take their
# settings from JupyterLab's server extension running inside the Notebook server, so the settings
# dir goes to both apps there; on JupyterLab's command line it is given once (given twice, the
# override was silently lost).
SERVERS = {
    "jupyterlab": {
        "module": "jupyterlab",
        "page": "/lab/tree/e2e.ipynb?reset",
        "settings_apps": ("LabApp",),
    },
    "notebook": {
        "module": "notebook",
        "page": "/notebooks/e2e.ipynb",
        "settings_apps": ("LabApp", "JupyterNotebookApp"),
    },
}


class Lab:
    """A private JupyterLab (or, with app="notebook", Notebook 7) server; `stop()` shuts its kernels
    and ends every process it started."""

    def __init__(self, home, notebook_cells, app="jupyterlab"):
        import psutil

        server = SERVERS[app]
        self.home = home
        self.dirs = {name: home / name for name in ("config", "data", "runtime", "ipython", "settings", "work")}
        for folder in self.dirs.values():
            folder.mkdir(parents=True, exist_ok=True)
        (self.dirs["settings"] / "overrides.json").write_text(
            json.dumps({"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}})
        )
        _notebook(self.dirs["work"] / "e2e.ipynb", notebook_cells)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.notebook_url = self.url + server["page"]
        env = dict(
            os.environ,
            JUPYTER_CONFIG_DIR=str(self.dirs["config"]),
            JUPYTER_DATA_DIR=str(self.dirs["data"]),
            JUPYTER_RUNTIME_DIR=str(self.dirs["runtime"]),
            IPYTHONDIR=str(self.dirs["ipython"]),
            HF_HUB_OFFLINE="1",
            CREATIVE_MAGICS_PROFILE="tiny",
            TOKENIZERS_PARALLELISM="false",
            TRANSFORMERS_VERBOSITY="error",
        )
        self.log = open(home / "jupyter.log", "wb")
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", server["module"],
                "--no-browser", "--ip=127.0.0.1", f"--port={self.port}", "--allow-root",
                "--ServerApp.token=", "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True",
                f"--ServerApp.root_dir={self.dirs['work']}",
                *(f"--{name}.app_settings_dir={self.dirs['settings']}" for name in server["settings_apps"]),
                "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            ],
            cwd=self.dirs["work"],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.server = psutil.Process(self.process.pid)
        self.children = set()
        deadline = time.monotonic() + 120
        while True:
            try:
                _get_json(self.url + "/api/status")
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{app} did not start; see " + str(home / "jupyter.log"))
                time.sleep(0.25)

    def wait_for_idle_kernel(self, page=None):
        """Wait until the notebook's kernel is idle; with `page`, accept a kernel-choice dialog if one shows."""
        deadline = time.monotonic() + WAIT_MS / 1000
        while True:
            try:
                kernels = _get_json(self.url + "/api/kernels")
            except urllib.error.HTTPError as err:  # the server may answer 500 while a kernel starts
                if err.code < 500 or time.monotonic() > deadline:
                    raise
                kernels = []
            if kernels and kernels[0].get("execution_state") == "idle":
                return
            if page is not None:
                accept = page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept")
                if accept.count() and accept.first.is_visible():
                    label = accept.first.inner_text().strip().lower()
                    if label in ("select", "accept", "select kernel", "ok"):
                        accept.first.click()
            if time.monotonic() > deadline:
                raise AssertionError(f"the notebook's kernel did not start: {kernels}")
            time.sleep(0.25)

    def kernel_client(self):
        """A second client on the notebook's kernel, to look from the kernel's side."""
        from jupyter_client import BlockingKernelClient

        kernels = _get_json(self.url + "/api/kernels")
        assert len(kernels) == 1, kernels
        self.note_children()
        client = BlockingKernelClient(connection_file=str(self.dirs["runtime"] / f"kernel-{kernels[0]['id']}.json"))
        client.load_connection_file()
        client.start_channels()
        client.wait_for_ready(timeout=120)
        return client

    def note_children(self):
        import psutil

        try:
            self.children.update(self.server.children(recursive=True))
        except psutil.NoSuchProcess:
            pass

    def stop(self):
        import psutil

        self.note_children()
        try:
            for kernel in _get_json(self.url + "/api/kernels"):
                request = urllib.request.Request(f"{self.url}/api/kernels/{kernel['id']}", method="DELETE")
                urllib.request.urlopen(request, timeout=30).close()
        except OSError:
            pass
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        _, alive = psutil.wait_procs(list(self.children), timeout=15)
        for process in alive:  # only processes this server started
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=15)
        self.log.close()
        return [p.pid for p in self.children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def kernel_json(client, code):
    """Run `code` in the kernel (it prints one JSON line) and return the parsed value."""
    out, errors = [], []

    def hook(message):
        kind, content = message["msg_type"], message["content"]
        if kind == "stream" and content["name"] == "stdout":
            out.append(content["text"])
        elif kind == "error":
            errors.append("\n".join(content["traceback"]))

    client.execute_interactive(code, output_hook=hook, timeout=WAIT_MS / 1000)
    assert not errors, errors[0]
    text = "".join(out).strip()
    try:
        return json.loads(text.splitlines()[-1])
    except (ValueError, IndexError):
        raise AssertionError(f"the kernel printed {text!r}") from None


def kernel_until(client, code, ok, what):
    """Ask the kernel until `ok(answer)`; waits for the browser's messages to arrive (generously)."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        answer = kernel_json(client, code)
        if ok(answer):
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: the kernel still says {answer}")
        time.sleep(0.5)


def run_cell(page, index):
    """Run notebook cell `index` in place (click its editor, Ctrl+Enter) and wait until it finishes.

    A key press that JupyterLab drops (it happens to the first one while the page settles) is
    pressed again, only while the cell has not started."""
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    prompt = cell.locator(".jp-InputPrompt")
    started = """(el) => /\\[(\\*|\\d+)\\]/.test(el.textContent)"""
    for attempt in range(5):
        cell.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Control+Enter")
        try:
            page.wait_for_function(started, arg=prompt.element_handle(), timeout=10_000)
            break
        except Exception:
            if attempt == 4:
                raise
    page.wait_for_function(
        """(el) => /\\[\\d+\\]/.test(el.textContent)""",
        arg=prompt.element_handle(),
        timeout=WAIT_MS,
    )
    page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=WAIT_MS)
    return cell


def shot(locator, name, folder=ARTIFACTS):
    folder.mkdir(parents=True, exist_ok=True)
    locator.scroll_into_view_if_needed()
    locator.screenshot(path=str(folder / f"{name}.png"))


STATE = """
import json
import numpy as np
from creative_magics import media, session as _s
from creative_magics.widgets import canvas as _c, panel as _p
_session = _s.current()
_panel, _canvas = _p._opened, _c._opened
print(json.dumps({
    "temperature": _panel.controls["story"]["temperature"].value,
    "panel_story": _panel.values("story"),
    "strokes": [[list(p) for p in s.points] for s in _canvas.strokes],
    "dark_pixels": int((np.asarray(_canvas.to_image().convert("L")) < 128).sum()),
    "results": [getattr(r, "kind", None) for r in _session.results],
}))
"""

SWEPT = """
import json
from creative_magics import session as _s
_results = list(_s.current().results)
_last = _results[-1] if _results else None
print(json.dumps({
    "results": len(_results),
    "cells": len(getattr(_last, "cells", None) or []),
    "sweep": (getattr(_last, "recipe", None) or {}).get("params", {}).get("sweep"),
}))
"""

GALLERY_CELL = "%creative gallery"
GALLERY = """
import json
from creative_magics import session as _s
from creative_magics.widgets import gallery as _g
_gallery = _g._opened
print(json.dumps({
    "tiles": len(_gallery.tiles.children) if _gallery is not None else 0,
    "selected": _s.current().number_of(_gallery.selected) if _gallery is not None and _gallery.selected is not None else None,
    "large": len(_gallery.large.outputs) if _gallery is not None else 0,
}))
"""

BROWSER_MATCHES = """
import io, json
import numpy as np
from PIL import Image
from creative_magics.widgets import canvas as _c
_canvas = _c._opened
_data = _canvas.drawing.image_data
if _data is None:
    print(json.dumps(None))
else:
    _shown = np.asarray(Image.open(io.BytesIO(_data)).convert("RGB"), dtype=np.int16)
    _ours = np.asarray(_canvas.to_image(), dtype=np.int16)
    print(json.dumps(float(np.abs(_shown - _ours).max()) if _shown.shape == _ours.shape else str(_shown.shape)))
"""


def move_temperature_slider(page, client, panel_index=1):
    """Drag the panel's temperature slider to the right; check from the kernel that the slider and
    the panel hold the value the browser shows. Returns (the panel's view, that value)."""
    panel_cell = page.locator(".jp-Notebook .jp-Cell").nth(panel_index)
    panel_view = panel_cell.locator(".creative-magics-panel")
    panel_view.wait_for()
    slider = panel_view.locator(".widget-slider").filter(has_text="temperature").first
    handle = slider.locator(".noUi-handle")
    box = handle.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 80, box["y"] + box["height"] / 2, steps=10)
    page.mouse.up()
    page.wait_for_function(
        "(el) => el.textContent.trim() !== '0.80'", arg=slider.locator(".widget-readout").element_handle()
    )
    shown = float(slider.locator(".widget-readout").inner_text())
    state = kernel_until(
        client, STATE, lambda s: s["panel_story"].get("temperature") is not None, "the slider value"
    )
    assert shown > 0.8
    assert state["temperature"] == pytest.approx(shown, abs=0.005)
    assert state["panel_story"]["temperature"] == pytest.approx(shown, abs=0.005)
    return panel_view, shown


def draw_stroke(page, client, canvas_index=2):
    """Draw one stroke on the 256x256 style canvas; check from the kernel its points and dark pixels,
    and that the pixels the browser reports back match the kernel's PIL rendering. Returns the
    canvas widget's view."""
    # the browser reports its pixels back, to compare with the PIL rendering
    kernel_json(client, "from creative_magics.widgets import canvas as _c\n_c._opened.drawing.sync_image_data = True\nprint('1')")
    canvas_cell = page.locator(".jp-Notebook .jp-Cell").nth(canvas_index)
    drawing = canvas_cell.locator(".jp-OutputArea-output canvas").first
    drawing.scroll_into_view_if_needed()
    box = drawing.bounding_box()
    page.mouse.move(box["x"] + 30, box["y"] + 30)
    page.mouse.down()
    page.mouse.move(box["x"] + 200, box["y"] + 150, steps=25)
    page.mouse.up()
    state = kernel_until(client, STATE, lambda s: len(s["strokes"]) == 1, "the stroke")
    points = state["strokes"][0]
    scale = 256 / box["width"]  # canvas pixels per CSS pixel (1 unless the output is narrower)
    assert len(points) >= 10
    assert points[0] == pytest.approx([30 * scale, 30 * scale], abs=3)
    assert points[-1] == pytest.approx([200 * scale, 150 * scale], abs=3)
    assert state["dark_pixels"] > 12 * 150  # a 12-pixel brush along the path, in the kernel's image
    difference = kernel_until(
        client, BROWSER_MATCHES, lambda d: isinstance(d, float) and d <= 2, "the browser's pixels vs the PIL rendering"
    )
    assert difference <= 2
    return canvas_cell.locator(".creative-magics-style-canvas")


@contextlib.contextmanager
def opened_page(server, artifacts):
    """A Chromium page on `server`'s notebook, set up to open the kernel and connect a client
    (`session["client"]`). A failure leaves a screenshot of the page; every process is stopped."""
    from playwright.sync_api import sync_playwright

    session = {"client": None}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(WAIT_MS)
            try:
                page.goto(server.notebook_url)
                yield page, session
            except Exception:
                artifacts.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(artifacts / "failure-page.png"))  # what the browser showed
                raise
            finally:
                browser.close()
    finally:
        if session["client"] is not None:
            session["client"].stop_channels()
        left = server.stop()
        assert left == [], f"processes left running: {left}"


def test_panel_canvas_and_magics_in_jupyterlab(tmp_path):
    _require_browser("jupyterlab")

    for old in ARTIFACTS.glob("*.png"):  # this test's screenshots of an earlier run (not notebook7/)
        old.unlink()
    steps = [step for step in IMAGE_STEPS if step[0] in _available_magics()]
    cells = SETUP_CELLS + [STORY_CELL] + [cell for _, cell, _, _ in steps] + [GALLERY_CELL]
    lab = Lab(tmp_path, cells)
    with opened_page(lab, ARTIFACTS) as (page, session):
        page.wait_for_selector(".jp-Notebook .jp-Cell")
        page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]')
        lab.wait_for_idle_kernel()
        for index in range(len(SETUP_CELLS)):
            run_cell(page, index)
        client = session["client"] = lab.kernel_client()

        panel_view, shown = move_temperature_slider(page, client)
        shot(panel_view, "panel")
        canvas_view = draw_stroke(page, client)
        shot(canvas_view, "canvas")

        # a story that takes the panel's temperature
        story_cell = run_cell(page, len(SETUP_CELLS))
        assert "Once upon a time" in story_cell.locator(".jp-OutputArea").inner_text()
        recipe = kernel_json(client, "import json\nprint(json.dumps(tale.recipe))")
        assert recipe["params"]["temperature"] == pytest.approx(shown, abs=0.005)
        assert recipe["sources"]["temperature"] == "panel"
        shot(story_cell, "story")

        # the image magics that take the canvas
        for offset, (name, _, variable, check) in enumerate(steps):
            cell = run_cell(page, len(SETUP_CELLS) + 1 + offset)
            cell.locator(".jp-OutputArea-output img").last.wait_for()
            verdict = kernel_json(
                client,
                "import json\nfrom creative_magics import media\nfrom creative_magics.widgets import canvas as _c\n"
                f"canvas = _c._opened\nrecipe = {variable}.recipe\nprint(json.dumps(bool({check})))",
            )
            assert verdict, f"%%{name}: {check}"
            shot(cell, name)

        # "Run again" re-runs the last magic in the background and shows it in the panel
        before = kernel_json(client, STATE)["results"]
        panel_view.locator("button").filter(has_text="Run again").click()
        after = kernel_until(client, STATE, lambda s: len(s["results"]) == len(before) + 1, "Run again")
        assert after["results"][-1] == before[-1]
        page.wait_for_function(
            "(el) => el.querySelector('img') !== null || el.innerText.trim().length > 0",
            arg=panel_view.locator(".creative-magics-run-output").element_handle(),
        )
        page.wait_for_function(
            "(el) => /Ran %%?(story|paint|stylize|compose) again/.test(el.textContent)",
            arg=panel_view.locator(".creative-magics-run-status").element_handle(),
        )
        shot(panel_view, "panel-after-run-again")
        assert kernel_json(client, STATE)["results"][: len(before)] == before
        assert set(before) >= {"text"} | ({"image"} if steps else set())

        # the Image tab sweeps one slider of the last %%paint: one labelled grid
        if steps:
            panel_view.locator(".lm-TabBar-tab, .p-TabBar-tab").filter(has_text="Image").first.click()
            sweep_button = panel_view.locator("button").filter(has_text="Sweep")
            sweep_button.wait_for()
            shot(panel_view, "panel-image")
            count = len(kernel_json(client, STATE)["results"])
            # values this image-to-image call can take: the suggestion starts at the slider's 1 step (SD-Turbo's),
            # which its strength of 0.5 leaves no denoising step: a one-line error, tested in tests/test_paint.py
            panel_view.locator("input[placeholder^='values']").fill("2, 3")
            kernel_until(client, "import json\nfrom creative_magics.widgets import panel as _p\nprint(json.dumps(_p._opened.sweep_values.value))",
                         lambda v: v == "2, 3", "the typed sweep values")
            sweep_button.click()
            swept = kernel_until(
                client, SWEPT, lambda s: s["results"] == count + 1 and s["cells"] >= 2, "the panel's sweep"
            )
            assert swept["sweep"][0].startswith("steps=")
            page.wait_for_function(
                "(el) => /Ran %%paint again/.test(el.textContent)",
                arg=panel_view.locator(".creative-magics-run-status").element_handle(),
            )
            shot(panel_view, "panel-after-sweep")

        # the gallery: a click on a thumbnail (not its caption) shows that result large
        gallery_cell = run_cell(page, len(cells) - 1)
        thumbnails = gallery_cell.locator(".creative-magics-thumbnail canvas, canvas.creative-magics-thumbnail")
        thumbnails.first.wait_for()
        count = kernel_json(client, GALLERY)["tiles"]
        assert thumbnails.count() == count >= 2
        thumbnails.nth(1).scroll_into_view_if_needed()
        box = thumbnails.nth(1).bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        chosen = kernel_until(client, GALLERY, lambda g: g["selected"] is not None, "the thumbnail click")
        assert chosen["selected"] == 1 and chosen["large"] >= 1
        page.wait_for_function(
            "(el) => el.innerText.includes('#2')", arg=gallery_cell.locator(".creative-magics-gallery").element_handle()
        )
        shot(gallery_cell.locator(".creative-magics-gallery"), "gallery")


def test_panel_and_canvas_in_notebook7(tmp_path):
    """ipywidgets 8 in Notebook 7's own notebook page: the panel's slider and the style canvas."""
    _require_browser("notebook")

    shutil.rmtree(NOTEBOOK7_ARTIFACTS, ignore_errors=True)  # the screenshots of this run only
    lab = Lab(tmp_path, SETUP_CELLS, app="notebook")
    with opened_page(lab, NOTEBOOK7_ARTIFACTS) as (page, session):
        page.wait_for_selector('body[data-notebook="notebooks"]', state="attached")  # Notebook 7's page, not JupyterLab's
        assert page.url.startswith(lab.url + "/notebooks/e2e.ipynb"), page.url
        page.wait_for_selector(".jp-Notebook .jp-Cell")
        lab.wait_for_idle_kernel(page)
        page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]')
        for index in range(len(SETUP_CELLS)):
            run_cell(page, index)
        client = session["client"] = lab.kernel_client()

        panel_view, _ = move_temperature_slider(page, client)
        shot(panel_view, "panel", NOTEBOOK7_ARTIFACTS)
        canvas_view = draw_stroke(page, client)
        shot(canvas_view, "canvas", NOTEBOOK7_ARTIFACTS)


LIVE_CELLS = [
    "%load_ext creative_magics",
    "%creative canvas --width 128 --height 128",
    "import numpy as np\nfrom PIL import Image\nphoto = Image.fromarray(np.random.default_rng(1).integers(0, 256, (96, 96, 3), dtype=np.uint8))",
    "%stylize --method adain --content photo --style canvas --size 96 --live -o styled",
]
LIVE_STATE = """
import json
from creative_magics import media
from creative_magics.widgets import canvas as _c
_live = _c._opened.live
print(json.dumps({
    "on": _c._opened.live_toggle.value,
    "frames": _live.frames if _live else None,
    "runs": [kind for kind, _ in _live.runs] if _live else [],
    "busy": _live.scheduler.busy if _live else None,
    "error": str(_live.last_error) if _live and _live.last_error else None,
    "styled": media.image_hash(styled.image),
    "size": list(styled.image.size),
    "style_hash": styled.recipe["style_hash"][0],
    "canvas_hash": media.image_hash(_c._opened.to_image()),
}))
"""


def test_live_adain_follows_strokes_on_the_canvas_in_jupyterlab(tmp_path):
    """%stylize --method adain --style canvas --live: strokes drawn with the mouse in the browser run AdaIN
    again (a preview, then the full frame when the strokes stop), and the frame beside the drawing changes."""
    _require_browser("jupyterlab")

    artifacts = ARTIFACTS / "live"
    shutil.rmtree(artifacts, ignore_errors=True)
    lab = Lab(tmp_path, LIVE_CELLS)
    with opened_page(lab, artifacts) as (page, session):
        page.wait_for_selector(".jp-Notebook .jp-Cell")
        page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]')
        lab.wait_for_idle_kernel()
        for index in range(len(LIVE_CELLS)):
            run_cell(page, index)
        client = session["client"] = lab.kernel_client()
        before = kernel_json(client, LIVE_STATE)
        assert before["on"] and before["frames"] == 0 and before["size"] == [96, 96]

        live_cell = page.locator(".jp-Notebook .jp-Cell").nth(len(LIVE_CELLS) - 1)
        frame = live_cell.locator(".creative-magics-live-frame").first
        frame.wait_for()
        page.wait_for_function("(el) => !!el.getAttribute('src')", arg=frame.element_handle())
        shown_before = frame.get_attribute("src")
        shot(live_cell, "live-before", artifacts)

        drawing = live_cell.locator(".creative-magics-style-canvas canvas").first
        drawing.scroll_into_view_if_needed()
        box = drawing.bounding_box()
        for start, end in (((10, 10), (110, 90)), ((100, 15), (20, 110))):  # two strokes, one after the other
            page.mouse.move(box["x"] + start[0], box["y"] + start[1])
            page.mouse.down()
            page.mouse.move(box["x"] + end[0], box["y"] + end[1], steps=15)
            page.mouse.up()

        after = kernel_until(
            client, LIVE_STATE, lambda s: s["runs"] and s["runs"][-1] == "final" and not s["busy"] and s["frames"] >= 1, "the live frames"
        )
        assert after["error"] is None
        assert after["styled"] != before["styled"]  # the full frame is a new picture (and -o followed it)
        assert after["style_hash"] == after["canvas_hash"] != before["canvas_hash"]  # made after the drawn strokes
        assert after["size"] == [96, 96]
        page.wait_for_function("([el, old]) => el.getAttribute('src') !== old", arg=[frame.element_handle(), shown_before])
        shot(live_cell, "live-after", artifacts)
