"""A real OpenAI-compatible server for the tests: `transformers serve` (extra transformers[serving]) on
127.0.0.1, offline, serving local model folders by their path; started once, stopped by its PID."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

START_LIMIT_S = 300  # a safety against a server that never comes up, not a speed check (it starts in ~20 s)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class TransformersServe:
    """`transformers serve` in its own process; `.url` is its OpenAI base URL (…/v1)."""

    def __init__(self):
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="transformers-serve-", suffix=".log", delete=False)
        self.process = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self):
        command = [
            sys.executable, "-c", "import sys; from transformers.cli.transformers import main; sys.argv[0] = 'transformers'; sys.exit(main())",
            "serve", "--host", "127.0.0.1", "--port", str(self.port), "--model-timeout", "3600", "--log-level", "warning",
        ]
        env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        started = time.monotonic()
        while time.monotonic() - started < START_LIMIT_S:
            if self.process.poll() is not None:
                raise RuntimeError(f"transformers serve exited with {self.process.returncode}:\n{self.output()[-3000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as answer:
                    if answer.status == 200:
                        return self
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"transformers serve did not answer within {START_LIMIT_S} s:\n{self.output()[-3000:]}")

    def output(self):
        with open(self.log.name, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop(self):
        """Stop it by its PID: SIGINT (uvicorn's own shutdown), then SIGKILL if it lingers."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()
        os.unlink(self.log.name)
