"""A probe stream held to what a probe sends: readable frames, about one per poll.

A host that streams garbage, or valid frames as fast as it can, once made the controller spend a
core parsing them and write a warning per frame (46 MB of stderr in 12 s) until SIGTERM went
unanswered. The guard reads the stream through a `FrameReader` and gives a verdict, once, when the
host is past what any probe does:
- more than `BAD_IN_A_ROW` unusable frames in a row (garbage, impossible numbers, oversize);
- more than `MAX_ERROR_BYTES` of error output;
- frames faster than `RATE_FACTOR` per poll interval beyond a burst of `BURST` (a token bucket on
  arrival time, so frames bunched by a slow event loop or network still pass).
After a verdict it reads nothing more; the link then drops the connection and waits before trying
again. Everything here is pure but for the clock, which tests inject.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from core.hostlink.frames import Frame, FrameError, FrameReader, Unsupported

BAD_IN_A_ROW = 3  # one bad write is skipped; a probe that keeps sending them is broken or hostile
RATE_FACTOR = 4.0  # frames per poll interval allowed in the long run (a probe sends one)
BURST = 50  # frames allowed at once: a loop or a network that stalled for up to 50 polls delivers them together
MAX_ERROR_BYTES = 1 << 20  # of stderr from one probe: a probe writes errors only when something is off


@dataclass(frozen=True, slots=True)
class Misbehaving:
    """Why a host's stream is no longer read."""

    reason: str


class StreamGuard:
    def __init__(self, poll_interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._reader = FrameReader()
        self._clock = clock
        self._refill = RATE_FACTOR / max(poll_interval, 1e-3)  # tokens per second
        self._tokens = float(BURST)
        self._at: float | None = None
        self._bad = 0
        self._error_bytes = 0
        self.verdict: Misbehaving | None = None
        self.skipped: FrameError | None = None  # the latest unusable frame, for a host that is not (yet) misbehaving

    def feed(self, data: bytes) -> list[Frame | Unsupported]:
        """The usable items in `data`; none once a verdict is given (see `verdict`)."""
        if self.verdict is not None:
            return []
        now = self._clock()
        if self._at is not None:
            self._tokens = min(float(BURST), self._tokens + (now - self._at) * self._refill)
        self._at = now
        out: list[Frame | Unsupported] = []
        for item in self._reader.feed(data):
            if self._tokens < 1:
                self.verdict = Misbehaving(
                    f"sends frames faster than {RATE_FACTOR:g} per poll interval (more than {BURST} at once)"
                )
                return out
            self._tokens -= 1
            if isinstance(item, FrameError):
                self._bad += 1
                self.skipped = item
                if self._bad >= BAD_IN_A_ROW:
                    self.verdict = Misbehaving(f"{self._bad} unusable frames in a row, the last: {item}")
                    return out
                continue
            self._bad = 0
            out.append(item)
        return out

    def errors(self, size: int) -> None:
        """`size` bytes of the probe's stderr arrived."""
        self._error_bytes += size
        if self._error_bytes > MAX_ERROR_BYTES and self.verdict is None:
            self.verdict = Misbehaving(f"wrote more than {MAX_ERROR_BYTES} bytes of errors from its probe")
