"""Live AdaIN on the style canvas (widgets/live.py): the scheduler's debounce in threads (a burst of
strokes costs at most two runs, the last on the last stroke; never two runs at once; previews while
drawing goes on), and the whole loop with the tiny AdaIN: `%stylize ... --live`, the canvas toggle,
previews that are not kept, the frame at full size that is."""

import threading
import time

import numpy as np
import pytest
from PIL import Image

import creative_magics
from creative_magics import session
from creative_magics.widgets import canvas as canvas_module
from creative_magics.widgets.live import LiveScheduler
from helpers import assert_one_line_error


class Job:
    """Records each run: its kind and the version it saw; can hold the first run until released; counts
    how many run at once."""

    def __init__(self, scheduler_version, hold_first=False, takes=0.0):
        self.version = scheduler_version
        self.takes = takes
        self.runs = []
        self.release = threading.Event()
        self.started = threading.Event()
        self.hold_first = hold_first
        self.lock = threading.Lock()
        self.active = 0
        self.most_at_once = 0

    def __call__(self, kind):
        with self.lock:
            self.active += 1
            self.most_at_once = max(self.most_at_once, self.active)
            self.runs.append((kind, self.version()))
            first = len(self.runs) == 1
        self.started.set()
        if first and self.hold_first:
            self.release.wait(30)
        time.sleep(self.takes)
        with self.lock:
            self.active -= 1


def scheduler_with_job(settle, every, hold_first=False, takes=0.0):
    holder = {}
    job = Job(lambda: holder["scheduler"].version, hold_first, takes)
    holder["scheduler"] = scheduler = LiveScheduler(job, settle=settle, every=every)
    return scheduler, job


def test_a_burst_of_20_strokes_costs_at_most_2_runs_the_last_on_the_last_stroke():
    scheduler, job = scheduler_with_job(settle=1.0, every=60.0, hold_first=True)
    scheduler.touch()
    job.started.wait(30)  # the first stroke starts a preview at once ...
    for _ in range(19):  # ... and 19 more strokes come while it runs
        scheduler.touch()
    job.release.set()
    assert scheduler.wait(60)
    assert len(job.runs) <= 2 and job.most_at_once == 1
    assert job.runs[-1] == ("final", 20)  # the last run is the full-size frame, on the last stroke
    assert job.runs[0][0] == "preview"
    assert scheduler.runs == job.runs and not scheduler.busy


def test_a_burst_before_the_worker_starts_is_still_two_runs_at_most():
    scheduler, job = scheduler_with_job(settle=1.0, every=60.0)
    for _ in range(20):
        scheduler.touch()
    assert scheduler.wait(60)
    assert 1 <= len(job.runs) <= 2 and job.runs[-1] == ("final", 20)


def test_drawing_that_goes_on_gets_previews_never_two_at_once_and_ends_with_one_final():
    scheduler, job = scheduler_with_job(settle=0.5, every=0.0, takes=0.05)  # a preview takes 50 ms
    stop = time.monotonic() + 1.0
    strokes = 0
    while time.monotonic() < stop:  # a person drawing for a second, a stroke every 10 ms
        scheduler.touch()
        strokes += 1
        time.sleep(0.01)
    assert scheduler.wait(60)
    kinds = [kind for kind, _ in job.runs]
    assert job.most_at_once == 1
    assert kinds.count("preview") >= 2  # the picture followed the drawing
    assert kinds[-1] == "final" and kinds.count("final") >= 1 and job.runs[-1][1] == strokes
    assert len(job.runs) < strokes / 2  # strokes during a run wait for the next one: no pile-up


def test_stop_ends_the_runs():
    scheduler, job = scheduler_with_job(settle=0.2, every=60.0, hold_first=True)
    scheduler.touch()
    job.started.wait(30)
    scheduler.stop()
    scheduler.touch()
    job.release.set()
    assert scheduler.wait(30)
    assert [kind for kind, _ in job.runs] == ["preview"]


def test_a_failing_run_is_reported_and_the_scheduler_keeps_working():
    errors, runs = [], []

    def job(kind):
        runs.append(kind)
        if len(runs) == 1:
            raise ValueError("boom")

    scheduler = LiveScheduler(job, settle=0.1, every=60.0, on_error=errors.append)
    scheduler.touch()
    assert scheduler.wait(30)
    scheduler.touch()
    assert scheduler.wait(30)
    assert [str(e) for e in errors] == ["boom"] and runs[-1] == "final"


# -- the loop with the tiny AdaIN and a real canvas ---------------------------------------------------


def landscape(size=64):
    rng = np.random.default_rng(1)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "RGB")


@pytest.fixture()
def drawing(ip):
    canvas_module._opened = None
    canvas = creative_magics.canvas(width=64, height=64)
    ip.user_ns["photo"] = landscape()
    yield canvas
    if canvas.live is not None:
        canvas.live.stop()
        canvas.live.wait(30)
    canvas.close()
    canvas_module._opened = None


def fast(canvas):
    """Short waits, so a test's strokes settle quickly (the loop is the same)."""
    canvas.live.scheduler.settle = 0.2
    canvas.live.scheduler.every = 60.0
    return canvas.live


