"""`loadmaster run --headless` as the real controller process, its JSON lines readable by tests.

Each controller gets a HOME (its journal lives in `$HOME/.loadmaster/<cluster>/journal.db`);
two controllers with the same HOME share a journal, as two daemons on one machine would.
stdout is read line by line in a thread (every line must be JSON); stderr goes to a file,
so a test can measure how much a controller wrote there.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.faults.netns import run_env

LOADMASTER = [sys.executable, "-m", "console.cli"]
Event = dict[str, Any]


class Controller:
    def __init__(self, config: Path, home: Path, *, name: str = "controller", args: tuple[str, ...] = ()):
        self.config = config
        self.home = home
        self.name = name
        home.mkdir(parents=True, exist_ok=True)
        self.stderr_path = home / f"{name}.stderr"
        self.events: list[Event] = []
        self.bad_lines: list[str] = []
        self._cond = threading.Condition()
        # Marked as the run's: if the test process dies, the next run's sweep ends this one too.
        env = {**os.environ, **run_env(), "HOME": str(home), "PYTHONUNBUFFERED": "1"}
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(
                [*LOADMASTER, "run", "--headless", "--auto-apply", "-c", str(config), *args],
                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, text=True,
            )  # fmt: skip
        self._reader = threading.Thread(target=self._read, name=f"{name} stdout", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                with self._cond:
                    self.bad_lines.append(line)
                continue
            with self._cond:
                self.events.append(event)
                self._cond.notify_all()

    def wait_for(self, predicate: Callable[[Event], bool] | str, timeout: float = 30, after: int = 0) -> Event:
        """The first event from index `after` on that matches (an event name or a predicate)."""
        match = (lambda e: e.get("event") == predicate) if isinstance(predicate, str) else predicate
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for event in self.events[after:]:
                    if match(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    kinds = [e.get("event") for e in self.events[after:]][-40:]
                    raise AssertionError(
                        f"{self.name}: {predicate!r} not seen within {timeout:g} s (exit {self.proc.poll()}); "
                        f"events: {kinds}; stderr: {self.stderr_tail()}"
                    )
                self._cond.wait(min(left, 0.2))

    def seen(self, kind: str) -> list[Event]:
        with self._cond:
            return [e for e in self.events if e.get("event") == kind]

    def stderr_bytes(self) -> int:
        return self.stderr_path.stat().st_size

    def stderr_tail(self, n: int = 800) -> str:
        with open(self.stderr_path, "rb") as f:
            f.seek(max(0, self.stderr_bytes() - n))
            return f.read().decode(errors="replace")

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self, timeout: float = 30) -> int | None:
        """SIGTERM and wait: the exit status, or None if it did not exit within `timeout` (then it
        is killed, so no controller outlives its test)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
                return None
        with contextlib.suppress(RuntimeError):
            self._reader.join(timeout=5)
        return self.proc.returncode
