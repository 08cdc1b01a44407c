"""Keeps an engine's desired state in step with the cluster file, for every front end.

The file is the desired state: an edit (by hand, by `core.desired`, by the HTTP API) or an explicit
request (the daemon's SIGHUP) re-reads it. A file the reader rejects changes nothing: the previous
configuration stays in force and `on_invalid` gets the problems to report. Signals, logging and
presentation belong to the front end that runs the watch (console/daemon.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

from core import config as config_io
from core.errors import ConfigError
from core.model import ClusterConfig


class ConfigWatch:
    """Re-reads `path` when its modification time changes or when `request()` is called.

    Polling the mtime (not inotify) works on every filesystem the file may live on and costs one
    stat per interval; an edit is seen within `interval` seconds.
    """

    def __init__(
        self,
        path: Path,
        adopt: Callable[[ClusterConfig], None],
        on_invalid: Callable[[ConfigError], None],
        *,
        interval: float = 1.0,
    ) -> None:
        self.path = path
        self.interval = interval
        self._adopt = adopt  # e.g. Engine.reload
        self._on_invalid = on_invalid
        self._wanted = asyncio.Event()

    def request(self) -> None:
        """Re-read the file at the next turn of `run`, changed or not (safe from a signal handler)."""
        self._wanted.set()

    async def run(self) -> None:
        """Until cancelled: notice edits and requests, and adopt the file each time it is valid."""
        seen = self._mtime()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wanted.wait(), self.interval)
            now = self._mtime()
            if now == seen and not self._wanted.is_set():
                continue
            seen = now
            self._wanted.clear()
            self.reload()

    def reload(self) -> bool:
        """Read the file once: adopt it if valid, else report it and keep the old configuration."""
        try:
            config = config_io.load(self.path)
        except ConfigError as exc:
            self._on_invalid(exc)
            return False
        self._adopt(config)
        return True

    def _mtime(self) -> float:
        try:
            return self.path.stat().st_mtime
        except OSError:  # being replaced by an editor, or gone: the next change is seen when it is back
            return 0.0
