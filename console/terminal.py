"""The console's terminal driver: Textual's own, except that output to a terminal that went away is dropped.

When the terminal closes (an SSH session drops, a tmux window is killed) every write to it fails with EIO.
Textual's writer thread dies on the first such write, and its queue (30 writes) then fills with frames that
nobody drains: the 31st write blocks the event loop for good, so the console never reaches the `finally`
that stops what it started (a demo ended by SIGHUP hung in CI with all its replicas alive). Here the first
failed write marks the terminal gone and every later one goes nowhere, so the console ends as after `q`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TextIO

from textual.drivers.linux_driver import LinuxDriver

if TYPE_CHECKING:
    from textual.app import App


class TerminalOutput:
    """The writer thread's file: writes and flushes pass through until one fails, then nothing does."""

    def __init__(self, file: TextIO) -> None:
        self._file = file
        self.gone = False

    def write(self, text: str) -> None:
        if not self.gone:
            try:
                self._file.write(text)
            except (OSError, ValueError):  # EIO: the terminal's other end is closed; ValueError: file closed
                self.gone = True

    def flush(self) -> None:
        if not self.gone:
            try:
                self._file.flush()
            except (OSError, ValueError):
                self.gone = True


class ConsoleDriver(LinuxDriver):
    def __init__(
        self, app: App[object], *, debug: bool = False, mouse: bool = True, size: tuple[int, int] | None = None
    ) -> None:
        super().__init__(app, debug=debug, mouse=mouse, size=size)
        self._file = TerminalOutput(self._file)  # type: ignore[assignment,arg-type]  # the writer thread needs write/flush
