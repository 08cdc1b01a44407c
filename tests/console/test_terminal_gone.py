"""A console whose terminal goes away (ssh drops, the tmux window is killed) still ends, and ends cleanly."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# An app that draws a new frame every 10 ms and exits after `linger` seconds, its output on a pseudo-terminal.
APP = textwrap.dedent(
    """
    import sys
    from textual.app import App
    from textual.widgets import Static
    from textual.drivers.linux_driver import LinuxDriver
    from console.terminal import ConsoleDriver

    class Ticker(App[None]):
        def compose(self):
            yield Static("0", id="n")

        def on_mount(self):
            self.count = 0
            self.set_interval(0.01, self.tick)
            self.set_timer(float(sys.argv[2]), self.exit)
            print("drawn", file=open(sys.argv[3], "w"), flush=True)

        def tick(self):
            self.count += 1
            self.query_one("#n", Static).update(str(self.count))

    driver = {"console": ConsoleDriver, "textual": LinuxDriver}[sys.argv[1]]
    Ticker(driver_class=driver).run()
    print("ended", file=open(sys.argv[3], "a"), flush=True)
    """
)


def run_and_close_terminal(tmp_path: Path, driver: str) -> tuple[subprocess.Popen[bytes], Path]:
    master, slave = pty.openpty()
    mark = tmp_path / "mark"
    app = subprocess.Popen(
        [sys.executable, "-c", APP, driver, "2", str(mark)],
        stdin=slave, stdout=slave, stderr=slave, cwd=ROOT, start_new_session=True,
        env={**os.environ, "TERM": "xterm-256color", "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    os.close(slave)
    deadline = time.monotonic() + 20
    while not mark.exists() and time.monotonic() < deadline:
        try:  # keep the terminal drained while the app starts, as a terminal emulator does
            os.read(master, 65536)
        except OSError:
            break
        time.sleep(0.01)
    assert mark.exists(), "the app never drew its first frame"
    os.close(master)  # the terminal goes away; the app goes on drawing ~100 frames a second for 2 s
    return app, mark


def test_the_console_ends_after_its_terminal_went_away(tmp_path):
    app, mark = run_and_close_terminal(tmp_path, "console")
    try:
        app.wait(timeout=15)
    except subprocess.TimeoutExpired:
        app.kill()
        pytest.fail("the console hung once its terminal was gone (Textual's writer queue filled)")
    assert mark.read_text().split() == ["drawn", "ended"]  # it went past run(): its `finally` blocks run
