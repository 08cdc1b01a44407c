"""The engine's event stream: the last events kept for a front end that joins late, every event but
`state.updated` journaled, and each one pushed to every subscriber.

Owns: the recent events; the subscribers' queues are its `Fanout`'s.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Mapping

from core.engine.events import Event, EventKind
from core.engine.fanout import Fanout
from core.model import ReplicaId
from core.store.base import StateStore


class Bus(Fanout):
    def __init__(self, journal: StateStore, clock: Callable[[], float], *, keep: int = 2000, queue_size: int = 10_000):
        super().__init__(queue_size)
        self._journal, self._clock = journal, clock
        self._events: collections.deque[Event] = collections.deque(maxlen=keep)
        journal.watch(self._journal_changed)

    def emit(
        self,
        kind: EventKind,
        message: str,
        host: str | None = None,
        replica: ReplicaId | None = None,
        data: Mapping[str, object] | None = None,
    ) -> None:
        event = Event(self._clock(), kind, message, host, replica, dict(data or {}))
        if kind is not EventKind.STATE_UPDATED:
            self._events.append(event)
            self._journal.log_event(event.at, event.as_json())
        self.deliver((event,))

    def recent(self) -> tuple[Event, ...]:
        return tuple(self._events)

    def _journal_changed(self, problem: str | None, written: int, dropped: int) -> None:
        # Bookkeeping never stops failover: the engine goes on from memory and says so, loudly.
        if problem is not None:
            self.emit(EventKind.JOURNAL_UNWRITABLE, f"{problem} (failover goes on; entries kept in memory)",
                      data={"level": "error"})  # fmt: skip
            return
        lost = f"; {dropped} events could not be kept meanwhile" if dropped else ""
        self.emit(EventKind.JOURNAL_RECOVERED, f"journal {self._journal.path} writable again: "
                  f"{written} entries written late{lost}", data={"written": written, "dropped": dropped})  # fmt: skip
