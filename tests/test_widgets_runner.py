"""The panel's re-run machinery without a front-end: one run at a time, coalesced requests, and a
worker thread's output shown in an Output widget while other threads print as before."""

import sys
import threading

import ipywidgets as widgets

from creative_magics.views import OutputSurface, jsonable
from creative_magics.widgets.common import uploaded_files
from creative_magics.widgets.panel import Rerunner


class SlowJob:
    """A job that blocks until released, counting how many run at once."""

    def __init__(self):
        self.release = threading.Event()
        self.started = threading.Event()
        self.lock = threading.Lock()
        self.active = 0
        self.most_at_once = 0
        self.calls = 0

    def __call__(self):
        with self.lock:
            self.active += 1
            self.calls += 1
            self.most_at_once = max(self.most_at_once, self.active)
        self.started.set()
        self.release.wait()
        with self.lock:
            self.active -= 1


def test_requests_during_a_run_wait_and_become_one_run():
    job = SlowJob()
    runner = Rerunner(job, delay=0)
    runner.request()
    job.started.wait()
    for _ in range(20):  # a person dragging sliders while the first run works
        runner.request()
    assert runner.busy
    job.release.set()
    runner.wait()
    assert job.calls == 2  # the one in flight, then one with the latest values: no pile-up
    assert job.most_at_once == 1
    assert runner.runs == 2 and not runner.busy


def test_requests_close_together_coalesce_into_one_run():
    calls = []
    runner = Rerunner(lambda: calls.append(1), delay=0.3)
    for _ in range(5):
        runner.request()
    runner.wait()
    assert calls == [1]


def test_a_failing_run_is_reported_and_the_runner_keeps_working():
    errors, calls = [], []

    def job():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")

    runner = Rerunner(job, delay=0, on_error=errors.append)
    runner.request()
    runner.wait()
    runner.request()
    runner.wait()
    assert len(calls) == 2
    assert [str(e) for e in errors] == ["boom"]


def test_wait_with_a_timeout_says_whether_it_finished():
    job = SlowJob()
    runner = Rerunner(job, delay=0)
    runner.request()
    job.started.wait()
    assert runner.wait(timeout=0.01) is False
    job.release.set()
    assert runner.wait() is True


def test_a_worker_thread_shows_into_the_output_widget_through_its_surface(ip, capsys):
    """The panel's runs show in its Output widget through a surface: nothing patches sys.stdout or the
    shell's display publisher, so the main thread's prints are untouched."""
    output = widgets.Output()
    done = threading.Event()
    stdout_before, publish_before = sys.stdout, ip.display_pub.publish

    def work():
        surface = OutputSurface(output)
        surface.say("hello from the worker")
        surface.say("a warning", "stderr")
        first = surface.slot()
        first({"text/plain": "first"})
        surface.show({"text/plain": "second"})
        first({"text/plain": "first, updated"})
        done.set()

    worker = threading.Thread(target=work)
    worker.start()
    done.wait()
    worker.join()
    print("hello from the main thread")
    outputs = output.outputs
    assert outputs[0] == {"output_type": "stream", "name": "stdout", "text": "hello from the worker\n"}
    assert outputs[1] == {"output_type": "stream", "name": "stderr", "text": "a warning\n"}
    assert [o["data"]["text/plain"] for o in outputs[2:]] == ["first, updated", "second"]
    captured = capsys.readouterr()
    assert "hello from the main thread" in captured.out
    assert "worker" not in captured.out and "first" not in captured.out
    assert sys.stdout is stdout_before and ip.display_pub.publish == publish_before


def test_a_view_on_an_output_surface_shows_what_a_cell_shows(ip):
    """The same view the magic uses, drawing on the panel's Output widget: the live slot is emptied and
    the result shown as a new output."""
    from creative_magics.results import StoryResult
    from creative_magics.views import StoryView

    output = widgets.Output()
    view = StoryView(OutputSurface(output))
    view.update(StoryResult(texts=["Once"], recipe={}))
    assert output.outputs[0]["data"]["text/markdown"] == "Once"
    view.finish(StoryResult(texts=["Once upon a time"], recipe={"seed": 1}))
    assert output.outputs[0]["data"]["text/plain"] == ""
    assert output.outputs[1]["data"]["text/markdown"] == "Once upon a time"


def test_png_bytes_become_base64_as_notebooks_store_them():
    bundle = jsonable({"image/png": b"\x89PNG", "text/plain": "x", "text/html": b"<b>"})
    assert bundle == {"image/png": "iVBORw==", "text/plain": "x", "text/html": "<b>"}


def test_uploaded_files_reads_both_ipywidgets_shapes():
    seven = {"a.png": {"metadata": {"name": "a.png"}, "content": b"123"}}
    eight = ({"name": "b.png", "type": "image/png", "size": 3, "content": memoryview(b"456"), "last_modified": 0},)
    assert uploaded_files(seven) == [("a.png", b"123")]
    assert uploaded_files(eight) == [("b.png", b"456")]
    assert uploaded_files(()) == [] and uploaded_files({}) == []
