"""`demo-load SERVICE [-- COMMAND...]`: a demo replica that burns the cpu `loadmaster demo --load` set for SERVICE.

Demo hosts run it by that name (core.hostlink.demoload puts it on their PATH). It runs COMMAND (say
an HTTP server, so health checks still pass) as its child, ends with it, and meanwhile burns, on
one core, the millicores the load file (`$LOADMASTER_DEMO_LOAD`, JSON, written by `demoload.set_load`)
gives for SERVICE: busy for that much cpu time in every 100 ms slice, asleep for the rest. The cpu is real:
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


class Burner:
    """Burns cpu time, not wall time: on a busy machine a process is descheduled inside its busy loop, and a
    loop timed by the clock would burn less than asked. What a slice could not burn is owed to the next
    ones (up to a second's worth), so /proc sees the share asked for whenever the machine can give it."""

    MAX_DEBT = 1.0  # cpu seconds

    def __init__(self) -> None:
        self.debt = 0.0

    def slice(self, cores: float, until: float) -> None:
        """Burn `cores` × the time left to `until` (plus what is owed), then sleep to `until`."""
        start = time.process_time()
        goal = start + cores * max(0.0, until - time.perf_counter()) + self.debt
        while time.process_time() < goal and time.perf_counter() < until:
            pass
        self.debt = min(self.MAX_DEBT, max(0.0, goal - time.process_time())) if cores > 0 else 0.0
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
    burner = Burner()
    while True:
        if child is not None and (code := child.poll()) is not None:
            return code if code >= 0 else 128 - code  # killed by a signal: as a shell reports it
        now = time.perf_counter()
        burner.slice(min(1.0, load.current(now) / 1000), now + SLICE)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
