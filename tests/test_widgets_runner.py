"""The panel's re-run machinery without a front-end: one run at a time, coalesced requests, and a
worker thread's output routed into an Output widget while other threads print as before."""

import sys
import threading

import ipywidgets as widgets
from IPython.display import display, update_display

from creative_magics.widgets.common import jsonable, routed_to, uploaded_files
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


def test_a_routed_thread_prints_and_displays_into_the_output_widget(ip, capsys):
    output = widgets.Output()
    done = threading.Event()

    def work():
        with routed_to(output):
            print("hello from the worker")
            sys.stderr.write("a warning\n")
            display({"text/plain": "first"}, raw=True, display_id="d1")
            display({"text/plain": "second"}, raw=True)
            update_display({"text/plain": "first, updated"}, raw=True, display_id="d1")
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
    assert not isinstance(sys.stdout, type(None)) and type(sys.stdout).__name__ != "_StreamRouter"


def test_the_main_thread_prints_normally_while_a_route_is_open(capsys):
    output = widgets.Output()
    inside = threading.Event()
    leave = threading.Event()

    def work():
        with routed_to(output):
            inside.set()
            leave.wait()
            print("worker line")

    worker = threading.Thread(target=work)
    worker.start()
    inside.wait()
    print("main line")  # goes through the router to the real stream
    leave.set()
    worker.join()
    assert "main line" in capsys.readouterr().out
    assert output.outputs[0]["text"] == "worker line\n"


def test_png_bytes_become_base64_as_notebooks_store_them():
    bundle = jsonable({"image/png": b"\x89PNG", "text/plain": "x", "text/html": b"<b>"})
    assert bundle == {"image/png": "iVBORw==", "text/plain": "x", "text/html": "<b>"}


def test_uploaded_files_reads_both_ipywidgets_shapes():
    seven = {"a.png": {"metadata": {"name": "a.png"}, "content": b"123"}}
    eight = ({"name": "b.png", "type": "image/png", "size": 3, "content": memoryview(b"456"), "last_modified": 0},)
    assert uploaded_files(seven) == [("a.png", b"123")]
    assert uploaded_files(eight) == [("b.png", b"456")]
    assert uploaded_files(()) == [] and uploaded_files({}) == []
