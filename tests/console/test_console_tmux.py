"""The console in a real terminal: tmux runs it, send-keys types, capture-pane reads the screen.

The fleet appears, a demo host is stopped with `x` (after a confirmation), and the console shows it
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

    def start(command: str, env: dict[str, str], size: tuple[int, int] = (WIDTH, HEIGHT)) -> str:
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        width, height = size
        # A detached session follows tmux's default size unless told otherwise: pin it before the app starts.
        run("new-session", "-d", "-s", name, "-x", str(width), "-y", str(height))
        run("set-option", "-t", name, "window-size", "manual")
        run("resize-window", "-t", name, "-x", str(width), "-y", str(height))
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


def terminal_env(home: Path, size: tuple[int, int] = (WIDTH, HEIGHT)) -> dict[str, str]:
    # COLUMNS/LINES: pytest's own terminal size would otherwise win over the pane's (Rich reads them first).
    return {
        "HOME": str(home),
        "TERM": "xterm-256color",
        "PYTHONPATH": str(ROOT),
        "COLUMNS": str(size[0]),
        "LINES": str(size[1]),
    }


def test_stopping_a_demo_host_in_a_real_terminal(tmux: Callable[..., str], tmp_path: Path) -> None:
    failure_timeout = 1.0
    command = f"{shlex.quote(sys.executable)} {HERE / 'run_fake_console.py'} --failure-timeout {failure_timeout}"
    session = tmux(command, terminal_env(tmp_path))
    wait_for_screen(session, row("node-a", "up"), timeout=20)
    screen = capture(session)
    assert "DEMO" in screen and "fits on 5 hosts, runs on 7" in screen
    subprocess.run(["tmux", "send-keys", "-t", session, "x"], check=True)
    wait_for_screen(session, r"Stop demo host node-a\?", timeout=10)
    subprocess.run(["tmux", "send-keys", "-t", session, "y"], check=True)
    # the row says why it is down since issue 12 item 9: `down: lost`, `down: refused`
    screen, took = wait_for_screen(session, row("node-a", r"down(: [a-z ]+)?"), timeout=failure_timeout + 5)
    assert took < failure_timeout + 5
    wait_for_screen(session, r"node-a is down: 3 replicas to re-place", timeout=5)
    # the failover is applied action by action (half a second each here): then no replicas are left
    wait_for_screen(session, r"^\s*node-a\s+down(: [a-z ]+)?\s.*\s0\s+\d+s\s*$", timeout=10)


def keys(session: str, *typed: str) -> None:
    subprocess.run(["tmux", "send-keys", "-t", session, *typed], check=True)


def test_every_screen_reads_at_80x24_and_cut_text_is_marked(tmux: Callable[..., str], tmp_path: Path) -> None:
    """Issue 12 items 3 and 4, as a person sees them at 80x24: the header fits its two lines (it wrapped and
    hid its second), the footer has no stray characters (`3 Pla▏^p paletter`), plan actions are not cut
    mid-word without a mark, a cut event message ends in `…`, and Enter shows the whole of it."""
    size = (80, 24)
    command = f"{shlex.quote(sys.executable)} {HERE / 'run_fake_console.py'}"
    session = tmux(command, terminal_env(tmp_path, size), size)
    screen, _ = wait_for_screen(session, row("node-a", "up"), timeout=20)
    lines = screen.splitlines()
    assert lines[0].rstrip().endswith("G") and "mem" in lines[0]  # the whole first line: nothing wrapped
    assert lines[1].startswith(" fits on 5, runs on 7")
    assert re.search(r"^\s*HOST ▲\s+STATE\s", screen, re.MULTILINE)  # name and state always shown
    footer = lines[-1]
    assert "Ctrl+P Commands" in footer and re.search(r"\w▏", footer) is None, footer
    keys(session, "3")
    screen, _ = wait_for_screen(session, r"move cache/1 node-b → node-f\s+pending", timeout=5)
    keys(session, "5")
    screen, _ = wait_for_screen(session, r"action\.failed\s+node-d\s+start cache/2 on node-d failed: \S*…$", timeout=5)
    keys(session, "Enter")
    wait_for_screen(session, r"start cache/2 on node-d failed: port in use", timeout=5)
    for key in "24":
        keys(session, "Escape", key)
        screen, _ = wait_for_screen(session, r"Ctrl\+P Commands", timeout=5)
        assert all(len(line) <= 80 for line in screen.splitlines())