def test_live_magic_runs_again_on_every_stroke_and_keeps_the_full_frame(ip, run, drawing):
    ran = run("%stylize --method adain --content photo --style canvas --size 48 --live -o styled")
    assert ran.ok, ran.err
    assert drawing.live_toggle.value and drawing.live is not None
    first = ip.user_ns["styled"]
    assert first.image.size == (48, 48) and drawing.live_view.value  # the first frame is shown beside the drawing
    live = fast(drawing)
    results_before = len(session.current().results)
    drawing.draw([(5, 5), (60, 40)], color="crimson", size=14)
    drawing.draw([(10, 60), (50, 2)], color="navy", size=9)
    assert live.wait(60) and live.last_error is None
    assert live.last_result.image.size == (48, 48)
    assert live.last_result.image.tobytes() != first.image.tobytes()  # the drawing changed the picture
    assert ip.user_ns["styled"] is live.last_result  # -o follows, as the cell's did
    assert session.current().last() is live.last_result
    assert len(session.current().results) == results_before + 1  # previews are not kept; the full frame is
    assert live.last_result.recipe["style"] == ["canvas"] and live.last_result.recipe["method"] == "adain"
    assert "live AdaIN: frame" in drawing.live_status.value
    (row,) = session.current().cache.table()
    assert row["loads"] == 1


def test_previews_run_at_the_preview_size(ip, drawing, monkeypatch):
    from creative_magics.widgets import live as live_module

    monkeypatch.setattr(live_module, "PREVIEW_SIZE", {"cpu": 32, "gpu": 32})
    creative_magics.stylize("photo", "canvas", method="adain", size=64, live=True)
    live = fast(drawing)
    sizes = []
    shown = drawing.show_live_frame
    monkeypatch.setattr(drawing, "show_live_frame", lambda image, text, error=False: sizes.append(image and image.size) or shown(image, text, error))
    drawing.draw([(5, 5), (60, 60)])
    assert live.wait(60)
    assert sizes[0] == (32, 32) and sizes[-1] == (64, 64)
    assert live.runs[0][0] == "preview" and live.runs[-1][0] == "final"


def test_the_toggle_needs_an_adain_call_with_the_canvas(ip, drawing):
    drawing.live_toggle.value = True
    assert drawing.live_toggle.value is False and drawing.live is None
    assert "--method adain --content IMAGE --style canvas first" in drawing.live_status.value
    creative_magics.stylize("photo", "canvas", method="adain", size=32)
    drawing.live_toggle.value = True
    assert drawing.live is not None
    live = fast(drawing)
    drawing.draw([(1, 1), (30, 30)])
    assert live.wait(60) and live.last_result is not None
    drawing.live_toggle.value = False
    assert drawing.live is None
    count = len(session.current().results)
    drawing.draw([(3, 3), (40, 9)])
    time.sleep(0.3)
    assert len(session.current().results) == count  # off means off


def test_live_takes_last_once(ip, drawing):
    """`--content last` is the picture `last` was when live started: a live frame becomes `last`, and
    restyling it again and again would feed the loop with itself."""
    creative_magics.paint("a fox", steps=1, seed=1)
    creative_magics.stylize("last", "canvas", method="adain", size=32, live=True)
    live = fast(drawing)
    drawing.draw([(1, 1), (30, 30)])
    assert live.wait(60)
    first = live.last_result
    drawing.draw([(5, 1), (9, 30)])
    assert live.wait(60)
    assert live.last_result.recipe["content_hash"] == first.recipe["content_hash"]


@pytest.mark.parametrize(
    "line, fragment",
    [
        ("%stylize --content photo --style canvas --live", "--live belongs to --method adain, not gatys"),
        ("%stylize --method cyclegan --content photo --style monet --live", "--live belongs to --method adain, not cyclegan"),
        ("%stylize --method adain --content photo --style photo --live", "give canvas as --style (or --content)"),
    ],
)
def test_live_mistakes_are_one_line_before_anything_runs(ip, run, drawing, line, fragment):
    assert_one_line_error(run(line), fragment)
    assert session.current().cache.table() == [] and drawing.live is None


def test_live_from_the_python_api_without_the_canvas_is_one_line(ip):
    with pytest.raises(creative_magics.errors.CreativeError, match="live=True runs again on every canvas stroke"):
        creative_magics.api.stylize(landscape(), "canvas", method="adain", live=True)


def test_live_runs_a_recipe_again_as_the_canvas_changes(ip, run, drawing):
    """A recipe names `canvas` and holds the drawing's fingerprint of its moment; live runs it again with
    the canvas as it is now, stroke after stroke."""
    drawing.draw([(2, 2), (60, 60)], color="teal", size=10)
    ip.user_ns["made"] = creative_magics.stylize("photo", "canvas", method="adain", size=32)
    ran = run("%stylize --recipe made --live -o again")
    assert ran.ok, ran.err
    assert drawing.live is not None
    live = fast(drawing)
    drawing.draw([(60, 2), (2, 60)], color="gold", size=10)
    assert live.wait(60) and live.last_error is None
    assert live.last_result.recipe["style_hash"] != ip.user_ns["made"].recipe["style_hash"]
    assert live.last_result.image.size == (32, 32)
