"""Recent per-host samples the snapshots only hold one of, for sparklines."""

from __future__ import annotations

from collections import deque

from core.engine.api import Snapshot


class CpuHistory:
    """A small ring buffer of cpu% per host, one sample per new observation (not per redraw)."""

    def __init__(self, length: int = 16) -> None:
        self.length = length
        self._samples: dict[str, deque[float]] = {}
        self._last_at: dict[str, float] = {}

    def record(self, snapshot: Snapshot) -> None:
        for name, obs in snapshot.hosts.items():
            if obs.cpu_percent is None or self._last_at.get(name) == obs.at:
                continue
            self._last_at[name] = obs.at
            ring = self._samples.get(name)
            if ring is None:
                ring = self._samples[name] = deque(maxlen=self.length)
            ring.append(obs.cpu_percent)

    def samples(self, host: str) -> tuple[float, ...]:
        return tuple(self._samples.get(host, ()))
