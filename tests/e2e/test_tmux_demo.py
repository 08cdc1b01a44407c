"""`loadmaster demo` in a real terminal (tmux): the fleet appears, a host is stopped, failover shows."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.sshd import free_port, require_tool

ROOT = Path(__file__).resolve().parents[2]


def screen(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-t", session, "-p"], capture_output=True, text=True).stdout


def wait_screen(session: str, pattern: str, timeout: float) -> tuple[str, float]:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        text = screen(session)
        if re.search(pattern, text, re.MULTILINE):
            return text, time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"{pattern!r} not on screen after {timeout}s:\n{screen(session)}")


def start_demo(tmp_path: Path, session: str) -> str:
    """`loadmaster demo` on the embedded cluster.toml (moved to free ports) in a tmux session; tmux's path."""
    tmux = require_tool("tmux", "tmux")
    text = (ROOT / "cluster.toml").read_text()
    for port in range(22201, 22208):  # the embedded fleet's ports, moved to free ones
        text = text.replace(f"port = {port}\n", f"port = {free_port('127.0.0.1')}\n")
    config = tmp_path / "cluster.toml"
    config.write_text(text)
    # pytest exports COLUMNS=80/LINES=24, which Textual would obey over the real terminal size
    command = f"env -u COLUMNS -u LINES HOME={tmp_path} {sys.executable} -m console.cli demo -c {config}"
    subprocess.run([tmux, "new-session", "-d", "-s", session, "-x", "160", "-y", "45", "-c", str(ROOT), command],
                   check=True)  # fmt: skip
    return tmux


def test_demo_in_tmux_shows_failover_within_the_failure_timeout(tmp_path):
    session = f"lm{os.getpid()}"
    tmux = start_demo(tmp_path, session)
    try:
        wait_screen(session, r"hosts 7 up · 0 suspect · 0 down", 30)
        # the demo places every replica by itself (auto_apply in the demo file): node-c gets some
        wait_screen(session, r"^ node-c\s+up\s.*\s[1-9]\d*\s+\d+s\s*$", 30)
        pressed = time.monotonic()
        subprocess.run([tmux, "send-keys", "-t", session, "Down", "Down", "x"], check=True)
        wait_screen(session, r"Stop demo host node-c\?", 10)
        subprocess.run([tmux, "send-keys", "-t", session, "y"], check=True)
        wait_screen(session, r"^ node-c\s+down(: [a-z ]+)?\s", 10)  # and why (issue 12 item 9)
        # failover: node-c holds no replica any more, the rest of the fleet runs them
        text, _ = wait_screen(session, r"^ node-c\s+down(: [a-z ]+)?\s.*\s0\s+\d+s\s*$", 10)
        moved_after = time.monotonic() - pressed
        assert moved_after <= 3 + 1 + 2, moved_after  # failure_timeout + one poll + slack
        assert "hosts 6 up · 0 suspect · 1 down" in text
        subprocess.run([tmux, "send-keys", "-t", session, "x"], check=True)
        wait_screen(session, r"hosts 7 up · 0 suspect · 0 down", 15)
        subprocess.run([tmux, "send-keys", "-t", session, "q"], check=True)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            alive = subprocess.run([tmux, "has-session", "-t", session], capture_output=True).returncode == 0
            if not alive:
                break
            time.sleep(0.2)
        assert not alive, "the console did not exit on q"
    finally:
        subprocess.run([tmux, "kill-session", "-t", session], capture_output=True)
        subprocess.run(["pkill", "-f", f"HOME={tmp_path}"], capture_output=True)
    # quitting the demo ends its replicas: no process is left working inside this test's directory
    assert processes_in(tmp_path) == []


@pytest.mark.parametrize("ending", ["SIGTERM", "SIGHUP (the terminal closes)"])
def test_a_demo_ended_by_a_signal_leaves_no_replica_behind(tmp_path, ending):
    session = f"lm{os.getpid()}s"
    tmux = start_demo(tmp_path, session)
    try:
        wait_screen(session, r"hosts 7 up · 0 suspect · 0 down", 30)
        wait_screen(session, r"^ node-c\s+up\s.*\s[1-9]\d*\s+\d+s\s*$", 30)  # replicas run
        assert len(processes_in(tmp_path)) >= 10
        pane = subprocess.run([tmux, "display-message", "-p", "-t", session, "#{pane_pid}"],
                              capture_output=True, text=True, check=True).stdout  # fmt: skip
        demo = psutil.Process(int(pane))  # `env … python -m console.cli demo`: env execs python
        if ending == "SIGTERM":
            demo.terminate()
        else:
            subprocess.run([tmux, "kill-session", "-t", session], check=True)  # tmux sends SIGHUP
        demo.wait(timeout=20)
    finally:
        subprocess.run([tmux, "kill-session", "-t", session], capture_output=True)
    # The demo's hosts are machines inside the demo process: when it ends, their processes end with it.
    deadline = time.monotonic() + 3
    while processes_in(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = processes_in(tmp_path)
    subprocess.run(["pkill", "-9", "-f", f"HOME={tmp_path}"], capture_output=True)
    for pid in left:
        with contextlib.suppress(psutil.Error):
            psutil.Process(pid).kill()
    assert left == [], f"{len(left)} processes outlived the demo ended by {ending}"


def processes_in(directory: Path) -> list[int]:
    """Pids whose working directory is under `directory` (replicas run in their host's state dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")).is_relative_to(directory):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found
