"""Between the engine's event loop and the API's own (core/api/server.py runs the API in its own thread).

A request never waits for the engine's loop to read: the engine's state is published as an immutable
`Published` (its snapshot and recent events), built on the engine's loop after every change it announces and
swapped in whole, so the API's thread reads one consistent version without a lock. Writes go to the engine's
loop (`call`) and publish before they answer, so a client reads its own writes. Events reach the API's
followers (`Hub`) after the state that includes them is published: whoever saw an event reads a state with it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from core.engine.api import EngineAPI, Snapshot
from core.engine.events import Event
from core.engine.fanout import Fanout

T = TypeVar("T")
FRESH_WAIT = 0.02  # seconds a read waits for the engine to publish what it announced; then it reads the last


@dataclass(frozen=True, slots=True)
class Published:
    """The engine's state as of one change: what every read of the API shows."""

    seq: int  # one more at each publication: the API's list documents are rendered once per value
    snap: Snapshot
    events: tuple[Event, ...]  # the last events, oldest first (`EngineAPI.recent_events`)

    def snapshot(self) -> Snapshot:
        return self.snap

    def recent_events(self) -> tuple[Event, ...]:
        return self.events


class Hub(Fanout):
    """The event stream inside the API's loop: a queue per follower, fed by the bridge; only that loop uses it."""


class Bridge:
    """Made and started on the engine's loop; `state`, `fresh` and `call` are for the API's loop."""

    def __init__(self, engine: EngineAPI, hub: Hub):
        self._engine, self._hub = engine, hub
        self._engine_loop: asyncio.AbstractEventLoop | None = None
        self._api_loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[Event] | None = None
        self._watch: asyncio.Task[None] | None = None
        self._seq = 0
        self.state = self._build()

    def _build(self) -> Published:
        self._seq += 1
        return Published(self._seq, self._engine.snapshot(), self._engine.recent_events())

    def publish(self) -> None:
        """On the engine's loop: the state as of now, for every read from here on (one reference swapped)."""
        self.state = self._build()

    def start(self, api_loop: asyncio.AbstractEventLoop) -> None:
        """On the engine's loop: follow its events from now on."""
        self._engine_loop, self._api_loop = asyncio.get_running_loop(), api_loop
        self._queue = self._engine.subscribe()
        self.publish()
        self._watch = asyncio.create_task(self._follow(self._queue), name="api-bridge")

    async def close(self) -> None:
        """On the engine's loop."""
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
            self._watch = None
        if self._queue is not None:
            self._engine.unsubscribe(self._queue)
            self._queue = None

    async def _follow(self, queue: asyncio.Queue[Event]) -> None:
        assert self._api_loop is not None
        while True:
            batch = [await queue.get()]
            while not queue.empty():  # a burst (an apply's actions) publishes once
                batch.append(queue.get_nowait())
            self.publish()
            with contextlib.suppress(RuntimeError):  # the API's loop has closed: nobody follows any more
                self._api_loop.call_soon_threadsafe(self._hub.deliver, batch)

    async def fresh(self) -> Published:
        """On the API's loop: the state with every event the engine announced before now, if the engine's loop
        publishes it within FRESH_WAIT (it does at once unless it is busy); else the last one published."""
        if self._queue is None or self._engine_loop is None or self._queue.empty():  # a length: safe from here
            return self.state
        done = asyncio.run_coroutine_threadsafe(self._publish_now(), self._engine_loop)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.wrap_future(done), FRESH_WAIT)
        return self.state

    async def _publish_now(self) -> None:
        self.publish()

    async def call(self, work: Callable[[], Awaitable[T]]) -> T:
        """On the API's loop: run `work` on the engine's loop and publish after it, so the answer and every
        read after it show what it did. Carried out to its end even if the client leaves (as a handler on
        the engine's loop was: aiohttp does not cancel handlers)."""
        assert self._engine_loop is not None, "the bridge is not started"

        async def run() -> T:
            try:
                return await work()
            finally:
                self.publish()

        done = asyncio.run_coroutine_threadsafe(run(), self._engine_loop)
        return await asyncio.shield(asyncio.wrap_future(done))
