"""The console in a real terminal: tmux runs it, send-keys types, capture-pane reads the screen.

The fleet appears, a demo host is stopped with `k`, and the console shows it
down and its replicas moved within the failure timeout, on the in-memory engine.
The same story on `loadmaster demo` with real SSH servers and processes is
tests/e2e/test_tmux_demo.py.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.sshd import require_tool

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
WIDTH, HEIGHT = 120, 40


@pytest.fixture
def tmux() -> Iterator[Callable[..., str]]:
    require_tool("tmux", "tmux")
    name = f"lm-console-{uuid.uuid4().hex[:8]}"

    def run(*args: str) -> str:
        return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout

    def start(command: str, env: dict[str, str]) -> str:
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        # A detached session follows tmux's default size unless told otherwise: pin it before the app starts.
        run("new-session", "-d", "-s", name, "-x", str(WIDTH), "-y", str(HEIGHT))
        run("set-option", "-t", name, "window-size", "manual")
        run("resize-window", "-t", name, "-x", str(WIDTH), "-y", str(HEIGHT))
        run("respawn-pane", "-k", "-t", name, f"env {exports} {command}")
        return name

    yield start
    subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)


def capture(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout


def wait_for_screen(session: str, pattern: str, timeout: float) -> tuple[str, float]:
    """Poll the pane until `pattern` (a regex, multi-line) shows; returns the screen and the seconds it took."""
    start = time.monotonic()
    screen = ""
    while time.monotonic() - start < timeout:
        screen = capture(session)
        if re.search(pattern, screen, re.MULTILINE):
            return screen, time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"after {timeout}s the terminal does not show {pattern!r}:\n{screen}")


def row(host: str, state: str) -> str:
    return rf"^\s*{host}\s+{state}\s"


def terminal_env(home: Path) -> dict[str, str]:
    # COLUMNS/LINES: pytest's own terminal size would otherwise win over the pane's (Rich reads them first).
    return {
        "HOME": str(home),
        "TERM": "xterm-256color",
        "PYTHONPATH": str(ROOT),
        "COLUMNS": str(WIDTH),
        "LINES": str(HEIGHT),
    }


def test_stopping_a_demo_host_in_a_real_terminal(tmux: Callable[..., str], tmp_path: Path) -> None:
    failure_timeout = 1.0
    command = f"{shlex.quote(sys.executable)} {HERE / 'run_fake_console.py'} --failure-timeout {failure_timeout}"
    session = tmux(command, terminal_env(tmp_path))
    wait_for_screen(session, row("node-a", "up"), timeout=20)
    screen = capture(session)
    assert "DEMO" in screen and "fits on 5 hosts, runs on 7" in screen
    subprocess.run(["tmux", "send-keys", "-t", session, "k"], check=True)
    screen, took = wait_for_screen(session, row("node-a", "down"), timeout=failure_timeout + 5)
    assert took < failure_timeout + 5
    wait_for_screen(session, r"node-a is down: 3 replicas to re-place", timeout=5)
    # the failover is applied action by action (half a second each here): then no replicas are left
    wait_for_screen(session, r"^\s*node-a\s+down\s.*\s0\s+\d+s\s*$", timeout=10)
