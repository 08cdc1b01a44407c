"""`demo-load SERVICE [-- COMMAND...]`: a demo replica that burns the cpu `loadmaster demo --load` set for SERVICE.

Demo hosts run it by that name (core.hostlink.demoload puts it on their PATH). It runs COMMAND (say
an HTTP server, so health checks still pass) as its child, ends with it, and meanwhile burns, on
one core, the millicores the load file (`$LOADMASTER_DEMO_LOAD`, JSON, written by `demoload.set_load`)
gives for SERVICE: busy for that share of every 100 ms slice, asleep for the rest. The cpu is real:
the host's probe measures it in /proc as any replica's, which is what the autoscaler reads.

Standard library only: demo hosts run it with whatever python started the fleet, without
importing loadmaster (one small process per replica).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

SLICE = 0.1  # seconds: short enough that a 1 s poll sees a steady share
REREAD = 0.5  # seconds between looks at the load file (a stat; read only when it changed)


class LoadFile:
    """The millicores to burn for one service, re-read when the file changes; 0 without a file."""

    def __init__(self, path: str | None, service: str) -> None:
        self.path, self.service = path, service
        self.millicores = 0.0
        self._stamp: tuple[int, int] | None = None
        self._next = 0.0

    def current(self, now: float) -> float:
        if self.path is not None and now >= self._next:
            self._next = now + REREAD
            try:
                st = os.stat(self.path)
                stamp = (st.st_mtime_ns, st.st_ino)
                if stamp != self._stamp:
                    with open(self.path, encoding="utf-8") as f:
                        entry = json.load(f).get(self.service) or {}
                    self.millicores = max(0.0, float(entry.get("millicores", 0)))
                    self._stamp = stamp
            except (OSError, ValueError, TypeError, AttributeError):
                self.millicores, self._stamp = 0.0, None  # no file, or one being replaced: idle until it reads
        return self.millicores


def burn(share: float, until: float) -> None:
    """Busy for `share` of the time up to `until`, then asleep to it."""
    busy_end = time.perf_counter() + share * max(0.0, until - time.perf_counter())
    while time.perf_counter() < busy_end:
        pass
    time.sleep(max(0.0, until - time.perf_counter()))


def main(argv: list[str]) -> int:
    if not argv or argv[0].startswith("-"):
        print("usage: demo-load SERVICE [-- COMMAND...]", file=sys.stderr)
        return 2
    service, rest = argv[0], argv[1:]
    if rest[:1] == ["--"]:
        rest = rest[1:]
    child = subprocess.Popen(rest) if rest else None  # the replica's own command, as given
    load = LoadFile(os.environ.get("LOADMASTER_DEMO_LOAD"), service)
    while True:
        if child is not None and (code := child.poll()) is not None:
            return code if code >= 0 else 128 - code  # killed by a signal: as a shell reports it
        now = time.perf_counter()
        burn(min(1.0, load.current(now) / 1000), now + SLICE)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
