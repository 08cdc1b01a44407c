"""Keeps an engine's desired state in step with the cluster file, for every front end.

The file is the desired state: an edit (by hand, by `core.desired`, by the HTTP API) or an explicit
request (the daemon's SIGHUP) re-reads it. A file the reader rejects changes nothing: the previous
configuration stays in force and `on_invalid` gets the problems to report. Signals, logging and
presentation belong to the front end that runs the watch (console/daemon.py).

A file is read only once it has been stable (same size, modification time and inode) for `settle`
seconds: an editor or a script caught mid-write leaves a prefix that may well parse (the first 500
bytes of a file can be 2 hosts and no services), and adopting it would stop everything. Nothing a
file holds ends the watch: whatever reading it raises is reported through `on_invalid`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

from core import desired
from core.errors import ConfigError, ConfigProblem
from core.model import ClusterConfig

log = logging.getLogger("loadmaster.config_watch")

SETTLE = 1.0  # seconds a changed file must stay unchanged before it is read

Stamp = tuple[int, int, int]  # (mtime ns, size, inode); (0, 0, 0) while the file is missing


class ConfigWatch:
    """Re-reads `path` when its modification time changes or when `request()` is called.

    Polling the mtime (not inotify) works on every filesystem the file may live on and costs one
    stat per interval; an edit is seen within `interval` seconds. `adopted` says which revision of the
    file (core.desired's) the engine adopted last: bytes it already has are not adopted again — the API
    and the autoscaler reload at once what they write, and the watch then sees the same file (one reload
    per write, not two). A request (SIGHUP) is adopted whatever the revision.
    """

    def __init__(
        self,
        path: Path,
        adopt: Callable[[ClusterConfig], object],
        on_invalid: Callable[[ConfigError], None],
        *,
        interval: float = 1.0,
        settle: float = SETTLE,
        adopted: Callable[[], str | None] | None = None,
    ) -> None:
        self.path = path
        self.interval = interval
        self.settle = settle
        self._adopt = adopt  # e.g. Engine.reload
        self._adopted = adopted  # e.g. lambda: engine.revision
        self._on_invalid = on_invalid
        self._wanted = asyncio.Event()

    def request(self) -> None:
        """Re-read the file at the next turn of `run`, changed or not (safe from a signal handler)."""
        self._wanted.set()

    async def run(self) -> None:
        """Until cancelled: notice edits and requests, and adopt the file each time it is valid."""
        seen = self._stamp()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wanted.wait(), self.interval)
            if self._stamp() == seen and not self._wanted.is_set():
                continue
            requested = self._wanted.is_set()
            self._wanted.clear()
            seen = await self._stable()
            if not self.reload(forced=requested):
                continue
            if self._stamp() != seen:  # written to while it was being read: read it again once it settles
                self._wanted.set()

    async def _stable(self) -> Stamp:
        """The file's stamp once it has not changed for `settle` seconds (at once if it is that old already)."""
        stamp = self._stamp()
        if stamp[0] and time.time() - stamp[0] / 1e9 >= self.settle:
            return stamp
        loop = asyncio.get_running_loop()
        since = loop.time()
        while loop.time() - since < self.settle:
            await asyncio.sleep(min(0.1, self.settle / 4))
            now = self._stamp()
            if now != stamp:
                stamp, since = now, loop.time()
        return stamp

    def reload(self, *, forced: bool = True) -> bool:
        """Read the file once: adopt it if valid (not `forced`: and not what the engine adopted last),
        else report it and keep the old configuration."""
        try:
            doc = desired.read(self.path)
        except ConfigError as exc:
            self._on_invalid(exc)
            return False
        except Exception as exc:  # a reader bug must not end the watch: no edit would be seen again
            log.exception("reading %s failed", self.path)
            problem = ConfigProblem(str(self.path), "", "", f"could not be read ({type(exc).__name__}: {exc})")
            self._on_invalid(ConfigError([problem]))
            return False
        if not forced and self._adopted is not None and self._adopted() == doc.revision:
            return True  # written and adopted by the engine's own front end (API, autoscaler) already
        try:
            self._adopt(doc.config)
        except Exception as exc:
            log.exception("adopting %s failed", self.path)
            problem = ConfigProblem(str(self.path), "", "", f"could not be adopted ({type(exc).__name__}: {exc})")
            self._on_invalid(ConfigError([problem]))
            return False
        return True

    def _stamp(self) -> Stamp:
        try:
            st = self.path.stat()
        except OSError:  # being replaced by an editor, or gone: the next change is seen when it is back
            return (0, 0, 0)
        return (st.st_mtime_ns, st.st_size, st.st_ino)
