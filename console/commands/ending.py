"""How a signal ends the interactive console: as `q` does, so that everything it started is stopped.

SIGTERM (a supervisor, `kill`) and SIGHUP (the terminal went away: an SSH session dropped, a tmux window
killed) would otherwise end the process at once: no `finally` runs, the journal is not flushed, and a demo's
replicas outlive the demo as orphans. While the app runs, the signal asks it to exit; before it runs (the
demo hosts or the engine still starting), it cancels the start-up, and the `finally` blocks stop what began.
"""

from __future__ import annotations

import asyncio
import signal
from types import TracebackType
from typing import Protocol

SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Exitable(Protocol):
    @property
    def is_running(self) -> bool: ...

    def exit(self, result: None = None, return_code: int = 0) -> None: ...


class Ending:
    """Use around the console's whole life (`with Ending() as ending:` in its outermost coroutine); the
    console's app registers itself with `ending.app = app` once it exists. `code` is the exit status a shell
    expects after the signal (128 + its number), None when no signal came."""

    def __init__(self) -> None:
        self.app: Exitable | None = None
        self.code: int | None = None
        self._task: asyncio.Task[object] | None = None

    def __enter__(self) -> Ending:
        self._task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in SIGNALS:
            loop.add_signal_handler(sig, self._received, sig)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> bool:
        loop = asyncio.get_running_loop()
        for sig in SIGNALS:
            loop.remove_signal_handler(sig)
        if kind is asyncio.CancelledError and self.code is not None and self._task is not None:
            self._task.uncancel()  # our own cancellation: the console ends with `code`, not a traceback
            return True
        return False

    def _received(self, sig: signal.Signals) -> None:
        first = self.code is None
        self.code = 128 + sig
        if self.app is not None and self.app.is_running:
            self.app.exit(return_code=self.code)
        elif first and self._task is not None:
            self._task.cancel()
