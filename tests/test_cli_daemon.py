"""`loadmaster run --headless` as a subprocess, with no host reachable (no sshd needed): the JSON
log, reload on SIGHUP and on an edit, a bad file that changes nothing, a clean SIGTERM.

tests/e2e/test_headless.py runs the same daemon against real hosts (sshd).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from tests.sshd import free_port

SCRIPT = Path(sys.executable).parent / "loadmaster"


def cluster(port: int, replicas: int = 2) -> str:
    return f"""\
[cluster]
name = "daemon-cli"
poll_interval = 0.2

[[hosts]]
name = "h1"
address = "127.0.0.1"
port = {port}

[[services]]
name = "web"
command = "sleep 100"
replicas = {replicas}
cpu = "100m"
mem = "16MiB"
"""


class Lines:
    """The daemon's stdout, read in a thread: every line must be one JSON object."""

    def __init__(self, stream: IO[str]) -> None:
        self.q: queue.Queue[dict[str, Any]] = queue.Queue()
        self.all: list[dict[str, Any]] = []
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.q.put(json.loads(line))

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                event = self.q.get(timeout=0.1)
            except queue.Empty:
                continue
            self.all.append(event)
            if predicate(event):
                return event
        raise AssertionError(f"event not seen; got {[e['event'] for e in self.all]}")


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    config = tmp_path / "cluster.toml"
    config.write_text(cluster(free_port("127.0.0.1")))
    env = {**os.environ, "HOME": str(tmp_path)}  # the journal goes under ~/.loadmaster
    proc = subprocess.Popen(
        [SCRIPT, "run", "--headless", "-c", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        yield proc, config
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_daemon_logs_json_reloads_and_stops_cleanly(daemon: tuple[subprocess.Popen[str], Path]) -> None:
    proc, config = daemon
    assert proc.stdout is not None
    lines = Lines(proc.stdout)
    started = lines.wait_for(lambda e: e["event"] == "daemon.started")
    assert started["cluster"] == "daemon-cli" and started["auto_apply"] is False and started["read_only"] is False
    lines.wait_for(lambda e: e.get("host") == "h1")  # the engine runs: it tried the host

    good = config.read_text()
    config.write_text(good.replace('cpu = "100m"', 'cpu = "lots"'))
    proc.send_signal(signal.SIGHUP)
    bad = lines.wait_for(lambda e: e["event"] == "config.invalid")
    assert any('services "web": cpu' in error for error in bad["errors"])
    assert proc.poll() is None  # a bad file changes nothing

    config.write_text(good.replace("replicas = 2", "replicas = 3"))  # no signal: the file watch sees it
    reloaded = lines.wait_for(lambda e: e["event"] == "config.reloaded")
    # what changed, in the message and as a field (issue 12, item 1)
    assert "reloaded: web scaled 2 → 3" in reloaded["message"] and reloaded["changes"] == ["web scaled 2 → 3"]
    assert (reloaded["hosts"], reloaded["services"]) == (1, 1)

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    lines.wait_for(lambda e: e["event"] == "daemon.stopped", timeout=5)
    kinds = [e["event"] for e in lines.all]
    assert kinds.index("daemon.stopping") < kinds.index("daemon.stopped")
    assert all({"at", "event", "message"} <= e.keys() for e in lines.all)
    assert proc.stderr is not None and "Traceback" not in proc.stderr.read()


def test_daemon_requires_headless_and_reports_a_bad_file_before_starting(tmp_path: Path) -> None:
    config = tmp_path / "cluster.toml"
    config.write_text(cluster(free_port("127.0.0.1")).replace('mem = "16MiB"', 'mem = "16XB"'))
    env = {**os.environ, "HOME": str(tmp_path)}
    run = subprocess.run([SCRIPT, "run", "--headless", "-c", str(config)], capture_output=True, text=True, env=env,
                         timeout=60)  # fmt: skip
    assert run.returncode == 1 and run.stdout == ""
    assert f'{config}: services "web": mem "16XB"' in run.stderr
    usage = subprocess.run([SCRIPT, "run", "-c", str(config)], capture_output=True, text=True, env=env, timeout=60)
    assert usage.returncode == 2 and "--headless" in usage.stderr


def test_the_cli_and_the_daemon_load_no_textual() -> None:
    """The daemon runs on servers without a terminal: Textual (and Rich) load only for the console."""
    probe = "import sys, console.cli, console.daemon; print(sorted({m.split('.')[0] for m in sys.modules}))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    loaded = set(json.loads(out.stdout.replace("'", '"')))
    assert loaded.isdisjoint({"textual", "rich"}), loaded & {"textual", "rich"}
    assert "console" in loaded and "core" in loaded
