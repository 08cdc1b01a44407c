"""The API's list documents (/v1/hosts, /v1/services), rendered once per engine change and off the API's loop.

At 1,000 hosts a render costs tens of ms; on the loop every other request waited behind it. Here what a
document shows is gathered on the loop (the state the engine published, the file) and the document is built
and serialised in a thread.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

Gather = Callable[[], Callable[[], Any]]  # runs on the loop; returns what builds the document (in a thread)


class RenderedLists:
    def __init__(self) -> None:
        # list name → (key: the file revision it shows, the engine change it shows, its JSON body)
        self._rendered: dict[str, tuple[str, int, bytes]] = {}
        self._rendering: dict[str, tuple[str, asyncio.Future[bytes]]] = {}  # list name → (key, render under way)

    async def body(self, name: str, key: str, changes: int, gather: Gather) -> bytes:
        """The document `name` for `key` (the file revision it shows) and `changes` (the engine change it shows,
        core.api.bridge's `Published.seq`). While a render runs, a request gets the document of the engine
        change before (same key, so the revision and ETag stay exact): one change older, never more; older
        than that, it waits for the render."""
        hit = self._rendered.get(name)
        if hit is not None and hit[0] == key and hit[1] == changes:
            return hit[2]
        running = self._rendering.get(name)
        if running is None or running[0] != key:
            build = gather()
            future = asyncio.ensure_future(asyncio.to_thread(_dumps, build))
            self._rendering[name] = running = (key, future)
            future.add_done_callback(lambda done: self._done(name, key, changes, done))
        if hit is not None and hit[0] == key and hit[1] >= changes - 1:
            return hit[2]
        return await asyncio.shield(running[1])

    def _done(self, name: str, key: str, changes: int, done: asyncio.Future[bytes]) -> None:
        if self._rendering.get(name, (None, None))[1] is done:
            del self._rendering[name]
        if not done.cancelled() and done.exception() is None:
            hit = self._rendered.get(name)
            if hit is None or hit[0] != key or hit[1] <= changes:
                self._rendered[name] = (key, changes, done.result())


def _dumps(build: Callable[[], Any]) -> bytes:
    return json.dumps(build(), separators=(",", ":")).encode()
