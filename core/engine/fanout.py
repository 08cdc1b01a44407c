"""Followers of an event stream on one event loop: a queue each, and a stalled follower loses its oldest
events rather than block the writer. The engine's bus and the API's hub (core/api/bridge.py) both fan out
through it, each on its own loop."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from core.engine.events import Event


class Fanout:
    def __init__(self, queue_size: int = 10_000):
        self._queue_size = queue_size
        self._queues: list[asyncio.Queue[Event]] = []

    def subscribe(self) -> asyncio.Queue[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=self._queue_size)
        self._queues.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Event]) -> None:
        if queue in self._queues:
            self._queues.remove(queue)

    def deliver(self, events: Iterable[Event]) -> None:
        for event in events:
            for queue in self._queues:
                if queue.full():
                    queue.get_nowait()
                queue.put_nowait(event)
